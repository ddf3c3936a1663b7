"""Exact matrix product operators from symbolic terms, for any local dimension.

quimb's own operator builder handles qubits only; t-J sites have three states and carry
Jordan-Wigner strings, so the automaton is built here and handed to quimb as a
:class:`quimb.tensor.MatrixProductOperator` (sites in snake order, tensors ``W[l, r, out, in]``).

Construction: each term is a product of local matrices on the sites ``lo .. hi`` of its support
(identities and Jordan-Wigner strings included). On bonds left of the middle a partial term is
identified by its *prefix* (the matrices already placed), right of the middle by its *suffix*;
terms with equal prefixes or suffixes share one virtual state, and the coefficient sits where a
term crosses from prefix to suffix states. For two-body couplings this is the bond dimension of
TeNPy's MPO graph (two plus the number of distinct open operators) on either half.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .local_spaces import LocalSpace
from .terms import Term, site_factors


def _mpo(arrays: list[np.ndarray]):
    import quimb.tensor as qtn

    first = arrays[0][0]  # left boundary: state I0
    last = arrays[-1][:, 1]  # right boundary: state I1
    return qtn.MatrixProductOperator([first, *arrays[1:-1], last], shape="lrud")


def build_mpo(terms: Sequence[Term], space: LocalSpace, n_sites: int):
    """Exact MPO of ``sum(terms)`` on ``n_sites`` sites of ``space``."""
    if n_sites < 2:
        raise ValueError("an MPO needs at least two sites")
    d = space.dim
    eye = np.eye(d)
    mid = n_sites // 2
    # bond b (between site b and b+1) -> {state key: index}; 0 = I0 (not started), 1 = I1 (done)
    states: list[dict] = [{"I0": 0, "I1": 1} for _ in range(n_sites - 1)]
    # transitions[s][(left_key, right_key)] = matrix
    trans: list[dict] = [{} for _ in range(n_sites)]

    def add(s: int, lk, rk, m: np.ndarray, accumulate: bool) -> None:
        if s > 0 and lk not in states[s - 1]:
            states[s - 1][lk] = len(states[s - 1])
        if s < n_sites - 1 and rk not in states[s]:
            states[s][rk] = len(states[s])
        key = (lk, rk)
        if accumulate:
            trans[s][key] = trans[s].get(key, 0.0) + m
        else:
            trans[s][key] = m

    for coeff, ops in terms:
        factors = site_factors(ops, space)
        if not factors:
            add(0, "I0", "I1", coeff * eye, accumulate=True)
            continue
        lo, hi = min(factors), max(factors)
        mats = [factors.get(s, eye) for s in range(lo, hi + 1)]
        keys = [(s, m.tobytes()) for s, m in zip(range(lo, hi + 1), mats)]

        def bond_state(b: int):
            if b < lo:
                return "I0"
            if b >= hi:
                return "I1"
            if b < mid:
                return ("L",) + tuple(keys[: b - lo + 1])
            return ("R",) + tuple(keys[b - lo + 1 :])

        for s in range(lo, hi + 1):
            lk, rk = bond_state(s - 1), bond_state(s)
            m = mats[s - lo]
            left_open = lk == "I0" or lk[0] == "L"
            right_closed = rk == "I1" or rk[0] == "R"
            if left_open and right_closed:
                add(s, lk, rk, coeff * m, accumulate=True)
            else:
                add(s, lk, rk, m, accumulate=False)

    arrays = []
    for s in range(n_sites):
        dl = len(states[s - 1]) if s > 0 else 2
        dr = len(states[s]) if s < n_sites - 1 else 2
        w = np.zeros((dl, dr, d, d))
        w[0, 0] = eye
        w[1, 1] = eye
        left = states[s - 1] if s > 0 else {"I0": 0, "I1": 1}
        right = states[s] if s < n_sites - 1 else {"I0": 0, "I1": 1}
        for (lk, rk), m in trans[s].items():
            w[left[lk], right[rk]] += m
        arrays.append(w)
    return _mpo(arrays)


def sum_mpo(space: LocalSpace, n_sites: int, op: str, weights: Sequence[float], constant: float = 0.0):
    """Bond-dimension-2 MPO of ``sum_i weights[i] * op_i + constant`` (op must be bosonic)."""
    d = space.dim
    eye = np.eye(d)
    q = space.matrix(op)
    arrays = []
    for s in range(n_sites):
        w = np.zeros((2, 2, d, d))
        w[0, 0] = eye
        w[1, 1] = eye
        w[0, 1] = weights[s] * q + (constant * eye if s == 0 else 0.0)
        arrays.append(w)
    return _mpo(arrays)


def bond_dimensions(mpo) -> list[int]:
    return [mpo.bond_size(i, i + 1) for i in range(mpo.L - 1)]
