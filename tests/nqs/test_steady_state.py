"""Steady states of open problems: the Transformer over POVM outcome strings, the cost
gradient, the ``steady_state`` run kind (archive, resume) and the configuration checks."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy import stats

import hamiltonians
from hamiltonians import povm as pv
from nqs.models.povm import POVMTransformerOptions, build_povm_transformer, log_prob, outcome_hilbert
from nqs.runs import runner
from nqs.runs.archive import load
from nqs.runs.config import ConfigError, loads
from nqs.sampling.direct_sampler import ConstrainedDirectSampler, ConstrainedDirectSamplerState
from nqs.steady_state import all_outcomes, cost_terms, exact_cost, surrogate

TINY = POVMTransformerOptions(d_model=8, n_heads=2, n_layers=1)


def _perturbed(model, n, seed=1, scale=0.5):
    """Parameters far from the near-uniform start, so that the tests see a generic ``P``."""
    params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, n)))["params"]
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def test_outcome_transformer_is_normalised_and_sampled_exactly():
    n = 3
    model = build_povm_transformer(n, TINY)
    params = _perturbed(model, n, scale=1.0)
    a = all_outcomes(n)
    assert a.shape == (64, 3) and (a[5] == [0, 1, 1]).all()  # site 0 most significant
    p = np.exp(np.asarray(log_prob(model, params, jnp.asarray(a))))
    assert abs(p.sum() - 1) < 1e-12
    assert p.max() / p.min() > 5  # not the uniform distribution: the test below can tell
    sampler = ConstrainedDirectSampler(outcome_hilbert(n), model.local_space)
    n_draws = 10000
    x, _ = sampler.sample(model, {"params": params}, state=ConstrainedDirectSamplerState(jax.random.PRNGKey(7)),
                          chain_length=n_draws)
    x = np.asarray(x).reshape(n_draws, n).astype(int)
    counts = np.bincount(np.ravel_multi_index(x.T, (4,) * n), minlength=4**n)
    chi2 = stats.chisquare(counts, n_draws * p)
    assert chi2.pvalue > 1e-3, chi2


@pytest.mark.parametrize("cost", ["l1", pytest.param("l2", marks=pytest.mark.slow)])
def test_gradient_estimator_is_the_gradient_of_the_cost(cost):
    # the surrogate over every outcome string weighted by P is the expectation of the
    # sampled estimator: its gradient must be that of the exactly summed cost
    problem = hamiltonians.get("dissipative_ising", L=2, g=1.3, gamma=0.7, pbc=False)
    op = pv.liouvillian(problem, "tetrahedral")
    model = build_povm_transformer(2, TINY)
    params = _perturbed(model, 2)
    a = all_outcomes(2)
    conns, mels = (jnp.asarray(v) for v in op.connections(a))
    a = jnp.asarray(a)
    w = jnp.exp(log_prob(model, params, a))
    exact = jax.jit(jax.grad(lambda q: exact_cost(model, q, op, cost)))(params)
    estimate = jax.jit(jax.grad(lambda q: surrogate(model, q, a, conns, mels, w, cost)[0]))(params)
    ge, gs = ravel_pytree(exact)[0], ravel_pytree(estimate)[0]
    assert float(jnp.abs(ge).max()) > 1e-2
    assert float(jnp.abs(ge - gs).max()) < 1e-10 * max(1.0, float(jnp.abs(ge).max()))
    # and the cost itself: E_P f = C
    f, _ = cost_terms(model, params, a, conns, mels, cost)
    assert abs(float(jnp.sum(w * f)) - float(exact_cost(model, params, op, cost))) < 1e-12
    # at the exact steady state the cost vanishes
    p_ss = pv.probabilities(problem.exact_steady_state(), "tetrahedral")
    assert np.abs(op.apply(p_ss)).sum() < 1e-10


OPEN = """
[problem]
name = "dissipative_ising"
L = {L}
g = 1.0

