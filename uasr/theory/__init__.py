"""The paper's theory (arXiv:2603.02285): the LM matrix P_C, the error bound, its simulation.

- :mod:`uasr.theory.pc`: P_C from an explicit prior or from an n-gram LM for any N (forward-
  backward over LM histories), sigma_min, ||P_C^+||_1 (induced and entrywise), rank test.
- :mod:`uasr.theory.discrete`: joints, marginals, delta, KL, E*, E_q, Delta_q and D_q (three
  candidate definitions) by enumeration, batched over problems; the bound's right-hand sides.
- :mod:`uasr.theory.simulation`, :mod:`~uasr.theory.necessity`, :mod:`~uasr.theory.learning`,
  :mod:`~uasr.theory.realtext`, :mod:`~uasr.theory.report`: the parts of
  ``recipes/simulation`` (run them with ``uasr simulate``).

Example::

    from uasr.theory import pc_from_lm, sigma_min, pinv_norms
    P = pc_from_lm(lm, N=50)            # lm: uasr.lm.arpa.NgramLM over phones
    print(sigma_min(P), pinv_norms(P)["induced"])
"""

from uasr.theory.discrete import analyse, bound_terms, compare, factorised_likelihood, joint
from uasr.theory.pc import (LabelChain, chain_from_bigram, chain_from_lm, chain_from_table,
                            chain_from_trigram, column_rank, full_column_rank, pc_from_chain,
                            pc_from_lm, pc_from_prior, pinv_norms, sigma_min, singular_values)

__all__ = [
    "LabelChain", "analyse", "bound_terms", "chain_from_bigram", "chain_from_lm",
    "chain_from_table", "chain_from_trigram", "column_rank", "compare", "factorised_likelihood",
    "full_column_rank", "joint", "pc_from_chain", "pc_from_lm", "pc_from_prior", "pinv_norms",
    "sigma_min", "singular_values",
]
