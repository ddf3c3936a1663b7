"""Exact diagonalisation against independent numbers: published ED values, exact solutions,
the Bethe-ansatz limit, free fermions, and a hand-computed fermionic sign."""

import time

import numpy as np
import pytest

import hamiltonians
from hamiltonians.exact import BasisIndex


def test_j1j2_4x4_frustrated_matches_published_ed():
    p = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    # ED value -0.5286202 per site (e.g. Choo et al., PRB 100, 125124); 7 digits published
    assert p.exact() / 16 == pytest.approx(-0.5286202, abs=1e-7)
    assert p.reference is not None and p.reference.per_site(16) == pytest.approx(-0.5286202)


def test_j1j2_4x4_heisenberg():
    p = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.0)
    # standard 4x4 ED value E = -11.2284832, i.e. -0.70178020 per site
    assert p.exact() == pytest.approx(-11.228483208, abs=1e-8)
    # the Marshall rotation is a unitary: same spectrum
    q = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.0, marshall=True)
    assert q.exact() == pytest.approx(p.exact(), abs=1e-10)


@pytest.mark.parametrize("L", [6, 8, 10, 12])
def test_majumdar_ghosh_point_is_exact(L):
    p = hamiltonians.get("heisenberg_chain", L=L, J2=0.5)
    assert p.exact() == pytest.approx(-0.375 * L, abs=1e-10)
    assert p.reference.energy == pytest.approx(-0.375 * L)


def test_heisenberg_chain_approaches_the_bethe_ansatz_limit():
    e_inf = 0.25 - np.log(2)
    sizes = [8, 10, 12, 14, 16, 18]
    e = np.array([hamiltonians.get("heisenberg_chain", L=L).exact() / L for L in sizes])
    # periodic chains approach from below, monotonically: E/L = e_inf - pi c v/(6 L^2) + ...,
    # c = 1, spin velocity v = pi/2 (Bethe ansatz), i.e. slope -pi^2/12
    assert np.all(np.diff(e) > 0) and np.all(e < e_inf)
    slope, intercept = np.polyfit(1 / np.array(sizes) ** 2, e, 1)
    # logarithmic corrections limit a 1/L^2 fit at these sizes to ~1e-4
    assert intercept == pytest.approx(e_inf, abs=3e-4)
    assert slope == pytest.approx(-(np.pi**2) / 12, rel=0.1)


@pytest.mark.parametrize("Lx, Ly", [(2, 2), (3, 3), (4, 3)])
def test_toric_code_energy_is_minus_number_of_plaquettes(Lx, Ly):
    p = hamiltonians.get("z2_gauge", Lx=Lx, Ly=Ly, h=0.0)
    assert p.exact() == pytest.approx(-Lx * Ly, abs=1e-10)
    assert p.reference.energy == -Lx * Ly


def test_polarised_tj_ring_hand_computed():
    # 2x2 open = a ring of 4 sites; two up electrons at J = 0... and any J: parallel spins feel
    # S.S - n n/4 = 0. Free fermions on a 4-ring: levels -2t, 0, 0, 2t -> E = -2t.
    # Hard-core bosons (a missing Jordan-Wigner sign) would give -2 sqrt(2) t.
    p = hamiltonians.get("tj", Lx=2, Ly=2, n_holes=2, pbc=False, Sz=1.0, t=1.0, J=0.7)
    assert p.exact() == pytest.approx(-2.0, abs=1e-12)


@pytest.mark.parametrize(
    "Lx, Ly, pbc, n_holes", [(3, 3, True, 5), (4, 3, False, 7), (4, 4, True, 11), (3, 4, True, 6)]
)
def test_polarised_tj_is_free_fermions(Lx, Ly, pbc, n_holes):
    t = 0.8
    p = hamiltonians.get("tj", Lx=Lx, Ly=Ly, n_holes=n_holes, pbc=pbc, t=t, Sz=(Lx * Ly - n_holes) / 2)
    n = Lx * Ly
    hop = np.zeros((n, n))
    for i, j in p.geometry.bonds:
        hop[i, j] = hop[j, i] = -t
    levels = np.linalg.eigvalsh(hop)
    assert p.exact() == pytest.approx(levels[: n - n_holes].sum(), abs=1e-10)


