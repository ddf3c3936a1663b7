"""Shared output of the benchmarks: ``bench/results/NAME.json`` as
``{"machine": ..., "date": ..., "rows": [...]}`` and the same rows printed as a table."""

from __future__ import annotations

import json
import os
import platform
from datetime import date
from pathlib import Path
from typing import Any

VARIANTS = {"vit_double": ("vit", "precision = 'double'")}
"""Benchmark rows of a model with other than its default options: row name -> (model, the
``[method]`` lines that differ). Shared by the benchmarks that run variants."""


def variant(name: str) -> tuple[str, str]:
    """``(model, [method] lines ending in a newline, or "")`` of a row name (a model or a variant)."""
    model, lines = VARIANTS.get(name, (name, ""))
    return model, lines + "\n" if lines else ""


# BENCH_RESULTS redirects the files, e.g. to keep a GPU machine's numbers apart from the CPU ones
RESULTS = Path(os.environ.get("BENCH_RESULTS", Path(__file__).parent / "results"))


def machine() -> str:
    """Host, CPU and core count, plus the JAX devices when JAX is loaded."""
    desc = f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores)"
    try:
        import jax

        desc += f", jax devices: {', '.join(sorted({d.platform for d in jax.devices()}))}"
    except ImportError:
        pass
    return desc


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Plain-text table of ``rows`` (all keys of the first row unless ``columns``)."""
    columns = columns or list(rows[0])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    width = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, width)), "  ".join("-" * w for w in width)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, width)) for row in cells]
    return "\n".join(lines)


def previous(name: str) -> dict[str, Any]:
    """The contents of ``results/NAME.json`` written by an earlier run (``{"rows": []}`` if none),
    so that a run of some rows can keep the others."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {"rows": []}


def write(
    name: str, rows: list[dict[str, Any]], columns: list[str] | None = None, quiet: bool = False, **extra: Any
) -> Path:
    """Write ``results/NAME.json`` (atomically) and print the table (unless ``quiet``); returns the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"machine": machine(), "date": str(date.today()), **extra, "rows": rows}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    os.replace(tmp, path)
    if not quiet:
        print(table(rows, columns))
        print(f"wrote {path}")
    return path
