"""Entanglement entropies of an MPS and the central charge by the Calabrese-Cardy formula.

Bond ``i`` (``i = 1 .. n-1``) cuts the chain into its first ``i`` sites and the rest; its
entropy comes from the Schmidt values of one left-to-right SVD sweep over a right-canonical
copy of the MPS (natural logarithms). A critical chain of ``L`` sites described by a CFT of
central charge ``c`` has (Calabrese and Cardy, J. Stat. Mech. (2004) P06002)

    open:      S(l) = c/6 log[(2L/pi) sin(pi l/L)] + s0
    periodic:  S(l) = c/3 log[(L/pi) sin(pi l/L)] + s0

with ``l`` the length of the left part. Open chains add an oscillation decaying into the bulk
(Laflorencie et al., PRL 96, 100603 (2006)), periodic in the bond index (period 2 for a
dimerising chain, 3 for Z_3 parafermions); the fit carries one constant per residue of the bond
index modulo ``period`` and drops a fraction of the bonds next to each end, where lattice
corrections are largest. The slope of the least-squares line in the chord log gives ``c``, with
its standard error from the residuals. Anyon chains in the fusion-path basis cut best through
a label shared by both halves (:func:`shared_site_entropies`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import quimb.tensor as qtn

from .dmrg import mps_arrays


def schmidt_values(mps: qtn.MatrixProductState) -> list[np.ndarray]:
    """Normalised Schmidt values at every bond, ``out[i - 1]`` for bond ``i`` (the first ``i``
    sites against the rest)."""
    return [s for _, _, s in _centres(mps) if s is not None]


def _centres(mps: qtn.MatrixProductState):
    """Yield ``(i, A_i)`` for ``i = 0 .. n-1`` with the MPS in mixed canonical form centred on
    site ``i`` (``A_i`` as ``(left, right, physical)``), and the Schmidt values of bond ``i + 1``
    after it (``None`` at the last site)."""
    arrays = mps_arrays(mps)
    n = len(arrays)
    # every tensor as (left, right, physical), boundary bonds of dimension one
    arrays[0] = arrays[0][None]
    arrays[-1] = arrays[-1][:, None]
    for i in range(n - 1, 0, -1):
        a = arrays[i]
        left, right, phys = a.shape
        q, r = np.linalg.qr(a.reshape(left, right * phys).T)
        arrays[i] = q.T.reshape(-1, right, phys)
        arrays[i - 1] = np.einsum("lrp,sr->lsp", arrays[i - 1], r)
    for i in range(n):
        a = arrays[i]
        if i == n - 1:
            yield i, a, None
            return
        left, right, phys = a.shape
        u, s, vh = np.linalg.svd(a.transpose(0, 2, 1).reshape(left * phys, right), full_matrices=False)
        yield i, a, s / np.linalg.norm(s)
        arrays[i + 1] = np.einsum("sr,rtp->stp", s[:, None] * vh, arrays[i + 1])


def _entropy(p: np.ndarray, alpha: float) -> float:
    p = p[p > 1e-28]
    p = p / p.sum()
    if alpha == 1.0:
        return float(-np.sum(p * np.log(p)))
    return float(np.log(np.sum(p**alpha)) / (1.0 - alpha))


def shared_site_entropies(
    mps: qtn.MatrixProductState, weights: Sequence[float] | None = None, alpha: float = 1.0
) -> np.ndarray:
    """Entropy of a cut *through* each site whose local state both halves know, ``out[i]`` for
    site ``i``: sites ``0 .. i`` against ``i .. n-1``. For a fusion-path label ``x_i`` (between
    anyons ``i - 1`` and ``i``) this is the cut between two anyons: the state splits into
    blocks ``psi_a`` of fixed ``x_i = a`` with Schmidt values ``lambda_{a,n}``, and

        S = -sum_{a,n} lambda_{a,n}^2 log(lambda_{a,n}^2) + sum_a p_a log(weights[a])

    with ``p_a = sum_n lambda_{a,n}^2``; ``weights`` = quantum dimensions ``d_a`` give the
    anyonic entanglement entropy (Bonderson, Knapp and Patel, Ann. Phys. 385, 399 (2017)),
    ``None`` the plain one. Renyi entropies (``alpha != 1``) take no weights."""
    if weights is not None and alpha != 1.0:
        raise ValueError("quantum-dimension weights enter the von Neumann entropy only (alpha = 1)")
    out = []
    for _, a, _ in _centres(mps):
        probs, blocks = [], []
        for x in range(a.shape[2]):
            lam = np.linalg.svd(a[:, :, x], compute_uv=False)
            blocks.append(lam**2)
            probs.append(float(np.sum(lam**2)))
        norm = sum(probs)
        value = _entropy(np.concatenate(blocks), alpha)
        if weights is not None:
            value += sum(p / norm * np.log(w) for p, w in zip(probs, weights) if p > 0)
        out.append(value)
    return np.asarray(out)


def entanglement_entropies(mps: qtn.MatrixProductState, alpha: float = 1.0) -> np.ndarray:
    """Von Neumann (``alpha = 1``) or Renyi-``alpha`` entropy at every bond, ``out[i - 1]`` for
    bond ``i``."""
    return np.asarray([_entropy(s**2, alpha) for s in schmidt_values(mps)])


@dataclass(frozen=True)
class CentralChargeFit:
    """Least-squares fit of the Calabrese-Cardy law (module docstring)."""

    c: float
    """Central charge."""
    c_error: float
    """Standard error of ``c`` from the fit's residuals."""
    s0: float
    """Non-universal constant."""
    offsets: np.ndarray
    """The constant of each residue class ``i mod period`` (``s0`` is their mean)."""
    bonds: np.ndarray
    """The bonds ``i`` that entered the fit."""
    residual: float
    """Root-mean-square residual of the fit."""


