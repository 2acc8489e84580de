"""Learning check: the graph engine scores the prefix-tree prior exactly; training helps."""

from __future__ import annotations

import numpy as np
import torch

from uasr.graph import compose, one_to_one, total_score
from uasr.theory.discrete import factorised_likelihood, joint
from uasr.theory.learning import prefix_tree_acceptor, sample_sequences, train_table
from uasr.theory.pc import sequence_index


def test_total_score_equals_enumerated_marginal():
    rng = np.random.default_rng(0)
    C, X, N = 3, 4, 3
    prior = rng.dirichlet(np.ones(C ** N))
    prior[5] = 0.0  # a pruned branch of the tree
    prior /= prior.sum()
    E = rng.dirichlet(np.ones(X), size=C)
    graph = compose(prefix_tree_acceptor(prior, C, N), one_to_one())
    xs = torch.as_tensor(sequence_index(X, N))
    em = torch.log(torch.as_tensor(E)).t()[xs]
    got = total_score(em, torch.full((X ** N,), N), graph, dtype=torch.float64)
    want = joint(prior, factorised_likelihood(E, N)).sum(0)
    np.testing.assert_allclose(got.exp().numpy(), want, rtol=1e-5, atol=1e-9)


def test_sampler_matches_the_model():
    rng = np.random.default_rng(1)
    C, X, N = 2, 3, 2
    prior, E = rng.dirichlet(np.ones(C ** N)), rng.dirichlet(np.ones(X), size=C)
    x = sample_sequences(rng, prior, E, N, 40000)
    emp = np.bincount(x[:, 0] * X + x[:, 1], minlength=X ** N) / len(x)
    np.testing.assert_allclose(emp, joint(prior, factorised_likelihood(E, N)).sum(0), atol=0.01)


def test_training_reduces_kl_and_true_emissions_score_the_true_loss():
    rng = np.random.default_rng(2)
    C, X, N = 3, 4, 3
    prior, E = rng.dirichlet(np.ones(C ** N)), rng.dirichlet(np.ones(X), size=C)
    x = sample_sequences(rng, prior, E, N, 2000)
    res = train_table(x, prior, E, N, steps=40, lr=0.05, eval_every=40)
    kl = res["curves"]["kl"]
    assert kl[-1] < kl[0] / 3
    # At theta = log E_r the loss is the empirical cross-entropy under the true model.
    loss = train_table(x, prior, E, N, steps=0, init=np.log(E))["curves"]["loss"][0]
    px = joint(prior, factorised_likelihood(E, N)).sum(0)
    want = -np.mean(np.log(px[np.ravel_multi_index(x.T, (X,) * N)]))
    assert abs(loss - want) < 1e-5
