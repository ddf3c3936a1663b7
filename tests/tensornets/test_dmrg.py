"""DMRG through the runner: ED accuracy in the problem's sector, archive, resume."""

import numpy as np
import pytest

import hamiltonians
from nqs import config as cfg
from nqs.runner import run
from tensornets.dmrg import DMRG, DMRGOptions

CONFIG = """
[problem]
name = "{name}"
{params}

[method]
kind = "dmrg"
bond_dims = {bond_dims}
max_sweeps = {sweeps}

[output]
archive = "{archive}"
"""


def dmrg_run(tmp_path, name, params, bond_dims, sweeps, tag="run", resume=False):
    text = CONFIG.format(
        name=name,
        params="\n".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items()),
        bond_dims=bond_dims,
        sweeps=sweeps,
        archive=(tmp_path / f"{tag}.h5").as_posix(),
    )
    return run(cfg.loads(text), resume=resume, progress=False, log=lambda s: None)


def test_dmrg_heisenberg_chain_matches_ed(tmp_path):
    a = dmrg_run(tmp_path, "heisenberg_chain", dict(L=12, J2=0.3, pbc=False), [8, 16, 32, 64], 8)
    # 12 sites open: chi = 64 covers the Schmidt spectrum to ~1e-12 discarded weight
    assert a.result["energy"] == pytest.approx(a.result["exact_energy"], abs=1e-8)
    assert a.status == "completed"
    h = a.history
    assert set(h) >= {"step", "energy", "bond_dim", "truncation_error", "wall_time"}
    assert h["bond_dim"][0] <= 8 and h["bond_dim"].max() <= 64
    assert a.result["sector_penalty"] == pytest.approx(0.0, abs=1e-8)


def test_dmrg_tj_stays_in_the_electron_sector(tmp_path):
    # without the penalty the global minimum has fewer holes (see test_backends); with it
    # DMRG must land on the 2-hole sector ground state
    a = dmrg_run(tmp_path, "tj", dict(Lx=2, Ly=3, n_holes=2, pbc=False), [9, 27, 64], 8)
    assert a.result["energy"] == pytest.approx(a.result["exact_energy"], abs=1e-8)
    assert a.result["sector_penalty"] == pytest.approx(0.0, abs=1e-8)


def test_dmrg_z2_gauge_respects_gauss_law(tmp_path):
    a = dmrg_run(tmp_path, "z2_gauge", dict(Lx=2, Ly=2, h=0.4), [8, 16, 32], 8)
    assert a.result["energy"] == pytest.approx(a.result["exact_energy"], abs=1e-8)


def test_dmrg_resume_continues_from_the_last_sweep(tmp_path):
    params = dict(L=14, J2=0.2, pbc=False)
    full = dmrg_run(tmp_path, "heisenberg_chain", params, [8, 16, 32], 6, tag="full")
    dmrg_run(tmp_path, "heisenberg_chain", params, [8, 16, 32], 3, tag="part")
    resumed = dmrg_run(tmp_path, "heisenberg_chain", params, [8, 16, 32], 6, tag="part", resume=True)
    np.testing.assert_array_equal(resumed.history["step"], full.history["step"])
    # the restart re-canonises the MPS, so the sweeps agree to round-off, not bit for bit
    np.testing.assert_allclose(resumed.history["energy"], full.history["energy"], atol=1e-9)


def test_dmrg_state_round_trips():
    p = hamiltonians.get("heisenberg_chain", L=6, pbc=False)
    m = DMRG(p, DMRGOptions(bond_dims=[4]))
    state = m.state_dict()
    m2 = DMRG(p, DMRGOptions(bond_dims=[4]))
    m2.load_state_dict(state)
    assert abs(m2.mps.H @ m.mps) == pytest.approx(1.0)
