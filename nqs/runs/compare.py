"""Comparison tables of archived runs (``nqs compare``)."""

from __future__ import annotations

import math
from typing import Sequence

from .archive import Archive
from .diagnostics import relative_error

COLUMNS = (
    ("run", "run"),
    ("problem", "problem"),
    ("method", "method"),
    ("model", "model"),
    ("steps", "steps"),
    ("energy", "energy"),
    ("error", "± error"),
    ("e_site", "E/N"),
    ("exact", "exact/ref"),
    ("rel", "rel. error"),
    ("variance", "variance"),
    ("v_score", "V-score"),
    ("params", "params"),
    ("wall", "wall [s]"),
    ("status", "status"),
)


def _fmt(v, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def row(a: Archive) -> dict[str, str]:
    r = a.result
    n = a.n_sites
    energy = r.get("energy")
    if energy is None and len(a.history.get("energy", [])):
        energy = float(a.history["energy"][-1])  # unfinished run: its last step
    exact = r.get("exact_energy")
    rel = r.get("relative_error")
    if rel is None and energy is not None and exact is not None:
        rel = relative_error(energy, exact, n)
    return {
        "run": a.label,
        "problem": a.problem.get("label", a.problem.get("name", "?")),
        "method": a.method,
        "model": a.model if a.method == "vmc" else "-",
        "steps": str(len(a.history.get("step", []))),
        "energy": _fmt(energy, ".8f"),
        "error": _fmt(r.get("energy_error"), ".1e"),
        "e_site": _fmt(None if energy is None else energy / n, ".8f"),
        "exact": _fmt(exact, ".8f"),
        "rel": _fmt(rel, ".2e"),
        "variance": _fmt(r.get("variance"), ".2e"),
        "v_score": _fmt(r.get("v_score"), ".2e"),
        "params": _fmt(r.get("n_parameters"), "d"),
        "wall": _fmt(r.get("wall_time"), ".1f"),
        # a run that checked itself and found something wrong must not read as plainly completed
        "status": a.status + (" (warned: see nqs show)" if r.get("warnings") else ""),
    }


def table(archives: Sequence[Archive], markdown: bool = False) -> str:
    rows = [row(a) for a in archives]
    keys = [k for k, _ in COLUMNS]
    heads = dict(COLUMNS)
    if markdown:
        lines = ["| " + " | ".join(heads[k] for k in keys) + " |", "|" + "|".join("---" for _ in keys) + "|"]
        lines += ["| " + " | ".join(r[k] for k in keys) + " |" for r in rows]
        return "\n".join(lines)
    width = {k: max(len(heads[k]), *(len(r[k]) for r in rows)) for k in keys}
    out = ["  ".join(heads[k].ljust(width[k]) for k in keys), "  ".join("-" * width[k] for k in keys)]
    out += ["  ".join(r[k].ljust(width[k]) for k in keys) for r in rows]
    return "\n".join(out)
