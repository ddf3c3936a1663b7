"""Simple-update PEPS: problems it refuses, boundary contraction, archive/resume, ED accuracy."""

import numpy as np
import pytest
from conftest import QuietRecorder as _Quiet

import hamiltonians
from nqs import config as cfg
from nqs.runs.config import ConfigError
from nqs.runs.runner import run
from tensornets.peps import PEPS, PEPSOptions

CONFIG = """
[problem]
name = "j1j2"
Lx = {Lx}
Ly = {Ly}
J2 = {J2}
pbc = false

[method]
kind = "peps"
bond_dim = {D}
taus = {taus}
sweeps_per_stage = {sweeps}
full_update_taus = {fu}

[output]
archive = "{archive}"
"""


def peps_run(tmp_path, Lx, Ly, J2, D, taus, sweeps, tag="run", resume=False, fu=()):
    text = CONFIG.format(
        Lx=Lx, Ly=Ly, J2=J2, D=D, taus=taus, sweeps=sweeps, fu=list(fu),
        archive=(tmp_path / f"{tag}.h5").as_posix(),
    )
    return run(cfg.loads(text), resume=resume, progress=False, log=lambda s: None)


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("j1j2", dict(Lx=4, Ly=4), "set pbc = false"),
        ("j1j2", dict(Lx=4, Ly=4, pbc=[True, False]), "set pbc = false"),
        ("heisenberg_chain", dict(L=8, pbc=False), "one-dimensional"),
        ("z2_gauge", dict(Lx=2, Ly=2, h=0.5), "links"),
        ("tj", dict(Lx=2, Ly=3, n_holes=2, pbc=False), "fermionic"),
        ("j1j2", dict(Lx=2, Ly=3, pbc=False, Sz=1.0), "does not fix total S\\^z"),
    ],
    ids=["periodic", "cylinder", "chain", "gauge", "tj", "sector"],
)
def test_peps_refuses_what_it_cannot_do(name, params, message):
    problem = hamiltonians.get(name, **params)
    with pytest.raises(ConfigError, match=message):
        PEPS.parse_options({"kind": "peps"}, problem, where="[method]")




def _dense(ham, Lx, Ly):
    """The dense matrix of a LocalHam2D, sites in quimb's row-major ``(i, j)`` order."""
    n = Lx * Ly
    basis = np.eye(2**n).reshape((2,) * n + (2**n,))
    out = np.zeros_like(basis)
    for (a, b), g in ham.terms.items():
        ka, kb = a[0] * Ly + a[1], b[0] * Ly + b[1]
        # g[(s_a s_b), (t_a t_b)] contracted with the input's t_a, t_b; outputs moved back in place
        hv = np.tensordot(np.asarray(g).reshape(2, 2, 2, 2), basis, axes=[[2, 3], [ka, kb]])
        out += np.moveaxis(hv, [0, 1], [ka, kb])
    return out.reshape(2**n, 2**n)


def test_local_ham_2d_has_the_registry_spectrum():
    # SU(2): the global ground state of J1-J2 has a member in the Sz = 1/2 sector (9 sites),
    # so the lowest eigenvalue of the translated terms must be the sector's ED energy
    p = hamiltonians.get("j1j2", Lx=3, Ly=3, J2=0.5, pbc=False)
    h = _dense(p.to_local_ham_2d(), 3, 3)
    assert np.linalg.eigvalsh(h)[0] == pytest.approx(p.exact(), abs=1e-10)


def test_boundary_energy_equals_dense_contraction():
    # 3x3 with J2: diagonal gates go through quimb's long-range simple update. With 3 rows every
    # environment is one boundary row of bond D^2 = chi (the default), contracted exactly, so the
    # boundary energy must agree with the dense contraction of the same PEPS to round-off.
    p = hamiltonians.get("j1j2", Lx=3, Ly=3, J2=0.5, pbc=False)
    m = PEPS(p, PEPSOptions(bond_dim=2, taus=[0.1], sweeps_per_stage=5))
    m.run(0, _Quiet())
    v = m.su.state.to_dense().ravel()
    e_dense = float(v @ (_dense(m.ham, 3, 3) @ v) / (v @ v))
    assert m.energy() == pytest.approx(e_dense, abs=1e-8)
    assert e_dense > p.exact()


