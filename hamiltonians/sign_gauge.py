"""A local sign rule that makes a Hamiltonian stoquastic, found by linear algebra over GF(2).

A sign rule ``s(x) = (-1)^{sum_s b[s, x_s]}`` (bits ``b`` per site and local state) turns every
off-diagonal element ``H[x', x]`` into ``s(x') H[x', x] s(x)``. It is ``<= 0`` when the bits of
the sites the element changes satisfy ``sum_{s changed} (b[s, x'_s] + b[s, x_s]) = [H[x', x] > 0]``
(mod 2): one linear equation per off-diagonal element of every term. A solution is a sign
prior under which the ground state has positive amplitudes (Perron-Frobenius): the Marshall
sign of a bipartite antiferromagnet, and for anyon chains in the fusion-path basis the sign
``(-1)^{number of labels 1, 3/2}`` of the antiferromagnetic golden chain (each term changes one
label by one unit of fusion). Each term is checked alone (as :meth:`Problem.stoquastic`), a
sufficient condition.
"""

from __future__ import annotations

from itertools import product

import numpy as np


def _solve_gf2(rows: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """One solution of ``rows @ b = rhs`` over GF(2) (free bits zero), or ``None``."""
    a = np.concatenate([rows, rhs[:, None]], axis=1).astype(bool)
    n_vars = rows.shape[1]
    pivots = []
    r = 0
    for c in range(n_vars):
        hit = np.flatnonzero(a[r:, c])
        if not len(hit):
            continue
        p = r + hit[0]
        a[[r, p]] = a[[p, r]]
        others = np.flatnonzero(a[:, c])
        others = others[others != r]
        a[others] ^= a[r]
        pivots.append(c)
        r += 1
        if r == len(a):
            break
    if np.any(a[r:, -1]):
        return None  # 0 = 1: no sign rule
    b = np.zeros(n_vars, dtype=bool)
    for i, c in enumerate(pivots):
        b[c] = a[i, -1]
    return b


def stoquastic_gauge(problem) -> np.ndarray | None:
    """Phases ``(n_sites, local_dim)`` in ``{0, pi}`` under which ``problem`` is stoquastic
    (:meth:`~hamiltonians.Problem.stoquastic`), or ``None`` if it already is, if it is
    fermionic, if an element is complex, or if no local sign rule exists (frustration).
    Cached per problem."""
    key = "stoquastic_gauge"
    if key in problem._cache:
        return problem._cache[key]
    problem._cache[key] = out = _find(problem)
    return out


def _find(problem) -> np.ndarray | None:
    from .terms import is_diagonal, site_factors

    space = problem.local_space
    if space.fermionic or problem.stoquastic():
        return None
    d, n = space.dim, problem.n_sites
    equations: set[tuple[tuple[int, ...], bool]] = set()
    for c, ops in problem.terms:
        factors = site_factors(ops, space)
        if is_diagonal(factors):
            continue
        per_site = []
        for s, m in factors.items():
            rows, cols = np.nonzero(m)
            per_site.append([(s, int(r), int(q), m[r, q]) for r, q in zip(rows, cols)])
        for combo in product(*per_site):
            changed = [(s, r, q) for s, r, q, _ in combo if r != q]
            if not changed:
                continue
            value = c * np.prod([v for *_, v in combo])
            if abs(np.imag(value)) > 1e-12:
                return None
            if abs(value) < 1e-12:
                continue
            bits: set[int] = set()
            for s, r, q in changed:
                bits ^= {s * d + r}
                bits ^= {s * d + q}
            equations.add((tuple(sorted(bits)), bool(np.real(value) > 0)))
    if not equations:
        return None
    rows = np.zeros((len(equations), n * d), dtype=bool)
    rhs = np.zeros(len(equations), dtype=bool)
    for i, (bits, positive) in enumerate(sorted(equations)):
        rows[i, list(bits)] = True
        rhs[i] = positive
    b = _solve_gf2(rows, rhs)
    if b is None:
        return None
    phases = np.pi * b.reshape(n, d).astype(float)
    return phases if problem.stoquastic(phases) else None
