"""Informationally complete POVMs: qubit density matrices as outcome distributions.

A single-qubit POVM has four positive elements ``M^a`` with ``sum_a M^a = 1``; on ``n`` qubits
``M^{a_1...a_n} = M^{a_1} kron ... kron M^{a_n}`` and ``P(a) = tr(rho M^a)``. With the overlap
matrix ``T_ab = tr(M^a M^b)`` (invertible: informationally complete) and the dual frame
``N^a = sum_b (T^-1)_ab M^b``, ``rho = sum_a P(a) N^{a_1} kron ... kron N^{a_n}`` and
``tr(rho O) = sum_a P(a) tr(N^a O)``. The Lindblad equation becomes linear in ``P``:
``dP(b)/dt = sum_a A_ba P(a)`` with ``A_ba = tr(M^b L[N^a])``, a sum of local operators on
outcome strings, one per Hamiltonian support and per jump operator (Carrasquilla et al.,
Nat. Mach. Intell. 1, 155 (2019); Luo et al., PRL 128, 090501 (2022)).

Conventions: qubit basis index 0 = up = ``sigma^z = +1`` (``|0>``), as in
:data:`~hamiltonians.local_spaces.SPIN_HALF`. Outcome strings are in snake order, site 0 most
significant in flat arrays (``P.reshape((4,) * n)[a_0, ..., a_{n-1}]``), like the basis of
:mod:`hamiltonians.exact`. Density matrices and superoperators follow
:mod:`hamiltonians.lindblad` (row-major vectorisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from .local_spaces import LocalSpace
from .problem import Problem
from .terms import site_factors

_PAULI = {
    "x": np.array([[0, 1], [1, 0]], dtype=complex),
    "y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "z": np.array([[1, 0], [0, -1]], dtype=complex),
}


@dataclass(frozen=True, eq=False)
class POVM:
    """A single-qubit informationally complete POVM.

    Args:
        name: ``"tetrahedral"`` or ``"pauli4"``.
        elements: ``(4, 2, 2)`` complex array, ``elements[a] = M^a`` in the basis (up, down).
    """

    name: str
    elements: np.ndarray

    def __post_init__(self):
        m = np.asarray(self.elements, dtype=complex)
        if not np.allclose(m.sum(axis=0), np.eye(2), atol=1e-12):
            raise ValueError(f"POVM {self.name!r}: elements do not sum to the identity")
        if any(np.linalg.eigvalsh(e).min() < -1e-12 for e in m):
            raise ValueError(f"POVM {self.name!r}: an element is not positive semi-definite")
        if abs(np.linalg.det(np.einsum("aij,bji->ab", m, m))) < 1e-12:
            raise ValueError(f"POVM {self.name!r} is not informationally complete (singular overlap)")

    @property
    def n_outcomes(self) -> int:
        return len(self.elements)

    @cached_property
    def overlap(self) -> np.ndarray:
        """``T_ab = tr(M^a M^b)`` (real symmetric)."""
        return np.einsum("aij,bji->ab", self.elements, self.elements).real

    @cached_property
    def dual(self) -> np.ndarray:
        """The dual frame ``N^a = sum_b (T^-1)_ab M^b``, ``(4, 2, 2)``: ``rho = sum_a P(a) N^a``."""
        return np.einsum("ab,bij->aij", np.linalg.inv(self.overlap), self.elements)


def _tetrahedral() -> POVM:
    # M^a = (1 + s_a . sigma) / 4 with s_a the vertices of a regular tetrahedron, s_1 = +z
    r2, r3 = np.sqrt(2.0), np.sqrt(3.0)
    s = np.array([[0, 0, 1], [2 * r2 / 3, 0, -1 / 3], [-r2 / 3, r2 / r3, -1 / 3], [-r2 / 3, -r2 / r3, -1 / 3]])
    elements = np.array([(np.eye(2) + v[0] * _PAULI["x"] + v[1] * _PAULI["y"] + v[2] * _PAULI["z"]) / 4 for v in s])
    return POVM("tetrahedral", elements)


def _pauli4() -> POVM:
    # M^1..3 = |0><0|/3, |+><+|/3, |r><r|/3 (sigma^z, sigma^x, sigma^y = +1), M^4 the rest
    kets = [np.array([1, 0]), np.array([1, 1]) / np.sqrt(2), np.array([1, 1j]) / np.sqrt(2)]
    first = [np.outer(k, k.conj()) / 3 for k in kets]
    return POVM("pauli4", np.array(first + [np.eye(2) - sum(first)], dtype=complex))


TETRAHEDRAL = _tetrahedral()
"""``M^a = (1 + s_a . sigma)/4``, ``s_1 = (0, 0, 1)``, ``s_2 = (2 sqrt2/3, 0, -1/3)``,
``s_3 = (-sqrt2/3, sqrt(2/3), -1/3)``, ``s_4 = (-sqrt2/3, -sqrt(2/3), -1/3)``."""

PAULI4 = _pauli4()
"""``M^1 = |0><0|/3``, ``M^2 = |+><+|/3``, ``M^3 = |r><r|/3`` (``|r> = (|0> + i|1>)/sqrt2``),
``M^4 = 1 - M^1 - M^2 - M^3`` (= ``(|1><1| + |-><-| + |l><l|)/3``)."""

POVMS = {"tetrahedral": TETRAHEDRAL, "pauli4": PAULI4}


def get_povm(povm: str | POVM) -> POVM:
    """A POVM by name (``"tetrahedral"``, ``"pauli4"``) or itself."""
    if isinstance(povm, POVM):
        return povm
    if povm not in POVMS:
        raise ValueError(f"unknown POVM {povm!r}; known: {', '.join(POVMS)}")
    return POVMS[povm]


def _n_qubits(dim: int) -> int:
    n = int(round(np.log2(dim)))
    if 2**n != dim:
        raise ValueError(f"dimension {dim} is not a power of 2 (qubits only)")
    return n


def _frame_einsum(n: int, forward: bool) -> str:
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if 3 * n > len(letters):
        raise ValueError(f"{n} qubits is too many for a dense POVM map")
    i, j, a = letters[:n], letters[n : 2 * n], letters[2 * n : 3 * n]
    frames = ",".join(f"{a[s]}{j[s]}{i[s]}" if forward else f"{a[s]}{i[s]}{j[s]}" for s in range(n))
    return f"{i}{j},{frames}->{a}" if forward else f"{a},{frames}->{i}{j}"


def probabilities(rho: np.ndarray, povm: str | POVM = "tetrahedral") -> np.ndarray:
    """``P(a) = tr(rho M^a)`` for every outcome string, flat ``(4^n,)``, site 0 most significant
    (real: the imaginary parts of ``tr(rho M^a)`` vanish for Hermitian ``rho``)."""
    m = get_povm(povm).elements
    n = _n_qubits(rho.shape[0])
    # tr(rho M) = sum_ij rho_ij M_ji, site by site
    p = np.einsum(_frame_einsum(n, True), rho.reshape((2,) * 2 * n), *([m] * n), optimize="greedy")
    return p.reshape(-1).real


def density_matrix(p: np.ndarray, povm: str | POVM = "tetrahedral") -> np.ndarray:
    """``rho = sum_a P(a) N^{a_1} kron ... kron N^{a_n}`` from a flat ``(4^n,)`` distribution."""
    dual = get_povm(povm).dual
    n = _n_qubits(int(round(np.sqrt(len(p)))))
    rho = np.einsum(_frame_einsum(n, False), np.asarray(p).reshape((4,) * n), *([dual] * n), optimize="greedy")
    return rho.reshape(2**n, 2**n)


# ------------------------------------------------------------------ operators on outcomes
@dataclass(frozen=True)
class OutcomeOperator:
    """A linear map on distributions over outcome strings, ``sum_t A_t`` with ``A_t`` acting on
    the outcomes of ``sites_t`` (identity elsewhere).

    Attributes:
        n_sites: length of the outcome strings.
        terms: ``(sites, A)`` with ``sites`` increasing and ``A`` a real ``(4^k, 4^k)`` matrix,
            ``A[b, a]``: new outcomes ``b`` from old ``a``, first site most significant.
    """

    n_sites: int
    terms: tuple[tuple[tuple[int, ...], np.ndarray], ...]

    def apply(self, p: np.ndarray) -> np.ndarray:
        """``A p`` for a dense flat ``(4^n,)`` vector (small ``n``)."""
        n = self.n_sites
        pt = np.asarray(p).reshape((4,) * n)
        out = np.zeros_like(pt)
        for sites, a in self.terms:
            k = len(sites)
            res = np.tensordot(a.reshape((4,) * 2 * k), pt, axes=(list(range(k, 2 * k)), list(sites)))
            out += np.moveaxis(res, list(range(k)), list(sites))
        return out.reshape(-1)

    def connections(self, outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For strings ``b`` (``(B, n_sites)``), every ``a`` with ``(A P)(b) = sum_a A_ba P(a)``:
        ``(a, A_ba)`` of shapes ``(B, K, n_sites)`` and ``(B, K)``, ``K = sum_t 4^k_t`` (zero
        elements kept, so ``K`` is fixed), the form sample-based estimators of ``A P / P`` need."""
        b = np.asarray(outcomes)
        conns, mels = [], []
        for sites, a in self.terms:
            k = len(sites)
            local = np.stack(np.unravel_index(np.arange(4**k), (4,) * k), axis=-1)  # (4^k, k)
            row = np.ravel_multi_index(tuple(b[:, s] for s in sites), (4,) * k)  # b on the term's sites
            x = np.repeat(b[:, None, :], 4**k, axis=1)
            x[:, :, list(sites)] = local[None]
            conns.append(x)
            mels.append(a[row])
        return np.concatenate(conns, axis=1), np.concatenate(mels, axis=1)


