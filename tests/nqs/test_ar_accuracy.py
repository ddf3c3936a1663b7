"""Autoregressive ansätze against exact diagonalisation, through the real configuration path.

Each run is what a user writes: ``[problem]``, then ``model``, ``n_iter = 300`` and ``seed`` in
``[method]``, nothing else, so these tests check the *default* hyperparameters of the models and
of VMC (sizes, samples, learning-rate and diagonal-shift schedules). The reference is the ED
ground energy of the same sector (``problem.exact()``), or an analytic value. Energies are the
final estimates of the run (``n_samples_final`` independent exact samples, fixed seeds), so
each test is deterministic; tolerances are accuracy targets of the ansatz and far above the
statistical error of the final estimate, which is asserted separately.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import hamiltonians
from nqs import config as cfg
from nqs.runner import run


def vmc_run(tmp_path: Path, problem: str, model: str, seed: int = 0) -> tuple[dict, float]:
    """Run ``problem`` (TOML lines of ``[problem]``) with only ``model``, ``n_iter = 300`` and
    ``seed`` set; returns the archive's result and the wall time in seconds."""
    text = f"""
[problem]
{problem}

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


def check_relative_error(result: dict, exact: float, tolerance: float) -> None:
    energy, error = result["energy"], result["energy_error"]
    rel = (energy - exact) / abs(exact)
    print(f"energy {energy:.8f} +- {error:.1e}, exact {exact:.8f}, relative error {rel:.2e}")
    # variational: not below the exact energy beyond 4 standard errors of the final estimate
    assert energy > exact - 4 * error
    # the target must be resolved by the statistics, else the test would pass on noise
    assert error < tolerance * abs(exact)
    assert rel < tolerance


# Even the 2x2 gauge lattice costs several CPU-seconds per step with the default sizes (about
# 18,000 parameters, on-the-fly minSR over 1024 samples), so every run here is slow.
@pytest.mark.slow
def test_z2_gauge_h0_reaches_minus_n_plaquettes(tmp_path):
    """At h = 0 the ground states have every plaquette +1: E = -Lx Ly exactly (a zero-variance
    state), reached when the model puts all weight on flux-free configurations."""
    result, wall = vmc_run(tmp_path, 'name = "z2_gauge"\nLx = 2\nLy = 2\nh = 0.0', "gauge_transformer")
    print(f"z2_gauge 2x2 h=0: {result['energy']:.10f} (exact -4), wall {wall:.0f} s")
    # 1e-6: every one of the final samples must be flux-free (one flux pair costs 4 / n_samples)
    assert result["energy"] == pytest.approx(-4.0, abs=1e-6)


@pytest.mark.slow
def test_z2_gauge_3x3_h03(tmp_path):
    problem = hamiltonians.get("z2_gauge", Lx=3, Ly=3, h=0.3)
    result, wall = vmc_run(tmp_path, 'name = "z2_gauge"\nLx = 3\nLy = 3\nh = 0.3', "gauge_transformer")
    print(f"z2_gauge 3x3 h=0.3: wall {wall:.0f} s")
    check_relative_error(result, problem.exact(), 1e-3)


@pytest.mark.slow
def test_u1_qlm_2x2(tmp_path):
    problem = hamiltonians.get("u1_qlm", Lx=2, Ly=2)
    result, wall = vmc_run(tmp_path, 'name = "u1_qlm"\nLx = 2\nLy = 2', "gauge_transformer")
    print(f"u1_qlm 2x2: wall {wall:.0f} s")
    check_relative_error(result, problem.exact(), 1e-3)


@pytest.mark.slow
def test_heisenberg_4x4(tmp_path):
    problem = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.0)
    result, wall = vmc_run(tmp_path, 'name = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.0', "transformer")
    print(f"j1j2 4x4 J2=0: wall {wall:.0f} s")
    check_relative_error(result, problem.exact(), 1e-3)


@pytest.mark.slow
def test_j1j2_4x4_frustrated(tmp_path):
    problem = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    result, wall = vmc_run(tmp_path, 'name = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.5', "transformer")
    print(f"j1j2 4x4 J2=0.5: wall {wall:.0f} s")
    check_relative_error(result, problem.exact(), 5e-3)
