"""Checks shared by the sampler and model tests."""

import os

# The suite checks functions, not speed, and most of its time is XLA compiling small programs:
# without most of XLA's optimisation passes compile-bound tests take 20-35% less, run-bound ones
# somewhat more, the whole suite about 15% less.
# Set before JAX is imported, so the notebook kernels and subprocesses the tests start inherit it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax
import numpy as np
import pytest
from scipy import stats

from nqs.runs.methods import NullRecorder


def perturbed(params, key: jax.Array, scale: float = 0.3):
    """``params`` plus independent normal noise of width ``scale`` on every leaf (one key per
    leaf, split from ``key``): random weights far from a near-uniform initialisation, so that
    conditionals, phases and symmetries are not accidentally trivial."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(tree, [p + scale * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)])


def binned_chi_square(counts: np.ndarray, expected: np.ndarray, min_expected: float = 5.0) -> tuple[int, float]:
    """Chi-square test of observed ``counts`` against ``expected`` counts per configuration.

    Configurations are merged, from the least likely up, into bins of expected count at least
    ``min_expected`` (where the chi-square law of the statistic holds); returns the number of
    bins and the p-value."""
    obs, exp, acc_o, acc_e = [], [], 0.0, 0.0
    for i in np.argsort(expected):
        acc_o, acc_e = acc_o + counts[i], acc_e + expected[i]
        if acc_e >= min_expected:
            obs.append(acc_o)
            exp.append(acc_e)
            acc_o = acc_e = 0.0
    obs[-1] += acc_o
    exp[-1] += acc_e
    return len(obs), float(stats.chisquare(obs, exp).pvalue)


@pytest.fixture
def chi_square():
    """:func:`binned_chi_square`."""
    return binned_chi_square


QuietRecorder = NullRecorder  # the name the tests import


def killed_and_resumed(config, engine: type, die_at: int, monkeypatch):
    """Run ``config`` with ``engine.step`` interrupted (``KeyboardInterrupt``) at its
    ``die_at``-th call, then resume it from its archive; returns the resumed run's result.
    The caller compares it with an uninterrupted run (:func:`assert_same_history`)."""
    from nqs.runs.runner import run

    original = engine.step
    calls = {"n": 0}

    def dying(self, dt):
        calls["n"] += 1
        if calls["n"] == die_at:
            raise KeyboardInterrupt
        return original(self, dt)

    monkeypatch.setattr(engine, "step", dying)
    with pytest.raises(KeyboardInterrupt):
        run(config, progress=False, log=lambda s: None)
    monkeypatch.setattr(engine, "step", original)
    return run(config, resume=True, progress=False, log=lambda s: None)


def assert_same_history(whole, resumed, observables: tuple[str, ...] = (), parts: tuple[str, ...] = ("mean", "error")) -> None:
    """``resumed`` repeats ``whole`` bit for bit: every history column but the wall time, and
    the ``parts`` of each of ``observables``."""
    for key, col in whole.history.items():
        if key != "wall_time":
            np.testing.assert_array_equal(resumed.history[key], col, err_msg=key)
    for name in observables:
        for part in parts:
            np.testing.assert_array_equal(resumed.observables[name][part], whole.observables[name][part], err_msg=f"{name} {part}")


@pytest.fixture
def optimized_xla():
    """XLA's optimisation passes back on for one test (see the top of this file): for tests
    whose time is spent running compiled code, not compiling it."""
    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", before)
