"""Exact direct sampling of constrained autoregressive models.

:class:`ConstrainedDirectSampler` draws independent configurations from ``|psi|^2`` of a
:class:`~nqs.models.autoregressive.ConstrainedAR` model site by site in snake order: at site
``k`` it calls the model's cached ``conditional_step`` (one new site's worth of work: the model
keeps keys/values or hidden states and the sector automaton's state in its ``"cache"``
collection) and draws ``a_k`` from the masked conditional, evaluated in the model's
``sample_dtype`` (single precision by default, see
:attr:`~nqs.models.autoregressive.ConstrainedAR.sample_dtype`). Forbidden local states have
probability zero, and the automaton has no dead ends, so every sample lies in the sector (total
S^z, electron numbers without double occupancy, Gauss's law). There are no Markov chains: the
state is a PRNG key, and NetKet's ``MCState`` discards nothing. The site loop runs in a few
blocks (:attr:`ConstrainedDirectSampler.site_blocks`) so that attention reads its key/value
cache only up to the current block's end (from 32 sites on).

With several devices in NetKet's mesh the sampler has one "chain" per device and each device
runs the site loop on its rows of the batch (``shard_map``, no communication), drawing with the
noise of those rows of the whole batch: the samples are those of one device. On a CPU, one JAX
device per core (``XLA_FLAGS=--xla_force_host_platform_device_count=2``) runs a step's many small
operations on both cores, which one device does not (``docs/benchmarks/ar_sampling.md``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
from flax import core as flax_core
from jax.sharding import NamedSharding, PartitionSpec
from netket.sampler import Sampler, SamplerState
from netket.utils import struct

from hamiltonians import Problem

from ..models.autoregressive import local_to_configs


BLOCKED_FROM_SITES = 32
"""Sites from which the sampler splits its site loop into 4 blocks by default: the blocks pay
off at 10x10 (1.3x to 1.6x) and at 6x6 in some runs (0.88x to 1.22x), and each block adds its
own compilation, which dominates the small runs of tests and notebooks."""


class ConstrainedDirectSamplerState(SamplerState):
    """The only state of an exact sampler: its PRNG key."""

    key: jax.Array

    def __init__(self, key: jax.Array):
        self.key = key
        super().__init__()

    def __repr__(self) -> str:
        return "ConstrainedDirectSamplerState()"


_AXIS = "S"
"""NetKet's mesh axis of samples (``nk.config.netket_sharding``)."""


def _mesh_devices() -> int:
    """Devices along NetKet's sample axis in the current mesh (1 without sharding)."""
    if not nk.config.netket_sharding:
        return 1
    mesh = jax.sharding.get_abstract_mesh()
    return int(dict(mesh.shape).get(_AXIS, 1)) if not mesh.empty else 1


def _shard_batch(x: jax.Array) -> jax.Array:
    """Split the sample axis over devices when NetKet's sharding is on."""
    if not nk.config.netket_sharding:
        return x
    spec = PartitionSpec("S", *([None] * (x.ndim - 1)))
    return jax.lax.with_sharding_constraint(x, NamedSharding(jax.sharding.get_abstract_mesh(), spec))


def _in_sampling_precision(model, variables):
    """The model and its variables in the model's ``sample_dtype`` (unchanged where that is
    ``None`` or already the parameters' dtype)."""
    dtype = getattr(model, "sample_dtype", None)
    if dtype is None or not hasattr(model, "param_dtype") or jnp.dtype(model.param_dtype) == jnp.dtype(dtype):
        return model, variables
    cast = lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p  # noqa: E731
    return model.clone(param_dtype=dtype), jax.tree_util.tree_map(cast, variables)


