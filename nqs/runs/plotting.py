"""Figures of archived runs (``nqs plot``): energy per site against step (or wall time), with the
exact or reference energy, and the relative error on a log scale when the exact energy is known; for
DMRG, the energy against the truncation error with the extrapolation (``--truncation``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from .archive import Archive
from .diagnostics import exact_is_zero


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def plot_energy(
    archives: Sequence[Archive], path: str | Path, title: str | None = None, x: Literal["step", "wall"] = "step"
) -> Path:
    """Write a PNG with one curve per archive; returns the path. ``x = "wall"`` draws against the
    run's cumulative wall time (seconds, resumes included) instead of the step, so runs of
    different cost per step compare at equal budget. Time evolutions (a ``time`` column in every
    history) are drawn by :func:`plot_time` instead.

    Raises:
        ValueError: ``x`` is neither ``"step"`` nor ``"wall"``, or ``"wall"`` for an archive
            whose history has no ``wall_time`` or for time evolutions.
    """
    if x not in ("step", "wall"):
        raise ValueError(f"x must be 'step' or 'wall', got {x!r}")
    if x == "wall":
        missing = [a.label for a in archives if len(a.history.get("step", [])) and "wall_time" not in a.history]
        if missing:
            raise ValueError(f"no wall_time in the history of {', '.join(missing)}: plot against the step")
    if archives and all("time" in a.history for a in archives):
        if x == "wall":
            raise ValueError("time evolutions are drawn against their physical time; --x wall is for ground-state runs")
        return plot_time(archives, path, title)
    plt = _pyplot()

    exact = [a.result.get("exact_energy") for a in archives]
    has_exact = any(e is not None for e in exact)
    fig, axes = plt.subplots(
        2 if has_exact else 1, 1, figsize=(7, 6.5 if has_exact else 4), sharex=True, squeeze=False
    )
    ax = axes[0, 0]
    drawn: set[float] = set()
    for a, e_exact in zip(archives, exact):
        n = a.n_sites
        xs = np.asarray(a.history.get("step" if x == "step" else "wall_time", []), dtype=float)
        energy = np.asarray(a.history.get("energy", []), dtype=float)
        if len(xs) == 0:
            continue
        label = f"{a.label} ({a.method}{'/' + a.model if a.method == 'vmc' else ''})"
        err = np.asarray(a.history.get("energy_error", np.full(len(xs), np.nan)), dtype=float)
        (line,) = ax.plot(xs, energy / n, lw=1.2, label=label)
        if np.isfinite(err).any():
            ax.fill_between(xs, (energy - err) / n, (energy + err) / n, color=line.get_color(), alpha=0.25, lw=0)
        if e_exact is not None:
            key = round(e_exact, 10)
            if key not in drawn:
                ax.axhline(e_exact / n, color="k", ls="--", lw=1, label=f"exact/reference {e_exact / n:.7f}")
                drawn.add(key)
            if not exact_is_zero(e_exact, n):  # no relative error of a zero exact energy
                rel = np.abs(energy - e_exact) / abs(e_exact)
                axes[1, 0].semilogy(xs, np.maximum(rel, 1e-16), lw=1.2, color=line.get_color(), label=label)
    ax.set_ylabel("energy per site")
    lo = [np.nanmin(np.asarray(a.history["energy"]) / a.n_sites) for a in archives if len(a.history.get("energy", []))]
    if drawn and lo:
        # zoom on the converged part: from just below the exact energy to a bit above
        e_min = min(min(lo), min(drawn) / archives[0].n_sites)
        finals = [float(a.history["energy"][-1]) / a.n_sites for a in archives if len(a.history.get("energy", []))]
        span = max(max(finals) - e_min, 1e-4)
        ax.set_ylim(e_min - 0.2 * span, max(finals) + 3 * span)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if title or archives:
        ax.set_title(title or archives[0].problem.get("label", ""), fontsize=9)
    if has_exact:
        axes[1, 0].set_ylabel("|E - E_exact| / |E_exact|")
        axes[1, 0].grid(alpha=0.3, which="both")
        axes[1, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("step (VMC iteration / DMRG sweep)" if x == "step" else "wall time (s)")
    return _save(fig, path)


def plot_truncation(archives: Sequence[Archive], path: str | Path, title: str | None = None) -> Path:
    """Energy per site against the discarded weight ``eps`` of each DMRG archive: one point per
    bond dimension of the schedule (its last sweep; filled where it entered the fit, the bond
    dimensions ``extrapolation_fit_bond_dims``), the fitted line down to ``eps = 0``, the
    extrapolated energy with its error bar there, and the exact or reference energy. Writes a
    PNG; returns the path.

    Raises:
        ValueError: none of the archives holds DMRG extrapolation points.
    """
    plt = _pyplot()

    runs = [a for a in archives if len(a.result.get("extrapolation_bond_dims", []))]
    if not runs:
        raise ValueError(
            "no DMRG archive with extrapolation points (result key extrapolation_bond_dims) to plot"
        )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn: set[float] = set()
    for a in runs:
        r, n = a.result, a.n_sites
        chi = np.asarray(r["extrapolation_bond_dims"])
        e = np.asarray(r["extrapolation_energies"], dtype=float) / n
        eps = np.asarray(r["extrapolation_truncation_errors"], dtype=float)
        fit = np.isin(chi, np.asarray(r.get("extrapolation_fit_bond_dims", [])))
        # filled: the points fitted; open: the others
        (pts,) = ax.plot(eps[fit], e[fit], "o", label=f"{a.label}: last sweep per bond dimension")
        color = pts.get_color()
        ax.plot(eps[~fit], e[~fit], "o", mfc="none", color=color)
        for c, x, y in zip(chi, eps, e):
            ax.annotate(
                f"chi={c}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color
            )
        if "energy_extrapolated" in r and fit.sum() >= 2:
            slope, _ = np.polyfit(eps[fit], e[fit], 1)
            e0, err = float(r["energy_extrapolated"]) / n, float(r["energy_extrapolated_error"]) / n
            x = np.array([0.0, eps[fit].max()])
            label = f"linear fit, E0/N = {e0:.7f} +- {err:.1e}"
            ax.plot(x, e0 + slope * x, "-", color=color, lw=1, label=label)
            ax.errorbar([0.0], [e0], yerr=[err], fmt="s", color=color, capsize=3)
        exact = r.get("exact_energy")
        if exact is not None and round(exact, 10) not in drawn:
            ax.axhline(exact / n, color="k", ls="--", lw=1, label=f"exact/reference {exact / n:.7f}")
            drawn.add(round(exact, 10))
    ax.set_xlim(left=-0.02 * ax.get_xlim()[1])
    ax.set(xlabel="discarded weight eps (last sweep at the bond dimension)", ylabel="energy per site")
    ax.set_title(title or runs[0].problem.get("label", ""), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_time(archives: Sequence[Archive], path: str | Path, title: str | None = None) -> Path:
    """Time evolutions (``kind = "evolve"``): one panel per recorded quantity against ``time``
    (the energy per site, then each observable's mean over its entries), one curve per archive.
    Writes a PNG; returns the path."""
    plt = _pyplot()
    skip = {"step", "time", "wall_time", "energy", "truncation_error", "bond_dim", "two_site", "sector_leak",
            "norm_error", "substeps", "step_error"}
    names = ["energy"] + sorted({k for a in archives for k in a.history if k not in skip})
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.4 * len(names)), sharex=True, squeeze=False)
    for a in archives:
        t = np.asarray(a.history["time"], dtype=float)
        engine = a.config.get("method", {}).get("engine", a.method)
        for ax, name in zip(axes[:, 0], names):
            if name in a.history:
                y = np.asarray(a.history[name], dtype=float)
                ax.plot(t, y / a.n_sites if name == "energy" else y, lw=1.2, label=f"{a.label} ({engine})")
    for ax, name in zip(axes[:, 0], names):
        ax.set_ylabel("energy per site" if name == "energy" else f"{name} (mean)")
        ax.ticklabel_format(axis="y", useOffset=False)  # a conserved energy: no 1e-12 offset axis
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    axes[0, 0].set_title(title or archives[0].problem.get("label", ""), fontsize=9)
    axes[-1, 0].set_xlabel("time (1/coupling, hbar = 1)")
    return _save(fig, path)
