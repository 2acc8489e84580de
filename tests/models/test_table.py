import torch

from uasr.graph import linear_graph, one_to_one
from uasr.losses import occupancy, sequence_ce
from uasr.models.gaussian import GaussianEmission
from uasr.models.table import TableEmission


def _bigram_graph(C: int):
    from uasr.graph import ngram_graph
    from uasr.lm.ngram import train_ngram
    sents = [["a", "b", "c", "a", "b"], ["b", "c", "a"], ["c", "a", "b", "c"]] * 5
    lm = train_ngram(sents, 2)
    return ngram_graph(lm, ["a", "b", "c"], one_to_one())


def test_table_is_normalised_over_units():
    m = TableEmission(3, 5)
    m.random_init(torch.Generator().manual_seed(0))
    assert torch.allclose(m.log_q().exp().sum(1), torch.ones(3))


def test_gradient_is_minus_occupancy_and_em_increases_likelihood():
    torch.manual_seed(0)
    g = _bigram_graph(3)
    units = torch.randint(0, 4, (6, 7))
    lengths = torch.tensor([7, 6, 5, 7, 4, 3])
    m = TableEmission(3, 4)
    m.random_init(torch.Generator().manual_seed(1))
    em = m(units, lengths)
    loss = sequence_ce(em, lengths, g).sum()
    (grad,) = torch.autograd.grad(loss, m.logits)
    ll, gamma = occupancy(em, lengths, g)
    assert torch.allclose(-ll.sum(), loss)
    mask = torch.arange(7)[None] < lengths[:, None]
    assert torch.allclose(gamma.sum(-1)[mask], torch.ones(int(mask.sum())), atol=1e-5)
    assert gamma[~mask].abs().max() == 0
    prev = ll.sum()
    for _ in range(5):  # EM never decreases the likelihood
        m.m_step(TableEmission.counts(units, lengths, gamma, 4), smoothing=1e-6)
        ll, gamma = occupancy(m(units, lengths), lengths, g)
        assert ll.sum() >= prev - 1e-4
        prev = ll.sum()
    assert grad.abs().sum() > 0


def test_m_step_sparse_prior_is_the_clipped_map():
    m = TableEmission(2, 3)
    m.m_step(torch.tensor([[5.0, 0.5, 2.0], [1.0, 1.0, 2.0]]), smoothing=-1.0)
    expected = torch.tensor([[4.0, 1e-6, 1.0], [1e-6, 1e-6, 1.0]])
    assert torch.allclose(m.log_q().exp(), expected / expected.sum(1, keepdim=True))


def test_supervised_counts():
    units = torch.tensor([[0, 1, 1]])
    gamma = torch.nn.functional.one_hot(torch.tensor([[2, 0, 0]]), 3).float()
    c = TableEmission.counts(units, torch.tensor([3]), gamma, 2)
    assert torch.equal(c, torch.tensor([[0.0, 2.0], [0.0, 0.0], [1.0, 0.0]]))


def test_gaussian_m_step_recovers_means():
    x = torch.tensor([[[0.0, 0.0], [10.0, 10.0], [0.2, -0.2]]])
    gamma = torch.nn.functional.one_hot(torch.tensor([[0, 1, 0]]), 2).float()
    m = GaussianEmission(2, 2)
    m.m_step(GaussianEmission.stats(x, torch.tensor([3]), gamma), prior=1e-6)
    assert torch.allclose(m.mean[0], torch.tensor([0.1, -0.1]), atol=1e-4)
    em = m(x, torch.tensor([3]))
    assert em[0, 1].argmax() == 1 and em[0, 0].argmax() == 0


def test_linear_graph_total_equals_path_score():
    em = torch.randn(1, 3, 3).log_softmax(-1)
    g = linear_graph([2, 0, 1], one_to_one())
    ll = -sequence_ce(em, torch.tensor([3]), g)
    assert torch.allclose(ll, em[0, 0, 2] + em[0, 1, 0] + em[0, 2, 1], atol=1e-5)