def test_tj_hopping_sign_hand_computed():
    # 2x2 open, snake sites 0=(0,0) 1=(1,0) 2=(1,1) 3=(0,1). |a> = c+_{0 up} c+_{1 dn}|0>.
    # H contains -t c+_{3 up} c_{0 up}:  c+_{3 up} c_{0 up} c+_{0 up} c+_{1 dn}|0> = c+_{3 up} c+_{1 dn}|0>
    #   = - c+_{1 dn} c+_{3 up}|0> = -|b>,  so <b|H|a> = -t * (-1) = +t.
    t = 0.7
    p = hamiltonians.get("tj", Lx=2, Ly=2, n_holes=2, pbc=False, t=t)
    basis = p.basis()
    idx = BasisIndex(basis, 3)
    a = idx(np.array([[1, 2, 0, 0]]))[0]
    b = idx(np.array([[0, 2, 0, 1]]))[0]
    h = p.sparse_matrix().toarray()
    assert h[b, a] == pytest.approx(+t)
    # the down electron hops 1 -> 2: c+_{2 dn} c_{1 dn} c+_{0 up} c+_{1 dn}|0> = +c+_{0 up} c+_{2 dn}|0>
    c = idx(np.array([[1, 0, 2, 0]]))[0]
    assert h[c, a] == pytest.approx(-t)


def test_tj_4x4_two_holes_enumerates_directly_and_fast():
    p = hamiltonians.get("tj", Lx=4, Ly=4, n_holes=2)
    t0 = time.perf_counter()
    basis = p.basis()
    assert len(basis) == 411_840 == p.constraint.size()
    e = p.exact()
    elapsed = time.perf_counter() - t0
    assert elapsed < 60
    # ground energy of the 4x4 periodic t-J model, 2 holes, J = 0.4 (t = 1): -10.6839...
    assert e == pytest.approx(-10.68391974, abs=1e-7)


def test_stoquastic_where_perron_frobenius_says_so():
    """Stoquastic after the phases <=> a ground state with those phases and positive amplitudes:
    checked against the sign of the ED ground state itself."""
    from nqs.models.autoregressive import sign_prior

    cases = [
        (hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.0), True),
        (hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5), False),
        (hamiltonians.get("z2_gauge", Lx=2, Ly=3, h=0.4), True),
        (hamiltonians.get("u1_qlm", Lx=2, Ly=2, lam=-0.3), True),
    ]
    for p, expected in cases:
        prior = sign_prior(p, "auto")
        phases = None if prior is None else np.asarray(prior)
        assert p.stoquastic(phases) is expected
        if expected:
            _, v, basis = p.exact_ground_state()
            ph = np.zeros((p.n_sites, p.local_space.dim)) if phases is None else phases
            sign = np.cos(ph[np.arange(p.n_sites), basis].sum(axis=1))
            v = v * np.sign(v[np.argmax(abs(v))] * sign[np.argmax(abs(v))])
            # every amplitude carries the prior's sign (zeros allowed)
            assert np.all(v * sign > -1e-10)
    assert not hamiltonians.get("tj", Lx=2, Ly=3, n_holes=1, pbc=False).stoquastic()


@pytest.mark.parametrize("Lx, Ly, n_holes", [(4, 3, 5), (3, 4, 7)])
def test_polarised_tj_on_a_cylinder_is_free_fermions_analytically(Lx, Ly, n_holes):
    """``pbc = [true, false]``: periodic around ``x``, open along ``y``. Spinless fermions with
    hopping ``-t`` there have the levels ``-2t cos(2 pi m / Lx) - 2t cos(pi n / (Ly + 1))``
    (plane waves around, standing waves along); the geometry is not read from the lattice."""
    t = 0.8
    p = hamiltonians.get("tj", Lx=Lx, Ly=Ly, n_holes=n_holes, pbc=[True, False], t=t, Sz=(Lx * Ly - n_holes) / 2)
    kx = 2 * np.pi * np.arange(Lx) / Lx
    ky = np.pi * np.arange(1, Ly + 1) / (Ly + 1)
    levels = np.sort((-2 * t * np.cos(kx)[:, None] - 2 * t * np.cos(ky)[None, :]).ravel())
    assert p.exact() == pytest.approx(levels[: Lx * Ly - n_holes].sum(), abs=1e-10)


def test_j1j2_cylinder_matches_netket_grid():
    """The 4x3 cylinder (J2 = 0.4) against NetKet's own lattice with ``pbc=[True, False]`` and
    its ``Heisenberg`` operator (Pauli matrices: 4x our ``S = sigma/2`` energies)."""
    import netket as nk

    J2 = 0.4
    p = hamiltonians.get("j1j2", Lx=4, Ly=3, J2=J2, pbc=[True, False])
    graph = nk.graph.Grid([4, 3], pbc=[True, False], max_neighbor_order=2)
    hilbert = nk.hilbert.Spin(0.5, graph.n_nodes, total_sz=0)
    h = nk.operator.Heisenberg(hilbert, graph, J=[1.0, J2], sign_rule=[False, False])
    assert p.exact() == pytest.approx(nk.exact.lanczos_ed(h)[0] / 4, abs=1e-9)
    assert len(p.geometry.bonds) == len(graph.edges(filter_color=0)) == 4 * 3 + 4 * 2
    assert len(p.geometry.diagonals) == len(graph.edges(filter_color=1)) == 2 * 4 * 2
