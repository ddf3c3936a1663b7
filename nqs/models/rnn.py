"""Autoregressive recurrent network (GRU) with exact constrained direct sampling.

A stack of gated recurrent units (GRU, Cho et al. 2014) runs over the sites (or links) in snake
order: the input at site ``k`` is the embedding of the local state at site ``k - 1`` (a start
token at ``k = 0``) plus a learned embedding of site ``k``; the last layer's hidden state gives
the conditional logits and phases of site ``k``, which the sector automaton masks
(:mod:`nqs.models.autoregressive`). ``psi`` is normalised over the sector and sampled exactly.

The hidden states are the whole memory of the prefix, so sampling keeps them in the ``"cache"``
collection (``hidden``: ``(n_layers, batch, hidden)``) and costs one cell update per layer and
site, against a Transformer's attention over the whole prefix; teacher forcing computes the
input projections of all sites in one matrix product and scans only the recurrence.

GRU update (PyTorch's convention, ``r`` gates the recurrent candidate term)::

    r = sigmoid(W_ir x + W_hr h + b_r),   z = sigmoid(W_iz x + W_hz h + b_z)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),   h' = (1 - z) * n + z * h
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hamiltonians import Problem

from ..sampling.direct_sampler import make_direct_sampler
from .attention import cached
from .autoregressive import (
    AR_VMC_DEFAULTS, LOCAL_SPACES, ARAutoOptions, ConstrainedAR, ar_fields, ar_large_lattice, check_sign_prior, check_symmetrize, phase_is_fixed,
    Symmetrize, sign_prior, site_symmetries, validate_phase, validate_sign_prior, validate_symmetrize,
)
from .registry import ModelSpec, register_model

# Small output heads: the initial state is close to the uniform superposition over the sector.
_HEAD_INIT_SCALE = 1e-2


def gru_update(gx: jax.Array, h: jax.Array, w_h: jax.Array, b_hn: jax.Array) -> jax.Array:
    """GRU step ``h'`` from the input projections ``gx`` ``(B, 3H)`` (gates r, z, n, input biases
    included), the previous state ``h`` ``(B, H)``, recurrent weights ``w_h`` ``(H, 3H)`` and the
    recurrent bias ``b_hn`` ``(H,)`` of the candidate."""
    hidden = h.shape[-1]
    gh = h @ w_h
    r, z = jnp.split(jax.nn.sigmoid(gx[:, : 2 * hidden] + gh[:, : 2 * hidden]), 2, axis=-1)
    n = jnp.tanh(gx[:, 2 * hidden :] + r * (gh[:, 2 * hidden :] + b_hn))
    return (1.0 - z) * n + z * h


class GRULayer(nn.Module):
    """One GRU layer; the recurrence is a pure function of its parameters so that it can run
    inside ``jax.lax.scan`` (teacher forcing) and one step at a time (sampling)."""

    hidden: int
    """Width of the hidden state."""
    param_dtype: Any = np.float64
    """Dtype of weights and activations."""

    def setup(self):
        init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
        # input projections of the three gates (r, z, n) in one matrix, with b_r, b_z, b_in
        self.input_proj = nn.Dense(3 * self.hidden, param_dtype=self.param_dtype, dtype=self.param_dtype, kernel_init=init)
        self.w_h = self.param("w_h", nn.initializers.orthogonal(), (self.hidden, 3 * self.hidden), self.param_dtype)
        self.b_hn = self.param("b_hn", nn.initializers.zeros, (self.hidden,), self.param_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Whole sequence ``(B, N, F)`` -> hidden states ``(B, N, H)`` from ``h = 0``."""
        gx = self.input_proj(x)
        w_h, b_hn = self.w_h, self.b_hn

        def step(h, gx_k):
            h = gru_update(gx_k, h, w_h, b_hn)
            return h, h

        # derived from gx, not built fresh: inside NetKet's shard_map (on-the-fly SR) the carry
        # must have the same varying-axis type as the scanned inputs
        h0 = jnp.zeros_like(gx[:, 0, : self.hidden])
        _, hs = jax.lax.scan(step, h0, jnp.swapaxes(gx, 0, 1))
        return jnp.swapaxes(hs, 0, 1)

    def step(self, x: jax.Array, h: jax.Array) -> jax.Array:
        """One site: input ``(B, F)``, previous hidden state ``(B, H)`` -> new hidden state."""
        return gru_update(self.input_proj(x), h, self.w_h, self.b_hn)