[method]
kind = "steady_state"
solver = "adam"
n_iter = {n_iter}
n_samples = 64
n_samples_final = 256
learning_rate = 0.01
d_model = 8
n_heads = 2
n_layers = 1

[output]
archive = "{archive}"
checkpoint_every = 2
"""


@pytest.mark.parametrize(
    "edit, fragments",
    [
        # a pure-state method on an open problem
        (('kind = "steady_state"', 'kind = "vmc"\nmodel = "rbm"'), ['kind \'vmc\'', "open problem", 'kind = "steady_state"']),
        (('kind = "steady_state"', 'kind = "dmrg"'), ["open problem", 'kind = "steady_state"']),
        # a wavefunction model for a mixed state
        (('d_model = 8', 'model = "rbm"'), ["'rbm'", "cannot represent a mixed state", "model = 'transformer'"]),
        # the steady state of a closed problem
        (('name = "dissipative_ising"\nL = 3\ng = 1.0', 'name = "heisenberg_chain"\nL = 4'), ["closed problem", 'kind = "vmc"']),
        # a non-positive rate
        (('g = 1.0', 'g = 1.0\ngamma = 0.0'), ["'gamma'=0.0", "positive"]),
        (('g = 1.0', 'g = 1.0\ngamma = -1.0'), ["positive"]),
        (('n_layers = 1', 'n_layers = 1\nn_sample = 3'), ["'n_sample'", "n_samples"]),
        # keys of the other solver
        (('solver = "adam"', 'solver = "relax"'), ["learning_rate", "solver = 'adam'"]),
        (('solver = "adam"', 'solver = "adam"\ndt = 2.0'), ["dt", "solver = 'relax'"]),
        (('cost', 'cost'), []),
    ],
)
def test_bad_configurations_fail_with_the_fix(edit, fragments):
    text = OPEN.format(L=3, n_iter=2, archive="x.h5").replace(*edit)
    if not fragments:
        assert loads(text).options.model_options.d_model == 8
        return
    with pytest.raises(ConfigError) as err:
        loads(text)
    for f in fragments:
        assert f in str(err.value), (f, str(err.value))


def test_run_records_observables_and_resumes_exactly(tmp_path):
    text = OPEN.format(L=3, n_iter=4, archive=tmp_path / "full.h5")
    full = runner.run(loads(text), progress=False, log=lambda s: None)
    assert full.status == "completed" and full.result["method"] == "steady_state"
    h = full.history
    assert list(h["step"]) == [0, 1, 2, 3]
    for k in ("cost", "cost_error", "energy", "sx", "sx_error", "sz", "szsz"):
        assert np.isfinite(h[k]).all(), k
    r = full.result
    problem = hamiltonians.get("dissipative_ising", L=3, g=1.0)
    p_ss = pv.probabilities(problem.exact_steady_state())
    z_mean = pv.observable([(1 / 3, (("Z", i),)) for i in range(3)], problem.local_space)
    assert abs(r["sz_exact"] - z_mean.expectation(p_ss).real) < 1e-10
    assert abs(r["normalisation"] - 1) < 1e-10 and r["sx_deviation"] == r["sx"] - r["sx_exact"]
    assert set(full.observables) >= {"sx", "sz", "szsz", "energy"}
    # two steps, then two more on resume (n_iter may grow): the same as four at once
    part = tmp_path / "part.h5"
    runner.run(loads(OPEN.format(L=3, n_iter=2, archive=part)), progress=False, log=lambda s: None)
    resumed = runner.run(loads(OPEN.format(L=3, n_iter=4, archive=part)), resume=True, progress=False, log=lambda s: None)
    np.testing.assert_allclose(resumed.history["cost"], h["cost"], rtol=1e-10)
    a, b = load(part, checkpoint=True).checkpoint, load(tmp_path / "full.h5", checkpoint=True).checkpoint
    fa, fb = ravel_pytree(jax.tree_util.tree_map(np.asarray, a["params"]))[0], ravel_pytree(
        jax.tree_util.tree_map(np.asarray, b["params"])
    )[0]
    np.testing.assert_allclose(fa, fb, rtol=1e-10, atol=1e-12)


RELAX = """
[problem]
name = "dissipative_ising"
L = {L}
g = {g}

