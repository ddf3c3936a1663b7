"""``nqs sweep``: many independent runs of one configuration over a parameter grid.

Each point is a complete run configuration (the base config with the swept values substituted and
its own archive), executed by :func:`nqs.runs.runner.run` in a process pool, or on a Dask cluster when a
scheduler address is given. The sweep directory holds one archive per point and ``index.json``
(rewritten atomically after every point) with each point's values, archive, status, energy and
error. A point that fails is retried up to ``retries`` times and then reported as failed with its
error; nothing is lost. Rerunning the same sweep skips completed points and resumes interrupted
ones from their checkpoints.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import tomllib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import ConfigError, loads


@dataclass
class SweepPoint:
    index: int
    values: dict[str, Any]
    archive: Path
    config_text: str
    status: str = "pending"
    attempts: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def label(self) -> str:
        return ", ".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in self.values.items())


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def parse_param(spec: str) -> tuple[str, list[Any]]:
    """``name=start:stop:num`` (``num`` evenly spaced values, both ends included) or
    ``name=v1,v2,...``; ``name`` may be qualified as ``problem.h`` or ``method.learning_rate``."""
    if "=" not in spec:
        raise ConfigError(f"--param {spec!r}: expected NAME=START:STOP:NUM or NAME=V1,V2,...")
    name, _, rhs = spec.partition("=")
    name = name.strip()
    try:
        if rhs.count(":") == 2:
            a, b, n = rhs.split(":")
            num = int(n)
            if num < 1:
                raise ValueError
            values = [float(v) for v in np.linspace(float(a), float(b), num)]
        else:
            values = [tomllib.loads(f"v = {item.strip()}")["v"] for item in rhs.split(",") if item.strip()]
    except (ValueError, tomllib.TOMLDecodeError):
        raise ConfigError(f"--param {spec!r}: cannot read the values (START:STOP:NUM with NUM >= 1, or V1,V2,...)") from None
    if not values:
        raise ConfigError(f"--param {spec!r}: no values")
    return name, values


def _resolve(raw: dict, name: str) -> tuple[str, str]:
    """(table, key) for a parameter name: qualified, or a problem parameter, or a method key."""
    if "." in name:
        table, key = name.split(".", 1)
        if table not in ("problem", "method"):
            raise ConfigError(f"--param {name!r}: the table must be 'problem' or 'method'")
        return table, key
    import hamiltonians

    model = raw.get("problem", {}).get("name")
    problem_params = {p.name for p in hamiltonians.spec(model).parameters} if model else set()
    return ("problem", name) if name in problem_params else ("method", name)


def expand(config_text: str, params: list[tuple[str, list[Any]]], out_dir: Path, stem: str) -> list[SweepPoint]:
    """All grid points as validated configurations (errors surface before any run)."""
    import tomli_w

    raw = tomllib.loads(config_text)
    keys = [(_resolve(raw, name), name) for name, _ in params]
    points = []
    for i, combo in enumerate(itertools.product(*(vals for _, vals in params))):
        cfg = tomllib.loads(config_text)
        values = {}
        for ((table, key), _), value in zip(keys, combo):
            cfg.setdefault(table, {})[key] = value
            values[f"{table}.{key}"] = value
        archive = out_dir / f"{stem}_{i:03d}.h5"
        cfg.setdefault("output", {})["archive"] = archive.as_posix()
        text = tomli_w.dumps(cfg)
        try:
            loads(text)
        except ConfigError as err:
            where = ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())
            raise ConfigError(f"sweep point {where}: {err}") from None
        points.append(SweepPoint(i, values, archive, text))
    return points


def run_point(config_text: str) -> dict[str, Any]:
    """Run (or resume, or skip when complete) one point; returns a summary. Runs in workers."""
    from .archive import ArchiveError, load
    from .runner import run

    _no_nested_pools()
    conf = loads(config_text)
    path = conf.archive_path
    resume = False
    if path.exists():
        try:
            old = load(path)
            if old.status == "completed" and old.config_toml == conf.text:
                return {"status": "completed", "skipped": True, **_summary(old)}
            resume = old.checkpoint_step is not None and old.config_toml == conf.text
        except ArchiveError:
            pass
    t0 = time.perf_counter()
    a = run(conf, resume=resume, overwrite=not resume, progress=False, log=lambda s: None)
    return {"status": "completed", "skipped": False, "seconds": time.perf_counter() - t0, **_summary(a)}


def _no_nested_pools() -> None:
    """Keep quimb's contraction-path search (cotengra, ``parallel="auto"``) serial in a worker.

    cotengra otherwise opens its own process pool inside a sweep worker; that pool is never shut
    down, and the worker then hangs at exit joining it, so the sweep's pool never closes. The
    flag is the one cotengra sets itself in the workers of its own pools."""
    try:
        import cotengra.parallel
    except ImportError:
        return
    cotengra.parallel._IS_WORKER = True


def _summary(a) -> dict[str, Any]:
    r = a.result
    return {k: r.get(k) for k in ("energy", "energy_error", "relative_error", "exact_energy", "v_score")} | {
        "n_sites": a.n_sites
    }


def _write_index(path: Path, config: str, params: list[str], points: list[SweepPoint]) -> None:
    data = {
        "config": config,
        "parameters": params,
        "points": [
            {
                "index": p.index,
                "values": p.values,
                "archive": p.archive.as_posix(),
                "status": p.status,
                "attempts": p.attempts,
                "error": p.error,
                **{k: v for k, v in p.result.items() if k != "status"},
            }
            for p in points
        ],
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    os.replace(tmp, path)


def _worker_init() -> None:
    # one core per worker: several JAX processes on one machine otherwise oversubscribe it
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()


class _DaskPool:
    """The subset of the executor interface the sweep uses, on a distributed cluster."""

    def __init__(self, address: str):
        from distributed import Client

        self.client = Client(address, timeout="30s")

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    def shutdown(self):
        self.client.close()


def sweep(
    config_path: str | Path,
    params: list[str],
    workers: int | None = None,
    scheduler: str | None = None,
    retries: int = 2,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> list[SweepPoint]:
    """Run every grid point; returns the points with their final status (see module docstring)."""
    config_path = Path(config_path)
    text = config_path.read_text()
    parsed = [parse_param(p) for p in params]
    if not parsed:
        raise ConfigError("a sweep needs at least one --param")
    if retries < 0:
        raise ConfigError("--retries must be >= 0")
    out = Path(out_dir) if out_dir else Path("runs") / f"{config_path.stem}_sweep"
    out.mkdir(parents=True, exist_ok=True)
    points = expand(text, parsed, out, config_path.stem)
    index = out / "index.json"
    names = [n for n, _ in parsed]
    _write_index(index, str(config_path), names, points)
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers or os.cpu_count()} local processes"
    log(f"sweep of {len(points)} points over {', '.join(names)} on {where}; index {index}")

    if scheduler:
        pool = _DaskPool(scheduler)
        wait_any = _dask_wait
    else:
        pool = ProcessPoolExecutor(max_workers=workers or os.cpu_count(), mp_context=get_context("spawn"), initializer=_worker_init)
        wait_any = lambda fs: wait(fs, return_when=FIRST_COMPLETED)[0]  # noqa: E731
    running: dict[Any, SweepPoint] = {}
    try:
        for p in points:
            p.attempts = 1
            p.status = "running"
            running[pool.submit(run_point, p.config_text)] = p
        done_count = 0
        while running:
            for fut in wait_any(list(running)):
                p = running.pop(fut)
                try:
                    p.result = fut.result()
                    p.status = "completed"
                    p.error = None
                    done_count += 1
                    e, n = p.result.get("energy"), p.result.get("n_sites")
                    rel = p.result.get("relative_error")
                    how = "skipped (complete)" if p.result.get("skipped") else f"done in {p.result.get('seconds', 0):.1f} s"
                    log(
                        f"[{done_count}/{len(points)}] {p.label()}: {how}, E/N = {e / n:.8f}"
                        + (f", rel. error {rel:.2e}" if rel is not None else "")
                    )
                except Exception as err:  # noqa: BLE001 - any failure of a point is recorded
                    p.error = f"{type(err).__name__}: {err}"
                    if p.attempts <= retries:
                        p.attempts += 1
                        p.status = "retrying"
                        log(f"point {p.label()} failed ({p.error}); retry {p.attempts - 1} of {retries}")
                        running[pool.submit(run_point, p.config_text)] = p
                    else:
                        p.status = "failed"
                        done_count += 1
                        log(f"[{done_count}/{len(points)}] {p.label()}: FAILED after {p.attempts} attempts: {p.error}")
                _write_index(index, str(config_path), names, points)
    finally:
        pool.shutdown()
    failed = [p for p in points if p.status == "failed"]
    log(f"{len(points) - len(failed)} of {len(points)} points completed" + (f"; {len(failed)} failed (see {index})" if failed else ""))
    return points


def _dask_wait(futures):
    from distributed import wait as dwait

    return dwait(futures, return_when="FIRST_COMPLETED").done


def table(points: list[SweepPoint]) -> str:
    """Plain-text summary of a sweep."""
    heads = ["point", "values", "status", "attempts", "E/N", "rel. error", "archive"]
    rows = []
    for p in points:
        e, n = p.result.get("energy"), p.result.get("n_sites")
        rel = p.result.get("relative_error")
        rows.append(
            [
                str(p.index),
                p.label(),
                p.status,
                str(p.attempts),
                "-" if e is None else f"{e / n:.8f}",
                "-" if rel is None else f"{rel:.2e}",
                p.archive.name,
            ]
        )
    width = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, width)), "  ".join("-" * w for w in width)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, width)) for r in rows]
    return "\n".join(lines)
