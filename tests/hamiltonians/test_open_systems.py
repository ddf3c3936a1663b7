"""Open problems: the dissipative models, their exact Lindblad references and their POVM form,
each against an independent number (NetKet's LocalLiouvillian and steady-state solver built
from NetKet's own spin operators, QuTiP where installed, analytic Bloch-equation solutions,
dense matrix exponentials)."""

import math

import netket as nk
import numpy as np
import pytest
import scipy.linalg

import hamiltonians
from hamiltonians import lindblad, povm
from hamiltonians.constraints import global_sums
from hamiltonians.lattice import SquareLattice
from hamiltonians.local_spaces import SPIN_HALF
from hamiltonians.problem import Problem

# Round-off tolerance for dense and sparse linear algebra on at most 4^5 = 1024 unknowns with
# O(1) entries: errors accumulate to ~1e-14; 1e-10 leaves room for LU pivoting and expm_multiply
# (which targets double precision), while any convention error is O(1).
TIGHT = 1e-10

CASES = {
    "ising_chain_pbc": dict(name="dissipative_ising", L=3, V=2.0, g=1.3, gamma=0.7),
    "ising_chain_obc": dict(name="dissipative_ising", L=4, V=-1.0, g=0.4, gamma=1.0, pbc=False),
    "ising_2x2_obc": dict(name="dissipative_ising", Lx=2, Ly=2, V=2.0, g=2.0, gamma=1.0, pbc=False),
    "xyz_chain_pbc": dict(name="dissipative_xyz", Lx=3, Ly=1, gamma=1.0),
    "xyz_2x2_obc": dict(name="dissipative_xyz", Lx=2, Ly=2, Jx=0.9, Jy=1.6, Jz=1.0, gamma=0.5, pbc=False),
    # complex, multi-site jumps: L^dag L is not real symmetric, so every transpose and
    # conjugate of the vectorisation matters (the models above have real symmetric ones)
    "complex_jumps": dict(name="custom"),
}
COMPLEX_JUMPS = (
    ((0.8, (("Sm", 0),)), (0.8j, (("Sm", 1),))),  # 0.8 (sigma^-_0 + i sigma^-_1)
    ((0.5, (("Sp", 2),)), (-0.3j, (("Z", 2),))),  # 0.5 sigma^+_2 - 0.3 i sigma^z_2
)


def _problem(case: str) -> Problem:
    kw = dict(CASES[case])
    if kw["name"] == "custom":
        ising = hamiltonians.get("dissipative_ising", L=3, V=1.0, g=0.7, pbc=False)
        return Problem(ising.terms, ising.local_space, ising.constraint, ising.geometry, jumps=COMPLEX_JUMPS)
    return hamiltonians.get(kw.pop("name"), **kw)


def _netket_liouvillian(case: str) -> nk.operator.LocalLiouvillian:
    """The same model written directly with NetKet's spin operators (not from our terms)."""
    kw = dict(CASES[case])
    name = kw.pop("name")
    p = _problem(case)
    hi = nk.hilbert.Spin(0.5, p.n_sites)
    sx, sy, sz, sm = (nk.operator.spin.sigmax, nk.operator.spin.sigmay, nk.operator.spin.sigmaz, nk.operator.spin.sigmam)
    bonds = p.geometry.bonds
    ha = 0.0 * sz(hi, 0)
    if name == "dissipative_ising":
        for i, j in bonds:
            ha = ha + kw["V"] / 4 * sz(hi, i) @ sz(hi, j)
        for i in range(p.n_sites):
            ha = ha + kw["g"] / 2 * sx(hi, i)
    elif name == "dissipative_xyz":
        jx, jy, jz = kw.get("Jx", 0.9), kw.get("Jy", 1.6), kw.get("Jz", 1.0)
        for i, j in bonds:
            ha = ha + jx * sx(hi, i) @ sx(hi, j) + jy * sy(hi, i) @ sy(hi, j) + jz * sz(hi, i) @ sz(hi, j)
    if name == "custom":
        for i, j in bonds:
            ha = ha + 1.0 / 4 * sz(hi, i) @ sz(hi, j)
        for i in range(p.n_sites):
            ha = ha + 0.7 / 2 * sx(hi, i)
        jumps = [0.8 * (sm(hi, 0) + 1j * sm(hi, 1)), 0.5 * nk.operator.spin.sigmap(hi, 2) - 0.3j * sz(hi, 2)]
        return nk.operator.LocalLiouvillian(ha, jumps)
    jumps = [math.sqrt(kw["gamma"]) * sm(hi, i) for i in range(p.n_sites)]
    return nk.operator.LocalLiouvillian(ha, jumps)


