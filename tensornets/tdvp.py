"""Time-dependent variational principle (TDVP) on a matrix product state, in plain numpy.

``|psi(t + dt)> = exp(-i H dt) |psi(t)>`` (hbar = 1) projected on the MPS manifold by the
symmetric (second-order) splitting of Haegeman et al., PRB 94, 165116 (2016): a left-to-right
sweep of half steps ``dt/2`` followed by a right-to-left one. The two-site scheme evolves each
pair of sites forward and the site between two pairs backward, then splits the pair by an SVD
truncated to ``max_bond`` (the bond dimension grows where the state needs it); the one-site
scheme evolves single sites forward and bond matrices backward at fixed bond dimension, with no
truncation. Local exponentials act on the effective Hamiltonians by a Lanczos (Krylov) step,
never forming them.

Conventions: site tensors ``A[i]`` are ``(left, physical, right)``; MPO tensors ``W[i]`` are
``(left, right, out, in)`` (quimb's ``"lrud"``, ``<out| W |in>``); environments are
``(bra, mpo, ket)``. After :meth:`TDVP.step` the orthogonality centre is site 0 and sites
``1 .. N-1`` are right-canonical.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg as sla


def expm_krylov(matvec: Callable[[np.ndarray], np.ndarray], v: np.ndarray, tau: complex,
                tol: float = 1e-12, max_dim: int = 60) -> np.ndarray:
    """``exp(tau H) v`` for a Hermitian ``H`` given by ``matvec``, by Lanczos with full
    reorthogonalisation (``v`` of any shape; the result has its shape).

    Converged when the a-posteriori estimate ``|beta_m (exp(tau T_m))_{m,0}| * |v|`` of the last
    Krylov coefficient drops below ``tol * |v|``, or the Krylov space is invariant."""
    shape = v.shape
    norm = np.linalg.norm(v)
    if norm == 0.0:
        return np.zeros_like(v, dtype=complex)
    n = v.size
    max_dim = min(max_dim, n)
    basis = np.zeros((max_dim, n), dtype=complex)
    basis[0] = v.reshape(-1) / norm
    alpha, beta = [], []
    for j in range(max_dim):
        w = matvec(basis[j].reshape(shape)).reshape(-1).astype(complex)
        a = float(np.real(np.vdot(basis[j], w)))
        alpha.append(a)
        # two passes of Gram-Schmidt keep the small Krylov basis orthonormal to round-off
        for _ in range(2):
            w -= basis[: j + 1].T @ (basis[: j + 1].conj() @ w)
        b = float(np.linalg.norm(w))
        t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
        c = sla.expm(tau * t)[:, 0]
        if b < 1e-13 * max(1.0, abs(a)) or j + 1 == max_dim or b * abs(c[-1]) < tol:
            return (norm * (basis[: j + 1].T @ c)).reshape(shape)
        beta.append(b)
        basis[j + 1] = w / b
    raise AssertionError("unreachable")


def overlap(a: list[np.ndarray], b: list[np.ndarray]) -> complex:
    """``<a|b>`` of two MPSs given as ``(left, physical, right)`` site tensors."""
    env = np.ones((1, 1), dtype=complex)
    for x, y in zip(a, b):
        env = np.tensordot(np.tensordot(env, x.conj(), axes=([0], [0])), y, axes=([0, 1], [0, 1]))
    return complex(env[0, 0])


# ----------------------------------------------------------------------------- environments
def extend_left(env: np.ndarray, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Left environment through site tensor ``a`` and MPO tensor ``w``."""
    x = np.tensordot(env, a, axes=([2], [0]))  # (a, w, t, d)
    x = np.tensordot(x, w, axes=([1, 2], [0, 3]))  # (a, d, v, s)
    x = np.tensordot(x, a.conj(), axes=([0, 3], [0, 1]))  # (d, v, a')
    return x.transpose(2, 1, 0)