@dataclass(frozen=True)
class OutcomeObservable:
    """``Q_O(a) = tr(N^a O)`` for ``O = sum_t c_t prod_s O_{t,s}``, so ``<O> = sum_a P(a) Q_O(a)``:
    a diagonal function of outcome strings, one factor per site of each term.

    Attributes:
        terms: ``(coefficient, sites, vectors)``, ``vectors[k][a] = tr(N^a O_{t, sites[k]})``.
    """

    terms: tuple[tuple[complex, tuple[int, ...], np.ndarray], ...]

    def local_values(self, outcomes: np.ndarray) -> np.ndarray:
        """``Q_O`` of outcome strings ``(..., n_sites)`` (integers 0..3): complex ``(...)``."""
        x = np.asarray(outcomes)
        out = np.zeros(x.shape[:-1], dtype=complex)
        for c, sites, vecs in self.terms:
            val = np.full(x.shape[:-1], complex(c))
            for s, v in zip(sites, vecs):
                val = val * v[x[..., s]]
            out += val
        return out

    def expectation(self, p: np.ndarray) -> complex:
        """``sum_a P(a) Q_O(a)`` for a dense flat ``(4^n,)`` distribution (small ``n``)."""
        n = _n_qubits(int(round(np.sqrt(len(p)))))
        pt = np.asarray(p).reshape((4,) * n)
        total = 0.0j
        for c, sites, vecs in self.terms:
            marginal = pt.sum(axis=tuple(s for s in range(n) if s not in sites)) if len(sites) < n else pt
            for v in vecs:
                marginal = np.tensordot(v, marginal, axes=(0, 0))
            total += complex(c) * complex(marginal)
        return total


