"""Exact Lindblad references for small open problems: Liouvillian, steady state, rho(t).

Conventions: density matrices are dense ``(D, D)`` arrays in the problem's :meth:`basis`
(lexicographic, site 0 most significant, local index 0 = up). Vectorisation is **row-major**,
``vec(rho)[i * D + j] = rho[i, j]`` (numpy's ``rho.reshape(-1)``), so
``vec(A rho B) = (A kron B^T) vec(rho)`` and

``L = -i (H kron 1 - 1 kron H^T) + sum_k [L_k kron L_k^* - (L_k^dag L_k kron 1) / 2
- (1 kron (L_k^dag L_k)^T) / 2]``,

the generator of ``d rho/dt = -i [H, rho] + sum_k (L_k rho L_k^dag - {L_k^dag L_k, rho}/2)``
(the convention of NetKet's ``LocalLiouvillian``, against which the tests check it).
The steady state is the null vector of ``L`` with unit trace (sparse LU up to 6 spins, above that
relaxation ``exp(L t) rho`` until ``||L vec(rho)||`` is at round-off);
``rho(t)`` comes from ``scipy.sparse.linalg.expm_multiply``. Sizes: ``D^2`` unknowns, so about
ten spins at most.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .exact import sparse_hamiltonian
from .local_spaces import LocalSpace
from .problem import Problem
from .terms import Term

DEFAULT_MAX_STATES = 1 << 10


def operator_matrix(terms: Sequence[tuple[complex, tuple]], space: LocalSpace, basis: np.ndarray) -> sp.csr_matrix:
    """Sparse complex matrix ``<b|O|a>`` of a sum of operator products (complex coefficients
    allowed) in ``basis``; ``ValueError`` if a term leaves the basis."""
    n = len(basis)
    out = sp.csr_matrix((n, n), dtype=complex)
    for coeff, ops in terms:
        out = out + complex(coeff) * sparse_hamiltonian([(1.0, ops)], space, basis)
    return out.tocsr()


def _basis(problem: Problem, max_states: int) -> np.ndarray:
    basis = problem.basis(max_states)
    if basis is None:
        raise ValueError(f"{problem.label}: more than {max_states} states; exact Lindblad references need fewer")
    return basis


def liouvillian(problem: Problem, max_states: int = DEFAULT_MAX_STATES) -> sp.csr_matrix:
    """The Liouvillian superoperator, ``(D^2, D^2)`` sparse, on row-major ``vec(rho)``.

    A closed problem (no jumps) gives ``-i [H, .]``. Cached per problem.
    """
    key = ("liouvillian", max_states)
    if key in problem._cache:
        return problem._cache[key]
    basis = _basis(problem, max_states)
    h = operator_matrix(problem.terms, problem.local_space, basis)
    eye = sp.identity(len(basis), dtype=complex, format="csr")
    out = -1j * (sp.kron(h, eye) - sp.kron(eye, h.T))
    for jump in problem.jumps:
        lk = operator_matrix(jump, problem.local_space, basis)
        ldl = (lk.conj().T @ lk).tocsr()
        out = out + sp.kron(lk, lk.conj()) - 0.5 * sp.kron(ldl, eye) - 0.5 * sp.kron(eye, ldl.T)
    out = out.tocsr()
    out.eliminate_zeros()
    problem._cache[key] = out
    return out


RELAX_T_MAX = 1e4
"""``steady_state(method="relax")`` gives up after this total time (units of ``1/gamma``)."""


def steady_state(problem: Problem, max_states: int = DEFAULT_MAX_STATES, method: str = "auto") -> np.ndarray:
    """The steady state ``rho_ss`` (``L rho_ss = 0``, trace 1), a ``(D, D)`` Hermitian array.

    ``method="lu"``: solve ``A vec(rho) = e_0`` with the row of ``L`` for ``rho[0, 0]``
    replaced by the trace; that row is redundant (``L`` preserves the trace) and the trace fixes
    the scale, so ``A`` is invertible exactly when the steady state is unique (``ValueError``
    otherwise). Its LU fill-in grows fast (7 spins: 5.5e7 entries), so ``"auto"`` uses it up to
    ``D^2 = 4^6`` and above that ``"relax"``: ``rho <- exp(L t) rho`` (``expm_multiply``) from the
    maximally mixed state over doubling times ``t = 1, 2, 4, ...`` until the residual is at
    round-off (``ValueError`` after :data:`RELAX_T_MAX`: a tiny Liouvillian gap). It finds the
    state the maximally mixed one relaxes to, which is the steady state when that is unique.
    ``"arnoldi"``: ARPACK's eigenvector of largest real part (can miss it). Every result is
    checked: ``ValueError`` if ``||L vec(rho)||`` is not at round-off level.
    """
    if method not in ("auto", "lu", "relax", "arnoldi"):
        raise ValueError(f"method must be 'auto', 'lu', 'relax' or 'arnoldi', got {method!r}")
    key = ("steady_state", max_states, method)
    if key in problem._cache:
        return problem._cache[key]
    lv = liouvillian(problem, max_states)
    d = int(round(np.sqrt(lv.shape[0])))
    tol = 1e-10 * max(1.0, abs(lv).max())
    if method == "auto":
        method = "lu" if d * d <= 4**6 else "relax"
    if method == "lu":
        trace_row = sp.csr_matrix((np.ones(d), (np.zeros(d, dtype=int), np.arange(d) * (d + 1))), shape=(1, d * d))
        a = sp.vstack([trace_row, lv[1:]]).tocsc()
        rhs = np.zeros(d * d, dtype=complex)
        rhs[0] = 1.0
        try:
            # minimum degree on A^T + A: several times less fill-in than the default COLAMD here
            x = spla.splu(a, permc_spec="MMD_AT_PLUS_A").solve(rhs)
        except RuntimeError as err:  # SuperLU: "Factor is exactly singular"
            raise ValueError(f"{problem.label}: the steady state is not unique ({err})") from err
    elif method == "relax":
        x = (np.eye(d, dtype=complex) / d).reshape(-1)
        t, total = 1.0, 0.0
        # doubling: a slow mode needs time ~ 1/gap, the round-off floor a few more doublings
        while np.linalg.norm(lv @ x) > 0.1 * tol:
            if total >= RELAX_T_MAX:
                raise ValueError(
                    f"{problem.label}: not relaxed to a steady state by t = {total:g} (residual "
                    f"{np.linalg.norm(lv @ x):.2e}): the Liouvillian gap is tiny; try method = 'lu' (memory ~ 4^n)"
                )
            x = spla.expm_multiply(lv * t, x)
            x = x / x.reshape(d, d).trace()
            total += t
            t *= 2.0
    else:
        _, v = spla.eigs(lv, k=1, which="LR", tol=1e-13, ncv=min(40, d * d - 2), maxiter=100_000)
        x = v[:, 0] / v[:, 0].reshape(d, d).trace()
    residual = np.linalg.norm(lv @ x)
    if not np.isfinite(residual) or residual > 100 * tol:
        raise ValueError(f"{problem.label}: no steady state found by {method!r} (residual {residual:.2e})")
    rho = x.reshape(d, d)
    rho = 0.5 * (rho + rho.conj().T)  # Hermitian up to round-off; make it exactly so
    problem._cache[key] = rho
    return rho


def evolve(problem: Problem, rho0: np.ndarray, times: Sequence[float], max_states: int = DEFAULT_MAX_STATES) -> np.ndarray:
    """``rho(t)`` for each of the increasing ``times`` (from ``rho(0) = rho0``), shape
    ``(len(times), D, D)``, by ``expm_multiply`` of the sparse Liouvillian between times."""
    lv = liouvillian(problem, max_states)
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or np.any(t < 0) or np.any(np.diff(t) < 0):
        raise ValueError("times must be a non-negative, non-decreasing 1D sequence")
    v = np.asarray(rho0, dtype=complex).reshape(-1)
    d = int(round(np.sqrt(lv.shape[0])))
    if v.shape[0] != lv.shape[0]:
        raise ValueError(f"rho0 must be ({d}, {d}), got {np.shape(rho0)}")
    out, now = [], 0.0
    for tk in t:
        if tk > now:
            v = spla.expm_multiply(lv * (tk - now), v)
            now = tk
        out.append(v.reshape(d, d))
    return np.stack(out)


def expectation(problem: Problem, rho: np.ndarray, terms: Sequence[tuple[complex, tuple]]) -> np.ndarray:
    """``tr(rho O)`` for ``O`` a sum of operator products (terms), for one ``(D, D)`` density
    matrix or a stack ``(..., D, D)``; complex (real for Hermitian ``O``)."""
    basis = _basis(problem, rho.shape[-1])
    o = operator_matrix(terms, problem.local_space, basis).toarray()
    # tr(rho O) = sum_ij rho_ij O_ji
    return np.einsum("...ij,ji->...", rho, o)


def product_state(problem: Problem, config: Sequence[int], max_states: int = DEFAULT_MAX_STATES) -> np.ndarray:
    """The pure density matrix ``|x><x|`` of one configuration (local indices, snake order)."""
    basis = _basis(problem, max_states)
    hit = np.flatnonzero(np.all(basis == np.asarray(config), axis=1))
    if len(hit) != 1:
        raise ValueError(f"configuration {list(config)} is not in the basis of {problem.label}")
    rho = np.zeros((len(basis), len(basis)), dtype=complex)
    rho[hit[0], hit[0]] = 1.0
    return rho


def to_netket(problem: Problem):
    """NetKet's ``LocalLiouvillian`` of an open spin-1/2 problem without constraint (for the
    neural density matrix); operators translated from the same terms."""
    import netket as nk

    from .netket_backend import _local_operator

    if problem.constraint.linear:
        raise ValueError(f"{problem.label}: NetKet Liouvillians are built on the unconstrained space only")
    if problem.local_space.netket_values is None:
        raise ValueError(f"{problem.label}: no NetKet Hilbert space for local space {problem.local_space.name!r}")
    hilbert = nk.hilbert.Spin(0.5, problem.n_sites)
    h = _local_operator(hilbert, problem.terms, problem.local_space)
    jumps = []
    for jump in problem.jumps:
        parts = [complex(c) * _local_operator(hilbert, [(1.0, ops)], problem.local_space) for c, ops in jump]
        jumps.append(sum(parts[1:], start=parts[0]))
    return nk.operator.LocalLiouvillian(h, jumps)
