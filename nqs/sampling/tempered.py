"""Tempered exact sampling of autoregressive models and the reweighted minSR step.

Exact sampling from ``|psi|^2`` never draws a configuration whose probability the first steps
pushed to 1e-7, so the SR update, which sees only the samples' log-derivatives, cannot raise it
again; and when such a configuration is drawn, its local energy carries ``psi(x') / psi(x)`` of
a likely neighbour ``x'`` (an infinite-variance estimator: the jumps of the gauge Transformer in
the confined Z2 phase, ``docs/benchmarks/defaults.md``). Tempered sampling draws each
conditional raised to a power ``alpha`` in (0, 1] and renormalised,

    q(a) = prod_k p_k(a_k | a_<k)^alpha / Z_k(a_<k),

still exactly and in the sector (masked states keep probability zero), and reweights every
sample by ``w = |psi(a)|^2 / q(a)`` (self-normalised importance sampling; ``psi`` is
normalised). A configuration of probability ``p`` is drawn at about ``p^alpha``, and its weighted
contribution to the gradient estimator, ``~ psi(x) psi(x') / q(x)`` per draw, stays bounded as
``p -> 0`` for ``alpha < 1``. ``alpha = 1`` is plain exact sampling.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import netket as nk
import netket.jax as nkjax
from jax.flatten_util import ravel_pytree

from ..models.autoregressive import configs_to_local


def tempered_log_q(model, variables: Any, x: jax.Array, alpha: float) -> jax.Array:
    """``log q(x)`` (real ``(B,)``) of NetKet configurations ``x`` ``(B, n)`` under the tempered
    conditionals of a :class:`~nqs.models.autoregressive.ConstrainedAR` without symmetry images
    (teacher forcing, in the parameters' precision)."""
    a = configs_to_local(model.local_space, x)
    log_p, _ = model.apply(variables, a, method="conditionals")
    log_q = jax.nn.log_softmax(alpha * log_p, axis=-1)
    return jnp.take_along_axis(log_q, a[..., None], axis=-1)[..., 0].sum(axis=-1)


def importance_weights(log_psi: jax.Array, log_q: jax.Array) -> jax.Array:
    """Self-normalised weights ``|psi|^2 / q`` (sum 1) of samples drawn from ``q``."""
    log_w = 2.0 * jnp.real(log_psi) - log_q
    w = jnp.exp(log_w - jnp.max(log_w))
    return w / jnp.sum(w)


def effective_sample_size(weights: jax.Array) -> jax.Array:
    """Kish's effective sample size ``1 / sum w^2`` of normalised weights."""
    return 1.0 / jnp.sum(weights**2)


def weighted_statistics(values: jax.Array, weights: jax.Array) -> nk.stats.Stats:
    """Mean, variance and error of the mean of ``values`` under normalised ``weights``; the
    error uses the effective sample size (independent draws: no autocorrelation)."""
    values = values.reshape(-1)
    mean = jnp.sum(weights * values)
    variance = jnp.sum(weights * jnp.abs(values - mean) ** 2)
    error = jnp.sqrt(variance / effective_sample_size(weights))
    return nk.stats.Stats(mean=mean, error_of_mean=error, variance=variance, tau_corr=0.0)


def weighted_minsr(
    log_psi: Callable,
    local_energies: jax.Array,
    parameters: Any,
    model_state: Any,
    samples: jax.Array,
    weights: jax.Array,
    *,
    diag_shift: float,
    solver_fn: Callable,
    mode: str,
    proj_reg: float | None = None,
    momentum: float | None = None,
    old_updates: jax.Array | None = None,
    chunk_size: int | None = None,
) -> tuple[Any, jax.Array | None, dict]:
    """The minSR (NTK) update of NetKet's ``VMC_SR`` with importance weights: the Jacobian
    centred under the weights, each sample's row and local-energy deviation scaled by the square
    root of its weight, the kernel solve and SPRING momentum as NetKet's. (NetKet 3.23 accepts
    weights in its parameter-space SR only.)"""
    from netket._src.ngd.sr_srt_common import _prepare_input, _prepare_weights
    from netket._src.ngd.srt import _compute_srt_update

    _, unravel = ravel_pytree(parameters)
    structure = jax.tree_util.tree_map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), parameters)
    pdf, mass = _prepare_weights(weights, samples.shape[0])
    jacobian = nkjax.jacobian(
        log_psi, parameters, samples, model_state, mode=mode, dense=True, center=True, chunk_size=chunk_size, pdf=pdf
    )
    o_l, dv = _prepare_input(jacobian, local_energies, mode=mode, scaling_factor=mass)
    if old_updates is None and momentum is not None:
        old_updates = jnp.zeros(jacobian.shape[-1], dtype=jacobian.dtype)
    updates, old_updates, info = _compute_srt_update(
        o_l, dv, diag_shift=diag_shift, solver_fn=solver_fn, mode=mode, proj_reg=proj_reg,
        momentum=momentum, old_updates=old_updates, params_structure=structure,
    )
    return unravel(updates), old_updates, info