def _check_qubits(space: LocalSpace) -> None:
    if space.dim != 2 or space.fermionic:
        raise ValueError(f"POVMs here are for qubits; local space {space.name!r} has dimension {space.dim}")


def _local_matrix(terms, space: LocalSpace, sites: tuple[int, ...]) -> np.ndarray:
    """``sum_t c_t prod ops`` as a ``(2^k, 2^k)`` matrix on ``sites`` (first most significant)."""
    out = np.zeros((2 ** len(sites),) * 2, dtype=complex)
    for c, ops in terms:
        f = site_factors(ops, space)
        m = np.ones((1, 1))
        for s in sites:
            m = np.kron(m, f.get(s, np.eye(2)))
        out += complex(c) * m
    return out


def observable(terms, space: LocalSpace, povm: str | POVM = "tetrahedral") -> OutcomeObservable:
    """``O = sum_t c_t prod ops`` (registry terms) as :class:`OutcomeObservable`."""
    _check_qubits(space)
    dual = get_povm(povm).dual
    out = []
    for c, ops in terms:
        f = site_factors(ops, space)
        sites = tuple(sorted(f))
        # tr(N^a O_s) = sum_ij N^a_ij (O_s)_ji
        vecs = np.array([np.einsum("aij,ji->a", dual, f[s]) for s in sites]).reshape(len(sites), 4)
        out.append((complex(c), sites, vecs))
    return OutcomeObservable(tuple(out))


