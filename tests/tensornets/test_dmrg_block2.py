"""DMRG with the sector's charges in the tensors (``backend = "block2"``) against ED."""

import numpy as np
import pytest
from conftest import QuietRecorder as _Quiet
import tomli_w

import hamiltonians
from nqs import config as cfg
from nqs.runs.config import ConfigError
from nqs.observables import measure_exact
from nqs.runs.runner import run
from tensornets.block2_model import block2_available, charges_of, operator_terms, su2_couplings
from tensornets.dmrg import DMRG, DMRGOptions, resolve_backend

pytestmark = pytest.mark.skipif(not block2_available(), reason="block2 is not installed (pip install -e '.[block2]')")

CONFIG = """
[problem]
name = "{name}"
{params}

[method]
kind = "dmrg"
backend = "block2"
bond_dims = {bond_dims}
max_sweeps = {sweeps}
threads = 1
{extra}

[output]
archive = "{archive}"
observables = {observables}
"""


def block2_run(tmp_path, name, params, bond_dims, sweeps, tag="run", resume=False, observables=(), **extra):
    def toml(v):
        return tomli_w.dumps({"v": v})[len("v = "):].strip()

    text = CONFIG.format(
        name=name,
        params="\n".join(f"{k} = {toml(v)}" for k, v in params.items()),
        bond_dims=bond_dims,
        sweeps=sweeps,
        extra="\n".join(f"{k} = {toml(v)}" for k, v in extra.items()),
        archive=(tmp_path / f"{tag}.h5").as_posix(),
        observables=toml(list(observables)),
    )
    return run(cfg.loads(text), resume=resume, progress=False, log=lambda s: None)


# One problem of each family whose sector is a set of global charges, small enough that the
# largest bond dimension is exact (discarded weight below 1e-12): the energy is then ED's to
# rounding of the Davidson threshold.
CASES = [
    ("heisenberg_chain", dict(L=12, J2=0.3, pbc=True), "abelian"),
    ("j1j2", dict(Lx=4, Ly=3, J2=0.5, pbc=False), "abelian"),
    ("j1j2", dict(Lx=4, Ly=3, J2=0.5, pbc=True), "su2"),
    ("j1j2", dict(Lx=4, Ly=4, J2=0.5, pbc=True), "su2"),
    ("tj", dict(Lx=3, Ly=3, n_holes=2), "abelian"),  # odd electron number: S^z = 1/2
    ("tj", dict(Lx=4, Ly=3, n_holes=2, pbc=[True, False]), "abelian"),
]


@pytest.mark.parametrize("name, params, symmetry", CASES, ids=lambda v: str(v) if not isinstance(v, dict) else "")
def test_charged_dmrg_equals_ed(tmp_path, name, params, symmetry):
    a = block2_run(tmp_path, name, params, [64, 512], 12, symmetry=symmetry)
    r = a.result
    assert r["backend"] == "block2" and r["symmetry"] == symmetry
    assert r["energy"] == pytest.approx(r["exact_energy"], abs=1e-8)
    # the sweeps never leave the sector: nothing to guard, nothing recorded
    assert np.all(a.history["sector_leak"] == 0.0) and r["sector_penalty"] == 0.0


def test_sector_is_exact_by_construction():
    # <(Q - v)^2> of the final MPS, from the registry's own penalty terms measured by block2:
    # zero to rounding for every charge (t-J: N_up and N_dn), not merely small
    p = hamiltonians.get("tj", Lx=3, Ly=3, n_holes=2)
    m = DMRG(p, DMRGOptions(backend="block2", bond_dims=[16], max_sweeps=2, threads=1))
    m.run(0, _Quiet())
    assert charges_of(p).target == (4, 3)
    ops = operator_terms(tuple(p.constraint.penalty_terms()), p, m.system.op_names)
    leak = sum(c * (m._expectation(op, s) if op else m._norm()) for op, s, c in ops) / m._norm()
    assert abs(leak) < 1e-10
    # and a random start is in the sector too (a penalty-free two-site DMRG from it could not
    # otherwise reach ED, as above)


def test_observables_on_the_charged_mps_equal_ed(tmp_path):
    # a Davidson threshold below the default: eigenvector errors enter observables to first
    # order (1e-8 left 1.5e-5 in the hole densities here), energies to second
    a = block2_run(
        tmp_path, "tj", dict(Lx=4, Ly=3, n_holes=2, pbc=False), [64, 512], 16,
        observables=["hole_density", "spin_correlation", "hole_spin_correlation"], davidson_tol=1e-12,
    )
    p = hamiltonians.get("tj", Lx=4, Ly=3, n_holes=2, pbc=False)
    exact = measure_exact(p, list(a.observables))
    assert a.result["truncation_error"] < 1e-12
    for name, v in a.observables.items():
        np.testing.assert_allclose(np.asarray(v["mean"]), exact[name], atol=1e-6, err_msg=name)

    b = block2_run(
        tmp_path, "j1j2", dict(Lx=4, Ly=3, J2=0.5, pbc=False), [64, 256], 16, tag="spins",
        observables=["sz_correlation", "spin_correlation"], symmetry="abelian", davidson_tol=1e-12,
    )
    exact = measure_exact(hamiltonians.get("j1j2", Lx=4, Ly=3, J2=0.5, pbc=False), list(b.observables))
    for name, v in b.observables.items():
        np.testing.assert_allclose(np.asarray(v["mean"]), exact[name], atol=1e-6, err_msg=name)


def test_resume_is_bit_for_bit(tmp_path):
    params = dict(Lx=4, Ly=3, n_holes=2, pbc=False)
    whole = block2_run(tmp_path, "tj", params, [16, 32, 64], 7, tag="whole")
    block2_run(tmp_path, "tj", params, [16, 32, 64], 3, tag="part")
    resumed = block2_run(tmp_path, "tj", params, [16, 32, 64], 7, tag="part", resume=True)
    assert len(resumed.history["energy"]) == len(whole.history["energy"]) == 7
    np.testing.assert_array_equal(resumed.history["energy"], whole.history["energy"])
    np.testing.assert_array_equal(resumed.history["truncation_error"], whole.history["truncation_error"])
    assert resumed.result["energy"] == whole.result["energy"]


def test_su2_bond_dimension_counts_multiplets(tmp_path):
    a = block2_run(tmp_path, "heisenberg_chain", dict(L=10, pbc=False), [8], 4, symmetry="su2")
    # 8 multiplets hold more than 8 S^z states; in S^z units the same state is wider
    assert a.result["bond_dim"] <= 8 < a.result["bond_dim_states"]


def test_su2_only_for_heisenberg_couplings():
    assert su2_couplings(hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)) is not None
    assert su2_couplings(hamiltonians.get("tj", Lx=3, Ly=3, n_holes=1)) is None
    opts = DMRGOptions(backend="block2", symmetry="su2")
    with pytest.raises(ValueError, match="abelian"):
        resolve_backend(hamiltonians.get("tj", Lx=3, Ly=3, n_holes=1), opts)


@pytest.mark.parametrize("name, params", [("u1_qlm", dict(Lx=3, Ly=3)), ("z2_gauge", dict(Lx=3, Ly=3, h=0.4))])
def test_backend_that_cannot_hold_the_sector_fails_at_configuration(tmp_path, name, params):
    with pytest.raises(ConfigError, match='backend = "quimb"'):
        block2_run(tmp_path, name, params, [16], 2)
    # auto picks the engine that can
    assert resolve_backend(hamiltonians.get(name, **params), DMRGOptions()) == "quimb"
