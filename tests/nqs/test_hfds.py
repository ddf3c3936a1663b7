"""Hidden-fermion determinant state: fermionic sign convention against exact eigenstates and ED,
the determinant structure, configuration checks (accuracy: tests/nqs/test_accuracy.py)."""

import tomllib

import jax
import netket as nk
import numpy as np
import optax
import pytest

import hamiltonians
from nqs import config
from nqs.runs.config import ConfigError
from nqs.models import model_spec
from nqs.models.hfds import HFDS, HFDSOptions, mean_field_orbitals, paired_mean_field_orbitals


def _hopping(problem) -> np.ndarray:
    n = problem.n_sites
    h = np.zeros((n, n))
    for i, j in problem.geometry.bonds:
        h[i, j] = h[j, i] = -1.0
    return h


def _exact_residual(problem, log_psi: np.ndarray, states: np.ndarray) -> tuple[float, float]:
    """``(E, |H psi - E psi| / |psi|)`` of the vector ``exp(log_psi)`` over the whole sector."""
    _, op = problem.to_netket()
    psi = np.exp(log_psi - np.max(log_psi.real))
    psi /= np.linalg.norm(psi)
    mat = op.to_sparse()
    h_psi = mat @ psi
    energy = float(np.real(np.vdot(psi, h_psi)))
    return energy, float(np.linalg.norm(h_psi - energy * psi))


def _slater_params(model: HFDS, phi: np.ndarray, states: np.ndarray):
    params = jax.jit(model.init)(jax.random.PRNGKey(0), states[:2])["params"]
    params = jax.tree_util.tree_map(np.asarray, params)
    params["orbitals"] = phi
    return {"params": params}


def test_rotated_fully_polarised_state_is_an_exact_eigenstate():
    """Sign convention with both spin species: the fully polarised free-fermion ground state,
    rotated into S^z = 0, is an exact eigenstate of t-J (the J term vanishes on triplets).
    As a determinant it has identical orbitals in the down and up blocks; its amplitudes are
    right only if occupied modes are ordered as the operator orders them (NetKet mode order)."""
    p = hamiltonians.get("tj", Lx=3, Ly=2, n_holes=2, pbc=False)  # n_up = n_dn = 2
    hi, _ = p.to_netket()
    states = np.asarray(hi.all_states())
    n, n_e = p.n_sites, 4
    e, v = np.linalg.eigh(_hopping(p))
    assert e[n_e] - e[n_e - 1] > 0.1  # closed shell: unique free-fermion ground state
    phi = np.concatenate([v[:, :n_e], v[:, :n_e]], axis=0)  # rows: down modes, then up modes
    model = HFDS(n_orbitals=n, n_electrons=n_e, n_hidden=0, jastrow=False)
    log_psi = np.asarray(jax.jit(model.apply)(_slater_params(model, phi, states), states))
    energy, residual = _exact_residual(p, log_psi, states)
    polarised = hamiltonians.get("tj", Lx=3, Ly=2, n_holes=2, pbc=False, Sz=2).exact()
    assert polarised == pytest.approx(e[:n_e].sum(), abs=1e-10)  # free spinless fermions
    assert energy == pytest.approx(polarised, abs=1e-10)
    assert residual < 1e-10

    # negative control: the same determinant with rows in site order (the snake Jordan-Wigner
    # order, up before down on a site) has configuration-dependent sign errors and is no
    # eigenstate, so the check above does test the ordering
    def site_ordered(x):
        modes = [m for site in range(n) for m in (n + site, site) if x[m]]
        return np.linalg.det(phi[modes]).astype(complex)

    wrong = np.log(np.array([site_ordered(x) for x in states]))
    _, residual_wrong = _exact_residual(p, wrong, states)
    assert residual_wrong > 0.1


def test_registry_model_is_exact_for_polarised_free_fermions():
    """``Sz = n_e/2``: t-J is free spinless fermions; with no hidden fermions, no Jastrow and
    no staggered field the built model starts (up to its 1e-2 initial noise) at the exact
    Slater determinant, and with the noise removed it is exact."""
    p = hamiltonians.get("tj", Lx=3, Ly=2, n_holes=2, pbc=False, Sz=2)
    hi, _ = p.to_netket()
    states = np.asarray(hi.all_states())
    o = HFDSOptions(n_hidden=0, jastrow=False, staggered_field=0.0, pairing=0.0)
    model = model_spec("hfds").build(p, o)
    phi = mean_field_orbitals(p, 0.0)
    log_psi = np.asarray(jax.jit(model.apply)(_slater_params(model, phi, states), states))
    energy, residual = _exact_residual(p, log_psi, states)
    assert energy == pytest.approx(p.exact(), abs=1e-5)  # 1e-3 tie-breaking field, second order
    assert residual < 1e-2