def _superoperator_to_outcomes(s: np.ndarray, povm: POVM, k: int) -> np.ndarray:
    """``A_ba = tr(M^b S[N^a])`` for a superoperator on ``k`` qubits (row-major vec)."""
    m, dual = povm.elements, povm.dual
    mk, nk = np.ones((1, 1, 1)), np.ones((1, 1, 1))
    for _ in range(k):
        mk = np.einsum("aij,bkl->abikjl", mk, m).reshape(mk.shape[0] * 4, mk.shape[1] * 2, -1)
        nk = np.einsum("aij,bkl->abikjl", nk, dual).reshape(nk.shape[0] * 4, nk.shape[1] * 2, -1)
    # tr(M^b X) = vec(M^b^T) . vec(X)
    rows = np.transpose(mk, (0, 2, 1)).reshape(len(mk), -1)
    cols = nk.reshape(len(nk), -1).T
    a = rows @ s @ cols
    # L maps Hermitian to Hermitian and M, N are Hermitian, so A is real
    if np.abs(a.imag).max() > 1e-10 * max(1.0, np.abs(a).max()):
        raise ValueError("superoperator does not preserve Hermiticity; its POVM form is not real")
    return a.real


def liouvillian(problem: Problem, povm: str | POVM = "tetrahedral") -> OutcomeOperator:
    """The problem's Liouvillian on outcome distributions, ``dP/dt = A P``: one local term per
    support of Hamiltonian terms (``-i [h, .]``) and per jump operator (its dissipator), terms on
    the same sites summed."""
    _check_qubits(problem.local_space)
    pv = get_povm(povm)
    space = problem.local_space
    by_support: dict[tuple[int, ...], list] = {}
    for c, ops in problem.terms:
        sites = tuple(sorted(site_factors(ops, space)))
        if sites:  # constants commute with everything
            by_support.setdefault(sites, []).append((c, ops))
    supers: dict[tuple[int, ...], np.ndarray] = {}
    for sites, terms in by_support.items():
        h = _local_matrix(terms, space, sites)
        eye = np.eye(len(h))
        supers[sites] = -1j * (np.kron(h, eye) - np.kron(eye, h.T))
    for jump in problem.jumps:
        sites = tuple(sorted({s for _, ops in jump for s in site_factors(ops, space)}))
        lk = _local_matrix(jump, space, sites)
        ldl = lk.conj().T @ lk
        eye = np.eye(len(lk))
        d = np.kron(lk, lk.conj()) - 0.5 * np.kron(ldl, eye) - 0.5 * np.kron(eye, ldl.T)
        supers[sites] = supers.get(sites, 0) + d
    terms = tuple((sites, _superoperator_to_outcomes(s, pv, len(sites))) for sites, s in sorted(supers.items()))
    return OutcomeOperator(problem.n_sites, terms)


# ------------------------------------------------------------------ the outcome alphabet
OUTCOMES = LocalSpace(
    name="povm_outcome",
    labels=("M1", "M2", "M3", "M4"),
    ops={},
    quantum_numbers={},
    parity=(0, 0, 0, 0),
    netket_values=(0.0, 1.0, 2.0, 3.0),
    description="outcome of a single-qubit 4-outcome POVM: index a = element M^{a+1}",
)
"""The 4-letter alphabet of outcome strings, as a local space for the autoregressive models
(:mod:`nqs.models.povm`): no operators, no constraint; NetKet represents it as
``Fock(n_max=3)``, value ``a`` for outcome index ``a``."""
