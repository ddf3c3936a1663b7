"""Exact completability of partial configurations: the sector as a finite automaton.

Reading a configuration site by site in snake order, the only memory a set of linear
constraints needs is the partial sums of the constraints that are *open* (some of their sites
read, some not). Those tuples are the automaton's states at each depth. A forward pass collects
the reachable states, a backward pass counts completions and deletes every state from which the
sector cannot be reached. What remains answers, for any prefix, exactly which next local states
keep the configuration completable: autoregressive models mask their conditionals with it, so
every sample lies in the sector and no sampling path ends in a dead end.

Table constraints (:class:`~hamiltonians.constraints.AllowedTuples`, e.g. anyon fusion paths)
are remembered by the values already read on their sites: a periodic fusion path keeps the first
and the last label read, at most ``d^2`` states per depth for ``d`` labels.

Sizes: global sums (total S^z, electron numbers) need ``O(n_sites)`` states per depth per
conserved number; Gauss's law on an ``Lx x Ly`` torus keeps the first row of vertices open until
the last row is read, so a Z2 frontier has up to ``2^(2 Lx + 1)`` states (512 at 4x4, 8192 at
6x6) and a spin-1/2 U(1) frontier up to ``5^(2 Lx)`` (reachable ones are far fewer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constraints import Constraint


@dataclass(frozen=True, eq=False)
class SectorAutomaton:
    """``transitions[k][s, a]``: state at depth ``k+1`` after reading local state ``a`` at site
    ``k`` from state ``s`` (``-1``: no completion in the sector). Depth 0 and depth ``n_sites``
    have the single state 0. ``counts[k][s]``: number of sector configurations completing ``s``.
    """

    transitions: tuple[np.ndarray, ...]
    counts: tuple[np.ndarray, ...]

    @property
    def n_sites(self) -> int:
        return len(self.transitions)

    @property
    def n_configs(self) -> float:
        """Size of the sector (a float: it can exceed 2^63)."""
        return float(self.counts[0][0])

    @property
    def max_states(self) -> int:
        return max(len(t) for t in self.transitions)

    def padded(self) -> tuple[np.ndarray, np.ndarray]:
        """``(table, log_counts)``: ``table[k, s, a]`` (``int32``, rows beyond a depth's states are
        ``-1``) and ``log_counts[k, s]`` for ``k = 0 .. n_sites`` (``-inf`` where absent), for
        vectorised use in JAX."""
        n, s_max = self.n_sites, self.max_states
        d = self.transitions[0].shape[1]
        table = np.full((n, s_max, d), -1, dtype=np.int32)
        logc = np.full((n + 1, s_max), -np.inf)
        for k, t in enumerate(self.transitions):
            table[k, : len(t)] = t
        for k, c in enumerate(self.counts):
            with np.errstate(divide="ignore"):
                logc[k, : len(c)] = np.log(c)
        return table, logc

    def allowed(self, k: int, states: np.ndarray) -> np.ndarray:
        """Boolean mask ``(batch, d)`` of local states allowed at site ``k``."""
        return self.transitions[k][states] >= 0

    def walk(self, configs: np.ndarray) -> np.ndarray:
        """States ``(batch, n_sites + 1)`` visited by each configuration (``-1`` once it has left
        the sector)."""
        x = np.asarray(configs)
        out = np.zeros(x.shape[:-1] + (self.n_sites + 1,), dtype=np.int64)
        s = np.zeros(x.shape[:-1], dtype=np.int64)
        for k, t in enumerate(self.transitions):
            nxt = np.where(s >= 0, t[np.maximum(s, 0), x[..., k]], -1)
            out[..., k + 1] = s = nxt
        return out

    def sample_uniform(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` configurations drawn uniformly from the whole sector."""
        x = np.zeros((n, self.n_sites), dtype=np.int8)
        s = np.zeros(n, dtype=np.int64)
        for k, t in enumerate(self.transitions):
            nxt = t[s]  # (n, d)
            w = np.where(nxt >= 0, self.counts[k + 1][np.maximum(nxt, 0)], 0.0)
            p = w / w.sum(axis=1, keepdims=True)
            a = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
            x[:, k] = a
            s = nxt[np.arange(n), a]
        return x