def test_hidden_rows_start_as_identity_block():
    """With zero noise the hidden rows are [0 | 1]: the HFDS equals the Slater determinant of
    its first N_e orbital columns (block-triangular determinant)."""
    p = hamiltonians.get("tj", Lx=2, Ly=2, n_holes=1, pbc=False)
    hi, _ = p.to_netket()
    states = np.asarray(hi.all_states())
    phi0 = mean_field_orbitals(p, 0.7)
    model = HFDS(
        n_orbitals=4, n_electrons=3, n_hidden=3, noise=0.0, jastrow=False,
        orbitals_init=nk.utils.HashableArray(phi0),
    )
    params = jax.jit(model.init)(jax.random.PRNGKey(0), states[:2])
    log_psi = np.asarray(jax.jit(model.apply)(params, states))
    ref = np.array([np.linalg.det(phi0[np.flatnonzero(x)]) for x in states])
    np.testing.assert_allclose(np.exp(log_psi), ref, atol=1e-12)
    assert np.all(np.abs(ref) > 0)


@pytest.mark.parametrize(
    "problem",
    [dict(n_holes=2), dict(n_holes=1, Sz=0.5), dict(n_holes=2, Sz=1)],
    ids=["Sz=0", "Sz=1/2", "Sz=1"],
)
def test_pairing_frame_sign_against_the_electron_frame(problem):
    """A pairing-frame determinant whose orbitals do not mix the spins (the up orbitals, and
    for the down holes the orthogonal complement of the down orbitals) is the electron-frame
    Slater determinant (Jacobi's complementary minors), so amplitude ratios are one constant on
    the whole sector; without the frame's sign factor they are not."""
    p = hamiltonians.get("tj", Lx=3, Ly=2, pbc=False, **problem)
    hi, _ = p.to_netket()
    states = np.asarray(hi.all_states())
    n, n_up, n_dn = p.n_sites, int(p.sector["n_up"]), int(p.sector["n_dn"])
    phi0 = mean_field_orbitals(p, 0.7)
    electron = HFDS(n_orbitals=n, n_electrons=n_up + n_dn, n_hidden=0, jastrow=False)
    ref = np.exp(np.asarray(jax.jit(electron.apply)(_slater_params(electron, phi0, states), states)))
    down = phi0[:n, :n_dn]
    q, _ = np.linalg.qr(np.concatenate([down, np.random.default_rng(0).normal(size=(n, n - n_dn))], axis=1))
    phi = np.zeros((2 * n, n_up + n - n_dn))
    phi[:n, : n - n_dn] = q[:, n_dn:]
    phi[n:, n - n_dn :] = phi0[n:, n_dn:]
    paired = HFDS(n_orbitals=n, n_electrons=phi.shape[1], n_hidden=0, jastrow=False, particle_hole_down=True)
    amp = np.exp(np.asarray(jax.jit(paired.apply)(_slater_params(paired, phi, states), states)))
    assert np.abs(ref).min() > 1e-8
    ratio = (amp / ref).real
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
    assert abs(ratio[0]) > 1e-3
    # negative control: the same determinant without (-1)^(sum of the empty down modes)
    empty_down_sum = (1 - states[:, :n]) @ np.arange(n)
    assert np.ptp((amp * (-1.0) ** empty_down_sum / ref).real) > 1e-3


def test_paired_start_is_closer_to_ed_than_the_neel_start():
    """Two holes on the 4x2 ladder: the projected d-wave BCS start (the default with S^z = 0) is
    closer to the exact ground energy than the electron-frame Néel Slater start (the default
    with an odd electron number), and its mean-field electron number is the sector's."""
    p = hamiltonians.get("tj", Lx=4, Ly=2, n_holes=2, J=0.4, pbc=[True, False])
    hi, _ = p.to_netket()
    states = np.asarray(hi.all_states())
    field, pairing = HFDSOptions().mean_field(p)
    assert pairing > 0
    energies = {}
    for o in (HFDSOptions(n_hidden=0, jastrow=False), HFDSOptions(n_hidden=0, jastrow=False, pairing=0.0)):
        model = model_spec("hfds").build(p, o)
        f, g = o.mean_field(p)
        phi = paired_mean_field_orbitals(p, f, g) if g else mean_field_orbitals(p, f)
        log_psi = np.asarray(jax.jit(model.apply)(_slater_params(model, phi, states), states))
        energies[g] = _exact_residual(p, log_psi, states)[0]
    n = p.n_sites
    phi = paired_mean_field_orbitals(p, field, pairing)
    electrons = np.sum(phi[n:] ** 2) + n - np.sum(phi[:n] ** 2)
    assert electrons == pytest.approx(n - 2, abs=1e-6)
    exact = p.exact()
    assert (energies[pairing] - exact) < 0.5 * (energies[0.0] - exact), (energies, exact)
    # an odd electron number keeps the electron frame and the strong Néel field
    odd = hamiltonians.get("tj", Lx=4, Ly=2, n_holes=1, J=0.4, pbc=[True, False])
    assert HFDSOptions().mean_field(odd) == (1.0, 0.0)
    assert not model_spec("hfds").build(odd, HFDSOptions()).particle_hole_down


