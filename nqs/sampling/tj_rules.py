"""Metropolis moves for the t-J model that never leave its sector.

Configurations are NetKet :class:`~hamiltonians.netket_backend.TJFermions` occupations: ``2 N``
entries, the first ``N`` the down orbitals of sites ``0 .. N-1`` (snake order), the next ``N``
the up orbitals. Both moves of :class:`TJHopExchangeRule` are a *swap of the contents of the two
sites of a bond* (both orbitals at once):

* **hop**: one site of the bond holds an electron, the other is empty; swapping moves the
  electron (with its spin) to the empty neighbour;
* **exchange**: the two sites hold opposite spins; swapping exchanges them.

A swap keeps ``N_up``, ``N_dn`` and the absence of double occupancy, so a chain started in the
sector stays there. A move type is drawn first (hop with probability ``hop_probability``), then
one bond uniformly among those where that move changes the configuration. The reverse of a move
is the same type of move on the same bond, so the proposal ratio is
``T(x'->x) / T(x->x') = n_type(x) / n_type(x')`` (``n_type``: number of bonds open to that move
type); it is returned as NetKet's log-correction, so the chain samples ``|psi|^2`` exactly.
When no bond admits the drawn move type the proposal is the configuration itself.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from netket.sampler.rules import MetropolisRule
from netket.utils import HashableArray, struct


class TJHopExchangeRule(MetropolisRule):
    """Electron hops to empty neighbours and exchanges of opposite spins along the bonds.

    Args:
        bonds: ``(n_bonds, 2)`` pairs of sites (snake indices), e.g. ``problem.geometry.bonds``.
        n_orbitals: number of lattice sites ``N`` (configurations have ``2 N`` entries).
        hop_probability: probability of proposing a hop rather than an exchange, in ``(0, 1)``.
    """

    bonds: HashableArray = struct.field(pytree_node=False)
    """``(n_bonds, 2)`` site pairs along which moves are proposed."""
    n_orbitals: int = struct.field(pytree_node=False)
    """Sites of the lattice; orbital ``i`` is down, ``N + i`` up."""
    hop_probability: float = struct.field(pytree_node=False)
    """Probability that a proposal is an electron hop (else a spin exchange)."""

    def __init__(self, bonds: Any, n_orbitals: int, hop_probability: float = 0.5):
        b = np.asarray(bonds, dtype=np.int32).reshape(-1, 2)
        if b.shape[0] == 0:
            raise ValueError("TJHopExchangeRule needs at least one bond")
        if np.any(b < 0) or np.any(b >= n_orbitals) or np.any(b[:, 0] == b[:, 1]):
            raise ValueError(f"bonds must join two different sites in [0, {n_orbitals})")
        if not 0.0 < hop_probability < 1.0:
            raise ValueError(f"hop_probability must be in (0, 1), got {hop_probability}")
        self.bonds = HashableArray(b)
        self.n_orbitals = int(n_orbitals)
        self.hop_probability = float(hop_probability)

    def open_bonds(self, σ: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Masks ``(hop, exchange)`` of shape ``(..., n_bonds)``: bonds where a hop (one site
        empty, one occupied) or an exchange (opposite spins) changes ``σ``."""
        n = self.n_orbitals
        b = jnp.asarray(np.asarray(self.bonds))
        dn = σ[..., :n].astype(jnp.int32)
        up = σ[..., n:].astype(jnp.int32)
        occ = dn + up
        i, j = b[:, 0], b[:, 1]
        hop = occ[..., i] != occ[..., j]
        exchange = (up[..., i] * dn[..., j] + dn[..., i] * up[..., j]) > 0
        return hop, exchange

    def transition(self, sampler, machine, params, sampler_state, key, σ):
        n = self.n_orbitals
        b = jnp.asarray(np.asarray(self.bonds))
        k_type, k_bond = jax.random.split(key)
        batch = σ.shape[0]
        is_hop = jax.random.uniform(k_type, (batch,)) < self.hop_probability
        hop, exchange = self.open_bonds(σ)
        allowed = jnp.where(is_hop[:, None], hop, exchange)
        n_open = allowed.sum(axis=-1)
        # uniform choice among the open bonds (Gumbel-max on equal logits)
        g = jax.random.gumbel(k_bond, allowed.shape)
        bond = jnp.argmax(jnp.where(allowed, g, -jnp.inf), axis=-1)
        a, c = b[bond, 0], b[bond, 1]

        def swap(s, a, c):
            pos = jnp.stack([a, c, a + n, c + n])
            return s.at[pos].set(s[jnp.stack([c, a, c + n, a + n])])

        moved = jax.vmap(swap)(σ, a, c)
        σp = jnp.where((n_open > 0)[:, None], moved, σ)
        hop_p, exchange_p = self.open_bonds(σp)
        n_open_p = jnp.where(is_hop, hop_p.sum(axis=-1), exchange_p.sum(axis=-1))
        # log T(x'->x) - log T(x->x'); zero for the identity proposal (n_open = 0)
        log_corr = jnp.where(
            n_open > 0,
            jnp.log(jnp.maximum(n_open, 1).astype(jnp.float64)) - jnp.log(jnp.maximum(n_open_p, 1).astype(jnp.float64)),
            0.0,
        )
        return σp, log_corr

    def __repr__(self) -> str:
        return (
            f"TJHopExchangeRule(n_bonds={len(np.asarray(self.bonds))}, "
            f"hop_probability={self.hop_probability})"
        )


def tj_sampler(problem, hilbert, n_chains: int, sweep_size: int | None = None, hop_probability: float = 0.5):
    """A NetKet :class:`~netket.sampler.MetropolisSampler` with :class:`TJHopExchangeRule` on
    ``problem.geometry.bonds``; ``sweep_size`` defaults to the number of lattice sites."""
    import netket as nk

    rule = TJHopExchangeRule(problem.geometry.bonds, problem.n_sites, hop_probability)
    return nk.sampler.MetropolisSampler(
        hilbert, rule, n_chains=n_chains, sweep_size=sweep_size or problem.n_sites
    )
