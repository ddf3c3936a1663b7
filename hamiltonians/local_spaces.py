"""Local Hilbert spaces: the basis of one site (or link) and the matrices of its operators.

Every operator named in a model's terms is a matrix in the basis of its local space. All
matrices here are *monomial* (at most one non-zero per column), which the exact-diagonalisation
engine relies on. Fermionic local spaces mark parity-odd operators; the Jordan-Wigner strings
that make them anticommute across sites are added by :mod:`hamiltonians.terms`, in snake order.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np


@dataclass(frozen=True, eq=False)
class LocalSpace:
    """One site's basis and operators.

    Args:
        name: identifier stored in archives.
        labels: names of the basis states, in basis order.
        ops: operator name -> matrix ``M[out, in]`` in this basis.
        quantum_numbers: name -> value of a conserved local charge for each basis state
            (used by constraints; each is also available as a diagonal operator).
        parity: fermion parity of each basis state (all zero for bosonic spaces).
        odd_ops: names of parity-odd (fermionic) operators.
        netket_values: for spin-like spaces, the NetKet ``Spin`` local value that represents each
            basis state (``None`` for fermionic spaces, translated through modes instead).
        modes: for fermionic spaces, each operator as a polynomial in the site's fermion modes,
            ``op -> ((coeff, ((dagger, sz), ...)), ...)`` with ``sz = +1`` (up) or ``-1`` (down);
            the projection on the local space is written out on both sides, so the expansion
            equals ``P op P`` with ``P`` the projector on the physical local states.
    """

    name: str
    labels: tuple[str, ...]
    ops: Mapping[str, np.ndarray]
    quantum_numbers: Mapping[str, np.ndarray]
    parity: tuple[int, ...]
    odd_ops: frozenset[str] = frozenset()
    netket_values: tuple[float, ...] | None = None
    modes: Mapping[str, tuple] | None = None
    description: str = ""

    @property
    def dim(self) -> int:
        return len(self.labels)

    @property
    def fermionic(self) -> bool:
        return any(self.parity)

    def matrix(self, op: str) -> np.ndarray:
        """Matrix of ``op``; quantum numbers double as diagonal operators."""
        if op in self.ops:
            return self.ops[op]
        if op in self.quantum_numbers:
            return np.diag(self.quantum_numbers[op]).astype(float)
        if op == "Id":
            return np.eye(self.dim)
        if op == "F":
            return np.diag([(-1.0) ** p for p in self.parity])
        if op.startswith("(-1)^") and op[5:] in self.quantum_numbers:
            return np.diag(np.cos(np.pi * np.asarray(self.quantum_numbers[op[5:]], dtype=float)))
        if op in self._ket_bras:
            # |a><b| by basis index: projectors and transitions of any local space (penalties of
            # table constraints, and models written in a label basis such as anyon fusion paths)
            a, b = self._ket_bras[op]
            m = np.zeros((self.dim, self.dim))
            m[a, b] = 1.0
            return m
        raise KeyError(
            f"operator {op!r} is not defined on the local space {self.name!r}; "
            f"known: {sorted(self.op_names)}"
        )

    @property
    def op_names(self) -> set[str]:
        parities = {f"(-1)^{q}" for q in self.quantum_numbers}
        return set(self.ops) | set(self.quantum_numbers) | parities | {"Id", "F"} | set(self._ket_bras)

    @property
    def _ket_bras(self) -> dict[str, tuple[int, int]]:
        return {ket_bra(a, b): (a, b) for a in range(self.dim) for b in range(self.dim)}

    def is_odd(self, op: str) -> bool:
        """Whether ``op`` is fermion-odd (carries a Jordan-Wigner string)."""
        return op in self.odd_ops


def ket_bra(a: int, b: int) -> str:
    """Name of the operator ``|a><b|`` (basis indices), defined on every local space."""
    return f"|{a}><{b}|"


def _frozen(d: dict) -> Mapping:
    for v in d.values():
        if isinstance(v, np.ndarray):
            v.flags.writeable = False
    return MappingProxyType(d)


def _spin_half_ops() -> dict[str, np.ndarray]:
    # basis: index 0 = up (Sz = +1/2), index 1 = down (Sz = -1/2)
    sz = np.array([[0.5, 0.0], [0.0, -0.5]])
    sp = np.array([[0.0, 1.0], [0.0, 0.0]])  # |up><down|
    sm = sp.T.copy()
    sx = 0.5 * (sp + sm)
    return {
        "Sz": sz,
        "Sp": sp,
        "Sm": sm,
        "Sx": sx,
        "X": 2 * sx,
        "Z": 2 * sz,
        # iY = Z X is real; -i Sy = (Sm - Sp)/2 ... only real operators are kept here.
    }


SPIN_HALF = LocalSpace(
    name="spin_half",
    labels=("up", "down"),
    ops=_frozen(_spin_half_ops()),
    quantum_numbers=_frozen({"Sz": np.array([0.5, -0.5])}),
    parity=(0, 0),
    netket_values=(1.0, -1.0),
    description="spin 1/2 in the S^z basis: index 0 = up (S^z=+1/2), 1 = down",
)
"""Spin 1/2 in the ``S^z`` basis (``S = sigma/2``); used by spin models and U(1) links."""


Z2_LINK = LocalSpace(
    name="z2_link",
    labels=("e0", "e1"),
    ops=_frozen(
        {
            # electric basis: sigma^x is diagonal, sigma^z flips the electric string
            "X": np.array([[1.0, 0.0], [0.0, -1.0]]),
            "Z": np.array([[0.0, 1.0], [1.0, 0.0]]),
        }
    ),
    quantum_numbers=_frozen({"e": np.array([0.0, 1.0])}),
    parity=(0, 0),
    netket_values=(1.0, -1.0),
    description=(
        "Z2 gauge link in the electric (sigma^x) basis: index 0 = no string (sigma^x=+1), "
        "index 1 = electric string (sigma^x=-1); the NetKet value is the sigma^x eigenvalue"
    ),
)
"""A Z2 link in the electric basis, where Gauss's law is a constraint on configurations."""