def extend_right(env: np.ndarray, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Right environment through site tensor ``a`` and MPO tensor ``w``."""
    x = np.tensordot(a, env, axes=([2], [2]))  # (b, t, c, u)
    x = np.tensordot(x, w, axes=([1, 3], [3, 1]))  # (b, c, w, s)
    x = np.tensordot(x, a.conj(), axes=([1, 3], [2, 1]))  # (b, w, a')
    return x.transpose(2, 1, 0)


def _apply_two(left, w1, w2, right, theta):
    x = np.tensordot(left, theta, axes=([2], [0]))  # (a, w, t1, t2, d)
    x = np.tensordot(x, w1, axes=([1, 2], [0, 3]))  # (a, t2, d, v, s1)
    x = np.tensordot(x, w2, axes=([3, 1], [0, 3]))  # (a, d, s1, u, s2)
    x = np.tensordot(x, right, axes=([1, 3], [2, 1]))  # (a, s1, s2, c)
    return x


def _apply_one(left, w, right, a):
    x = np.tensordot(left, a, axes=([2], [0]))  # (a, w, t, d)
    x = np.tensordot(x, w, axes=([1, 2], [0, 3]))  # (a, d, v, s)
    return np.tensordot(x, right, axes=([1, 2], [2, 1]))  # (a, s, c)


def _apply_zero(left, right, c):
    x = np.tensordot(left, c, axes=([2], [0]))  # (a, w, d)
    return np.tensordot(x, right, axes=([1, 2], [1, 2]))  # (a, c)


def mpo_arrays(mpo) -> list[np.ndarray]:
    """quimb MPO tensors as ``(left, right, out, in)`` with unit boundary bonds."""
    n = mpo.L
    out = []
    for i in range(n):
        inds = ([mpo.bond(i - 1, i)] if i > 0 else []) + ([mpo.bond(i, i + 1)] if i < n - 1 else [])
        w = np.asarray(mpo[i].transpose(*inds, mpo.upper_ind(i), mpo.lower_ind(i)).data)
        if i == 0:
            w = w[None]
        if i == n - 1:
            w = w[:, None]
        out.append(w)
    return out


def mps_to_arrays(mps) -> list[np.ndarray]:
    """quimb MPS tensors as complex ``(left, physical, right)`` with unit boundary bonds."""
    n = mps.L
    out = []
    for i in range(n):
        inds = ([mps.bond(i - 1, i)] if i > 0 else []) + [mps.site_ind(i)] + ([mps.bond(i, i + 1)] if i < n - 1 else [])
        a = np.asarray(mps[i].transpose(*inds).data, dtype=complex)
        if i == 0:
            a = a[None]
        if i == n - 1:
            a = a[..., None]
        out.append(a)
    return out


def arrays_to_mps(arrays: list[np.ndarray]):
    """The quimb MPS of ``(left, physical, right)`` arrays (boundary bonds of size 1)."""
    import quimb.tensor as qtn

    data = [a.transpose(0, 2, 1) for a in arrays]  # (left, right, physical)
    data[0] = data[0][0]
    data[-1] = data[-1][:, 0]
    return qtn.MatrixProductState(data, shape="lrp")


class TDVP:
    """Two-site (with bond growth) and one-site TDVP of an MPS under an MPO.

    Args:
        arrays: site tensors ``(left, physical, right)``; brought to right-canonical form with
            the norm in site 0, normalised.
        mpo: MPO tensors ``(left, right, out, in)`` (:func:`mpo_arrays`), Hermitian.
        krylov_tol: tolerance of each local exponential (:func:`expm_krylov`).
    """

    def __init__(self, arrays: list[np.ndarray], mpo: list[np.ndarray], krylov_tol: float = 1e-12,
                 canonical: bool = False):
        self.mpo = mpo
        self.n = len(arrays)
        self.krylov_tol = krylov_tol
        self.arrays = [np.asarray(a, dtype=complex) for a in arrays]
        if not canonical:
            # a resumed state is already in the form a step leaves; canonicalising it again
            # would change its round-off, and the resumed run would drift from the original
            self._right_canonicalize()

    def _right_canonicalize(self) -> None:
        a = self.arrays
        for i in range(self.n - 1, 0, -1):
            l, d, r = a[i].shape
            q, rr = np.linalg.qr(a[i].reshape(l, d * r).T)
            a[i] = q.T.reshape(-1, d, r)
            a[i - 1] = np.tensordot(a[i - 1], rr.T, axes=([2], [0]))
        a[0] = a[0] / np.linalg.norm(a[0])

    def expand(self, others: list[list[np.ndarray]]) -> None:
        """Global subspace expansion (Yang and White, PRB 102, 094315 (2020)): the bond bases are
        widened by those of the MPSs ``others`` (Krylov vectors ``H^k |psi>``), each entering the
        direct sum ``|psi> + 0 |phi_k>``, so the state is unchanged while two-site updates can
        reach configurations that terms longer than two sites (snake-ordered plaquettes) would
        otherwise never connect. The next sweep's SVDs truncate the bonds again."""
        blocks = [self.arrays] + [[np.asarray(b, dtype=complex) for b in o] for o in others]
        out = []
        for i in range(self.n):
            ls = [b[i].shape[0] for b in blocks]
            rs = [b[i].shape[2] for b in blocks]
            d = self.arrays[i].shape[1]
            rows = 1 if i == 0 else sum(ls)
            cols = 1 if i == self.n - 1 else sum(rs)
            t = np.zeros((rows, d, cols), dtype=complex)
            lo = ro = 0
            for k, b in enumerate(blocks):
                x = b[i] if (k == 0 or i > 0) else 0.0 * b[i]  # the expansion has zero weight
                t[lo : lo + x.shape[0], :, ro : ro + x.shape[2]] = x
                lo += 0 if i == 0 else ls[k]
                ro += 0 if i == self.n - 1 else rs[k]
            out.append(t)
        self.arrays = out
        self._right_canonicalize()

    def bond_dims(self) -> list[int]:
        return [a.shape[2] for a in self.arrays[:-1]]

    def saturated(self, max_bond: int) -> bool:
        """Whether every bond has reached ``max_bond`` or the dimension of the smaller side's
        Hilbert space (then two-site updates can grow nothing)."""
        dims = [a.shape[1] for a in self.arrays]
        for k, chi in enumerate(self.bond_dims()):
            full = min(float(np.prod(dims[: k + 1], dtype=float)), float(np.prod(dims[k + 1 :], dtype=float)))
            if chi < min(max_bond, full):
                return False
        return True

    def _right_envs(self) -> list[np.ndarray]:
        """``R[i]``: environment of the sites right of ``i`` (``R[n-1]`` is the unit boundary)."""
        envs = [None] * self.n
        envs[-1] = np.ones((1, 1, 1), dtype=complex)
        for i in range(self.n - 1, 0, -1):
            envs[i - 1] = extend_right(envs[i], self.arrays[i], self.mpo[i])
        return envs

    def expectation(self, mpo: list[np.ndarray] | None = None) -> float:
        """``<psi|O|psi>`` of the normalised state for an MPO ``O`` in the layout of
        :func:`mpo_arrays` (default: the Hamiltonian), using that the centre is site 0."""
        mpo = self.mpo if mpo is None else mpo
        env = np.ones((1, 1, 1), dtype=complex)
        for i in range(self.n - 1, 0, -1):
            env = extend_right(env, self.arrays[i], mpo[i])
        a = self.arrays[0]
        left = np.ones((1, 1, 1), dtype=complex)
        return float(np.real(np.vdot(a, _apply_one(left, mpo[0], env, a))))

    def _split(self, theta: np.ndarray, max_bond: int, cutoff: float, centre_left: bool) -> tuple[np.ndarray, np.ndarray, float]:
        """SVD of a two-site tensor into ``(A, B)`` keeping at most ``max_bond`` values and
        dropping the smallest ones whose squares sum to at most ``cutoff`` (relative); the
        singular values go right (``centre_left=False``) or left. Returns the discarded weight."""
        l, d1, d2, r = theta.shape
        m = theta.reshape(l * d1, d2 * r)
        try:
            u, s, vh = np.linalg.svd(m, full_matrices=False)
        except np.linalg.LinAlgError:  # LAPACK's divide and conquer can fail to converge
            u, s, vh = sla.svd(m, full_matrices=False, lapack_driver="gesvd")
        s2 = s**2
        total = s2.sum()
        tail = np.cumsum(s2[::-1])[::-1] / total  # tail[k]: weight of values k, k+1, ...
        keep = int(np.sum(tail > cutoff)) if cutoff > 0 else len(s)
        keep = max(1, min(keep, max_bond))
        discarded = float(tail[keep]) if keep < len(s) else 0.0
        u, s, vh = u[:, :keep], s[:keep], vh[:keep]
        s = s / np.linalg.norm(s)  # the truncated state is renormalised
        if centre_left:
            return (u * s).reshape(l, d1, keep), vh.reshape(keep, d2, r), discarded
        return u.reshape(l, d1, keep), (s[:, None] * vh).reshape(keep, d2, r), discarded

    def step(self, dt: float, max_bond: int, cutoff: float = 1e-12, two_site: bool = True) -> float:
        """One step ``exp(-i H dt)``; returns the discarded weight summed over its SVDs (0 for
        the one-site scheme)."""
        if self.n < 2 and two_site:
            two_site = False
        tau = -0.5j * dt
        a, w, n = self.arrays, self.mpo, self.n
        right = self._right_envs()
        left = [None] * n
        left[0] = np.ones((1, 1, 1), dtype=complex)
        discarded = 0.0
        expm = lambda f, v, t: expm_krylov(f, v, t, tol=self.krylov_tol)  # noqa: E731
        if two_site:
            for i in range(n - 1):  # left to right, centre on site i
                theta = np.tensordot(a[i], a[i + 1], axes=([2], [0]))
                theta = expm(lambda x, i=i: _apply_two(left[i], w[i], w[i + 1], right[i + 1], x), theta, tau)
                a[i], a[i + 1], eps = self._split(theta, max_bond, cutoff, centre_left=False)
                discarded += eps
                left[i + 1] = extend_left(left[i], a[i], w[i])
                if i < n - 2:
                    a[i + 1] = expm(lambda x, i=i: _apply_one(left[i + 1], w[i + 1], right[i + 1], x), a[i + 1], -tau)
            for i in range(n - 2, -1, -1):  # right to left, centre on site i + 1
                theta = np.tensordot(a[i], a[i + 1], axes=([2], [0]))
                theta = expm(lambda x, i=i: _apply_two(left[i], w[i], w[i + 1], right[i + 1], x), theta, tau)
                a[i], a[i + 1], eps = self._split(theta, max_bond, cutoff, centre_left=True)
                discarded += eps
                right[i] = extend_right(right[i + 1], a[i + 1], w[i + 1])
                if i > 0:
                    a[i] = expm(lambda x, i=i: _apply_one(left[i], w[i], right[i], x), a[i], -tau)
            return discarded
        for i in range(n):  # left to right
            a[i] = expm(lambda x, i=i: _apply_one(left[i], w[i], right[i], x), a[i], tau)
            if i == n - 1:
                break
            l, d, r = a[i].shape
            q, c = np.linalg.qr(a[i].reshape(l * d, r))
            a[i] = q.reshape(l, d, -1)
            left[i + 1] = extend_left(left[i], a[i], w[i])
            c = expm(lambda x, i=i: _apply_zero(left[i + 1], right[i], x), c, -tau)
            a[i + 1] = np.tensordot(c, a[i + 1], axes=([1], [0]))
        for i in range(n - 1, -1, -1):  # right to left
            a[i] = expm(lambda x, i=i: _apply_one(left[i], w[i], right[i], x), a[i], tau)
            if i == 0:
                break
            l, d, r = a[i].shape
            q, c = np.linalg.qr(a[i].reshape(l, d * r).T)
            a[i] = q.T.reshape(-1, d, r)
            right[i - 1] = extend_right(right[i], a[i], w[i])
            c = expm(lambda x, i=i: _apply_zero(left[i], right[i - 1], x), c.T, -tau)
            a[i - 1] = np.tensordot(a[i - 1], c, axes=([2], [0]))
        return discarded
