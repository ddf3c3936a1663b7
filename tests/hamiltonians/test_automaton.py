"""The sector automaton: exact masks for constrained autoregressive sampling."""

import numpy as np
import pytest
from scipy import stats

import hamiltonians

CASES = [
    ("j1j2", dict(Lx=4, Ly=4)),
    ("j1j2", dict(Lx=3, Ly=3)),
    ("tj", dict(Lx=3, Ly=4, n_holes=2)),
    ("tj", dict(Lx=3, Ly=3, n_holes=2, Sz=1.5)),
    ("z2_gauge", dict(Lx=3, Ly=3, h=0.3)),
    ("z2_gauge", dict(Lx=3, Ly=3, h=0.3, charges=[[0, 0], [1, 2]])),
    ("u1_qlm", dict(Lx=4, Ly=4)),
    ("u1_qlm", dict(Lx=3, Ly=2, charges=[[0, 0, 1], [1, 1, -1]])),
]


@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_automaton_accepts_exactly_the_sector(name, params):
    p = hamiltonians.get(name, **params)
    a = p.automaton()
    basis = p.basis()
    assert a.n_configs == len(basis)
    assert (a.walk(basis)[:, -1] == 0).all()
    # every prefix of a sector configuration keeps a completion; a random product-space
    # configuration is accepted iff it is in the sector
    rng = np.random.default_rng(0)
    x = rng.integers(p.local_space.dim, size=(4000, p.n_sites))
    accepted = a.walk(x)[:, -1] == 0
    np.testing.assert_array_equal(accepted, p.constraint.check(x))
    # no dead ends: every allowed transition leads to a state with completions
    for k, t in enumerate(a.transitions):
        assert (t.max(axis=1) >= 0).all()
        assert (a.counts[k + 1][t[t >= 0]] > 0).all()


def test_uniform_sampling_is_uniform():
    p = hamiltonians.get("z2_gauge", Lx=2, Ly=2, h=0.1)
    a = p.automaton()
    x = a.sample_uniform(np.random.default_rng(1), 32_000)
    assert p.constraint.check(x).all()
    _, counts = np.unique(x, axis=0, return_counts=True)
    assert len(counts) == 32
    # chi-square against the uniform distribution over the 32 Gauss-law states
    assert stats.chisquare(counts).pvalue > 1e-3


def test_large_sectors_are_counted_without_enumeration():
    p = hamiltonians.get("z2_gauge", Lx=6, Ly=6, h=0.3)
    assert p.automaton().n_configs == 2.0 ** (72 - 36 + 1)
    q = hamiltonians.get("tj", Lx=6, Ly=6, n_holes=4)
    from math import comb

    assert q.automaton().n_configs == comb(36, 4) * comb(32, 16)
