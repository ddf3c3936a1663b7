"""Renyi-2 entanglement entropy of a neural state by the replica swap estimator.

For a pure state ``psi`` on sites split into a region ``A`` and the rest ``B`` (configurations
``x = (a, b)``), with two independent samples ``x1 = (a1, b1)`` and ``x2 = (a2, b2)`` of
``|psi|^2`` (Hastings et al., PRL 104, 157201 (2010)),

    Tr rho_A^2 = E[ psi(a2 b1) psi(a1 b2) / (psi(a1 b1) psi(a2 b2)) ],   S_2 = -log Tr rho_A^2.

The swapped configurations ``(a2 b1)`` and ``(a1 b2)`` need not lie in the sector: where one
does not (a fusion path whose labels at a boundary of ``A`` no longer fuse, a total S^z that
the swap changed) ``psi`` vanishes there and the pair contributes **zero** -- it is counted,
not dropped, which would bias the purity upwards. The swapped configurations are checked with
the problem's constraint (:meth:`hamiltonians.constraints.Constraint.check`) and only the
allowed ones are evaluated. Exact, independent samples are needed (the autoregressive models'
direct sampler): correlated Markov samples would need their autocorrelation in the error bar.

:func:`exact_renyi2` computes the same quantity from a full state vector on the sector basis
(exact diagonalisation, or the model's full sum);
:func:`tensornets.entanglement.central_charge_renyi2` fits the Calabrese-Cardy law
``S_n(l) = c/6 (1 + 1/n) log(chord(l)) + s0`` (``c/12 (1 + 1/n)`` open) to the profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Renyi2Estimate:
    """The swap estimate of one region."""

    s2: float
    """``-log`` of the purity (natural logarithm)."""
    s2_error: float
    """Standard error of ``s2`` (first order in the purity's error)."""
    purity: float
    """Estimate of ``Tr rho_A^2``."""
    purity_error: float
    """Standard error of the mean of the swap ratios."""
    n_pairs: int
    """Number of replica pairs."""
    forbidden: float
    """Fraction of pairs whose swapped configurations leave the sector (counted as zero)."""


def swap_ratios(
    log_psi: Callable[[np.ndarray], np.ndarray],
    samples1: np.ndarray,
    samples2: np.ndarray,
    region: Sequence[int],
    check: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(ratios, allowed)``: the real part of ``psi(a2 b1) psi(a1 b2) / (psi(a1 b1) psi(a2 b2))``
    for each pair of rows of ``samples1`` and ``samples2`` (local configurations ``(M, N)``),
    zero where a swapped configuration fails ``check`` (``allowed`` false there).

    Args:
        log_psi: local configurations ``(n, N)`` -> ``log psi`` ``(n,)`` (complex).
        region: the sites of ``A``.
        check: boolean mask of allowed local configurations (``None``: all allowed).
    """
    x1, x2 = np.asarray(samples1), np.asarray(samples2)
    if x1.shape != x2.shape:
        raise ValueError(f"the two replicas need the same shape, got {x1.shape} and {x2.shape}")
    sites = np.asarray(region, dtype=int)
    y1, y2 = x1.copy(), x2.copy()
    y1[:, sites], y2[:, sites] = x2[:, sites], x1[:, sites]  # y1 = (a2 b1), y2 = (a1 b2)
    allowed = np.ones(len(x1), dtype=bool) if check is None else np.asarray(check(y1)) & np.asarray(check(y2))
    ratios = np.zeros(len(x1))
    if allowed.any():
        m = int(allowed.sum())
        batch = np.concatenate([x1[allowed], x2[allowed], y1[allowed], y2[allowed]])
        lp = np.asarray(log_psi(batch))
        l1, l2, s1, s2 = lp[:m], lp[m : 2 * m], lp[2 * m : 3 * m], lp[3 * m :]
        ratios[allowed] = np.real(np.exp(s1 + s2 - l1 - l2))
    return ratios, allowed


def renyi2(
    log_psi: Callable[[np.ndarray], np.ndarray],
    samples: np.ndarray,
    region: Sequence[int],
    check: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Renyi2Estimate:
    """Renyi-2 entropy of ``region`` from exact samples of ``|psi|^2`` (local configurations
    ``(2 M, N)``; the first and second halves are the two replicas). See :func:`swap_ratios`."""
    x = np.asarray(samples)
    m = len(x) // 2
    ratios, allowed = swap_ratios(log_psi, x[:m], x[m : 2 * m], region, check)
    purity = float(ratios.mean())
    err = float(ratios.std(ddof=1) / np.sqrt(m))
    s2 = -np.log(purity) if purity > 0 else np.inf
    return Renyi2Estimate(float(s2), err / purity if purity > 0 else np.inf, purity, err, m, float(1 - allowed.mean()))


def renyi2_profile(
    log_psi: Callable[[np.ndarray], np.ndarray],
    samples: np.ndarray,
    n_sites: int,
    check: Callable[[np.ndarray], np.ndarray] | None = None,
    lengths: Sequence[int] | None = None,
) -> list[Renyi2Estimate]:
    """:func:`renyi2` of the regions ``A = {0 .. l-1}`` for ``l`` in ``lengths`` (default
    ``1 .. n_sites - 1``), all from the same samples."""
    lengths = range(1, n_sites) if lengths is None else lengths
    return [renyi2(log_psi, samples, range(l), check) for l in lengths]


def exact_renyi2(amplitudes: np.ndarray, basis: np.ndarray, region: Sequence[int]) -> float:
    """``S_2`` of ``region`` for the state ``sum_i amplitudes[i] |basis[i]>`` (normalised here)."""
    psi = np.asarray(amplitudes) / np.linalg.norm(amplitudes)
    b = np.asarray(basis)
    sites = np.asarray(region, dtype=int)
    rest = np.setdiff1d(np.arange(b.shape[1]), sites)
    _, ia = np.unique(b[:, sites], axis=0, return_inverse=True)
    _, ib = np.unique(b[:, rest], axis=0, return_inverse=True)
    m = np.zeros((ia.max() + 1, ib.max() + 1), dtype=psi.dtype)
    m[ia.ravel(), ib.ravel()] = psi
    rho = m @ m.conj().T
    return float(-np.log(np.real(np.sum(rho * rho.conj()))))


# --------------------------------------------------------------------------- model helpers
def model_log_psi(model, variables, local_space, chunk: int = 4096) -> Callable[[np.ndarray], np.ndarray]:
    """``log psi`` of local configurations for a NetKet/flax model on NetKet configurations,
    jitted and applied in chunks (``-inf`` real part outside the sector for the constrained
    autoregressive models)."""
    from hamiltonians.netket_backend import configs_to_netket

    apply = jax.jit(model.apply)

    def fn(a: np.ndarray) -> np.ndarray:
        x = configs_to_netket(local_space, np.asarray(a))
        out = [np.asarray(apply(variables, jnp.asarray(x[i : i + chunk]))) for i in range(0, len(x), chunk)]
        return np.concatenate(out) if out else np.zeros(0, dtype=complex)

    return fn


def exact_samples(model, variables, hilbert, local_space, n: int, seed: int = 0) -> np.ndarray:
    """``n`` exact, independent samples (local configurations) of a constrained autoregressive
    model (:class:`~nqs.sampling.direct_sampler.ConstrainedDirectSampler`)."""
    from hamiltonians.netket_backend import configs_from_netket
    from nqs.sampling.direct_sampler import ConstrainedDirectSampler

    sampler = ConstrainedDirectSampler(hilbert, local_space.name)
    state = sampler.init_state(model, variables, seed)
    sigma, _ = sampler.sample(model, variables, state=state, chain_length=n)
    return configs_from_netket(local_space, np.asarray(sigma).reshape(-1, hilbert.size))
