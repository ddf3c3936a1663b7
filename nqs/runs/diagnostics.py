"""Checks a finished run makes on itself, so that a result that went wrong never reads as a
plain ``completed``.

Each check compares the final result with the run's own history or with the exact energy;
it needs no other reference. Energies are totals. A check that fires adds one line to the
result's ``warnings`` (the runner stores them joined by ``"; "``, and the CLI and
``nqs compare`` show them).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

SIGMAS = 5.0
"""A deviation counts when it exceeds this many combined standard errors."""
REL_MARGIN = 1e-3
"""... and this fraction of the energy's magnitude (so a tiny error bar alone never fires)."""
VARIANCE_GROWTH = 10.0
"""The final variance may exceed the training variances' median by at most this factor."""
COST_GROWTH = 3.0
"""Steady states: the final ``cost`` (``||A P||``) may exceed the lowest one of the run's second
half by at most this factor."""
PAULI_AVERAGES = ("sx", "sz", "szsz")
"""Steady states: averages of Pauli products, within ``[-1, 1]`` for every density matrix."""
ZERO_ENERGY_PER_SITE = 1e-9
"""An exact energy below this per site in magnitude counts as zero (a Rokhsar-Kivelson point of
the link models): no relative error is defined there, only the error per site."""


def exact_is_zero(exact: float, n_sites: int) -> bool:
    """Whether ``exact`` is zero to round-off (:data:`ZERO_ENERGY_PER_SITE`)."""
    return abs(exact) < ZERO_ENERGY_PER_SITE * n_sites


def relative_error(energy: float, exact: float, n_sites: int) -> float | None:
    """``(E - E_exact) / |E_exact|``, or ``None`` where the exact energy is zero
    (:func:`exact_is_zero`), where a ratio would only amplify round-off."""
    if exact_is_zero(exact, n_sites):
        return None
    return (energy - exact) / abs(exact)


def _tail(values: Sequence[float]) -> np.ndarray:
    """The last tenth of the training steps (at least five), finite entries only."""
    v = np.asarray(values, dtype=float)
    v = v[-max(5, len(v) // 10):]
    return v[np.isfinite(v)]


def run_warnings(history: Mapping[str, Sequence[float]], final: Mapping[str, Any], exact: float | None) -> list[str]:
    """What is suspicious about a finished run (empty when nothing is).

    Args:
        history: the run's per-step columns (``energy``; ``variance`` where sampled).
        final: the final estimate: ``energy``, optionally ``energy_error``, ``variance``,
            ``sector_leak`` (or the penalty engine's ``sector_penalty``).
        exact: the exact (or reference) energy of the problem's sector, if known.

    Fires on: a non-finite final energy; a final estimate above the training energies of the
    last steps by more than ``SIGMAS`` combined errors and ``REL_MARGIN``; a final variance
    ``VARIANCE_GROWTH`` times the training variances; an energy below the exact one by as
    much (variational bound broken: wrong sector or a biased estimate); a sector leak; a steady
    state's final ``cost`` :data:`COST_GROWTH` times its best in the second half of the run, or
    one of its :data:`PAULI_AVERAGES` outside ``[-1, 1]`` by more than ``SIGMAS`` errors.
    """
    out: list[str] = []
    e = float(final["energy"])
    if not np.isfinite(e):
        return [f"the final energy is {e}"]
    err = float(final.get("energy_error") or 0.0)
    energies = _tail(history.get("energy", []))
    if "energy_error" in history and len(energies) >= 5:
        # stochastic training: the final estimate should sit within the spread of the last steps
        mid = float(np.median(energies))
        spread = float(np.std(energies)) / np.sqrt(len(energies))
        gap = e - mid
        if gap > SIGMAS * np.hypot(err, spread) and gap > REL_MARGIN * abs(e):
            out.append(
                f"the final estimate {e:.6f} +- {err:.1e} lies above the training energies "
                f"(median of the last {len(energies)} steps {mid:.6f}): the final samples see a "
                "state the training did not (heavy-tailed local energies or an unconverged chain)"
            )
    variances = _tail(history.get("variance", []))
    var = final.get("variance")
    if var is not None and len(variances) >= 5 and np.isfinite(var):
        typical = float(np.median(variances))
        if var > VARIANCE_GROWTH * max(typical, 1e-12):
            out.append(
                f"the final variance {var:.3g} is {var / max(typical, 1e-12):.0f} times the training "
                f"variances (median {typical:.3g} over the last {len(variances)} steps)"
            )
    # 1e-8 relative: the round-off of a converged DMRG energy against ED
    if exact is not None and exact - e > SIGMAS * err + 1e-8 * abs(exact):
        out.append(
            f"the energy {e:.8f} is below the exact {exact:.8f} of the problem's sector: the state "
            "left the sector or the estimate is biased"
        )
    costs = np.asarray(history.get("cost", []), dtype=float)
    costs = costs[len(costs) // 2:]
    costs = costs[np.isfinite(costs)]
    cost = final.get("cost")
    if cost is not None and len(costs) >= 3 and not cost <= COST_GROWTH * costs.min():
        out.append(
            f"the final cost {cost:.3g} is {cost / costs.min():.1f} times the lowest of the run's second half "
            f"({costs.min():.3g}): the last steps moved away from the steady state"
        )
    if "cost" in final:  # a steady state's observables: an outcome distribution that is no state
        for name in PAULI_AVERAGES:
            v = final.get(name)
            if v is not None and np.isfinite(v) and abs(v) > 1.0 + SIGMAS * float(final.get(f"{name}_error") or 0.0):
                out.append(
                    f"<{name}> = {v:.4g} +- {float(final.get(f'{name}_error') or 0.0):.1e} lies outside [-1, 1]: the "
                    "learned outcome distribution is not that of a density matrix (collapsed onto few strings)"
                )
    leak = final.get("sector_leak", final.get("sector_penalty"))
    if leak is not None and np.isfinite(leak) and leak > 1e-6:
        out.append(f"the state leaks out of the sector ({leak:.1e} of weight)")
    return out
