"""Symmetry sectors as linear constraints on configurations, enumerated directly.

A :class:`LinearConstraint` fixes ``sum_{i in sites} w_i q(x_i)`` (``q`` a local quantum
number) to a value, optionally modulo 2. A :class:`Constraint` is a set of them plus the
knowledge every backend needs: a validity check, a direct enumeration of the sector (a pruned
breadth-first construction that never visits the unconstrained product space), random valid
configurations, and a non-negative penalty operator that vanishes exactly on the sector.
Constraints that are no linear sums (anyon fusion paths: neighbouring labels related by a
fusion rule) are :class:`AllowedTuples`, lists of the allowed values of a few sites; a sector
with them is enumerated and sampled through its automaton (:mod:`hamiltonians.automaton`).

Configurations are integer arrays of local basis indices in snake order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from itertools import product
from math import comb
from typing import Sequence

import numpy as np

from .local_spaces import LocalSpace, ket_bra
from .terms import Term, monomial, site_factors


@dataclass(frozen=True)
class LinearConstraint:
    """``sum_i weights[i] * q(x_{sites[i]}) == value`` (mod ``modulus`` if given)."""

    sites: tuple[int, ...]
    weights: tuple[float, ...]
    quantity: str
    value: float
    modulus: int | None = None


@dataclass(frozen=True)
class AllowedTuples:
    """``tuple(x[s] for s in sites) in allowed``: a local constraint that is no linear sum, e.g.
    neighbouring labels of an anyon fusion path related by a fusion rule, or one pinned site."""

    sites: tuple[int, ...]
    allowed: frozenset[tuple[int, ...]]


@dataclass(frozen=True)
class Move:
    """A constraint-preserving update: ``x[sites] -> table[k][x[sites[k]]]``, valid only if every
    entry is ``>= 0``. Gauge models use plaquette flips."""

    sites: tuple[int, ...]
    table: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Constraint:
    """A symmetry sector of a lattice model.

    Args:
        kind: ``"global_sums"`` (totals over all sites: S^z, particle numbers) or ``"gauss_law"``
            (one constraint per vertex).
        linear: the linear constraints.
        space: the local space the quantities refer to.
        n_sites: number of degrees of freedom.
        sector: human-readable summary stored in archives, e.g. ``{"Sz": 0.0}``.
        moves: constraint-preserving updates used to randomise a reference configuration
            (needed when the sector is not a set of global totals).
        reference: one valid configuration (gauss-law sectors).
        conserved: further linear quantities that every term of the Hamiltonian conserves but
            the sector leaves free (electric winding numbers on a torus); the sector is the sum
            of their eigenspaces. Local algorithms cannot change them (see :meth:`pinned`).
        tables: constraints given by their allowed local-state tuples (anyon fusion paths);
            enumeration, sampling and ED then go through the sector automaton.
    """

    kind: str
    linear: tuple[LinearConstraint, ...]
    space: LocalSpace
    n_sites: int
    sector: dict = field(default_factory=dict, hash=False, compare=False)
    moves: tuple[Move, ...] = ()
    reference: tuple[int, ...] | None = None
    conserved: tuple[LinearConstraint, ...] = ()
    tables: tuple[AllowedTuples, ...] = ()

    def pinned(self, config: Sequence[int] | None = None) -> Constraint:
        """This sector intersected with the values of :attr:`conserved` in ``config`` (default
        :attr:`reference`): e.g. one winding sector of a gauge model. Unchanged when nothing is
        conserved beyond the sector."""
        if not self.conserved:
            return self
        return self.with_conserved(self.conserved_values(self.reference if config is None else config))

    def conserved_values(self, config: Sequence[int]) -> tuple[float, ...]:
        """The values of :attr:`conserved` (e.g. the electric windings) in ``config``."""
        x = np.asarray(config)
        out = []
        for c in self.conserved:
            value = float(self._qtable(c)[x[list(c.sites)]] @ np.asarray(c.weights, dtype=float))
            out.append(float(np.mod(value, c.modulus)) if c.modulus is not None else value)
        return tuple(out)

    def with_conserved(self, values: Sequence[float]) -> Constraint:
        """This sector intersected with :attr:`conserved` fixed to ``values`` (one winding sector)."""
        if len(values) != len(self.conserved):
            raise ValueError(f"need {len(self.conserved)} values of the conserved quantities, got {len(values)}")
        fixed = [LinearConstraint(c.sites, c.weights, c.quantity, float(v), c.modulus) for c, v in zip(self.conserved, values)]
        return Constraint(
            self.kind, self.linear + tuple(fixed), self.space, self.n_sites,
            sector={**self.sector, "pinned": [c.value for c in fixed]}, moves=self.moves, reference=self.reference,
            tables=self.tables,
        )

    def conserved_sectors(self) -> list[tuple[float, ...]]:
        """Every combination of values of :attr:`conserved` that some configuration of the
        sector takes (the non-empty winding sectors), sorted; ``[()]`` when nothing is conserved
        beyond the sector. Candidates are the sums each quantity can reach alone, kept where
        :func:`~hamiltonians.automaton.build_automaton` finds the intersection non-empty."""
        from itertools import product

        from .automaton import build_automaton

        if not self.conserved:
            return [()]
        candidates = []
        for c in self.conserved:
            q = self._qtable(c)
            sums = {0.0}
            for w in c.weights:
                sums = {round(v + w * x, 9) for v in sums for x in q}
            if c.modulus is not None:
                sums = {round(float(np.mod(v, c.modulus)), 9) for v in sums}
            candidates.append(sorted(sums))
        out = []
        for values in product(*candidates):
            try:
                build_automaton(self.with_conserved(values))
            except ValueError:  # no configuration has these values
                continue
            out.append(tuple(float(v) for v in values))
        return out

    # ------------------------------------------------------------------ checks
    def _qtable(self, c: LinearConstraint) -> np.ndarray:
        return np.asarray(self.space.quantum_numbers[c.quantity], dtype=float)

    def check(self, configs: np.ndarray) -> np.ndarray:
        """Boolean mask of configurations (``(..., n_sites)`` local indices) in the sector."""
        x = np.asarray(configs)
        ok = np.ones(x.shape[:-1], dtype=bool)
        for c in self.linear:
            q = self._qtable(c)[x[..., list(c.sites)]]
            s = q @ np.asarray(c.weights, dtype=float)
            if c.modulus is None:
                ok &= np.isclose(s, c.value)
            else:
                ok &= np.isclose(np.mod(s - c.value, c.modulus), 0.0)
        for t in self.tables:
            ok &= _table_mask(t, x, self.space.dim)
        return ok

    def describe(self) -> str:
        """The sector in one line, e.g. ``Sz=0``, or ``no constraint``."""
        return ", ".join(f"{k}={v}" for k, v in self.sector.items()) or "no constraint"

    # ------------------------------------------------------------- enumeration
    def enumerate(self, max_states: int | None = None) -> np.ndarray | None:
        """All sector configurations, lexicographically sorted (site 0 most significant).

        Built site by site, keeping only partial configurations that can still satisfy every
        constraint, so the cost follows the sector size, not ``dim ** n_sites``. Returns ``None``
        when more than ``max_states`` (partial) configurations would be needed.
        """
        if self.tables:
            return self._walk_automaton(max_states)
        d, n = self.space.dim, self.n_sites
        cons = self.linear
        # Integer arithmetic: every quantum number here is a multiple of 1/2.
        scale = 2
        contrib = np.zeros((len(cons), n, d), dtype=np.int64)
        target = np.zeros(len(cons), dtype=np.int64)
        touches: list[list[int]] = [[] for _ in range(n)]
        for ci, c in enumerate(cons):
            q = self._qtable(c)
            for s, w in zip(c.sites, c.weights):
                contrib[ci, s] += np.rint(scale * w * q).astype(np.int64)
                touches[s].append(ci)
            target[ci] = int(round(scale * c.value))
        # Reachable range from sites > k for each constraint.
        rem_min = np.zeros((len(cons), n + 1), dtype=np.int64)
        rem_max = np.zeros((len(cons), n + 1), dtype=np.int64)
        for k in range(n - 1, -1, -1):
            rem_min[:, k] = rem_min[:, k + 1] + contrib[:, k].min(axis=1)
            rem_max[:, k] = rem_max[:, k + 1] + contrib[:, k].max(axis=1)
        last_site = np.array([max(c.sites) for c in cons], dtype=np.int64)
        mods = [None if c.modulus is None else scale * c.modulus for c in cons]

        x = np.zeros((1, 0), dtype=np.int8)
        partial = np.zeros((1, len(cons)), dtype=np.int64)
        cap = None if max_states is None else 4 * max_states
        for k in range(n):
            m = len(x)
            a = np.tile(np.arange(d, dtype=np.int8), m)
            x = np.concatenate([np.repeat(x, d, axis=0), a[:, None]], axis=1)
            partial = np.repeat(partial, d, axis=0) + contrib[:, k, :].T[a]
            keep = np.ones(len(x), dtype=bool)
            for ci in set(touches[k]):
                p = partial[:, ci]
                if mods[ci] is None:
                    keep &= (p + rem_min[ci, k + 1] <= target[ci]) & (target[ci] <= p + rem_max[ci, k + 1])
                elif last_site[ci] == k:
                    keep &= np.mod(p - target[ci], mods[ci]) == 0
            x, partial = x[keep], partial[keep]
            if cap is not None and len(x) > cap:
                return None
        if max_states is not None and len(x) > max_states:
            return None
        return x

    def _walk_automaton(self, max_states: int | None) -> np.ndarray | None:
        """All configurations, sorted, read off the sector automaton (every partial
        configuration it keeps has a completion, so nothing is pruned late)."""
        from .automaton import build_automaton

        automaton = build_automaton(self)
        if not len(automaton.counts[0]):  # empty sector
            return np.zeros((0, self.n_sites), dtype=np.int8)
        if max_states is not None and automaton.n_configs > max_states:
            return None
        x = np.zeros((1, 0), dtype=np.int8)
        states = np.zeros(1, dtype=np.int64)
        for t in automaton.transitions:
            # np.nonzero walks row-major: each prefix's continuations in ascending order
            rows, a = np.nonzero(t[states] >= 0)
            states = t[states][rows, a].astype(np.int64)
            x = np.concatenate([x[rows], a[:, None].astype(np.int8)], axis=1)
        return x

    def find_one(self) -> tuple[int, ...] | None:
        """One valid configuration by depth-first search with the same pruning as
        :meth:`enumerate` (``None`` if the sector is empty)."""
        if self.tables:
            from .automaton import build_automaton

            automaton = build_automaton(self)
            if not len(automaton.counts[0]):
                return None
            config, s = [], 0
            for t in automaton.transitions:
                a = int(np.flatnonzero(t[s] >= 0)[0])
                config.append(a)
                s = int(t[s, a])
            return tuple(config)
        d, n = self.space.dim, self.n_sites
        sums = {ci: 0.0 for ci in range(len(self.linear))}
        members: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for ci, c in enumerate(self.linear):
            for s, w in zip(c.sites, c.weights):
                members[s].append((ci, w))
        qt = [self._qtable(c) for c in self.linear]
        remaining = [
            [sum(min(w * q for q in qt[ci]) for s2, w in zip(c.sites, c.weights) if s2 > k) for k in range(n)]
            for ci, c in enumerate(self.linear)
        ]
        remaining_max = [
            [sum(max(w * q for q in qt[ci]) for s2, w in zip(c.sites, c.weights) if s2 > k) for k in range(n)]
            for ci, c in enumerate(self.linear)
        ]
        config = [0] * n

        def feasible(k: int) -> bool:
            for ci, _ in members[k]:
                c = self.linear[ci]
                if c.modulus is None:
                    lo, hi = sums[ci] + remaining[ci][k], sums[ci] + remaining_max[ci][k]
                    if not (lo - 1e-9 <= c.value <= hi + 1e-9):
                        return False
                elif max(c.sites) == k and not np.isclose(np.mod(sums[ci] - c.value, c.modulus), 0.0):
                    return False
            return True

        def dfs(k: int) -> bool:
            if k == n:
                return True
            for a in range(d):
                for ci, w in members[k]:
                    sums[ci] += w * qt[ci][a]
                config[k] = a
                if feasible(k) and dfs(k + 1):
                    return True
                for ci, w in members[k]:
                    sums[ci] -= w * qt[ci][a]
            return False

        return tuple(config) if dfs(0) else None

    def size(self) -> int | None:
        """Sector dimension when it has a closed form (global sums), else ``None``."""
        if self.kind != "global_sums":
            return None
        counts = self.state_counts()
        out, left = 1, self.n_sites
        for c in counts:
            out *= comb(left, c)
            left -= c
        return out

    # ------------------------------------------------------ random configurations
    def state_counts(self) -> tuple[int, ...]:
        """For global sums: how many sites are in each local basis state."""
        if self.kind != "global_sums":
            raise ValueError("state counts exist only for global-sum constraints")
        return _counts_for_totals(self.space, self.n_sites, {c.quantity: c.value for c in self.linear})

    def random_configs(self, rng: np.random.Generator, n: int, n_moves: int | None = None) -> np.ndarray:
        """``n`` random valid configurations (uniform for global sums; for Gauss-law sectors a
        reference configuration randomised by ``n_moves`` random constraint-preserving moves)."""
        if self.kind == "global_sums":
            base = np.repeat(np.arange(self.space.dim, dtype=np.int8), self.state_counts())
            return np.stack([rng.permutation(base) for _ in range(n)])
        if self.tables:
            from .automaton import build_automaton

            return build_automaton(self).sample_uniform(rng, n)
        if self.reference is None:
            raise ValueError("this constraint has no reference configuration to randomise")
        out = np.tile(np.asarray(self.reference, dtype=np.int8), (n, 1))
        if not self.moves:
            return out
        n_moves = n_moves if n_moves is not None else 4 * len(self.moves)
        tables = [np.asarray(mv.table) for mv in self.moves]
        for _ in range(n_moves):
            which = rng.integers(len(self.moves), size=n)
            for mi in np.unique(which):
                rows = np.flatnonzero(which == mi)
                sites = list(self.moves[mi].sites)
                new = np.stack([tables[mi][k][out[rows, s]] for k, s in enumerate(sites)], axis=1)
                ok = (new >= 0).all(axis=1)
                sel = rows[ok]
                out[np.ix_(sel, sites)] = new[ok]
        return out

    # ----------------------------------------------------------------- penalty
    def penalty_terms(self) -> tuple[Term, ...]:
        """Terms of a penalty ``P >= 0`` with ``P = 0`` exactly on the sector and ``P >= 1``
        elsewhere (squares of integer-valued deviations, or parity projectors)."""
        out: list[Term] = []
        for c in self.linear:
            if c.modulus is None:
                # (sum_i w_i q_i - v)^2
                lin = [(w, ((c.quantity, s),)) for s, w in zip(c.sites, c.weights)]
                for wi, oi in lin:
                    for wj, oj in lin:
                        out.append((wi * wj, oi + oj))
                for w, o in lin:
                    out.append((-2.0 * c.value * w, o))
                out.append((c.value**2, ()))
            elif c.modulus == 2:
                # (1 - (-1)^(sum - v)) / 2 for 0/1-valued charges
                q = self._qtable(c)
                if not np.all(np.isin(q, (0.0, 1.0))) or not all(abs(w) == 1 for w in c.weights):
                    raise ValueError("parity penalties need 0/1 charges with unit weights")
                sign = (-1.0) ** round(c.value)
                out.append((0.5, ()))
                out.append((-0.5 * sign, tuple((f"(-1)^{c.quantity}", s) for s in c.sites)))
            else:
                raise ValueError(f"no penalty for modulus {c.modulus}")
        for t in self.tables:
            # one projector per forbidden tuple: the sum is the number of violated tables
            for values in product(range(self.space.dim), repeat=len(t.sites)):
                if values not in t.allowed:
                    out.append((1.0, tuple((ket_bra(a, a), s) for a, s in zip(values, t.sites))))
        return tuple(out)


def _table_mask(t: AllowedTuples, x: np.ndarray, d: int) -> np.ndarray:
    """Whether ``x[..., t.sites]`` is one of ``t.allowed`` (tuples coded in base ``d``)."""
    place = d ** np.arange(len(t.sites))[::-1]
    codes = x[..., list(t.sites)].astype(np.int64) @ place
    allowed = np.array([int(np.dot(v, place)) for v in t.allowed], dtype=np.int64)
    return np.isin(codes, allowed)


def _counts_for_totals(space: LocalSpace, n_sites: int, totals: dict[str, float]) -> tuple[int, ...]:
    """Numbers of sites in each local state that realise the given totals (must be unique)."""
    qs = {k: np.asarray(space.quantum_numbers[k]) for k in totals}
    sols = []

    def rec(prefix: list[int], left: int) -> None:
        if len(prefix) == space.dim - 1:
            counts = prefix + [left]
            if all(np.isclose(np.dot(counts, qs[k]), v) for k, v in totals.items()):
                sols.append(tuple(counts))
            return
        for c in range(left + 1):
            rec(prefix + [c], left - c)

    rec([], n_sites)
    if len(sols) != 1:
        raise ValueError(f"totals {totals} do not fix the state counts uniquely ({len(sols)} solutions)")
    return sols[0]


def global_sums(space: LocalSpace, n_sites: int, totals: dict[str, float]) -> Constraint:
    """Fixed totals of local quantum numbers over all sites, e.g. ``{"Sz": 0}``."""
    linear = tuple(
        LinearConstraint(tuple(range(n_sites)), (1.0,) * n_sites, k, float(v)) for k, v in totals.items()
    )
    return Constraint("global_sums", linear, space, n_sites, sector=dict(totals))


def moves_from_terms(terms: Sequence[Term], space: LocalSpace) -> tuple[Move, ...]:
    """Constraint-preserving moves from off-diagonal terms (e.g. plaquette flips)."""
    out = []
    for _, ops in terms:
        factors = site_factors(ops, space)
        if not factors or all(np.count_nonzero(m - np.diag(np.diag(m))) == 0 for m in factors.values()):
            continue
        sites = tuple(sorted(factors))
        table = []
        for s in sites:
            tgt, amp = monomial(factors[s])
            table.append(tuple(int(t) if a != 0 else -1 for t, a in zip(tgt, amp)))
        out.append(Move(sites, tuple(table)))
    return tuple(out)