[method]
kind = "steady_state"
n_iter = {n_iter}
n_samples = {n_samples}
d_model = 16
n_heads = 2
n_layers = 1

[output]
archive = "{archive}"
checkpoint_every = 2
"""


def test_relax_solver_records_and_resumes_exactly(tmp_path):
    cfg = dict(L=3, g=1.0, n_samples=64)
    full = runner.run(loads(RELAX.format(n_iter=4, archive=tmp_path / "full.h5", **cfg)), progress=False, log=lambda s: None)
    assert full.status == "completed" and loads(RELAX.format(n_iter=4, archive="x", **cfg)).options.solver == "relax"
    h = full.history
    np.testing.assert_allclose(h["dt"], [0.25 * 1.5**t for t in range(4)])
    for k in ("cost", "energy", "sx", "sx_error", "sz", "szsz", "residual", "iterations"):
        assert np.isfinite(h[k]).all(), k
    part = tmp_path / "part.h5"
    runner.run(loads(RELAX.format(n_iter=2, archive=part, **cfg)), progress=False, log=lambda s: None)
    resumed = runner.run(loads(RELAX.format(n_iter=4, archive=part, **cfg)), resume=True, progress=False, log=lambda s: None)
    np.testing.assert_allclose(resumed.history["cost"], h["cost"], rtol=1e-10)
    assert resumed.result["sx_model"] == pytest.approx(full.result["sx_model"], abs=1e-12)


@pytest.mark.parametrize("g", [0.5, 2.0])
def test_relax_solver_reaches_the_exact_steady_state(tmp_path, g):
    """L = 4 periodic, default relax solver (30 backward-Euler steps of 512 samples, about a
    minute): the model's observables, summed over all 256 outcome strings, within 1e-2 of the
    exact steady state (measured: see docs/open_systems.md), on both sides of the crossover
    (mostly decayed at g = 0.5, near the mixed state at g = 2)."""
    cfg = dict(L=4, g=g, n_samples=512, n_iter=30)
    r = runner.run(loads(RELAX.format(archive=tmp_path / "l4.h5", **cfg)), progress=False, log=lambda s: None).result
    assert abs(r["normalisation"] - 1) < 1e-10
    for name in ("sx", "sz", "szsz"):
        assert abs(r[f"{name}_model"] - r[f"{name}_exact"]) < 1e-2, (name, r)


@pytest.mark.slow
def test_dissipative_ising_l4_steady_state_accuracy(tmp_path):
    """L = 4 periodic, g = 1, 300 Adam steps of 256 samples (8 minutes on a loaded 2-core CPU):
    the model's observables (summed over all outcome strings) within 5e-2 of the exact steady
    state; measured 1.3e-2 (sx), 3.0e-2 (sz), 3.4e-2 (szsz) -- short of the issue's 1e-2
    (docs/open_systems.md)."""
    text = f"""
[problem]
name = "dissipative_ising"
L = 4
g = 1.0

[method]
kind = "steady_state"
solver = "adam"
n_iter = 300
n_samples = 256
learning_rate = 0.01
learning_rate_final = 0.001
d_model = 16
n_heads = 2
n_layers = 1

[output]
archive = "{tmp_path / 'l4.h5'}"
"""
    r = runner.run(loads(text), progress=False, log=lambda s: None).result
    assert abs(r["normalisation"] - 1) < 1e-10
    for name in ("sx", "sz", "szsz"):
        assert abs(r[f"{name}_model"] - r[f"{name}_exact"]) < 5e-2, (name, r)
    assert r["cost_exact"] < 0.08