def _tj_site() -> LocalSpace:
    # basis: 0 = hole, 1 = up electron, 2 = down electron (double occupancy projected out)
    d = 3

    def e(i: int, j: int) -> np.ndarray:
        m = np.zeros((d, d))
        m[i, j] = 1.0
        return m

    ops = {
        "cdag_up": e(1, 0),
        "c_up": e(0, 1),
        "cdag_dn": e(2, 0),
        "c_dn": e(0, 2),
        "Sp": e(1, 2),
        "Sm": e(2, 1),
        "Sz": np.diag([0.0, 0.5, -0.5]),
        "n": np.diag([0.0, 1.0, 1.0]),
        "nh": np.diag([1.0, 0.0, 0.0]),
    }
    # Each operator in modes, projected on both sides: c^dag_s (1 - n_-s) and (1 - n_-s) c_s.
    up, dn = +1, -1
    modes = {
        "cdag_up": ((1.0, ((True, up),)), (-1.0, ((True, up), (True, dn), (False, dn)))),
        "c_up": ((1.0, ((False, up),)), (-1.0, ((True, dn), (False, dn), (False, up)))),
        "cdag_dn": ((1.0, ((True, dn),)), (-1.0, ((True, dn), (True, up), (False, up)))),
        "c_dn": ((1.0, ((False, dn),)), (-1.0, ((True, up), (False, up), (False, dn)))),
        "Sp": ((1.0, ((True, up), (False, dn))),),
        "Sm": ((1.0, ((True, dn), (False, up))),),
        "Sz": ((0.5, ((True, up), (False, up))), (-0.5, ((True, dn), (False, dn)))),
        "n": ((1.0, ((True, up), (False, up))), (1.0, ((True, dn), (False, dn)))),
        "n_up": ((1.0, ((True, up), (False, up))),),
        "n_dn": ((1.0, ((True, dn), (False, dn))),),
        "nh": (
            (1.0, ()),
            (-1.0, ((True, up), (False, up))),
            (-1.0, ((True, dn), (False, dn))),
        ),
        "Id": ((1.0, ()),),
    }
    return LocalSpace(
        name="tj_site",
        labels=("hole", "up", "down"),
        ops=_frozen(ops),
        quantum_numbers=_frozen({"n_up": np.array([0.0, 1.0, 0.0]), "n_dn": np.array([0.0, 0.0, 1.0])}),
        parity=(0, 1, 1),
        odd_ops=frozenset({"cdag_up", "c_up", "cdag_dn", "c_dn"}),
        modes=MappingProxyType(modes),
        description=(
            "t-J site without double occupancy: index 0 = hole, 1 = up, 2 = down electron; "
            "c^dag_s are the projected operators c^dag_s (1 - n_-s)"
        ),
    )


TJ_SITE = _tj_site()
"""A t-J site: hole, up or down electron (fermionic, no double occupancy)."""