@pytest.mark.parametrize("pairing", [0.0, 0.1], ids=["electron-frame", "pairing-frame"])
def test_hfds_reaches_ed_on_a_tiny_cluster(pairing):
    """Full-sum SR on the 2x3 open cluster with 2 holes (90 states): the hidden fermions let
    the determinant reach the interacting ground state, in both frames."""
    p = hamiltonians.get("tj", Lx=3, Ly=2, n_holes=2, pbc=False)
    hi, op = p.to_netket()
    model = model_spec("hfds").build(p, HFDSOptions(n_hidden=2, hidden_width=16, pairing=pairing))
    vs = nk.vqs.FullSumState(hi, model, seed=0)
    # real parameters, real wavefunction with a sign: SR's real mode is exact and much cheaper
    drv = nk.driver.VMC_SR(op, optax.sgd(0.05), diag_shift=1e-4, mode="real", variational_state=vs)
    drv.run(150, show_progress=False)
    energy = float(np.real(vs.expect(op).mean))
    exact = p.exact()
    # exact expectation (no sampling noise); 150 SR steps reach 1e-4 relative accuracy
    # while the mean-field start is ~5 % above
    assert energy >= exact - 1e-9
    assert (energy - exact) / abs(exact) < 1e-4


@pytest.mark.parametrize(
    "problem, match",
    [
        ('name = "j1j2"\nLx = 4\nLy = 4', "hfds.*t-J.*spin models use 'vit'"),
        ('name = "z2_gauge"\nLx = 2\nLy = 2\nh = 0.5', "gauge models 'gauge_transformer'"),
        ('name = "tj"\nLx = 3\nLy = 3\nn_holes = 9', "at least one electron"),
    ],
    ids=["spin", "gauge", "no-electrons"],
)
def test_problems_hfds_does_not_fit_are_refused_before_compute(problem, match):
    with pytest.raises(ConfigError, match=match):
        config.loads(f'[problem]\n{problem}\n[method]\nkind = "vmc"\nmodel = "hfds"\n')
    # building directly (bypassing the configuration) gives the same reason
    params = tomllib.loads(problem)
    p = hamiltonians.get(params.pop("name"), **params)
    with pytest.raises(ValueError, match=match):
        model_spec("hfds").build(p, HFDSOptions())


def test_configuration_checks_fail_before_compute():
    with pytest.raises(ConfigError, match="n_hidden must be >= 0"):
        config.loads(
            '[problem]\nname = "tj"\nLx = 2\nLy = 2\nn_holes = 1\npbc = false\n'
            '[method]\nkind = "vmc"\nmodel = "hfds"\nn_hidden = -1\n'
        )
    with pytest.raises(ConfigError, match="pairing must be >= 0"):
        config.loads(
            '[problem]\nname = "tj"\nLx = 2\nLy = 2\nn_holes = 1\npbc = false\n'
            '[method]\nkind = "vmc"\nmodel = "hfds"\npairing = -0.1\n'
        )
    with pytest.raises(ConfigError, match="hop_probability"):
        config.loads(
            '[problem]\nname = "tj"\nLx = 2\nLy = 2\nn_holes = 1\npbc = false\n'
            '[method]\nkind = "vmc"\nmodel = "hfds"\nhop_probability = 0\n'
        )


def test_sr_runs_in_real_mode_for_real_fermionic_states():
    """Real parameters on the t-J space: SR's real mode (exact there, several times cheaper than
    NetKet's complex fallback for fermions); complex parameters or spins: NetKet's choice."""
    from types import SimpleNamespace

    from nqs.vmc import _sr_mode

    tj_hi, _ = hamiltonians.get("tj", Lx=3, Ly=2, n_holes=2, pbc=False).to_netket()
    spin_hi, _ = hamiltonians.get("heisenberg_chain", L=4).to_netket()
    real = SimpleNamespace(parameters={"w": np.zeros(3), "b": {"c": np.zeros(2)}})
    cplx = SimpleNamespace(parameters={"w": np.zeros(3), "b": {"c": np.zeros(2, complex)}})
    assert _sr_mode(tj_hi, real) == "real"
    assert _sr_mode(tj_hi, cplx) is None
    assert _sr_mode(spin_hi, real) is None
