"""``nqs run``: build the problem and method from a configuration, run with progress, archive.

The archive is rewritten atomically at every checkpoint and at the end; a run killed at any
moment leaves the last complete archive, and ``resume=True`` continues from its checkpoint with
the saved parameters, optimiser, sampler and RNG state, so it reaches the same result as an
uninterrupted run with the same seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tomllib

from hamiltonians import Problem

from . import distributed
from .archive import Archive, ArchiveError, load, run_metadata, save
from .config import RunConfig, loads
from .diagnostics import relative_error, run_warnings
from .methods import explain_options


class RunError(RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


def problem_record(problem) -> dict[str, Any]:
    return {
        "name": problem.name,
        "label": problem.label,
        "parameters": problem.params,
        "n_sites": problem.n_sites,
        "sector": problem.sector,
        "formula": problem.formula,
        "local_space": problem.local_space.name,
    }


def summarize(energy: float, n_sites: int, exact: float | None, variance: float | None = None, e_inf: float = 0.0) -> dict[str, Any]:
    """Error against the exact energy (``error_per_site``, and ``relative_error`` where the exact
    energy is not zero) and V-score (``N Var E / (E - E_inf)^2``, Wu et al., Science 2024)."""
    out: dict[str, Any] = {"energy": energy, "energy_per_site": energy / n_sites}
    if exact is not None:
        out["exact_energy"] = exact
        out["error_per_site"] = (energy - exact) / n_sites
        rel = relative_error(energy, exact, n_sites)
        if rel is not None:
            out["relative_error"] = rel
    if variance is not None and np.isfinite(variance) and energy != e_inf:
        out["variance"] = variance
        out["v_score"] = n_sites * variance / (energy - e_inf) ** 2
    return out


@dataclass
class _Recorder:
    """Collects the history, shows progress and writes checkpoints for one run."""

    archive: Archive
    path: Path
    every: int
    total: int
    start: int
    exact: float | None
    n_sites: int
    wall_offset: float
    progress: bool
    history: dict[str, list] = field(default_factory=dict)
    _bar: Any = None
    _t0: float = field(default_factory=time.perf_counter)

    def __post_init__(self):
        self.history = {k: list(v) for k, v in self.archive.history.items()}
        if self.progress:
            from tqdm.auto import tqdm

            interactive = sys.stderr.isatty()
            self._bar = tqdm(
                total=self.total,
                initial=self.start,
                desc=self.archive.problem["label"][:40],
                unit="step",
                dynamic_ncols=True,
                mininterval=0.2 if interactive else 10.0,
                file=sys.stderr,
            )

    def wall(self) -> float:
        return self.wall_offset + time.perf_counter() - self._t0

    def record(self, step: int, values: dict[str, float]) -> None:
        energy = float(values["energy"])
        if not math.isfinite(energy):
            raise RunError(
                f"the energy became {energy} at step {step}; the archive keeps the last checkpoint "
                f"(step {self.archive.checkpoint_step or 0}). Lower the learning rate or raise diag_shift."
            )
        row = {"step": step, **{k: float(v) for k, v in values.items()}, "wall_time": self.wall()}
        n = len(self.history.get("step", []))
        for k in set(self.history) | set(row):
            col = self.history.setdefault(k, [math.nan] * n)
            col.append(row.get(k, math.nan))
        if self._bar is not None:
            post = {"E/N": f"{energy / self.n_sites:.6f}"}
            if "energy_error" in values:
                post["err/N"] = f"{values['energy_error'] / self.n_sites:.1e}"
            if self.exact is not None:
                rel = relative_error(energy, self.exact, self.n_sites)
                post["rel.err" if rel is not None else "dE/N"] = (
                    f"{rel if rel is not None else (energy - self.exact) / self.n_sites:.2e}")
            for k in ("bond_dim", "acceptance", "effective_samples"):
                if k in values:
                    post[k] = f"{values[k]:.3g}"
            self._bar.set_postfix(post, refresh=False)
            self._bar.update(1)

    def checkpoint_due(self, step: int) -> bool:
        return (step + 1) % self.every == 0

    def checkpoint(self, next_step: int, state: dict[str, Any]) -> None:
        self.archive.history = {k: np.asarray(v) for k, v in self.history.items()}
        self.archive.checkpoint = state
        self.archive.checkpoint_step = next_step
        self.archive.result["wall_time"] = self.wall()
        if distributed.is_writer():  # the state above is gathered on every process; one writes
            save(self.path, self.archive)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _comparable(config_toml: str, method_cls) -> dict[str, Any]:
    raw = tomllib.loads(config_toml)
    meth = {k: v for k, v in raw.get("method", {}).items() if k not in method_cls.resumable_keys}
    return {"problem": raw.get("problem", {}), "method": meth}


def resolved_options(options: Any, problem: Problem | None = None) -> str:
    """The method's options after defaults were filled in (the model's, and those that depend on
    the problem), as JSON: stored in the archive (``meta["options"]``) because the config's text
    alone does not pin them across versions of the defaults. With ``problem``, ``"auto"`` options
    of the method and of its model are stored as what they resolve to there (each options class
    answers for itself: :func:`~nqs.runs.methods.explain_options`), so that a changed rule is
    seen too."""
    record = dataclasses.asdict(options)
    if problem is not None:
        for key, (value, _) in explain_options(options, problem).items():
            if key.startswith("model_options."):
                record["model_options"][key.removeprefix("model_options.")] = value
            else:
                record[key] = value
    return json.dumps(record, default=str, sort_keys=True)


def _default_changes(was: dict[str, Any], config: RunConfig, where: Path) -> dict[str, tuple[Any, Any]]:
    """Options (``model_options`` flattened into the method's) whose value in an archive's
    resolved options (``was``) differs from today's resolution of ``config``: ``(archived,
    today's)`` by name. An option newer than the archive takes the value of the model options' ``predates``
    (``RunError`` if absent), or of the method options' own ``predates``. An archived ``"auto"`` that is still ``"auto"`` today matches what it
    resolves to: the archive was written before ``auto`` options were stored resolved."""
    now = json.loads(resolved_options(config.options, config.problem))
    written = json.loads(resolved_options(config.options))
    predates = getattr(getattr(config.options, "model_options", None), "predates", {})
    top_predates = getattr(config.options, "predates", {})

    def moved(old: Any, new: Any, today: Any) -> bool:
        return old != new and not (old == "auto" and today == "auto")

    changes: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(was) | set(now)):
        old, new = was.get(key), now.get(key)
        if key == "model_options" and isinstance(old, dict) and isinstance(new, dict):
            for sub in sorted(set(old) | set(new)):
                if sub not in old:
                    if sub not in predates:
                        raise RunError(f"{where}: the archive predates option {sub!r}; write its value in [method]")
                    old[sub] = predates[sub]
                if moved(old.get(sub), new.get(sub), written["model_options"].get(sub)):
                    changes[sub] = (old.get(sub), new.get(sub))
        else:
            if key not in was and key in top_predates:  # an option newer than the archive
                old = top_predates[key]
            if moved(old, new, written.get(key)):
                changes[key] = (old, new)
    return changes


def archived_config(archive: Archive) -> RunConfig:
    """The archive's run configuration with the defaults it ran with, to rebuild its method (e.g.
    to evaluate a checkpoint): every option whose default has changed since (the archive's
    resolved options, ``meta["options"]``, against today's resolution of the same text) is
    written into ``[method]``. An option newer than the archive takes the value that was in
    effect before it existed, from the model options' ``predates`` table; ``RunError`` if there
    is none. Archives written before the options were stored come back as written."""
    import tomli_w

    config = loads(archive.config_toml)
    if "options" not in archive.meta:
        return config
    pinned = {key: old for key, (old, _) in _default_changes(json.loads(archive.meta["options"]), config, archive.path).items()}
    unset = sorted(k for k, v in pinned.items() if v is None)
    if unset:
        raise RunError(f"{archive.path}: defaults {unset} changed from unset; write their values in [method]")
    if not pinned:
        return config
    raw = tomllib.loads(archive.config_toml)
    raw.setdefault("method", {}).update(pinned)
    return loads(tomli_w.dumps(raw))


def _check_resumable(old: Archive, config: RunConfig) -> None:
    a, b = _comparable(old.config_toml, config.method), _comparable(config.text, config.method)
    diffs = []
    for table in ("problem", "method"):
        for key in sorted(set(a[table]) | set(b[table])):
            if a[table].get(key) != b[table].get(key):
                diffs.append(f"[{table}] {key}: archive {a[table].get(key)!r}, config {b[table].get(key)!r}")
    if not diffs and "options" in old.meta:
        # same text, but the defaults it leaves to the code may have changed since (archives
        # written before the options were stored are not checked)
        keep = config.method.resumable_keys
        diffs = [
            f"default {key}: archive {was!r}, now {now!r} (write the archive's value in [method])"
            for key, (was, now) in _default_changes(json.loads(old.meta["options"]), config, old.path).items()
            if key not in keep
        ]
    if diffs:
        raise RunError(
            f"cannot resume {old.path}: the configuration differs from the archived one:\n  "
            + "\n  ".join(diffs)
            + f"\nOnly {', '.join(sorted(config.method.resumable_keys)) or 'nothing'} may change on resume."
        )


def run(
    config: RunConfig,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Archive:
    """Run a configuration to completion and return its archive.

    Args:
        resume: continue from the archive's last checkpoint (the configuration must match, except
            for the method's ``resumable_keys`` such as ``n_iter``).
        overwrite: replace an existing archive instead of refusing to touch it.

    Over several JAX processes (:mod:`~nqs.runs.distributed`) every process calls this with
    the same configuration and reads the archive on resume; process 0 alone writes it, logs
    and shows progress.
    """
    if not distributed.is_writer():
        progress, log = False, lambda _message: None
    path = config.archive_path
    problem = config.problem
    old: Archive | None = None
    if path.exists():
        if resume:
            try:
                old = load(path, checkpoint=True)
            except ArchiveError as err:
                raise RunError(f"cannot resume: {err}") from None
            _check_resumable(old, config)
        elif not overwrite:
            try:
                prev = load(path)
                what = f"status {prev.status}, {len(prev.history.get('step', []))} steps"
            except ArchiveError:
                what = "not a readable archive"
            raise RunError(
                f"{path} exists ({what}); use --resume to continue it or --overwrite to replace it"
            )
    elif resume:
        raise RunError(f"--resume: there is no archive at {path} to continue")
    # every process has looked at the archive before process 0 (re)writes it
    distributed.barrier("nqs-run-archive-checked")

    # a method that is not after the ground state (``ground_state = False``: time evolution)
    # has no reference energy to be compared with
    ref = problem.reference_energy() if config.method.ground_state else None
    exact, source = (ref if ref is not None else (None, None))
    if exact is not None:
        log(f"reference energy {exact:.10f} ({exact / problem.n_sites:.8f} per site) from {source}")

    method = config.method(problem, config.options)
    start = 0
    if old is not None and old.checkpoint is not None:
        start = int(old.checkpoint_step)
        method.load_state_dict(old.checkpoint)
        keep = np.asarray(old.history.get("step", []), dtype=int) < start
        old.history = {k: np.asarray(v)[keep] for k, v in old.history.items()}
        log(f"resuming {path} at step {start} of {method.total_steps}")

    archive = old or Archive(
        config_toml=config.text,
        problem=problem_record(problem),
        meta=run_metadata(),
    )
    archive.config_toml = config.text
    archive.meta["options"] = resolved_options(config.options, problem)  # also on resume: n_iter may grow
    archive.status = "running"
    archive.result.update({"n_parameters": method.n_parameters, "method": config.kind})
    wall_offset = float(archive.history["wall_time"][-1]) if len(archive.history.get("wall_time", [])) else 0.0
    recorder = _Recorder(
        archive=archive,
        path=path,
        every=config.checkpoint_every,
        total=method.total_steps,
        start=start,
        exact=exact,
        n_sites=problem.n_sites,
        wall_offset=wall_offset,
        progress=progress,
    )
    if start == 0:
        recorder.checkpoint(0, method.state_dict())
    try:
        method.run(start, recorder)
        final = method.final_result()
        if config.output.observables:
            log(f"measuring {', '.join(config.output.observables)}")
            final["observables"] = method.measure(list(config.output.observables))
    except BaseException as err:
        recorder.close()
        # Keep the last checkpoint and its history; only the status changes.
        try:
            if distributed.is_writer():
                last = load(path, checkpoint=True)
                last.status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
                last.result["error"] = f"{type(err).__name__}: {err}"
                save(path, last)
        except (ArchiveError, OSError):
            pass
        raise
    recorder.close()

    result = dict(archive.result)
    result["n_parameters"] = method.n_parameters
    result.update(
        summarize(
            float(final["energy"]),
            problem.n_sites,
            exact,
            final.get("variance"),
            problem.e_infinite_temperature,
        )
    )
    for k, v in final.items():
        if k not in ("energy", "variance", "observables") and v is not None:
            result[k] = v
    if source is not None:
        result["reference_source"] = source
    result["steps"] = len(recorder.history.get("step", []))
    result["wall_time"] = recorder.wall()
    result.pop("error", None)
    # a variational bound holds against exact energies only, not against published variational ones
    bound = exact if source is not None and source.lower().startswith(("exact", "bethe")) else None
    warnings = run_warnings(recorder.history, final, bound)
    result.pop("warnings", None)
    if warnings:
        result["warnings"] = "; ".join(warnings)
        for w in warnings:
            log(f"warning: {w}")
    archive.result = result
    archive.observables = final.get("observables", {}) or {}
    archive.status = "completed"
    archive.history = {k: np.asarray(v) for k, v in recorder.history.items()}
    archive.checkpoint = method.state_dict()
    archive.checkpoint_step = int(archive.history["step"][-1]) + 1 if len(archive.history.get("step", [])) else 0
    if distributed.is_writer():
        save(path, archive)
    return archive