def _dense(lind: nk.operator.LocalLiouvillian) -> np.ndarray:
    """NetKet's Liouvillian as a dense matrix on rho.reshape(-1), from its own matvec
    (``to_linear_operator``; its ``to_dense`` costs a minute of numba compilation)."""
    m2 = lind.hilbert.physical.n_states ** 2
    return lind.to_linear_operator(sparse=True).matmat(np.eye(m2, dtype=complex))


def _random_rho(rng: np.random.Generator, d: int) -> np.ndarray:
    g = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    r = g @ g.conj().T
    return r / np.trace(r)


def _single_site(g: float, gamma: float) -> Problem:
    """The driven-damped two-level system H = g/2 sigma^x, L = sqrt(gamma) sigma^-."""
    return Problem(
        terms=((0.5 * g, (("X", 0),)),),
        local_space=SPIN_HALF,
        constraint=global_sums(SPIN_HALF, 1, {}),
        geometry=SquareLattice(1, 1, False),
        jumps=(((math.sqrt(gamma), (("Sm", 0),)),),),
    )


# --------------------------------------------------------------------------- registry
def test_open_models_are_registered_open_and_unconstrained():
    p = hamiltonians.get("dissipative_ising", L=8, g=2.0)
    assert p.is_open and p.n_sites == 8 and p.constraint.describe() == "no constraint"
    assert len(p.jumps) == 8 and p.exact() is None  # no ground-state reference for an open problem
    q = hamiltonians.get("dissipative_xyz", Lx=3, Ly=3)
    assert q.params == dict(Lx=3, Ly=3, Jx=0.9, Jy=1.6, Jz=1.0, gamma=1.0, pbc=True)
    assert q.is_open and len(q.geometry.bonds) == 18
    assert not hamiltonians.get("heisenberg_chain", L=4).is_open


def test_hamiltonian_backends_refuse_an_open_problem():
    p = hamiltonians.get("dissipative_xyz", Lx=3, Ly=1)
    with pytest.raises(ValueError, match="open problem.*lindblad.to_netket"):
        p.to_netket()
    with pytest.raises(ValueError, match="open problem.*build_mpo"):
        p.to_mpo()


@pytest.mark.parametrize(
    "call, fragments",
    [
        (lambda: hamiltonians.get("dissipative_ising", L=4, gamma=0.0), ["'gamma'=0.0", "positive"]),
        (lambda: hamiltonians.get("dissipative_xyz", Lx=3, Ly=3, gamma=-1.0), ["'gamma'=-1.0", "positive"]),
        (lambda: hamiltonians.get("dissipative_ising", L=4, Lx=4, Ly=4), ["either 'L'", "'Lx' and 'Ly'"]),
        (lambda: hamiltonians.get("dissipative_ising", Lx=4), ["either 'L'", "'Lx' and 'Ly'"]),
        (lambda: hamiltonians.get("dissipative_ising", L=2), ["lattice too small", "'L'=2"]),
        (lambda: hamiltonians.get("dissipative_ising", L=4.0), ["'L' must be an integer"]),
    ],
)
def test_bad_parameters_are_rejected(call, fragments):
    with pytest.raises(ValueError) as err:
        call()
    for fragment in fragments:
        assert fragment in str(err.value)


def _heisenberg_with(jumps) -> Problem:
    closed = hamiltonians.get("heisenberg_chain", L=4)  # declares total S^z = 0
    return Problem(closed.terms, closed.local_space, closed.constraint, closed.geometry, jumps=jumps)


def test_jumps_that_leave_the_declared_sector_are_rejected():
    with pytest.raises(ValueError) as err:
        _heisenberg_with((((1.0, (("Sm", 2),)),),))
    assert "changes 'Sz'" in str(err.value) and "conserve" in str(err.value) and "full product space" in str(err.value)
    with pytest.raises(ValueError, match="changes 'Sz'"):  # one non-conserving term is enough
        _heisenberg_with((((1.0, (("Sz", 0),)), (0.5, (("Sp", 1),))),))
    with pytest.raises(ValueError, match="outside 0..3"):
        _heisenberg_with((((1.0, (("Sz", 4),)),),))
    # dephasing and a spin-conserving hop keep the sector: accepted, and the dynamics stays in it
    ok = _heisenberg_with((((1.0, (("Sz", 0),)),), ((0.5, (("Sp", 0), ("Sm", 1))),)))
    assert ok.is_open and lindblad.liouvillian(ok).shape == (36, 36)


