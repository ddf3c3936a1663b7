"""SU(2)_k anyon data and the anyon chain against known results (Feiguin et al. 2007: golden
chain, tricritical Ising c = 7/10 and Z_3 parafermions c = 4/5)."""

from itertools import product

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import hamiltonians
from hamiltonians import anyons

PHI = (1 + 5**0.5) / 2


def _labels(k):
    return [n / 2 for n in range(k + 1)]


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_f_symbols_are_orthogonal(k):
    for a, b, c, d in product(_labels(k), repeat=4):
        es, fs, f = anyons.f_matrix(a, b, c, d, k)
        assert len(es) == len(fs)  # both trees count the same fusion space
        if es:
            np.testing.assert_allclose(f @ f.T, np.eye(len(es)), atol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_f_symbols_satisfy_the_pentagon(k):
    F = anyons.f_symbol
    fuse = lambda x, y: anyons.fusion(x, y, k)  # noqa: E731
    n_checked = 0
    for a, b, c, d in product(_labels(k), repeat=4):
        for f in fuse(a, b):
            for g in fuse(f, c):
                for l in fuse(c, d):
                    for kk in fuse(b, l):
                        for e in set(fuse(g, d)) & set(fuse(a, kk)):
                            lhs = F(f, c, d, e, g, l, k) * F(a, b, l, e, f, kk, k)
                            rhs = sum(
                                F(a, b, c, g, f, h, k) * F(a, h, d, e, g, kk, k) * F(b, c, d, kk, h, l, k)
                                for h in fuse(b, c)
                            )
                            assert lhs == pytest.approx(rhs, abs=1e-12)
                            n_checked += 1
    assert n_checked > 100


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_quantum_dimensions_follow_the_fusion_rules(k):
    # d_a d_b = sum_c N_ab^c d_c, and d_{1/2} = 2 cos(pi / (k + 2))
    d = lambda j: anyons.quantum_dimension(j, k)  # noqa: E731
    assert d(0.5) == pytest.approx(2 * np.cos(np.pi / (k + 2)))
    for a, b in product(_labels(k), repeat=2):
        assert d(a) * d(b) == pytest.approx(sum(d(c) for c in anyons.fusion(a, b, k)))


@pytest.mark.parametrize("k, spin", [(3, 0.5), (3, 1.0), (4, 0.5), (5, 1.0)])
def test_pair_projector_is_the_trivial_channel(k, spin):
    # <a x|P^(0)|a x> = d_x / (d_a d_j), and P^(0) is a rank-one projector (a basis-independent
    # statement: the signs of the F-symbols are a gauge choice)
    j = round(2 * spin)
    for a in range(k + 1):
        xs = [x / 2 for x in range(k + 1)]
        xs = [x for x in xs if x in anyons.fusion(a / 2, spin, k)]
        p = np.zeros((k + 1, k + 1))
        for (x2, x), v in anyons.pair_projector(a, a, j, k).items():
            p[x2, x] = v
        d = lambda label: anyons.quantum_dimension(label, k)  # noqa: E731
        for x in xs:
            assert p[round(2 * x), round(2 * x)] == pytest.approx(d(x) / (d(a / 2) * d(spin)))
        np.testing.assert_allclose(p @ p, p, atol=1e-12)
        assert np.trace(p) == pytest.approx(1.0)


def test_golden_chain_projector_matrix_of_feiguin_et_al():
    # Feiguin et al. (2007), Fibonacci labels 1 = spin 0, tau = spin 1 at k = 3:
    # P(tau 1 tau) = phi^-2, P(tau tau tau) = phi^-1, off-diagonal phi^-3/2, P(1 tau 1) = 1
    p = anyons.pair_projector(2, 2, 2, 3)
    assert p[(0, 0)] == pytest.approx(PHI**-2)
    assert p[(2, 2)] == pytest.approx(PHI**-1)
    assert abs(p[(0, 2)]) == pytest.approx(PHI**-1.5)
    assert anyons.pair_projector(0, 0, 2, 3)[(2, 2)] == pytest.approx(1.0)


@pytest.mark.parametrize("L", [6, 9, 12])
def test_periodic_golden_chain_dimension_is_a_lucas_number(L):
    # closed fusion paths of Fibonacci anyons: Tr [[0,1],[1,1]]^L = phi^L + (-1/phi)^L
    p = hamiltonians.get("anyon_chain", L=L, k=3, spin=1.0)
    assert len(p.basis()) == round(PHI**L + (-1 / PHI) ** L)
    assert p.automaton().n_configs == len(p.basis())


@pytest.mark.parametrize("params", [dict(L=10, k=3, spin=0.5), dict(L=9, k=4, spin=1.0, pbc=False), dict(L=8, k=5, spin=1.5, theta=0.7)])
def test_automaton_and_check_agree(params):
    p = hamiltonians.get("anyon_chain", **params)
    basis = p.basis()
    assert p.constraint.check(basis).all()
    a = p.automaton()
    assert a.n_configs == len(basis)
    rng = np.random.default_rng(0)
    x = rng.integers(p.local_space.dim, size=(4000, p.n_sites))
    x[:1000] = a.sample_uniform(rng, 1000)
    np.testing.assert_array_equal(a.walk(x)[:, -1] == 0, p.constraint.check(x))
    assert p.constraint.check(p.constraint.random_configs(rng, 50)).all()


@pytest.mark.parametrize("theta", [0.0, np.pi, 0.4])
def test_spin_half_and_fibonacci_chains_have_one_spectrum(theta):
    # at k = 3 the labels of the spin-1/2 chain map onto the Fibonacci (spin-1) chain by
    # fusing every other label with the simple current 3/2; pair and triple channels correspond
    spectra = []
    for spin in (0.5, 1.0):
        h = hamiltonians.get("anyon_chain", L=10, k=3, spin=spin, theta=theta).sparse_matrix()
        assert abs(h - h.T).max() < 1e-12
        spectra.append(np.linalg.eigvalsh(h.toarray()))
    np.testing.assert_allclose(spectra[0], spectra[1], atol=1e-10)


@pytest.mark.parametrize("k", [3, 4])
def test_three_anyon_term_has_exact_dimer_ground_states(k):
    # theta = -pi/2: H = sum_i P^(3/2)_{i-1,i,i+1} >= 0 annihilates a covering by trivial-channel
    # pairs (every triple holds a whole pair, whose total is then 1/2): E0 = 0 and the path
    # 0, 1/2, 0, 1/2, ... (anyons (2m, 2m+1) paired) is a ground state, as at the Majumdar-Ghosh
    # point of SU(2) spins
    p = hamiltonians.get("anyon_chain", L=12, k=k, spin=0.5, theta=-np.pi / 2)
    h = p.sparse_matrix()
    assert np.linalg.eigvalsh(h.toarray())[0] == pytest.approx(0.0, abs=1e-10)
    dimers = np.flatnonzero((p.basis() == np.tile([0, 1], 6)).all(axis=1))
    assert len(dimers) == 1
    np.testing.assert_allclose(h[:, dimers[0]].toarray(), 0.0, atol=1e-12)


@pytest.mark.parametrize("params", [dict(L=4, k=3, spin=0.5, theta=0.3), dict(L=4, k=3, spin=1.0, pbc=False)])
def test_mpo_matches_exact_diagonalisation(params):
    # the MPO (with the sector penalty) has the sector's ground state as its ground state
    p = hamiltonians.get("anyon_chain", **params)
    h = p.to_mpo().to_dense()
    e0 = spla.eigsh(h, k=1, which="SA", return_eigenvectors=False)[0]
    assert e0 == pytest.approx(p.exact(), abs=1e-9)


def _low_levels(L, theta, n):
    h = hamiltonians.get("anyon_chain", L=L, k=3, spin=1.0, theta=theta).sparse_matrix()
    return np.sort(spla.eigsh(h, k=n, which="SA", tol=1e-12, return_eigenvectors=False))


@pytest.mark.parametrize(
    "theta, sizes, x1, c, ratio",
    [
        # antiferromagnetic: tricritical Ising; lowest levels x = 3/40 (sigma), 1/5 (epsilon)
        (0.0, (20, 22), 3 / 40, 7 / 10, (1 / 5) / (3 / 40)),
        # ferromagnetic: Z_3 parafermions; x = 2/15 (sigma, twice), 4/5 (epsilon). Sizes are
        # multiples of 6: the parafermion spectrum depends on L mod 3 (a twisted sector otherwise)
        (np.pi, (12, 18), 2 / 15, 4 / 5, (4 / 5) / (2 / 15)),
    ],
    ids=["antiferromagnetic", "ferromagnetic"],
)
def test_golden_chain_conformal_spectrum(theta, sizes, x1, c, ratio):
    # CFT on a ring: E0/L = e_inf - pi c v / (6 L^2), E_n - E0 = 2 pi v x_n / L. v from the
    # lowest gap at the larger size, c from E0/L at two sizes. Corrections are O(L^-2) relative
    # (irrelevant operators; 1/L^2 ~ 0.3% here, with coefficients of order one, measured
    # 0.2-0.4% at these sizes): 1.5% on c and 2% on the gap ratio are several times that.
    la, lb = sizes
    ea, eb = _low_levels(la, theta, 4), _low_levels(lb, theta, 4)
    gaps = eb[1:] - eb[0]
    v = gaps[0] * lb / (2 * np.pi * x1)
    slope = (eb[0] / lb - ea[0] / la) / (1 / la**2 - 1 / lb**2)
    assert 6 * slope / (np.pi * v) == pytest.approx(c, rel=0.015)
    second = gaps[2] if theta == np.pi else gaps[1]  # the sigma level of Z_3 is doubly degenerate
    if theta == np.pi:
        assert gaps[1] == pytest.approx(gaps[0], rel=1e-8)
    assert second / gaps[0] == pytest.approx(ratio, rel=0.02)


@pytest.mark.parametrize(
    "params, allowed",
    [
        (dict(L=6, k=1), "k >= 2"),
        (dict(L=6, k=3, spin=2.0), "allowed: 1/2, 1"),
        (dict(L=6, k=3, spin=1.5), "allowed: 1/2, 1"),
        (dict(L=6, k=3, spin=0.3), "allowed: 1/2, 1"),
        (dict(L=7, k=3, spin=0.5), "must be even"),
        (dict(L=2, k=3), "L >= 3"),
        (dict(L=3, k=3, theta=0.5), "L >= 4"),
        (dict(L=6, k=2, spin=0.5, theta=0.5), "theta = 0 or pi"),
    ],
)
def test_bad_parameters_name_what_is_allowed(params, allowed):
    with pytest.raises(ValueError, match=allowed):
        hamiltonians.get("anyon_chain", **params)