def build_automaton(constraint: Constraint, max_states: int = 2_000_000) -> SectorAutomaton:
    """Automaton of ``constraint`` (raises ``ValueError`` if a depth needs more states)."""
    d, n = constraint.space.dim, constraint.n_sites
    cons = constraint.linear
    scale = 2  # all quantum numbers are multiples of 1/2
    first = [min(c.sites) for c in cons]
    last = [max(c.sites) for c in cons]
    contrib = np.zeros((len(cons), n, d), dtype=np.int64)
    for ci, c in enumerate(cons):
        q = np.asarray(constraint.space.quantum_numbers[c.quantity], dtype=float)
        for s, w in zip(c.sites, c.weights):
            contrib[ci, s] += np.rint(scale * w * q).astype(np.int64)
    target = [int(round(scale * c.value)) for c in cons]
    mods = [None if c.modulus is None else scale * c.modulus for c in cons]
    touching = [[ci for ci in range(len(cons)) if np.any(contrib[ci, k])] for k in range(n)]
    # open constraints after reading sites 0..k-1
    open_at = [[ci for ci in range(len(cons)) if first[ci] < k <= last[ci]] for k in range(n + 1)]
    # partial sums reachable from the sites not yet read, for pruning of hopeless states
    lo = np.zeros((len(cons), n + 1), dtype=np.int64)
    hi = np.zeros((len(cons), n + 1), dtype=np.int64)
    for k in range(n - 1, -1, -1):
        lo[:, k] = lo[:, k + 1] + contrib[:, k].min(axis=1)
        hi[:, k] = hi[:, k + 1] + contrib[:, k].max(axis=1)

    # table constraints (AllowedTuples): the memory is the values read so far on their sites,
    # in increasing site order; a prefix no allowed tuple starts with is a dead end
    tabs = constraint.tables
    t_sites = [tuple(sorted(t.sites)) for t in tabs]
    t_prefixes = []
    for t, srt in zip(tabs, t_sites):
        ordered = {tuple(v[t.sites.index(s)] for s in srt) for v in t.allowed}
        t_prefixes.append({v[:m] for v in ordered for m in range(1, len(v) + 1)})
    t_touch = [[ti for ti, srt in enumerate(t_sites) if k in srt] for k in range(n)]
    t_open = [[ti for ti, srt in enumerate(t_sites) if srt[0] < k <= srt[-1]] for k in range(n + 1)]

    levels: list[dict[tuple, int]] = [{(): 0}]
    forward: list[np.ndarray] = []
    for k in range(n):
        prev_open = open_at[k]
        next_open = open_at[k + 1]
        pos = {ci: i for i, ci in enumerate(prev_open)}
        n_lin = len(prev_open)
        tpos = {ti: n_lin + i for i, ti in enumerate(t_open[k])}
        nxt_index: dict[tuple, int] = {}
        table = np.full((len(levels[k]), d), -1, dtype=np.int64)
        for state, si in levels[k].items():
            for a in range(d):
                read = {ti: state[tpos[ti]] for ti in t_open[k]}
                dead = False
                for ti in t_touch[k]:
                    read[ti] = read.get(ti, ()) + (a,)
                    if read[ti] not in t_prefixes[ti]:
                        dead = True
                        break
                if dead:
                    continue
                sums = {ci: (state[pos[ci]] if ci in pos else 0) for ci in set(prev_open) | set(touching[k])}
                ok = True
                for ci in touching[k]:
                    sums[ci] += int(contrib[ci, k, a])
                for ci in sums:
                    if last[ci] == k:  # closes here
                        dev = sums[ci] - target[ci]
                        if (dev % mods[ci] != 0) if mods[ci] else dev != 0:
                            ok = False
                            break
                    elif mods[ci] is None and not (
                        sums[ci] + lo[ci, k + 1] <= target[ci] <= sums[ci] + hi[ci, k + 1]
                    ):
                        ok = False
                        break
                if not ok:
                    continue
                key = tuple(
                    (sums.get(ci, 0) % mods[ci]) if mods[ci] else sums.get(ci, 0) for ci in next_open
                ) + tuple(read[ti] for ti in t_open[k + 1])
                if key not in nxt_index:
                    nxt_index[key] = len(nxt_index)
                    if len(nxt_index) > max_states:
                        raise ValueError(
                            f"the sector automaton needs more than {max_states} states at site {k + 1}"
                        )
                table[si, a] = nxt_index[key]
        forward.append(table)
        levels.append(nxt_index)

    # backward: completion counts, then delete dead states and renumber
    counts = [np.zeros(len(lv)) for lv in levels]
    counts[n][:] = 1.0 if len(counts[n]) else 0.0
    for k in range(n - 1, -1, -1):
        t = forward[k]
        counts[k] = np.where(t >= 0, counts[k + 1][np.maximum(t, 0)], 0.0).sum(axis=1)
    keep = [c > 0 for c in counts]
    new_index = []
    for k in range(n + 1):
        idx = np.full(len(counts[k]), -1, dtype=np.int64)
        idx[keep[k]] = np.arange(int(keep[k].sum()))
        new_index.append(idx)
    transitions = []
    for k in range(n):
        t = forward[k][keep[k]]
        t = np.where(t >= 0, new_index[k + 1][np.maximum(t, 0)], -1)
        transitions.append(t.astype(np.int32))
    return SectorAutomaton(tuple(transitions), tuple(c[m] for c, m in zip(counts, keep)))