class ConstrainedDirectSampler(Sampler):
    """Exact, independent samples of a constrained autoregressive model (see module docstring).

    The model must be a :class:`~nqs.models.autoregressive.ConstrainedAR` (it provides
    ``conditional_step`` and ``n_sites``); the samples are NetKet configurations of ``hilbert``.
    """

    local_space: str = struct.field(pytree_node=False)
    """Local space of the model (``spin_half``, ``z2_link``, ``tj_site``): how local indices
    become NetKet configurations."""

    site_blocks: int = struct.field(pytree_node=False, default=1)
    """Number of scans the site loop is split into (contiguous blocks of sites). The sites of a
    block read the model's cache up to the block's end only (``visible`` of
    ``conditional_step``): with 4 blocks attention reads about 5/8 of its key/value cache, and
    the Transformer samples 1.3x to 1.6x faster than in one scan on a CPU core at 10x10, and
    0.88x to 1.22x at 6x6 (three runs, ``bench/ar_sampling.py``); each block is compiled separately
    (4 blocks: 8 traced copies of the step, about 6 s more compilation for the small 4x4
    Transformer of the notebooks) and costs a copy of the cache. Default (``None`` at
    construction): 4 blocks from :data:`BLOCKED_FROM_SITES` sites on, else 1. The draws do
    not depend on it."""

    tempering: float = struct.field(pytree_node=False, default=1.0)
    """Power ``alpha`` in (0, 1] of the conditionals drawn from (renormalised): 1 draws
    ``|psi|^2`` exactly; below 1 the draws follow the tempered distribution of
    :mod:`nqs.sampling.tempered` and need its importance weights."""

    def __init__(
        self, hilbert: nk.hilbert.DiscreteHilbert, local_space: str, dtype: Any = None, site_blocks: int | None = None,
        tempering: float = 1.0,
    ):
        """
        Args:
            hilbert: the (constrained) NetKet Hilbert space of the problem.
            local_space: name of the problem's local space.
            dtype: dtype of the sampled configurations (default: the Hilbert space's).
            site_blocks: scans of the site loop (see :attr:`site_blocks`), at least 1; ``None``:
                4 on :data:`BLOCKED_FROM_SITES` sites or more, else 1.
            tempering: power of the conditionals (see :attr:`tempering`), in (0, 1].
        """
        if site_blocks is None:
            site_blocks = 4 if hilbert.size >= BLOCKED_FROM_SITES else 1
        if int(site_blocks) < 1:
            raise ValueError(f"site_blocks must be >= 1, got {site_blocks}")
        if not 0 < tempering <= 1:
            raise ValueError(f"tempering must be in (0, 1], got {tempering}")
        super().__init__(hilbert, machine_pow=2, dtype=dtype)
        self.tempering = float(tempering)
        self.machine_pow = 2.0
        self.local_space = local_space
        self.site_blocks = int(site_blocks)

    @property
    def is_exact(self) -> bool:
        """Samples are exact and independent (no Markov chain); of ``|psi|^2`` itself only
        without :attr:`tempering`."""
        return True

    def _init_state(self, model, variables, key) -> ConstrainedDirectSamplerState:
        if not hasattr(model, "conditional_step"):
            raise TypeError(
                f"ConstrainedDirectSampler needs a ConstrainedAR model with conditional_step; got {type(model).__name__}"
            )
        return ConstrainedDirectSamplerState(key)

    def _reset(self, model, variables, state):
        return state

    @partial(jax.jit, static_argnames=("model", "chain_length", "return_log_probabilities"))
    def _sample_chain(self, model, variables, state, chain_length, return_log_probabilities=False):
        if "cache" in variables:
            variables, _ = flax_core.pop(variables, "cache")
        full_model, full_variables = model, variables
        model, variables = _in_sampling_precision(model, variables)
        n_sites = model.n_sites
        batch = self.n_batches * chain_length
        key_next, key = jax.random.split(state.key)
        keys = jax.random.split(key, n_sites)

        shards = _mesh_devices()
        if batch % shards:
            shards = 1  # NetKet asks for a multiple of the devices; otherwise one device draws all

        def draw(key, log_p, offset):
            if self.tempering != 1.0:
                log_p = jax.nn.log_softmax(self.tempering * log_p, axis=-1)
            # jax.random.categorical's Gumbel noise for the whole batch, this shard's rows of it:
            # a batch split over devices draws exactly what one device draws
            noise = jax.random.gumbel(key, (batch, log_p.shape[-1]), log_p.dtype)
            noise = jax.lax.dynamic_slice_in_dim(noise, offset, log_p.shape[0])
            a = jnp.argmax(noise + log_p, axis=-1).astype(jnp.int32)
            return a, jnp.take_along_axis(log_p, a[:, None], axis=-1)[:, 0]

        def site_loop(variables, keys):
            """Local states ``(batch / shards, n_sites)`` and their log-probabilities, of this
            device's rows of the batch."""
            rows = batch // shards
            offset = 0 if shards == 1 else jax.lax.axis_index(_AXIS) * rows

            def site(visible, carry, inputs):
                cache, a_prev, log_q = carry
                k, key = inputs
                given = variables if cache is None else {**variables, "cache": cache}
                (log_p, _), mutables = model.apply(
                    given, a_prev, k, visible, method="conditional_step", mutable=["cache"]
                )
                a_k, log_p_k = draw(key, log_p, offset)
                return (mutables["cache"], a_k, log_q + log_p_k), a_k

            # Sites in blocks, each reading the model's cache up to the block's end (``visible``).
            # The first site of a block runs outside the block's scan: there the model may grow its
            # cache to the block's end (a key/value cache holds ``visible`` positions), which a
            # scan's carry cannot do. Site 0 also creates the cache, with this batch size.
            carry = (None, jnp.zeros((rows,), dtype=jnp.int32), 0.0)
            drawn = []
            for block_sites in np.array_split(np.arange(n_sites), min(self.site_blocks, n_sites)):
                lo, hi = int(block_sites[0]), int(block_sites[-1]) + 1
                carry, a_lo = site(hi, carry, (lo, keys[lo]))
                drawn.append(a_lo[None])
                if hi > lo + 1:
                    carry, block = jax.lax.scan(partial(site, hi), carry, (jnp.arange(lo + 1, hi), keys[lo + 1 : hi]))
                    drawn.append(block)
            return jnp.concatenate(drawn, axis=0).T, carry[2]

        if shards == 1:
            local, log_q = site_loop(variables, keys)
        else:
            # each device runs the site loop on its rows, with no communication: partitioning the
            # loop's operations instead (with_sharding_constraint on the batch axis) ran slower on
            # two CPU devices than one device does
            spec = PartitionSpec(_AXIS)
            local, log_q = jax.shard_map(
                site_loop, in_specs=(PartitionSpec(), PartitionSpec()), out_specs=(spec, spec), check_vma=False
            )(variables, keys)
        symmetries = getattr(model, "symmetries", None)
        if symmetries is not None:
            # |psi|^2 is p averaged over the images a[perm_g]: a draw of p moved by a uniformly
            # random group element is an exact draw of the average
            perms = jnp.asarray(np.asarray(symmetries))
            key_next, key_g = jax.random.split(key_next)
            g = jax.random.randint(key_g, (batch,), 0, perms.shape[0])
            local = _shard_batch(jnp.take_along_axis(local, perms[g], axis=1))
        sigma = _shard_batch(local_to_configs(self.local_space, local, self.dtype))
        sigma = sigma.reshape(self.n_batches, chain_length, -1)
        new_state = state.replace(key=key_next)
        if return_log_probabilities:
            if model is not full_model or symmetries is not None or self.tempering != 1.0:
                # the draws' own log-probabilities carry the sampling precision, and are those of
                # p (or its tempered form), not of its symmetry average: recompute log |psi|^2
                log_q = 2 * full_model.apply(full_variables, sigma.reshape(batch, -1)).real
            return (sigma, log_q.reshape(self.n_batches, chain_length)), new_state
        return sigma, new_state


def make_direct_sampler(problem: Problem, hilbert, hamiltonian, vmc_options) -> Sampler:
    """``ModelSpec.make_sampler`` of the constrained autoregressive models: exact direct
    sampling (the Transformer's projected amplitude takes Metropolis chains instead,
    :func:`nqs.models.transformer.make_transformer_sampler`)."""
    return ConstrainedDirectSampler(hilbert, problem.local_space.name, tempering=getattr(vmc_options, "tempering", 1.0))
