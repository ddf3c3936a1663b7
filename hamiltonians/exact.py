"""Exact diagonalisation in a directly enumerated sector, generic over symbolic terms.

Each term reduces to monomial local matrices (:func:`hamiltonians.terms.site_factors`), so its
action on a whole basis is a vectorised gather: new local states and amplitudes per site, then a
binary search of the new configurations in the sorted basis. Jordan-Wigner strings are part of
the local matrices, so fermionic signs need no special code here.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .local_spaces import LocalSpace
from .terms import Term, monomial, site_factors


def _codes(configs: np.ndarray, d: int) -> np.ndarray:
    """Order-preserving integer codes (site 0 most significant), as rows of uint64 words."""
    n = configs.shape[1]
    bits = max(1, int(np.ceil(np.log2(d))))
    per_word = 64 // bits
    words = []
    for start in range(0, n, per_word):
        block = configs[:, start : start + per_word].astype(np.uint64)
        w = np.zeros(len(configs), dtype=np.uint64)
        for k in range(block.shape[1]):
            w = (w << np.uint64(bits)) | block[:, k]
        # pad so blocks of unequal length compare consistently
        w = w << np.uint64(bits * (per_word - block.shape[1]))
        words.append(w)
    return np.stack(words, axis=1)


class BasisIndex:
    """Maps configurations to their row in a lexicographically sorted basis (or -1)."""

    def __init__(self, basis: np.ndarray, d: int):
        self.d = d
        codes = _codes(basis, d)
        if codes.shape[1] == 1:
            self._keys = codes[:, 0]
        else:
            self._keys = np.ascontiguousarray(codes).view(np.dtype((np.void, 8 * codes.shape[1])))[:, 0]
        order = np.argsort(self._keys, kind="stable")
        if not np.array_equal(order, np.arange(len(order))):
            # the enumerator yields sorted bases; keep a permutation for foreign ones
            self._order = order
            self._keys = self._keys[order]
        else:
            self._order = None

    def __call__(self, configs: np.ndarray) -> np.ndarray:
        codes = _codes(configs, self.d)
        keys = codes[:, 0] if codes.shape[1] == 1 else np.ascontiguousarray(codes).view(
            np.dtype((np.void, 8 * codes.shape[1]))
        )[:, 0]
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1)
        found = self._keys[pos] == keys
        idx = pos if self._order is None else self._order[pos]
        return np.where(found, idx, -1)


def _site_weights(n_sites: int, d: int) -> np.ndarray | None:
    """Per-site place values of the single-word code (``None`` if it needs several words)."""
    bits = max(1, int(np.ceil(np.log2(d))))
    if n_sites * bits > 62:
        return None
    return np.array([1 << (bits * (n_sites - 1 - s)) for s in range(n_sites)], dtype=np.int64)


class BasisAction:
    """Applies single terms to every configuration of a sorted basis.

    ``act(term)`` returns ``(cols, rows, amps)``: for each basis state ``cols[i]`` with a
    non-zero image, ``<rows[i]| term |cols[i]> = amps[i]`` (``rows[i] = -1`` when the image lies
    outside the basis). For diagonal terms ``rows`` is ``cols`` (the same array).
    """

    def __init__(self, basis: np.ndarray, space: LocalSpace, chunk: int = 1 << 20):
        self.basis = basis
        self.space = space
        self.chunk = chunk
        self.n_states = len(basis)
        self._columns = np.asfortranarray(basis)
        self._index = BasisIndex(basis, space.dim)
        self._place = _site_weights(basis.shape[1], space.dim)
        if self._place is not None:
            # codes change only on the sites a term touches: update them instead of recomputing
            self._codes = basis.astype(np.int64) @ self._place
            self._order = np.argsort(self._codes, kind="stable")
            self._sorted = self._codes[self._order]

    def act(self, term: Term) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coeff, ops = term
        factors = site_factors(ops, self.space)
        everything = np.arange(self.n_states)
        if not factors:
            return everything, everything, np.full(self.n_states, float(coeff))
        # Sites whose map annihilates some local states go first: after them only the few
        # surviving configurations see the rest (Jordan-Wigner strings, mostly).
        sites = sorted(factors, key=lambda s: np.all(monomial(factors[s])[1] != 0))
        maps = [monomial(factors[s]) for s in sites]
        offdiag = any(not np.array_equal(t, np.arange(self.space.dim)) for t, _ in maps)
        cols_out, rows_out, amps_out = [], [], []
        for start in range(0, self.n_states, self.chunk):
            alive = everything[start : start + self.chunk]
            amp = np.full(len(alive), coeff)
            new_local = []
            for s, (tgt, a) in zip(sites, maps):
                loc = self._columns[alive, s]
                amp = amp * a[loc]
                keep = amp != 0
                alive, amp, loc = alive[keep], amp[keep], loc[keep]
                new_local = [v[keep] for v in new_local] + [tgt[loc]]
            if not offdiag:
                rows = alive
            elif self._place is not None:
                delta = sum(
                    (nl.astype(np.int64) - self._columns[alive, s]) * self._place[s] for s, nl in zip(sites, new_local)
                )
                codes = self._codes[alive] + delta
                pos = np.minimum(np.searchsorted(self._sorted, codes), self.n_states - 1)
                rows = np.where(self._sorted[pos] == codes, self._order[pos], -1)
            else:
                y = self.basis[alive].copy()
                y[:, sites] = np.stack(new_local, axis=1)
                rows = self._index(y)
            cols_out.append(alive)
            rows_out.append(rows)
            amps_out.append(amp)
        cols = np.concatenate(cols_out)
        rows = cols if not offdiag else np.concatenate(rows_out)
        return cols, rows, np.concatenate(amps_out)

    def expectation(self, term: Term, vector: np.ndarray) -> complex:
        """``<v| term |v>`` for a state given by its amplitudes in the basis; for a 2D array, the
        mean of ``<v_i| term |v_i>`` over its columns (``Tr(P term) / g`` for orthonormal ones)."""
        cols, rows, amps = self.act(term)
        inside = rows >= 0
        v = vector if vector.ndim == 2 else vector[:, None]
        terms = np.conj(v[rows[inside]]) * amps[inside, None] * v[cols[inside]]
        return complex(np.sum(terms) / v.shape[1])


def sparse_hamiltonian(
    terms: Sequence[Term], space: LocalSpace, basis: np.ndarray, chunk: int = 1 << 20
) -> sp.csr_matrix:
    """CSR matrix ``<b|H|a>`` of the terms in the given basis (rows of local indices).

    Connections leaving the basis raise ``ValueError``: the terms must conserve the sector.
    """
    action = BasisAction(basis, space, chunk)
    n = len(basis)
    diag = np.zeros(n)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [diag]
    for term in terms:
        c, r, a = action.act(term)
        if r is c:
            diag[c] += a  # distinct, sorted states: no repeated indices
            continue
        if np.any(r < 0):
            raise ValueError(
                f"term {term[0]} * {term[1]} connects the sector to states outside it; "
                "the Hamiltonian must conserve the constraint"
            )
        rows.append(r)
        cols.append(c)
        vals.append(a)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def lowest_eigenvalues(h: sp.spmatrix, k: int = 1, tol: float = 1e-12) -> np.ndarray:
    """The ``k`` lowest eigenvalues of a real symmetric sparse matrix."""
    n = h.shape[0]
    if n <= 2000:
        return np.linalg.eigvalsh(h.toarray())[:k]
    vals = spla.eigsh(h, k=k, which="SA", tol=tol, return_eigenvectors=False)
    return np.sort(vals)


def ground_state(h: sp.spmatrix, tol: float = 1e-12) -> tuple[float, np.ndarray]:
    """Lowest eigenvalue and its normalised eigenvector."""
    n = h.shape[0]
    if n <= 2000:
        w, v = np.linalg.eigh(h.toarray())
        return float(w[0]), v[:, 0]
    w, v = spla.eigsh(h, k=1, which="SA", tol=tol)
    return float(w[0]), v[:, 0]


def ground_manifold(
    h: sp.spmatrix,
    tol: float = 1e-12,
    degeneracy_tol: float = 1e-8,
    max_degeneracy: int = 64,
    dense_max: int = 2000,
) -> tuple[float, np.ndarray]:
    """Lowest eigenvalue and an orthonormal basis of its whole eigenspace, as columns.

    Finite clusters are often degenerate (a doped torus: the hole's momenta; a gauge theory on
    a torus: its topological sectors), and any single eigenvector of such a manifold is an
    arbitrary choice of the solver. Quantities of "the" ground state are then those of the
    projector ``P0 / g``. Levels within ``degeneracy_tol * max(1, |E0|)`` of the lowest count
    as degenerate.

    Dense diagonalisation up to ``dense_max`` states. Above, Lanczos: it can return fewer copies
    of a degenerate level than there are (on the 4x4 t-J torus with one hole, 4 of the 6 with
    eight wanted levels, 5 with twelve), so the manifold found is completed by deflation: the lowest level of
    ``H + s V V^dag`` (``V`` the vectors so far, shifted out of the way) is added while it
    still lies in the manifold. ``ValueError`` beyond ``max_degeneracy``.
    """
    n = h.shape[0]
    if n <= dense_max:
        w, v = np.linalg.eigh(h.toarray())
        inside = w - w[0] <= degeneracy_tol * max(1.0, abs(w[0]))
        return float(w[0]), v[:, inside]
    w, v = spla.eigsh(h, k=min(8, n - 1), which="SA", tol=tol)
    e0 = float(w.min())
    window = degeneracy_tol * max(1.0, abs(e0))
    ground = v[:, w - e0 <= window]
    shift = 1.0 + abs(e0)
    while True:
        if ground.shape[1] > max_degeneracy:
            raise ValueError(f"ground-state degeneracy above {max_degeneracy}: raise max_degeneracy or check the sector")
        g = ground

        def deflated(x: np.ndarray, g: np.ndarray = g) -> np.ndarray:
            return h @ x + shift * (g @ (g.conj().T @ x))

        op = spla.LinearOperator(h.shape, matvec=deflated, dtype=h.dtype)
        w1, v1 = spla.eigsh(op, k=1, which="SA", tol=tol)
        if w1[0] - e0 > window:
            return e0, ground
        # orthogonalise against the manifold so far (Lanczos leaves ~tol overlaps)
        x = v1[:, 0] - ground @ (ground.conj().T @ v1[:, 0])
        ground = np.column_stack([ground, x / np.linalg.norm(x)])