def test_peps_resume_repeats_the_uninterrupted_run(tmp_path):
    args = dict(Lx=2, Ly=3, J2=0.0, D=2, sweeps=5)
    full = peps_run(tmp_path, taus=[0.2, 0.1, 0.05], tag="full", **args)
    peps_run(tmp_path, taus=[0.2, 0.1], tag="part", **args)
    resumed = peps_run(tmp_path, taus=[0.2, 0.1, 0.05], tag="part", resume=True, **args)
    np.testing.assert_array_equal(resumed.history["step"], full.history["step"])
    # the random pair order is seeded per stage and the bond weights are stored, so the
    # resumed stage repeats the uninterrupted one up to round-off of the reloaded tensors
    np.testing.assert_allclose(resumed.history["energy"], full.history["energy"], atol=1e-9)
    assert set(full.history) >= {"energy", "tau", "bond_dim"}
    assert full.result["chi"] == 4


def test_state_round_trips():
    p = hamiltonians.get("j1j2", Lx=2, Ly=3, pbc=False)
    m = PEPS(p, PEPSOptions(bond_dim=2))
    m2 = PEPS(p, PEPSOptions(bond_dim=2, seed=1))
    m2.load_state_dict(m.state_dict())
    a, b = m.su.state, m2.su.state
    overlap = (a.H @ b) / np.sqrt((a.H @ a) * (b.H @ b))
    assert abs(overlap) == pytest.approx(1.0, abs=1e-10)


def test_full_update_resumes_across_both_kinds_of_stage(tmp_path):
    # stages: simple, full, full; the interrupted run stops after the first full-update stage,
    # so the resumed one rebuilds a full-update evolver from stored tensors alone
    args = dict(Lx=2, Ly=3, J2=0.0, D=2, sweeps=4, taus=[0.2])
    full = peps_run(tmp_path, tag="full", fu=[0.1, 0.05], **args)
    peps_run(tmp_path, tag="part", fu=[0.1], **args)
    resumed = peps_run(tmp_path, tag="part", fu=[0.1, 0.05], resume=True, **args)
    np.testing.assert_allclose(resumed.history["energy"], full.history["energy"], atol=1e-8)
    assert full.history["full_update"].tolist() == [0.0, 1.0, 1.0]
    assert full.result["update"] == "full"
    assert full.result["energy"] > full.result["exact_energy"]


def test_full_update_refuses_diagonal_terms():
    p = hamiltonians.get("j1j2", Lx=3, Ly=3, J2=0.5, pbc=False)
    with pytest.raises(ConfigError, match="full_update_taus = \\[\\]"):
        PEPS.parse_options({"kind": "peps", "full_update_taus": [0.1]}, p, where="[method]")
    # by default J2 != 0 runs the simple update only, J2 = 0 adds the full-update stages
    assert PEPS(p, PEPSOptions(bond_dim=2)).fu_taus == []
    p0 = hamiltonians.get("j1j2", Lx=3, Ly=3, J2=0.0, pbc=False)
    assert PEPS(p0, PEPSOptions(bond_dim=2)).fu_taus == [0.1, 0.05, 0.05, 0.02, 0.02, 0.01]


@pytest.mark.slow
def test_peps_heisenberg_4x4_open_within_one_percent(tmp_path):
    """Defaults at D = 4: simple update (2.0% above ED here), then full update (0.53%, ~3 min)."""
    text = CONFIG.split("taus")[0].format(Lx=4, Ly=4, J2=0.0, D=4) + (
        f'\n[output]\narchive = "{(tmp_path / "fu.h5").as_posix()}"\n'
    )
    a = run(cfg.loads(text), progress=False, log=lambda s: None)
    e, exact = a.result["energy"], a.result["exact_energy"]
    # a PEPS energy is variational up to the chi = D^2 = 16 boundary contraction error (< 1e-6
    # here), so it may not fall below ED; 1% is the target of the issue
    assert exact <= e < exact * (1 - 0.01)
    assert a.result["update"] == "full"
