"""One observable module for every kind of state: exact vectors, MPS and Monte Carlo samples
agree with exact-diagonalisation expectation values."""

import numpy as np
import pytest
import quimb.tensor as qtn

import hamiltonians
from hamiltonians.exact import BasisIndex
from hamiltonians.netket_backend import configs_from_netket, configs_to_netket
from nqs import observables as ob

CASES = [
    ("j1j2", dict(Lx=3, Ly=3, J2=0.5), ["energy", "sz", "sz_correlation", "spin_correlation"]),
    ("tj", dict(Lx=2, Ly=3, n_holes=2, pbc=False), ["energy", "hole_density", "spin_correlation", "hole_spin_correlation"]),
    ("tj", dict(Lx=3, Ly=3, n_holes=1), ["energy", "hole_density", "spin_correlation"]),
    ("z2_gauge", dict(Lx=3, Ly=2, h=0.4), ["energy", "plaquette", "electric_field", "wilson_loop"]),
    ("u1_qlm", dict(Lx=2, Ly=2, lam=0.3), ["energy", "plaquette", "electric_field"]),
]
IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)]


def ground_state_mps(p):
    """One ED ground vector and the same state as an exact MPS."""
    _, v, basis = p.exact_ground_state()
    d, n = p.local_space.dim, p.n_sites
    full = np.zeros(d**n)
    full[(basis.astype(np.int64) * d ** np.arange(n)[::-1]).sum(axis=1)] = v
    return v, qtn.MatrixProductState.from_dense(full, dims=[d] * n)


@pytest.mark.parametrize("name, params, names", CASES, ids=IDS)
def test_exact_and_mps_agree(name, params, names):
    p = hamiltonians.get(name, **params)
    v, psi = ground_state_mps(p)
    exact = ob.measure_exact(p, names, v)  # the same vector: a degenerate manifold has many
    assert exact["energy"] == pytest.approx(p.exact(), abs=1e-10)
    mps = ob.measure_mps(p, psi, names)
    for key in names:
        np.testing.assert_allclose(mps[key], exact[key], atol=1e-10)


def test_known_values():
    p = hamiltonians.get("j1j2", Lx=4, Ly=4)
    e = ob.measure_exact(p, ["spin_correlation", "sz"])
    c = e["spin_correlation"]
    # <S_i.S_i> = 3/4; singlet ground state: sum_j <S_i.S_j> = 0 and <S^z_i> = 0
    np.testing.assert_allclose(np.diag(c), 0.75, atol=1e-12)
    np.testing.assert_allclose(c.sum(axis=1), 0.0, atol=1e-10)
    np.testing.assert_allclose(e["sz"], 0.0, atol=1e-12)
    # the energy is J1 times the nearest-neighbour correlations
    assert sum(c[i, j] for i, j in p.geometry.bonds) == pytest.approx(p.exact(), abs=1e-10)
    sq = ob.structure_factor(p, c)
    # sum rule: sum_q S(q) = sum_i <S_i.S_i>; Neel order peaks at (pi, pi)
    assert sq["S"].sum() == pytest.approx(0.75 * 16, abs=1e-9)
    assert np.unravel_index(np.argmax(sq["S"]), sq["S"].shape) == (2, 2)
    z2 = hamiltonians.get("z2_gauge", Lx=3, Ly=3, h=0.0)
    w = ob.measure_exact(z2, ["plaquette", "wilson_loop"])
    # toric code ground states: every plaquette and every contractible loop is +1
    np.testing.assert_allclose(w["plaquette"], 1.0, atol=1e-10)
    np.testing.assert_allclose(w["wilson_loop"], 1.0, atol=1e-10)


@pytest.mark.parametrize("name, params, names", CASES, ids=IDS)
def test_monte_carlo_estimates_agree_with_exact(name, params, names):
    """Samples drawn exactly from |psi_0|^2 with the ED ground state as the log-amplitude (in
    NetKet's sign convention for t-J): every estimate is within 5 standard errors."""
    p = hamiltonians.get(name, **params)
    _, v0, basis = p.exact_ground_state()
    v = v0
    index = BasisIndex(basis, p.local_space.dim)
    space = p.local_space
    if space.name == "tj_site":
        up = (basis == 1).astype(int)
        dn = (basis == 2).astype(int)
        v = v * (1 - 2 * ((dn * (np.cumsum(up, axis=1) - up)).sum(axis=1) % 2))

    def log_value(x_nk):
        i = index(configs_from_netket(space, np.asarray(x_nk)))
        amp = np.where(i >= 0, v[np.maximum(i, 0)], 0.0)
        with np.errstate(divide="ignore"):
            return np.log(amp.astype(complex))

    rng = np.random.default_rng(7)
    prob = v**2 / np.sum(v**2)
    draws = rng.choice(len(basis), size=20_000, p=prob)
    samples = configs_to_netket(space, basis[draws])
    mc = ob.measure_samples(p, log_value, samples, names)
    exact = ob.measure_exact(p, names, v0)
    for key in names:
        mean, err = np.asarray(mc[key]["mean"]), np.asarray(mc[key]["error"])
        np.testing.assert_array_less(np.abs(mean - exact[key]), 5 * err + 1e-9)
    # the energy estimator has zero variance on the exact eigenstate
    assert mc["energy"]["mean"] == pytest.approx(p.exact(), abs=1e-8)


def test_unknown_observable_is_rejected():
    p = hamiltonians.get("z2_gauge", Lx=2, Ly=2, h=0.1)
    with pytest.raises(ValueError, match="not defined for z2_gauge; available: .*plaquette"):
        ob.build(p, "spin_correlation")


def test_runs_store_requested_observables(tmp_path):
    from nqs.runs import archive, config, runner

    text = f"""
[problem]
name = "heisenberg_chain"
L = 8

[method]
kind = "dmrg"
backend = "quimb"
bond_dims = [16]
max_sweeps = 4

[output]
archive = "{(tmp_path / 'obs.h5').as_posix()}"
observables = ["spin_correlation", "sz"]
"""
    runner.run(config.loads(text), progress=False, log=lambda s: None)
    a = archive.load(tmp_path / "obs.h5")
    p = hamiltonians.get("heisenberg_chain", L=8)
    exact = ob.measure_exact(p, ["spin_correlation"])
    # 8 sites at chi = 16 = 2^4: the DMRG state is exact
    np.testing.assert_allclose(a.observables["spin_correlation"]["mean"], exact["spin_correlation"], atol=1e-8)
    with pytest.raises(config.ConfigError, match="observable 'plaquette' is not defined for heisenberg_chain"):
        config.loads(text.replace('"sz"', '"plaquette"'))
