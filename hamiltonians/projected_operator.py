"""A NetKet operator for projected fermions (t-J), generic over symbolic terms.

NetKet's :class:`~netket.operator.FermionOperator2nd` writes a projected hopping
``P c^dag_i c_j P`` as a sum of bare mode products whose connected configurations include doubly
occupied ones (they cancel only after summation, which NetKet's padded connections never do),
and its fast particle-conserving form accepts at most two-body products. This operator instead
applies each term as one monomial map on the physical local states (the same local matrices,
Jordan-Wigner strings included, as the exact-diagonalisation engine), so every connected
configuration is physical.

Sign convention: NetKet's. Our matrices are Jordan-Wigner in snake order (sites in order, up
before down on a site); NetKet orders modes as all down orbitals, then all up orbitals. With
``|x>_NetKet = s(x) |x>_snake``, ``s(x) = (-1)^{#(i < j): up at i, down at j}``, matrix elements are
``<x|H|x'>_NetKet = s(x) s(x') <x|H|x'>_snake``; NetKet's Slater determinants therefore work with
it unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import register_pytree_node_class
from netket.operator import DiscreteJaxOperator

from .local_spaces import LocalSpace
from .terms import Term, is_diagonal, monomial, site_factors


def _tables(terms, space: LocalSpace, diagonal: bool):
    rows = []
    for coeff, ops in terms:
        factors = site_factors(ops, space)
        if not factors or is_diagonal(factors) != diagonal:
            continue
        sites = sorted(factors)
        maps = [monomial(factors[s]) for s in sites]
        rows.append((coeff, sites, maps))
    k = max((len(r[1]) for r in rows), default=1)
    d = space.dim
    n = len(rows)
    coeffs = np.zeros(n)
    site_arr = np.zeros((n, k), dtype=np.int32)
    targets = np.tile(np.arange(d, dtype=np.int32), (n, k, 1))
    amps = np.ones((n, k, d))
    for t, (c, sites, maps) in enumerate(rows):
        coeffs[t] = c
        for j in range(k):
            # padding repeats the first site with its own target map (a harmless duplicate
            # write) and a unit amplitude
            src = j if j < len(sites) else 0
            site_arr[t, j] = sites[src]
            targets[t, j] = maps[src][0]
            if j < len(sites):
                amps[t, j] = maps[j][1]
    return coeffs, site_arr, targets, amps


def _snake_to_netket_sign(idx):
    """``s(x)`` for t-J local indices (1 = up, 2 = down) along the last axis."""
    up = (idx == 1).astype(jnp.int32)
    dn = (idx == 2).astype(jnp.int32)
    ups_before = jnp.cumsum(up, axis=-1) - up
    return 1 - 2 * (jnp.sum(dn * ups_before, axis=-1) % 2)


class _Tables:
    """Per-term gather tables, built once; hashed by identity so jit caches on the object."""

    def __init__(self, terms: tuple[Term, ...], space: LocalSpace):
        self.terms = tuple(terms)
        self.space = space
        dc, ds, _, da = _tables(self.terms, space, diagonal=True)
        oc, os_, ot, oa = _tables(self.terms, space, diagonal=False)
        self.diag = (jnp.asarray(dc), jnp.asarray(ds), jnp.asarray(da))
        self.off = (jnp.asarray(oc), jnp.asarray(os_), jnp.asarray(ot), jnp.asarray(oa))
        self.constant = float(sum(c for c, ops in self.terms if not ops))
        self.n_off = len(oc)


@register_pytree_node_class
class ProjectedFermionOperator(DiscreteJaxOperator):
    """Sum of terms on t-J sites acting on :class:`~hamiltonians.netket_backend.TJFermions`.

    Connections: one diagonal element plus one per off-diagonal term (zero-amplitude ones point
    back to ``x`` with a zero matrix element, so every connected state is in the sector).
    """

    def __init__(self, hilbert, terms: tuple[Term, ...], space: LocalSpace):
        super().__init__(hilbert)
        if space.name != "tj_site":
            raise ValueError("ProjectedFermionOperator acts on t-J sites")
        self._tables = _Tables(terms, space)

    @property
    def terms(self) -> tuple[Term, ...]:
        return self._tables.terms

    @property
    def dtype(self):
        return jnp.float64

    @property
    def is_hermitian(self) -> bool:
        return True

    @property
    def max_conn_size(self) -> int:
        return 1 + self._tables.n_off

    def tree_flatten(self):
        return (), (self.hilbert, self._tables)

    @classmethod
    def tree_unflatten(cls, meta, data):
        obj = object.__new__(cls)
        DiscreteJaxOperator.__init__(obj, meta[0])
        obj._tables = meta[1]
        return obj

    def __repr__(self):
        return f"ProjectedFermionOperator(hilbert={self.hilbert}, n_terms={len(self.terms)})"

    @jax.jit
    def get_conn_padded(self, x):
        n = self.hilbert.n_orbitals
        idx = (x[..., n:] * 1 + x[..., :n] * 2).astype(jnp.int32)
        sign_x = _snake_to_netket_sign(idx)

        dc, ds, da = self._tables.diag
        loc = idx[..., ds]  # (..., Td, K)
        a = jnp.take_along_axis(jnp.broadcast_to(da, loc.shape + da.shape[-1:]), loc[..., None], axis=-1)[..., 0]
        diag = jnp.sum(dc * jnp.prod(a, axis=-1), axis=-1) + self._tables.constant

        oc, os_, ot, oa = self._tables.off
        loc = idx[..., os_]  # (..., T, K)
        a = jnp.take_along_axis(jnp.broadcast_to(oa, loc.shape + oa.shape[-1:]), loc[..., None], axis=-1)[..., 0]
        new = jnp.take_along_axis(jnp.broadcast_to(ot, loc.shape + ot.shape[-1:]), loc[..., None], axis=-1)[..., 0]
        amp = oc * jnp.prod(a, axis=-1)  # (..., T)

        def apply(row, sites, vals):
            return row.at[sites].set(vals)

        batch = idx.shape[:-1]
        flat_idx = idx.reshape(-1, idx.shape[-1])
        flat_new = new.reshape((-1,) + new.shape[-2:])
        xp = jax.vmap(lambda row, nv: jax.vmap(apply, in_axes=(None, 0, 0))(row, os_, nv))(flat_idx, flat_new)
        xp = xp.reshape(batch + xp.shape[-2:])  # (..., T, N)
        amp = amp * sign_x[..., None] * _snake_to_netket_sign(xp)
        alive = amp != 0
        xp = jnp.where(alive[..., None], xp, idx[..., None, :])

        all_idx = jnp.concatenate([idx[..., None, :], xp], axis=-2)
        mels = jnp.concatenate([diag[..., None], jnp.where(alive, amp, 0.0)], axis=-1)
        up = (all_idx == 1).astype(x.dtype)
        dn = (all_idx == 2).astype(x.dtype)
        return jnp.concatenate([dn, up], axis=-1), mels
