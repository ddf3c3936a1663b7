"""Tempered exact sampling and the reweighted minSR step (:mod:`nqs.sampling.tempered`).

The gauge Transformer on the Z2 gauge theory (3x2 torus, Gauss-law sector) at random
parameters far from uniform: the tempered draws follow ``q`` (chi-square), the reweighted local
energies give the exact ``<H>`` of the state, and the weighted minSR update equals NetKet's own
parameter-space SR with the exact distribution as weights (the push-through identity
``O^T (O O^T + s)^-1 = (O^T O + s)^-1 O^T``) and NetKet's minSR with equal weights.
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.flatten_util
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from netket._src.ngd.sr_srt_common import sr, srt

import hamiltonians
from nqs.models import model_spec
from hamiltonians.netket_backend import configs_to_netket
from nqs.runs.config import ConfigError
from nqs.sampling.direct_sampler import ConstrainedDirectSampler
from nqs.sampling.tempered import (
    effective_sample_size,
    importance_weights,
    tempered_log_q,
    weighted_minsr,
    weighted_statistics,
)

from conftest import perturbed

ALPHA = 0.5


@pytest.fixture(scope="module")
def gauge():
    problem = hamiltonians.get("z2_gauge", Lx=3, Ly=2, h=0.7)
    hilbert, hamiltonian = problem.to_netket()
    spec = model_spec("gauge_transformer")
    model = spec.build(problem, spec.options(d_model=8, n_heads=2, n_layers=1))
    basis = problem.basis()
    x = jnp.asarray(configs_to_netket(problem.local_space, basis))
    params = perturbed(model.init(jax.random.key(1), x[:2]), jax.random.key(2), scale=0.5)
    apply = jax.jit(model.apply)
    log_psi = np.asarray(apply(params, x))
    # exact local energies over the sector: E_loc(x) = sum_x' H(x, x') psi(x') / psi(x)
    xp, mels = hamiltonian.get_conn_padded(np.asarray(x))
    log_psi_p = np.asarray(apply(params, jnp.asarray(xp.reshape(-1, xp.shape[-1])))).reshape(mels.shape)
    e_loc = np.sum(mels * np.exp(log_psi_p - log_psi[:, None]), axis=-1)
    # one batch of tempered draws for the sampling tests
    sampler = ConstrainedDirectSampler(hilbert, problem.local_space.name, tempering=ALPHA)
    state = nk.vqs.MCState(sampler, model, variables=params, n_samples=8192, sampler_seed=4)
    return SimpleNamespace(problem=problem, hilbert=hilbert, hamiltonian=hamiltonian, model=model, x=x,
                           params=params, log_psi=log_psi, e_loc=e_loc, state=state)


def test_tempered_draws_follow_q_and_stay_in_the_sector(gauge, chi_square):
    log_q = np.asarray(tempered_log_q(gauge.model, gauge.params, gauge.x, ALPHA))
    assert np.exp(log_q).sum() == pytest.approx(1.0, abs=1e-10)  # q is normalised over the sector
    p = np.exp(2 * gauge.log_psi.real)
    assert p.min() < 1e-3 * p.max()  # a genuinely peaked state: tempering changes something
    assert np.exp(log_q).min() > p.min()  # the unlikely configurations are drawn more often
    samples = np.asarray(gauge.state.samples).reshape(-1, gauge.hilbert.size)
    index = {tuple(c): i for i, c in enumerate(np.asarray(gauge.x).tolist())}
    hits = [index.get(tuple(s)) for s in samples.tolist()]
    assert None not in hits
    n_bins, p_value = chi_square(np.bincount(hits, minlength=len(index)), len(hits) * np.exp(log_q))
    assert n_bins > 10 and p_value > 1e-3


def test_reweighted_energy_is_the_exact_expectation(gauge):
    exact = float(np.sum(np.exp(2 * gauge.log_psi.real) * gauge.e_loc).real)
    state = gauge.state
    samples = state.samples.reshape(-1, gauge.hilbert.size)
    e_loc = state.local_estimators(gauge.hamiltonian).reshape(-1)
    w = importance_weights(state.log_value(samples), tempered_log_q(gauge.model, gauge.params, samples, ALPHA))
    assert float(jnp.sum(w)) == pytest.approx(1.0)
    assert 100 < float(effective_sample_size(w)) < 8192
    stats = weighted_statistics(e_loc, w)
    assert abs(float(stats.mean.real) - exact) < 4 * float(stats.error_of_mean)
    plain = float(np.mean(np.asarray(e_loc).real))
    assert abs(plain - exact) > 4 * float(stats.error_of_mean)  # unweighted tempered draws are biased


def _update(fn, gauge, samples, e_loc, **kwargs):
    params = gauge.params["params"]
    out, _, _ = fn(gauge.model.apply, jnp.asarray(e_loc), params, {}, samples, diag_shift=1e-3,
                   solver_fn=nk.optimizer.solver.cholesky, mode="real", **kwargs)
    return jax.flatten_util.ravel_pytree(out)[0]


def test_weighted_minsr_is_netkets_sr_under_the_same_weights(gauge):
    """Every sector configuration once, weighted by ``|psi|^2``: the exact natural gradient,
    computed by NetKet in parameter space (``sr`` with ``weights``) and by us in sample space."""
    p = jnp.asarray(np.exp(2 * gauge.log_psi.real))
    e_loc = gauge.e_loc.real
    reference = _update(sr, gauge, gauge.x, e_loc, weights=p)
    ours = _update(weighted_minsr, gauge, gauge.x, e_loc, weights=p / p.sum())
    assert float(jnp.linalg.norm(reference)) > 1e-3
    np.testing.assert_allclose(ours, reference, rtol=1e-7, atol=1e-10 * float(jnp.abs(reference).max()))


def test_weighted_minsr_with_equal_weights_is_netkets_minsr(gauge):
    x, e_loc = gauge.x[:40], gauge.e_loc[:40].real
    old = jnp.asarray(np.random.default_rng(0).normal(size=jax.flatten_util.ravel_pytree(gauge.params)[0].size))
    reference = _update(srt, gauge, x, e_loc, momentum=0.9, old_updates=old)
    ours = _update(weighted_minsr, gauge, x, e_loc, weights=jnp.full(40, 1 / 40), momentum=0.9, old_updates=old)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12 * float(jnp.abs(reference).max()))


@pytest.mark.parametrize(
    "problem, model, extra, match",
    [
        ("name = 'j1j2'\nLx = 4\nLy = 4\nJ2 = 0.5", "transformer", "", "symmetry images"),
        ("name = 'z2_gauge'\nLx = 2\nLy = 2\nh = 0.5", "gauge_transformer", "optimizer = 'adam'\n", "optimizer = 'sr'"),
        ("name = 'z2_gauge'\nLx = 2\nLy = 2\nh = 0.5", "gauge_transformer", "tempering = 1.5\n", r"\(0, 1\]"),
    ],
)
def test_tempering_refused_where_it_cannot_apply(problem, model, extra, match, tmp_path):
    from nqs.runs.config import loads

    temp = "" if "tempering" in extra else "tempering = 0.5\n"
    text = (f"[problem]\n{problem}\n\n[method]\nkind = 'vmc'\nmodel = '{model}'\n{temp}{extra}\n"
            f"[output]\narchive = '{tmp_path / 'r.h5'}'\n")
    with pytest.raises(ConfigError, match=match):
        loads(text)


def test_minsr_moves_each_sample_by_twice_the_step():
    """The convention behind ``raise_step`` (``tau = 2 learning_rate``): with fewer samples than
    parameters and a negligible shift, NetKet's minSR update ``d`` makes the centred
    log-derivatives reproduce twice the local-energy deviations, ``O d = 2 (E_loc - E)``, so a
    step ``-learning_rate d`` moves each sample's ``log psi`` by ``-2 learning_rate (E_loc - E)``;
    and :func:`~nqs.vmc.amplitude_raise` turns that log step into ``log(1 + tau (E - E_loc))``."""
    from nqs.vmc import amplitude_raise

    problem = hamiltonians.get("z2_gauge", Lx=2, Ly=2, h=0.5)
    spec = model_spec("gauge_transformer")
    model = spec.build(problem, spec.options(d_model=8, n_heads=2, n_layers=1))
    x = jnp.asarray(configs_to_netket(problem.local_space, problem.basis()))[:20]
    params = perturbed(model.init(jax.random.key(1), x[:2]), jax.random.key(2), scale=0.5)["params"]
    e_loc = np.linspace(-3.0, 2.0, 20)
    d = srt(model.apply, jnp.asarray(e_loc), params, {}, x, diag_shift=1e-10,
            solver_fn=nk.optimizer.solver.cholesky, mode="real")[0]
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    log_psi = lambda theta: model.apply({"params": unravel(theta)}, x).real  # noqa: E731
    o = np.array(jax.jacfwd(log_psi)(flat))
    o -= o.mean(axis=0)
    moved = o @ np.asarray(jax.flatten_util.ravel_pytree(d)[0])
    np.testing.assert_allclose(moved, 2 * (e_loc - e_loc.mean()), atol=1e-5)
    tau, e0 = 0.2, float(e_loc.mean())
    raised = np.asarray(amplitude_raise(jnp.asarray(e_loc), tau, e0))
    below = e_loc < e0
    np.testing.assert_allclose(-tau * (raised[below] - e0), np.log1p(tau * (e0 - e_loc[below])), rtol=1e-12)
    np.testing.assert_array_equal(raised[~below], e_loc[~below])