# --------------------------------------------------------------------- exact references
@pytest.mark.parametrize("case", CASES)
def test_liouvillian_equals_netkets(case):
    ours = lindblad.liouvillian(_problem(case)).toarray()
    theirs = _dense(_netket_liouvillian(case))
    # NetKet's states and ours are both lexicographic with up (+1) first, and NetKet's
    # Liouvillian acts on rho.reshape(-1): the same row-major vectorisation
    assert np.abs(ours - theirs).max() < TIGHT


def test_translated_netket_liouvillian_equals_ours():
    p = _problem("xyz_2x2_obc")
    assert np.abs(_dense(lindblad.to_netket(p)) - lindblad.liouvillian(p).toarray()).max() < TIGHT


@pytest.mark.parametrize("case", ["ising_chain_pbc", "xyz_2x2_obc", "ising_2x2_obc", "complex_jumps"])
def test_steady_state_is_a_density_matrix_and_netkets_null_vector(case):
    p = _problem(case)
    rho = p.exact_steady_state()
    assert np.trace(rho) == pytest.approx(1.0, abs=TIGHT)
    assert np.abs(rho - rho.conj().T).max() < TIGHT
    # positive: the smallest eigenvalue is >= 0 up to round-off
    assert np.linalg.eigvalsh(rho).min() > -TIGHT
    assert np.linalg.norm(lindblad.liouvillian(p) @ rho.reshape(-1)) < TIGHT
    # independent solver: the null space of NetKet's matrix by dense SVD (netket.exact.steady_state
    # is not used: its "ed" method returns a non-null eigenvector in this NetKet version)
    null = scipy.linalg.null_space(_dense(_netket_liouvillian(case)), rcond=1e-10)
    assert null.shape[1] == 1  # unique steady state
    theirs = null[:, 0].reshape(rho.shape)
    theirs = theirs / np.trace(theirs)
    assert np.abs(rho - theirs).max() < 1e-9  # SVD null vector: accurate to ~eps / gap


@pytest.mark.parametrize("g, gamma", [(1.0, 1.0), (0.3, 2.0), (4.0, 0.5)])
def test_single_site_steady_state_is_the_driven_damped_two_level_system(g, gamma):
    # Bloch equations of H = g/2 sigma^x, L = sqrt(gamma) sigma^-: <sx> = 0,
    # <sy> = 2 g gamma / (gamma^2 + 2 g^2), <sz> = -gamma^2 / (gamma^2 + 2 g^2)
    den = gamma**2 + 2 * g**2
    bloch = (0.0, 2 * g * gamma / den, -(gamma**2) / den)
    pauli = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])]
    exact = 0.5 * (np.eye(2) + sum(b * s for b, s in zip(bloch, pauli)))
    assert np.abs(_single_site(g, gamma).exact_steady_state() - exact).max() < TIGHT


@pytest.mark.parametrize("gamma", [0.5, 1.0])
def test_decay_from_all_up_is_exponential(gamma):
    # g = 0: H is diagonal, so the populations only decay, each spin independently:
    # <sz_i>(t) = 2 exp(-gamma t) - 1, <sz_i sz_j>(t) = <sz_i>(t)^2, whatever V
    p = hamiltonians.get("dissipative_ising", L=4, V=2.0, g=0.0, gamma=gamma)
    times = np.linspace(0.0, 3.0, 7)
    rho_t = lindblad.evolve(p, lindblad.product_state(p, [0, 0, 0, 0]), times)
    sz = lindblad.expectation(p, rho_t, [(1.0, (("Z", 1),))])
    szsz = lindblad.expectation(p, rho_t, [(1.0, (("Z", 1), ("Z", 2)))])
    m = 2 * np.exp(-gamma * times) - 1
    assert np.abs(sz - m).max() < TIGHT and np.abs(szsz - m**2).max() < TIGHT
    assert np.abs(np.trace(rho_t, axis1=1, axis2=2) - 1).max() < TIGHT


