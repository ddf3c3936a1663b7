"""The ansätze against exact diagonalisation, through the real configuration path (slow).

Each run is what a user writes: ``[problem]``, then ``model``, ``n_iter = 300`` and ``seed`` in
``[method]``, nothing else, so these tests check the *default* hyperparameters of the models and
of VMC (sizes, samples, learning-rate and diagonal-shift schedules). The reference is the ED
ground energy of the same sector (``problem.exact()``), or an analytic value. Energies are the
final estimates of the run (``n_samples_final`` samples, fixed seeds), so each test is
deterministic; the tolerances are the accuracy targets of the issue (they may only be
tightened), and the statistical error of the final estimate must resolve them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import hamiltonians
from nqs import config as cfg
from nqs.runs.runner import run


def vmc_run(tmp_path: Path, problem: dict, model: str, seed: int = 0) -> tuple[dict, float]:
    """Run ``problem`` (registry name and parameters) with only ``model``, ``n_iter = 300`` and
    ``seed`` set; returns the archive's result and the wall time in seconds."""
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in problem.items())
    text = f"""
[problem]
{lines}

[method]
kind = "vmc"
model = "{model}"
n_iter = 300
seed = {seed}

[output]
archive = "{(tmp_path / 'run.h5').as_posix()}"
"""
    t0 = time.perf_counter()
    archive = run(cfg.loads(text), progress=False, log=lambda s: None)
    return archive.result, time.perf_counter() - t0


CASES = {
    "heisenberg-4x4-transformer": (dict(name="j1j2", Lx=4, Ly=4, J2=0.0), "transformer", 1e-3),
    "j1j2-4x4-J2=0.5-transformer": (dict(name="j1j2", Lx=4, Ly=4, J2=0.5), "transformer", 5e-3),
    "j1j2-4x4-J2=0.5-vit": (dict(name="j1j2", Lx=4, Ly=4, J2=0.5), "vit", 5e-3),
    "tj-4x4-2holes-hfds": (dict(name="tj", Lx=4, Ly=4, n_holes=2, J=0.4), "hfds", 2e-2),
    "z2-3x3-h=0.3-gauge_transformer": (dict(name="z2_gauge", Lx=3, Ly=3, h=0.3), "gauge_transformer", 1e-3),
    "u1-2x2-gauge_transformer": (dict(name="u1_qlm", Lx=2, Ly=2), "gauge_transformer", 1e-3),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_relative_error_against_ed(case, tmp_path):
    params, model, tolerance = CASES[case]
    problem = hamiltonians.get(**params)
    exact = problem.exact()
    result, wall = vmc_run(tmp_path, params, model)
    energy, error = result["energy"], result["energy_error"]
    rel = (energy - exact) / abs(exact)
    print(f"{case}: {energy:.8f} +- {error:.1e}, exact {exact:.8f}, relative error {rel:.2e}, wall {wall:.0f} s")
    # variational: not below the exact energy beyond 4 standard errors of the final estimate
    assert energy > exact - 4 * error
    # the target must be resolved by the statistics, else the test could pass on noise
    assert error < tolerance * abs(exact)
    assert rel < tolerance


@pytest.mark.slow
def test_z2_gauge_h0_reaches_minus_n_plaquettes(tmp_path):
    """At h = 0 the ground states have every plaquette +1: E = -Lx Ly exactly. The uniform
    superposition of the Gauss-law sector is one of them (every plaquette flip maps the sector
    onto itself), which is the gauge Transformer's base distribution; training must keep it."""
    result, wall = vmc_run(tmp_path, dict(name="z2_gauge", Lx=2, Ly=2, h=0.0), "gauge_transformer")
    print(f"z2_gauge 2x2 h=0: {result['energy']:.10f} (exact -4), wall {wall:.0f} s")
    assert result["energy"] == pytest.approx(-4.0, abs=1e-6)
