"""Symbolic Hamiltonian terms and their reduction to products of local matrices.

A term is ``(coefficient, ((op, site), ...))`` and stands for the operator product
``coefficient * op_1(site_1) op_2(site_2) ...`` (the rightmost factor acts first). An empty
operator tuple is the identity. Operator names refer to the problem's local space.

Fermionic operators follow the Jordan-Wigner convention in **snake order**: a parity-odd
operator on site ``s`` carries the string ``prod_{r < s} F_r`` with ``F = (-1)^n``. Because the
Jordan-Wigner representation is a tensor product, a whole term then reduces exactly to one local
matrix per site (:func:`site_factors`), which every backend consumes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Sequence

import numpy as np

from .local_spaces import LocalSpace

Op = tuple[str, int]
Term = tuple[float, tuple[Op, ...]]


def term(coeff: float, *ops: Op) -> Term:
    """Build a term, ``term(J, ("Sz", i), ("Sz", j))``."""
    return (float(coeff), tuple((str(o), int(s)) for o, s in ops))


def combine(terms: Iterable[Term], atol: float = 1e-14) -> tuple[Term, ...]:
    """Merge terms with identical operator strings and drop vanishing ones (order kept)."""
    acc: OrderedDict[tuple[Op, ...], float] = OrderedDict()
    for c, ops in terms:
        acc[ops] = acc.get(ops, 0.0) + c
    return tuple((c, ops) for ops, c in acc.items() if abs(c) > atol)


def check_terms(terms: Sequence[Term], space: LocalSpace, n_sites: int) -> None:
    """Raise ``ValueError`` for unknown operators or sites outside ``0 .. n_sites-1``."""
    names = space.op_names
    for c, ops in terms:
        for op, s in ops:
            if op not in names:
                raise ValueError(f"operator {op!r} is not defined on local space {space.name!r}")
            if not 0 <= s < n_sites:
                raise ValueError(f"term acts on site {s}, outside 0..{n_sites - 1}")


def site_factors(ops: tuple[Op, ...], space: LocalSpace) -> dict[int, np.ndarray]:
    """The operator product ``ops`` as one matrix per site (identity sites omitted).

    Jordan-Wigner strings are included, so the operator equals the tensor product of the
    returned matrices (identity elsewhere) in the snake-ordered product basis.
    """
    if not ops:
        return {}
    d = space.dim
    odd = [space.is_odd(op) for op, _ in ops]
    lo = 0 if any(odd) else min(s for _, s in ops)
    hi = max(s for _, s in ops)
    f = space.matrix("F")
    out: dict[int, np.ndarray] = {}
    for r in range(lo, hi + 1):
        m = np.eye(d)
        # Left-to-right operator product restricted to site r.
        for (op, s), is_odd in zip(ops, odd):
            if s == r:
                m = m @ space.matrix(op)
            elif is_odd and r < s:
                m = m @ f
        if not np.array_equal(m, np.eye(d)):
            out[r] = m
    return out


def monomial(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(target, amplitude)`` with ``m[target[j], j] = amplitude[j]`` (all other entries 0)."""
    d = m.shape[0]
    target = np.zeros(d, dtype=np.int64)
    amp = np.zeros(d)
    for j in range(d):
        nz = np.flatnonzero(m[:, j])
        if len(nz) > 1:
            raise ValueError("local operator is not monomial (several non-zeros in a column)")
        if len(nz) == 1:
            target[j] = nz[0]
            amp[j] = m[nz[0], j]
    return target, amp


def is_diagonal(factors: dict[int, np.ndarray]) -> bool:
    return all(np.count_nonzero(m - np.diag(np.diag(m))) == 0 for m in factors.values())


def identity_trace_fraction(terms: Sequence[Term], space: LocalSpace) -> float:
    """``Tr(H) / dim`` over the full product space of the local space (the infinite-temperature
    energy used by the V-score)."""
    total = 0.0
    for c, ops in terms:
        factors = site_factors(ops, space)
        total += c * float(np.prod([np.trace(m) / space.dim for m in factors.values()]))
    return total