def test_evolution_matches_the_dense_exponential_of_netkets_liouvillian():
    p = _problem("xyz_chain_pbc")
    lnk = _dense(_netket_liouvillian("xyz_chain_pbc"))
    rho0 = _random_rho(np.random.default_rng(3), 8)
    times = [0.0, 0.25, 1.0, 1.0, 2.5]
    ours = lindblad.evolve(p, rho0, times)
    for t, r in zip(times, ours):
        assert np.abs(r.reshape(-1) - scipy.linalg.expm(t * lnk) @ rho0.reshape(-1)).max() < TIGHT
    # long times relax to the steady state (the Liouvillian gap here is O(gamma))
    late = lindblad.evolve(p, rho0, [60.0])[0]
    assert np.abs(late - p.exact_steady_state()).max() < 1e-8


def test_steady_state_matches_qutip():
    qutip = pytest.importorskip("qutip", reason="QuTiP is optional (pip install -e '.[open]')")
    p = _problem("ising_chain_pbc")
    kw = CASES["ising_chain_pbc"]
    n = p.n_sites

    def site(op, i):
        return qutip.tensor([op if k == i else qutip.qeye(2) for k in range(n)])

    # qutip's sigmaz() = diag(1, -1) and sigmam() = |1><0|: index 0 is up, as ours
    h = sum(kw["V"] / 4 * site(qutip.sigmaz(), i) * site(qutip.sigmaz(), j) for i, j in p.geometry.bonds)
    h += sum(kw["g"] / 2 * site(qutip.sigmax(), i) for i in range(n))
    c_ops = [math.sqrt(kw["gamma"]) * site(qutip.sigmam(), i) for i in range(n)]
    theirs = qutip.steadystate(h, c_ops).full()
    assert np.abs(p.exact_steady_state() - theirs).max() < 1e-8  # QuTiP's default solver tolerance


# ------------------------------------------------------------------------------- POVMs
@pytest.mark.parametrize(
    "name, up, plus",
    [
        # tetrahedral: P(a) = (1 + s_a . r)/4 with r the Bloch vector, s_1 = z, s_2 in the xz plane
        ("tetrahedral", [1 / 2, 1 / 6, 1 / 6, 1 / 6], [1 / 4, (1 + 2 * math.sqrt(2) / 3) / 4, (1 - math.sqrt(2) / 3) / 4, (1 - math.sqrt(2) / 3) / 4]),
        # Pauli-4: |0><0|/3, |+><+|/3, |r><r|/3 and the rest
        ("pauli4", [1 / 3, 1 / 6, 1 / 6, 1 / 3], [1 / 6, 1 / 3, 1 / 6, 1 / 3]),
    ],
)
def test_povm_outcome_distributions_of_pure_states(name, up, plus):
    rho_up = np.diag([1.0, 0.0]).astype(complex)
    rho_plus = 0.5 * np.ones((2, 2), dtype=complex)
    assert np.abs(povm.probabilities(rho_up, name) - up).max() < 1e-14
    assert np.abs(povm.probabilities(rho_plus, name) - plus).max() < 1e-14


