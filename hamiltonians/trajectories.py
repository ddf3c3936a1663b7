"""Steady-state averages of open problems from one long quantum-jump trajectory.

The reference for chains beyond exact Lindblad solutions (``D^2`` unknowns there, ``D`` here):
a pure state ``psi`` evolves under ``H_eff = H - (i/2) sum_k L_k^dag L_k`` while its squared
norm stays above a uniform random number ``r``; when it falls to ``r`` a jump ``psi <-
L_k psi`` happens with probability ``||L_k psi||^2 / sum_j ||L_j psi||^2``, the state is
normalised and a new ``r`` drawn (Dalibard, Castin and Moelmer, PRL 68, 580 (1992)). The
unravelling averages to the Lindblad evolution of :mod:`hamiltonians.lindblad` (same
conventions, same terms); for a unique steady state the time average of ``<psi|O|psi>`` along
one trajectory after a burn-in converges to ``tr(rho_ss O)``. The no-jump evolution is
``scipy.integrate.solve_ivp`` (RK45, tight tolerances) with the jump time located as an
event; observables are sampled on a regular time grid, and their errors are those of the means
of ``n_blocks`` consecutive blocks (blocks much longer than the relaxation time make them
independent). Cost: a few sparse products with ``H_eff`` per unit time and per jump, so chains
of about 20 spins.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
from scipy.integrate import solve_ivp

from .lindblad import operator_matrix
from .problem import Problem


def jump_trajectory_averages(
    problem: Problem,
    observables: dict[str, Sequence[tuple[complex, tuple]]],
    t_total: float,
    t_burn: float = 20.0,
    sample_every: float = 0.1,
    n_blocks: int = 20,
    seed: int = 0,
    max_states: int = 1 << 20,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Time averages of ``observables`` (name -> terms, Hermitian) along one quantum-jump
    trajectory of ``problem`` over ``(t_burn, t_burn + t_total]``, sampled every
    ``sample_every``.

    Returns ``{name: {"mean", "error"}}`` (error: standard error of ``n_blocks`` block means)
    plus ``"jumps"`` (number of jumps after the burn-in) and ``"wall_seconds"``. Times are in
    the units of the problem's rates (``1/gamma``). The start is a basis state drawn with
    ``seed``; ``ValueError`` for a closed problem or non-positive times.
    """
    if not problem.jumps:
        raise ValueError(f"{problem.label} has no jump operators: nothing to unravel")
    if t_total <= 0 or t_burn < 0 or sample_every <= 0 or t_total < n_blocks * sample_every:
        raise ValueError("need t_total > 0, t_burn >= 0, sample_every > 0 and n_blocks samples at least")
    t0 = time.perf_counter()
    basis = problem.basis(max_states)
    if basis is None:
        raise ValueError(f"{problem.label}: more than {max_states} states for a state-vector trajectory")
    space = problem.local_space
    h = operator_matrix(problem.terms, space, basis)
    jumps = [operator_matrix(j, space, basis) for j in problem.jumps]
    decay = sum((lk.conj().T @ lk) for lk in jumps)
    generator = (-1j * (h - 0.5j * decay)).tocsr()  # d psi / dt = -i H_eff psi
    ops = {k: operator_matrix(t, space, basis) for k, t in observables.items()}
    rng = np.random.default_rng(seed)
    psi = np.zeros(len(basis), dtype=complex)
    psi[rng.integers(len(basis))] = 1.0

    grid = t_burn + sample_every * np.arange(1, int(round(t_total / sample_every)) + 1)
    values = {k: np.empty(len(grid)) for k in ops}
    filled, now, n_jumps, end = 0, 0.0, 0, grid[-1]
    while now < end:
        r = rng.random()
        event = lambda t, y, r=r: float(np.vdot(y, y).real) - r  # noqa: E731
        event.terminal, event.direction = True, -1
        t_eval = grid[(grid > now) & (grid <= end)]
        sol = solve_ivp(
            lambda t, y: generator @ y, (now, end), psi, method="RK45", t_eval=t_eval, events=event,
            rtol=1e-6, atol=1e-9,
        )
        for y in np.asarray(sol.y).reshape(len(psi), -1).T:  # the grid times passed before the jump
            norm = np.vdot(y, y).real
            for k, op in ops.items():
                values[k][filled] = np.vdot(y, op @ y).real / norm
            filled += 1
        if sol.status < 0:
            raise RuntimeError(f"{problem.label}: the no-jump evolution failed at t = {now:g}: {sol.message}")
        if sol.status != 1:  # reached the end without a jump
            break
        psi, now = sol.y_events[0][0], float(sol.t_events[0][0])
        weights = np.array([np.vdot(v, v).real for v in (lk @ psi for lk in jumps)])
        k = rng.choice(len(jumps), p=weights / weights.sum())
        psi = jumps[k] @ psi
        psi /= np.linalg.norm(psi)
        n_jumps += int(now > t_burn)
        if log is not None and n_jumps % 500 == 0 and now > t_burn:
            log(f"trajectory t = {now:.1f} of {end:.1f}, {n_jumps} jumps")
    out = {}
    for k, v in values.items():
        blocks = np.array([b.mean() for b in np.array_split(v[:filled], n_blocks)])
        out[k] = {"mean": float(v[:filled].mean()), "error": float(blocks.std(ddof=1) / np.sqrt(n_blocks))}
    out["jumps"] = n_jumps
    out["wall_seconds"] = time.perf_counter() - t0
    return out
