"""A finished run checks itself: what each check catches and lets pass (the runner's storing
and showing of warnings is tested in test_runner.py on a real run)."""

import numpy as np
import pytest

from nqs.runs.diagnostics import run_warnings


def _history(rng, n=100, e=-10.0, err=0.01, var=0.5):
    """A converged stochastic training history: energies scattered by their error bars."""
    return {
        "energy": list(e + err * rng.standard_normal(n)),
        "energy_error": [err] * n,
        "variance": list(var * (1 + 0.1 * rng.standard_normal(n))),
    }


def test_a_sound_run_has_no_warnings():
    rng = np.random.default_rng(0)
    h = _history(rng)
    assert run_warnings(h, {"energy": -10.001, "energy_error": 0.005, "variance": 0.5}, -10.05) == []
    # DMRG: sweep energies without error bars, a converged MPS, ED equal to round-off
    dmrg = {"energy": [-4.0, -4.5, -4.515446354]}
    assert run_warnings(dmrg, {"energy": -4.515446354 - 1e-12, "sector_penalty": 1e-14}, -4.515446354) == []


@pytest.mark.parametrize(
    "final, exact, what",
    [
        # the gauge Transformer on z2 3x3 h=0.5 (issue 28): training near -10, final -5.8 +- 0.07
        ({"energy": -5.83, "energy_error": 0.07, "variance": 0.5}, None, "above the training energies"),
        ({"energy": -10.0, "energy_error": 0.01, "variance": 18.6}, None, "final variance"),
        ({"energy": -10.3, "energy_error": 0.01, "variance": 0.5}, -10.2, "below the exact"),
        ({"energy": float("nan")}, None, "final energy is nan"),
        ({"energy": -10.0, "energy_error": 0.01, "sector_penalty": 0.3}, None, "leaks out of the sector"),
    ],
    ids=["final-above-training", "variance-explodes", "below-exact", "nan", "sector-leak"],
)
def test_each_check_fires(final, exact, what):
    h = _history(np.random.default_rng(1))
    warnings = run_warnings(h, final, exact)
    assert len(warnings) == 1 and what in warnings[0]


def test_noise_at_the_tail_does_not_fire():
    """A final estimate 3 combined errors above the training tail is noise, not a failure."""
    h = _history(np.random.default_rng(2), err=0.05)
    assert run_warnings(h, {"energy": -10.0 + 3 * 0.05, "energy_error": 0.05, "variance": 0.5}, None) == []


def test_no_relative_error_of_a_zero_exact_energy():
    """At the Rokhsar-Kivelson point of the U(1) link model (lam = 1) the exact energy is zero to
    round-off: the result carries the error per site, no relative error (which read 8e8 there),
    and the comparison table shows none."""
    from nqs.runs.compare import _fmt
    from nqs.runs.diagnostics import relative_error
    from nqs.runs.runner import summarize

    assert relative_error(1.5e-6, -1.9e-15, 16) is None
    assert relative_error(-9.0, -10.0, 16) == pytest.approx(0.1)
    out = summarize(1.5e-6, 16, -1.9e-15)
    assert "relative_error" not in out and out["error_per_site"] == pytest.approx(1.5e-6 / 16)
    assert summarize(-9.0, 16, -10.0)["relative_error"] == pytest.approx(0.1)
    assert _fmt(None, ".2e") == "-"


def test_a_steady_state_that_drifted_away_warns():
    """``cost`` (``||A P||``) of a relaxation: noisy around 0.03 in the second half; a final 0.12
    fires, a final 0.05 (within the scatter) does not."""
    rng = np.random.default_rng(3)
    h = _history(rng, n=30)
    h["cost"] = list(np.r_[np.geomspace(0.9, 0.05, 10), 0.03 * (1 + 0.3 * rng.uniform(-1, 1, 20))])
    assert run_warnings(h, {"energy": -10.0, "energy_error": 0.01, "cost": 0.05}, None) == []
    (w,) = run_warnings(h, {"energy": -10.0, "energy_error": 0.01, "cost": 0.12}, None)
    assert "moved away from the steady state" in w


def test_a_steady_state_outside_the_bounds_of_a_density_matrix_warns():
    """An L = 16 relaxation collapsed onto one outcome string: sz = 3, szsz = 9 with zero errors,
    impossible for any density matrix; values inside [-1, 1], or outside by less than their
    errors allow, do not fire."""
    rng = np.random.default_rng(4)
    h = _history(rng, n=30)
    h["cost"] = [0.05] * 30
    base = {"energy": -10.0, "energy_error": 0.01, "cost": 0.05}
    ok = {**base, "sx": 0.45, "sx_error": 0.003, "sz": -1.002, "sz_error": 0.002, "szsz": 0.7, "szsz_error": 0.004}
    assert run_warnings(h, ok, None) == []
    bad = {**base, "sx": 0.0, "sx_error": 0.0, "sz": 3.0, "sz_error": 0.0, "szsz": 9.0, "szsz_error": 0.0}
    warns = run_warnings(h, bad, None)
    assert len(warns) == 2 and all("not that of a density matrix" in w for w in warns)
    assert "<sz> = 3" in warns[0] and "<szsz> = 9" in warns[1]
    assert run_warnings(h, {"energy": -10.0, "sz": 3.0}, None) == []  # not a steady state: no bound applies
