"""Checks shared by the sampler and model tests."""

import os

# The suite checks functions, not speed, and most of its time is XLA compiling small programs:
# without most of XLA's optimisation passes compile-bound tests take 20-35% less, run-bound ones
# somewhat more, the whole suite about 15% less.
# Set before JAX is imported, so the notebook kernels and subprocesses the tests start inherit it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from nqs.runs.methods import NullRecorder  # noqa: E402


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
