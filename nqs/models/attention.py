"""Shared layers for autoregressive ansätze: causal self-attention with a key/value cache, MLP
and pre-norm Transformer blocks.

Every layer has two entry points that compute the same function:

* ``__call__(h)`` on a whole sequence ``h`` of shape ``(batch, length, d_model)`` with a causal
  mask (position ``k`` sees positions ``<= k``): teacher forcing, used to evaluate ``log psi``;
* ``step(h_k, k, visible)`` on one position, ``h_k`` of shape ``(batch, d_model)``, at position
  ``k`` (an integer, may be traced): writes this position's key and value into the ``"cache"``
  collection (arrays ``(batch, n_heads, n, head_dim)``) and attends to the cached positions
  ``<= k``. ``n`` is ``length``, or with ``visible`` (a static integer ``> k``) the cache holds
  ``visible`` positions, grown with zeros when a later call asks for more: reading the cache is
  most of a step's cost on a CPU, so a caller that knows ``k`` is small (the direct sampler, by
  blocks of sites) reads only a prefix.
  Calling ``step`` for ``k = 0, 1, ..., length - 1`` in order reproduces ``__call__`` position by
  position at one position's cost per call. Entries of the cache at positions ``> k`` are never
  read, so a new sequence starts by calling ``step`` at ``k = 0`` without clearing the cache.

A first block, whose input at each position is a function of the position and of one of a few
tokens, has a third entry point, ``step_tabulated``: the same step from a table of those inputs
and the tokens so far, without a key/value cache.

The cache is created on the first ``step`` call made with ``mutable=["cache"]`` (its batch size
is that call's); it is not part of the parameters.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _dense(features: int, dtype: Any, name: str | None = None, scale: float = 1.0, use_bias: bool = True) -> nn.Dense:
    init = nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")
    return nn.Dense(features, use_bias=use_bias, param_dtype=dtype, dtype=dtype, kernel_init=init, name=name)


def cached(module: nn.Module, name: str, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """The ``"cache"`` variable ``name`` of ``module``, or zeros of ``shape`` if it does not exist
    yet (the cache is created by the first step call; its contents before ``k = 0`` are unused)."""
    if module.has_variable("cache", name):
        return module.get_variable("cache", name)
    return jnp.zeros(shape, dtype)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention (softmax over earlier positions and the current one)."""

    d_model: int
    """Width of the residual stream."""
    n_heads: int
    """Number of heads; ``d_model`` must be a multiple of it."""
    length: int
    """Sequence length (size of the key/value cache)."""
    param_dtype: Any = np.float64
    """Dtype of weights and activations."""
    kv_heads: int | None = None
    """Key/value heads (grouped-query attention: the ``n_heads`` query heads share them in
    ``kv_heads`` groups; ``1``: multi-query attention); ``None``: ``n_heads`` (multi-head)."""

    def setup(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.n_heads % self.groups:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of kv_heads ({self.kv_heads})")
        self.qkv = _dense(self.d_model + 2 * self.groups * self.head_dim, self.param_dtype, name="qkv")
        self.out = _dense(self.d_model, self.param_dtype, name="out")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def groups(self) -> int:
        """Key/value heads; each serves ``n_heads // groups`` query heads."""
        return self.n_heads if self.kv_heads is None else self.kv_heads

    def _split(self, h: jax.Array):
        """Queries ``(..., groups, n_heads // groups, head_dim)``, keys and values
        ``(..., groups, head_dim)``."""
        q, k, v = jnp.split(self.qkv(h), [self.d_model, self.d_model + self.groups * self.head_dim], axis=-1)
        g, d = self.groups, self.head_dim
        return q.reshape(h.shape[:-1] + (g, self.n_heads // g, d)), k.reshape(h.shape[:-1] + (g, d)), v.reshape(h.shape[:-1] + (g, d))

    def __call__(self, h: jax.Array) -> jax.Array:
        """``h``: ``(batch, length, d_model)`` -> same shape, position ``k`` attending to ``<= k``."""
        # group-major (batch, groups, heads per group x length, head_dim): XLA's batched matmuls
        # are much faster on CPU with the batch axes leading than with einsum's transposes inside
        b, n = h.shape[:2]
        g, r = self.groups, self.n_heads // self.groups
        q, k, v = self._split(h)
        q = jnp.transpose(q, (0, 2, 3, 1, 4)).reshape(b, g, r * n, self.head_dim)
        k, v = jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2)  # (batch, groups, length, head_dim)
        scores = (q @ jnp.swapaxes(k, -1, -2)).reshape(b, g, r, n, n) * self.head_dim**-0.5
        causal = np.tril(np.ones((n, n), dtype=bool))
        att = jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1)
        y = (att.reshape(b, g, r * n, n) @ v).reshape(b, g, r, n, self.head_dim)
        return self.out(jnp.transpose(y, (0, 3, 1, 2, 4)).reshape(b, n, self.d_model))

    def step(self, h: jax.Array, position: jax.Array | int, visible: int | None = None) -> jax.Array:
        """One position: ``h`` ``(batch, d_model)`` at ``position``; updates the key/value cache
        (``keys``, ``values``: ``(batch, n_heads, n, head_dim)``) and reads all of it. ``n`` is
        ``length``, or with ``visible`` (static, ``> position``) at least ``visible``: a shorter
        cache is grown with zeros to ``visible`` positions."""
        q, k, v = self._split(h)
        batch = h.shape[0]
        shape = (batch, self.groups, self.length if visible is None else visible, self.head_dim)
        keys, values = cached(self, "keys", shape, k.dtype), cached(self, "values", shape, v.dtype)
        if keys.shape[2] < shape[2]:
            # the cache holds the positions read so far; grow it (slicing a longer cache to the
            # visible part instead would copy it at every step)
            grow = [(0, 0), (0, 0), (0, shape[2] - keys.shape[2]), (0, 0)]
            keys, values = jnp.pad(keys, grow), jnp.pad(values, grow)
        keys = jax.lax.dynamic_update_slice_in_dim(keys, k[:, :, None], position, axis=2)
        values = jax.lax.dynamic_update_slice_in_dim(values, v[:, :, None], position, axis=2)
        self.put_variable("cache", "keys", keys)
        self.put_variable("cache", "values", values)
        n = keys.shape[2]
        # scores (batch, groups, heads per group, n): the softmax then runs over the minor axis;
        # with positions on the second-minor axis it took twice as long on a CPU
        scores = jnp.einsum("bgnd,bgrd->bgrn", keys, q) * self.head_dim**-0.5
        # positions after the current one hold stale entries of an earlier sequence: never read them
        att = jax.nn.softmax(jnp.where(jnp.arange(n) <= position, scores, -jnp.inf), axis=-1)
        y = jnp.einsum("bgrn,bgnd->bgrd", att, values)  # (batch, groups, heads per group, head_dim)
        return self.out(y.reshape(batch, self.d_model))

    def step_tabulated(self, h: jax.Array, position: jax.Array | int, tokens: jax.Array, table: jax.Array) -> jax.Array:
        """:meth:`step` without a key/value cache, for an attention whose input at every
        position ``j`` is a function of ``j`` and of a token ``tokens[:, j]`` alone (the first
        block of a decoder: embedding of the previous site's state plus that of the site).
        ``table`` ``(n, T, d_model)``: that input for each position and each of the ``T``
        tokens; ``tokens`` ``(batch, n)`` int, read at positions ``<= position``; ``h``
        ``(batch, d_model)``: the input at ``position``. Same function as :meth:`step`: the keys
        and values of the ``n T`` table entries are computed per call (not ``batch n`` of them,
        cached), and the scores and the weighted sum of values are dense products of the batch's
        queries and weights with those of token 0 plus, per further token, with the differences
        of its keys and values from token 0's, masked by where that token was read.
        On a CPU this replaces streaming the ``(batch, heads, n, head_dim)`` cache (what bounds
        :meth:`step`) by matrix products with a shared operand."""
        batch = h.shape[0]
        n, n_tokens = table.shape[:2]
        g, r = self.groups, self.n_heads // self.groups
        # (groups, heads per group x batch, head_dim): query head g r' + i of sample s at row i batch + s
        q = jnp.transpose(self._split(h)[0], (1, 2, 0, 3)).reshape(g, r * batch, self.head_dim)
        _, k, v = self._split(table)  # (n, T, groups, head_dim)
        # token t's key is token 0's plus a difference: the scores are one product with the shared
        # operand plus, per further token, a product masked by where that token was read (and the
        # same for the values): fewer passes over (groups, r, batch, n) than selecting among T
        # products (1.2x faster at T = 2)
        k_0, v_0 = k[:, 0], v[:, 0]  # (n, groups, head_dim)
        is_token = [(tokens == t).astype(q.dtype) for t in range(1, n_tokens)]  # (batch, n), broadcast over the heads

        def product(x: jax.Array, w: jax.Array) -> jax.Array:  # (groups, r batch, head_dim) with keys (n, groups, head_dim)
            return x @ jnp.transpose(w, (1, 2, 0))

        scores = product(q, k_0).reshape(g, r, batch, n)
        for t in range(1, n_tokens):
            scores = scores + is_token[t - 1] * product(q, k[:, t] - k_0).reshape(g, r, batch, n)
        scores = scores * self.head_dim**-0.5
        att = jax.nn.softmax(jnp.where(jnp.arange(n) <= position, scores, -jnp.inf), axis=-1)
        y = att.reshape(g, r * batch, n) @ jnp.swapaxes(v_0, 0, 1)
        for t in range(1, n_tokens):
            y = y + (att * is_token[t - 1]).reshape(g, r * batch, n) @ jnp.swapaxes(v[:, t] - v_0, 0, 1)
        y = jnp.transpose(y.reshape(g, r, batch, self.head_dim), (2, 0, 1, 3))
        return self.out(y.reshape(batch, self.d_model))


class MLP(nn.Module):
    """Position-wise two-layer perceptron ``W2 gelu(W1 h + b1) + b2``."""

    d_model: int
    """Input and output width."""
    hidden: int
    """Hidden width."""
    param_dtype: Any = np.float64
    """Dtype of weights and activations."""

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        h = _dense(self.hidden, self.param_dtype, name="up")(h)
        h = nn.gelu(h)
        return _dense(self.d_model, self.param_dtype, name="down")(h)


class TransformerBlock(nn.Module):
    """Pre-norm decoder block: ``h + Att(LN(h))``, then ``h + MLP(LN(h))``."""

    d_model: int
    """Width of the residual stream."""
    n_heads: int
    """Attention heads."""
    length: int
    """Sequence length (size of the key/value cache)."""
    mlp_ratio: int = 2
    """MLP hidden width as a multiple of ``d_model``."""
    param_dtype: Any = np.float64
    """Dtype of weights and activations."""
    kv_heads: int | None = None
    """Key/value heads of the attention (:attr:`CausalSelfAttention.kv_heads`)."""

    def setup(self):
        self.norm_att = nn.LayerNorm(param_dtype=self.param_dtype, dtype=self.param_dtype)
        self.attention = CausalSelfAttention(self.d_model, self.n_heads, self.length, self.param_dtype, self.kv_heads)
        self.norm_mlp = nn.LayerNorm(param_dtype=self.param_dtype, dtype=self.param_dtype)
        self.mlp = MLP(self.d_model, self.mlp_ratio * self.d_model, self.param_dtype)

    def __call__(self, h: jax.Array) -> jax.Array:
        """Whole sequence ``(batch, length, d_model)``, causal."""
        h = h + self.attention(self.norm_att(h))
        return h + self.mlp(self.norm_mlp(h))

    def step(self, h: jax.Array, position: jax.Array | int, visible: int | None = None) -> jax.Array:
        """One position ``(batch, d_model)``, with the attention's key/value cache (its first
        ``visible`` positions read, see :meth:`CausalSelfAttention.step`)."""
        h = h + self.attention.step(self.norm_att(h), position, visible)
        return h + self.mlp(self.norm_mlp(h))

    def step_tabulated(self, h: jax.Array, position: jax.Array | int, tokens: jax.Array, table: jax.Array) -> jax.Array:
        """One position of a first block, whose inputs are tabulated by position and token
        (:meth:`CausalSelfAttention.step_tabulated`; ``table`` before the layer norm); no cache."""
        h = h + self.attention.step_tabulated(self.norm_att(h), position, tokens, self.norm_att(table))
        return h + self.mlp(self.norm_mlp(h))
