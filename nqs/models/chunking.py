"""Evaluating a flax model over a large batch in fixed-size chunks, one after the other.

NetKet evaluates ``log psi`` on every connected configuration of every sample at once (unless
``chunk_size`` is set): ``n_samples x n_connected`` configurations, times the symmetry images
of a symmetrised model. On a 2-core CPU the activations of such a batch are the cost -- memory
traffic, and memory itself (the translation-symmetrised ViT on the 8x8 J1-J2 lattice with 256
samples needed over 20 GB and was killed). Models therefore map their own batches in chunks:
same result, bounded memory, and small chunks keep the activations in cache.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def map_in_chunks(module: nn.Module, method: str, x: jax.Array, chunk: int | None) -> jax.Array:
    """``module.<method>(x)`` over the leading axis of ``x`` in chunks of ``chunk`` rows
    (``jax.lax.map``; the last chunk is padded with copies of the first row, and the padding is
    dropped). ``chunk = None``, a batch no larger than it, or initialisation: in one call."""
    n = x.shape[0]
    if chunk is None or n <= chunk or module.is_initializing():
        return getattr(module, method)(x)
    bound, variables = module.unbind()
    pad = (-n) % chunk
    xs = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad, *x.shape[1:]))]).reshape(-1, chunk, *x.shape[1:])
    out = jax.lax.map(lambda xc: bound.apply(variables, xc, method=method), xs)
    return out.reshape(-1, *out.shape[2:])[:n]