@pytest.mark.parametrize("name", ["tetrahedral", "pauli4"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_povm_round_trip(name, n):
    rng = np.random.default_rng(n)
    for _ in range(3):
        rho = _random_rho(rng, 2**n)
        p = povm.probabilities(rho, name)
        assert p.shape == (4**n,) and p.min() > 0 and p.sum() == pytest.approx(1.0, abs=1e-13)
        assert np.abs(povm.density_matrix(p, name) - rho).max() < 1e-12


@pytest.mark.parametrize("name", ["tetrahedral", "pauli4"])
@pytest.mark.parametrize("case", ["single", "ising_chain_pbc", "xyz_chain_pbc", "ising_2x2_obc", "complex_jumps"])
def test_povm_liouvillian_is_the_map_of_the_lindblad_equation(name, case):
    p = _single_site(1.3, 0.8) if case == "single" else _problem(case)
    a = povm.liouvillian(p, name)
    lv = lindblad.liouvillian(p)
    d = 2**p.n_sites
    rng = np.random.default_rng(7)
    for _ in range(3):
        rho = _random_rho(rng, d)
        expected = povm.probabilities((lv @ rho.reshape(-1)).reshape(d, d), name)
        assert np.abs(a.apply(povm.probabilities(rho, name)) - expected).max() < 1e-12
    # the steady state is its null vector (and probability is conserved: columns sum to 0)
    assert np.abs(a.apply(povm.probabilities(p.exact_steady_state(), name))).max() < TIGHT
    assert all(np.abs(m.sum(axis=0)).max() < 1e-12 for _, m in a.terms)


def test_povm_liouvillian_connections_reproduce_its_action():
    p = _problem("xyz_chain_pbc")
    a = povm.liouvillian(p, "tetrahedral")
    pr = povm.probabilities(_random_rho(np.random.default_rng(5), 8))
    strings = np.stack(np.unravel_index(np.arange(64), (4, 4, 4)), axis=-1)
    conn, mels = a.connections(strings)
    from_connections = np.sum(mels * pr[np.ravel_multi_index(tuple(np.moveaxis(conn, -1, 0)), (4, 4, 4))], axis=1)
    assert np.abs(from_connections - a.apply(pr)).max() < 1e-13


@pytest.mark.parametrize("name", ["tetrahedral", "pauli4"])
def test_povm_observables_equal_the_trace(name):
    p = _problem("ising_2x2_obc")
    rho = _random_rho(np.random.default_rng(11), 16)
    pr = povm.probabilities(rho, name)
    outcomes = np.stack(np.unravel_index(np.arange(4**4), (4,) * 4), axis=-1)
    for terms in [
        [(1.0, (("Z", 2),))],
        [(0.5, (("X", i),)) for i in range(4)],
        [(1.0, (("Z", i), ("Z", j))) for i, j in p.geometry.bonds],
        [(0.7, (("Sp", 0), ("Sm", 3)))],  # not Hermitian: complex expectation
    ]:
        q = povm.observable(terms, p.local_space, name)
        exact = lindblad.expectation(p, rho, terms)
        assert abs(q.expectation(pr) - exact) < 1e-12
        assert abs(np.sum(pr * q.local_values(outcomes)) - exact) < 1e-12


def test_povm_refuses_non_qubits():
    with pytest.raises(ValueError, match="qubits"):
        povm.liouvillian(hamiltonians.get("tj", Lx=2, Ly=2, n_holes=1, pbc=False), "tetrahedral")


@pytest.mark.parametrize("case", ["xyz_2x2_obc", "complex_jumps"])
def test_steady_state_solvers_agree(case):
    # the solvers of lindblad.steady_state (LU up to 6 spins, relaxation above) agree
    p = _problem(case)
    lu = lindblad.steady_state(p, method="lu")
    assert np.abs(lu - lindblad.steady_state(p, method="relax")).max() < 1e-9
    assert np.abs(lu - lindblad.steady_state(p, method="arnoldi")).max() < 1e-9  # ARPACK tol 1e-13, gap O(gamma)


def test_steady_state_relaxation_reports_a_tiny_gap():
    # decay at rate 1e-7: relaxation takes ~1e7, beyond RELAX_T_MAX, so "relax" must refuse
    # rather than return the unrelaxed state; LU has no such limit
    p = hamiltonians.get("dissipative_ising", L=2, g=1.0, gamma=1e-7, pbc=False)
    with pytest.raises(ValueError, match="not relaxed"):
        lindblad.steady_state(p, method="relax")
    assert abs(np.trace(lindblad.steady_state(p, method="lu")) - 1) < 1e-12
    with pytest.raises(ValueError, match="method must be"):
        lindblad.steady_state(p, method="eigs")


@pytest.mark.parametrize("g", [0.5, 2.0])
def test_jump_trajectory_averages_equal_the_exact_steady_state(g):
    # one quantum-jump trajectory's time averages against tr(rho_ss O) (LU), within 4 of their
    # block errors, and those errors small (about 0.01): with the anti-Hermitian part of H_eff
    # dropped, for one, sx comes out 0 against 0.25 (g = 0.5)
    from hamiltonians.trajectories import jump_trajectory_averages

    p = hamiltonians.get("dissipative_ising", L=4, V=2.0, g=g, gamma=1.0)
    obs = {"sx": [(0.25, (("X", i),)) for i in range(4)], "sz": [(0.25, (("Z", i),)) for i in range(4)]}
    out = jump_trajectory_averages(p, obs, t_total=1000.0, seed=1)
    rho = lindblad.steady_state(p)
    for k, terms in obs.items():
        exact = np.real(lindblad.expectation(p, rho, terms))
        assert out[k]["error"] < 0.015, k
        assert abs(out[k]["mean"] - exact) < 4 * out[k]["error"], (k, out[k], exact)
    assert out["jumps"] > 40
    with pytest.raises(ValueError, match="no jump operators"):
        jump_trajectory_averages(hamiltonians.get("heisenberg_chain", L=4), obs, t_total=10.0)