class ARRNN(ConstrainedAR):
    """Stacked GRU giving masked conditionals (see :class:`ConstrainedAR`)."""

    hidden: int = 32
    """Width of every GRU layer's hidden state."""
    n_layers: int = 2
    """Stacked GRU layers."""
    param_dtype: Any = np.float64
    """Dtype of all weights (real; the phase is a real output)."""

    def setup(self):
        d = self.local_dim
        # local states 0..d-1, and d = the start token read at k = 0
        self.value_embed = nn.Embed(d + 1, self.hidden, param_dtype=self.param_dtype, name="value_embed")
        self.site_embed = nn.Embed(self.n_sites, self.hidden, param_dtype=self.param_dtype, name="site_embed")
        self.layers = [GRULayer(self.hidden, self.param_dtype, name=f"gru_{i}") for i in range(self.n_layers)]
        init = nn.initializers.variance_scaling(_HEAD_INIT_SCALE, "fan_in", "truncated_normal")
        self.logit_head = nn.Dense(d, param_dtype=self.param_dtype, kernel_init=init, name="logit_head")
        if self.learn_phase:
            self.phase_head = nn.Dense(d, param_dtype=self.param_dtype, kernel_init=init, name="phase_head")

    def _heads(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = self.logit_head(h)
        return logits, self.phase_head(h) if self.learn_phase else jnp.zeros_like(logits)

    def raw_conditionals(self, a: jax.Array) -> tuple[jax.Array, jax.Array]:
        start = jnp.full(a.shape[:1] + (1,), self.local_dim, dtype=a.dtype)
        tokens = jnp.concatenate([start, a[:, :-1]], axis=1)
        h = self.value_embed(tokens) + self.site_embed(jnp.arange(self.n_sites))[None]
        for layer in self.layers:
            h = layer(h)
        return self._heads(h)

    def raw_step(
        self, a_prev: jax.Array, k: jax.Array | int, visible: int | None = None
    ) -> tuple[jax.Array, jax.Array]:
        # the hidden state summarises the whole prefix: nothing to bound with ``visible``
        token = jnp.where(k == 0, self.local_dim, a_prev)
        x = self.value_embed(token) + self.site_embed(jnp.asarray(k))[None]
        shape = (self.n_layers, x.shape[0], self.hidden)
        # a new sequence starts from h = 0 whatever the cache holds from the previous one
        previous = jnp.where(k == 0, 0.0, cached(self, "hidden", shape, x.dtype))
        new = []
        for layer, h in zip(self.layers, previous):
            x = layer.step(x, h)
            new.append(x)
        self.put_variable("cache", "hidden", jnp.stack(new))
        return self._heads(x)


# --------------------------------------------------------------------------- options
@dataclass
class RNNOptions(ARAutoOptions):
    """``[method]`` keys of ``model = "ar_rnn"``; VMC defaults
    :data:`~nqs.models.autoregressive.AR_VMC_DEFAULTS`, from 32 sites on with the schedules of
    :data:`~nqs.models.autoregressive.AR_VMC_LARGE_LATTICE`."""

    vmc_defaults: ClassVar[dict[str, Any]] = AR_VMC_DEFAULTS

    @classmethod
    def vmc_defaults_for(cls, problem: Problem) -> dict[str, Any]:
        """The VMC defaults on ``problem`` (see the class docstring)."""
        return {**cls.vmc_defaults, **ar_large_lattice(problem)}

    hidden: int = 32
    """Width of the GRU hidden state."""
    n_layers: int = 2
    """Stacked GRU layers."""
    sign_prior: Literal["auto", "marshall", "none"] = "auto"
    """Fixed phase added to the learned one, as for ``transformer``: ``marshall`` is
    ``(-1)^{N_down(A)}`` on a bipartite lattice; ``auto`` uses it for antiferromagnetic spin
    models on bipartite lattices, else none."""

    phase: Literal["auto", "learned", "fixed"] = "auto"
    """Learned phase head, or the sign prior alone, as for ``transformer``: ``auto`` fixes it
    where the Hamiltonian is stoquastic after the prior."""

    symmetrize: Symmetrize = "auto"
    """Average ``|psi|^2`` over site symmetries, as for ``transformer`` (one GRU pass per element
    for every amplitude, exact sampling kept): ``auto`` is the point group for spin-1/2 models on
    square lattices and chains, ``none`` otherwise (t-J, gauge links)."""

    def __post_init__(self):
        for name in ("hidden", "n_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        validate_sign_prior(self.sign_prior)
        validate_phase(self.phase)
        validate_symmetrize(self.symmetrize)


def build_rnn(problem: Problem, o: RNNOptions) -> ARRNN:
    prior = sign_prior(problem, o.sign_prior)
    return ARRNN(
        **ar_fields(problem),
        phase_prior=prior,
        learn_phase=not phase_is_fixed(problem, o.phase, prior),
        symmetries=site_symmetries(problem, o.symmetrize),
        hidden=o.hidden, n_layers=o.n_layers,
    )


def check_rnn(problem: Problem, o: RNNOptions) -> str | None:
    """``ModelSpec.check``: the symmetry average and the sign prior suit the problem."""
    return check_symmetrize(problem, o.symmetrize) or check_sign_prior(problem, o)


def fits(problem: Problem) -> str | None:
    if problem.local_space.name not in LOCAL_SPACES:
        return f"ar_rnn handles the local spaces {', '.join(LOCAL_SPACES)}, not {problem.local_space.name!r}"
    return None


register_model(
    ModelSpec(
        "ar_rnn", RNNOptions, build_rnn, fits,
        "autoregressive GRU, exact constrained sampling (spins, t-J, gauge links)",
        direct=True, make_sampler=make_direct_sampler, check=check_rnn,
    )
)