def central_charge(
    entropies: Sequence[float],
    length: float | None = None,
    positions: Sequence[float] | None = None,
    periodic: bool = False,
    skip: float = 0.2,
    period: int = 2,
) -> CentralChargeFit:
    """Central charge from the entropies of bonds ``1 .. n-1``.

    Args:
        entropies: ``S`` at bond ``i`` as ``entropies[i - 1]`` (:func:`entanglement_entropies`).
        length: system length ``L`` in the formula (default: ``len(entropies) + 1`` sites).
        positions: length ``l`` of the left part at each bond (default ``l = i``); a model
            whose sites are not its physical units says here where its cuts lie.
        periodic: ring instead of open chain (``c/3`` instead of ``c/6``).
        skip: fraction of the bonds dropped next to each end.
        period: one constant per residue class ``i mod period`` (2: the alternating term of
            open chains; 1: a single constant).
    """
    s = np.asarray(entropies, dtype=float)
    bonds = np.arange(1, len(s) + 1)
    length = float(len(s) + 1) if length is None else float(length)
    ell = bonds.astype(float) if positions is None else np.asarray(positions, dtype=float)
    n_skip = int(np.floor(skip * len(s)))
    keep = slice(n_skip, len(s) - n_skip)
    s, bonds, ell = s[keep], bonds[keep], ell[keep]
    if np.any((ell <= 0) | (ell >= length)):
        raise ValueError("every fitted position must lie strictly inside the chain")
    scale = 1.0 if periodic else 2.0
    chord = np.log(scale * length / np.pi * np.sin(np.pi * ell / length))
    columns = [chord] + [(bonds % period == r).astype(float) for r in range(period)]
    a = np.stack(columns, axis=1)
    if len(s) <= a.shape[1]:
        raise ValueError(f"{len(s)} bonds left after skipping; need more than {a.shape[1]} for the fit")
    coef, *_ = np.linalg.lstsq(a, s, rcond=None)
    resid = s - a @ coef
    dof = len(s) - a.shape[1]
    cov = np.linalg.inv(a.T @ a) * float(resid @ resid) / dof
    factor = 3.0 if periodic else 6.0
    return CentralChargeFit(
        c=float(factor * coef[0]),
        c_error=float(factor * np.sqrt(cov[0, 0])),
        s0=float(np.mean(coef[1:])),
        offsets=np.asarray(coef[1:]),
        bonds=bonds,
        residual=float(np.sqrt(np.mean(resid**2))),
    )


def central_charge_renyi2(
    s2: Sequence[float], length: float, periodic: bool, alpha: float = 2.0, **fit_options
):
    """Central charge from Renyi-``alpha`` entropies ``s2[l - 1]`` of the regions of ``l = 1 ..``
    sites: the Calabrese-Cardy fit of :func:`central_charge` (written
    for ``alpha = 1``), its ``c`` and error rescaled by ``2 alpha / (1 + alpha)``. Returns the
    fit with those two fields replaced."""
    from dataclasses import replace

    fit = central_charge(s2, length=length, periodic=periodic, **fit_options)
    factor = 2 * alpha / (1 + alpha)
    return replace(fit, c=fit.c * factor, c_error=fit.c_error * factor)
