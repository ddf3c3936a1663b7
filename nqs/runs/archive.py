"""The run archive: one self-describing HDF5 file per run, written atomically.

Layout (``format_version`` 1)::

    /            attrs: format_version, created, updated, status, package versions (versions),
                        git revision, host, devices
    /config      attrs: toml (the full run configuration; enough to rerun)
    /problem     attrs: name, parameters (JSON), n_sites, sector (JSON), formula, label
    /history     datasets of equal length: step, energy, energy_error, variance, wall_time, ...
    /result      attrs: energy, energy_error, variance, v_score, exact_energy, relative_error,
                        reference_source, n_parameters, wall_time, steps; groups for observables
    /checkpoint  attrs: step; group state: the method's state tree (parameters, optimiser,
                        sampler, RNG) -- enough to continue exactly

Energies are totals (not per site); ``/problem`` holds ``n_sites``. Every write replaces the
whole file through a temporary file, ``fsync`` and ``os.replace``: a killed process leaves the
previous complete archive, never a partial one.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

FORMAT_VERSION = 1
_MAGIC = "nqs-toolkit archive"


class ArchiveError(Exception):
    """A file that is not a readable toolkit archive."""


# ---------------------------------------------------------------------------- metadata
def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for pkg in ("nqs-toolkit", "netket", "jax", "flax", "optax", "quimb", "h5py", "numpy", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if rev.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=5,
            )
            return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def _devices() -> str:
    if "jax" not in sys.modules:
        return "cpu (no JAX in this run)"
    import jax

    devices = ", ".join(str(d) for d in jax.devices())
    if jax.process_count() > 1:  # one run over several processes (nqs.runs.distributed)
        devices += f" ({jax.process_count()} processes)"
    return devices


def run_metadata() -> dict[str, str]:
    """Provenance stored in the root attributes."""
    return {
        "versions": json.dumps(_versions()),
        "git_revision": _git_revision(),
        "host": socket.gethostname(),
        "devices": _devices(),
    }


# ---------------------------------------------------------------------------- state trees
def write_tree(group: h5py.Group, tree: Any) -> None:
    """Store a nested dict of arrays / numbers / strings / None under ``group``."""
    if not isinstance(tree, dict):
        raise TypeError("the root of a state tree must be a dict")
    for key, value in tree.items():
        name = str(key).replace("/", "\u2215")
        if isinstance(value, dict):
            write_tree(group.create_group(name), value)
        elif value is None:
            ds = group.create_dataset(name, data=h5py.Empty("f8"))
            ds.attrs["pytype"] = "none"
        elif isinstance(value, (bool, np.bool_)):
            ds = group.create_dataset(name, data=bool(value))
            ds.attrs["pytype"] = "bool"
        elif isinstance(value, int):
            ds = group.create_dataset(name, data=value)
            ds.attrs["pytype"] = "int"
        elif isinstance(value, float):
            ds = group.create_dataset(name, data=value)
            ds.attrs["pytype"] = "float"
        elif isinstance(value, complex):
            ds = group.create_dataset(name, data=value)
            ds.attrs["pytype"] = "complex"
        elif isinstance(value, str):
            ds = group.create_dataset(name, data=value)
            ds.attrs["pytype"] = "str"
        else:
            arr = np.asarray(value)
            if arr.dtype == object:
                raise TypeError(f"cannot store {key!r} of type {type(value).__name__} in an archive")
            group.create_dataset(name, data=arr)


def read_tree(group: h5py.Group) -> dict:
    out: dict[str, Any] = {}
    for name, item in group.items():
        key = name.replace("\u2215", "/")
        if isinstance(item, h5py.Group):
            out[key] = read_tree(item)
            continue
        kind = item.attrs.get("pytype")
        if kind == "none":
            out[key] = None
        elif kind == "bool":
            out[key] = bool(item[()])
        elif kind == "int":
            out[key] = int(item[()])
        elif kind == "float":
            out[key] = float(item[()])
        elif kind == "complex":
            out[key] = complex(item[()])
        elif kind == "str":
            v = item[()]
            out[key] = v.decode() if isinstance(v, bytes) else str(v)
        else:
            out[key] = item[()]
    return out


# ---------------------------------------------------------------------------- records
@dataclass
class Archive:
    """A run archive in memory: what :func:`load` returns and :func:`save` writes."""

    config_toml: str
    problem: dict[str, Any]
    history: dict[str, np.ndarray] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    observables: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] | None = None
    checkpoint_step: int | None = None
    status: str = "running"
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The run configuration, parsed from the stored TOML."""
        return tomllib.loads(self.config_toml)

    @property
    def n_sites(self) -> int:
        return int(self.problem["n_sites"])

    @property
    def method(self) -> str:
        return str(self.config.get("method", {}).get("kind", "?"))

    @property
    def model(self) -> str:
        """The ansatz as run (``model = "auto"`` or no key: the registry's choice, from the stored
        options), else the method's kind."""
        m = self.config.get("method", {})
        resolved = json.loads(self.meta.get("options") or "{}").get("model")
        return str(resolved or m.get("model", m.get("kind", "?")))

    @property
    def label(self) -> str:
        return self.path.stem if self.path is not None else self.problem.get("label", "run")

    def __repr__(self) -> str:
        e = self.result.get("energy")
        return (
            f"Archive({self.path}, {self.problem.get('label')}, method={self.method}, "
            f"status={self.status}, steps={len(self.history.get('step', []))}, energy={e})"
        )


def save(path: str | Path, archive: Archive) -> None:
    """Write ``archive`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["magic"] = _MAGIC
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["created"] = archive.meta.get("created", now)
            f.attrs["updated"] = now
            f.attrs["status"] = archive.status
            for k, v in archive.meta.items():
                if k not in ("created", "updated", "format_version", "magic", "status"):
                    f.attrs[k] = v
            g = f.create_group("config")
            g.attrs["toml"] = archive.config_toml
            g = f.create_group("problem")
            for k, v in archive.problem.items():
                g.attrs[k] = json.dumps(v) if isinstance(v, (dict, list)) else v
            g = f.create_group("history")
            lengths = {len(v) for v in archive.history.values()}
            if len(lengths) > 1:
                raise ValueError(f"history columns have different lengths: {lengths}")
            for k, v in archive.history.items():
                g.create_dataset(k, data=np.asarray(v))
            g = f.create_group("result")
            for k, v in archive.result.items():
                if v is not None:
                    g.attrs[k] = v
            if archive.observables:
                write_tree(g.create_group("observables"), archive.observables)
            if archive.checkpoint is not None:
                g = f.create_group("checkpoint")
                g.attrs["step"] = int(archive.checkpoint_step or 0)
                write_tree(g.create_group("state"), archive.checkpoint)
            f.flush()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        try:
            dirfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
        except OSError:  # pragma: no cover - platforms without directory fsync
            pass
        archive.meta.setdefault("created", now)
        archive.path = path
    finally:
        if tmp.exists():
            tmp.unlink()


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def load(path: str | Path, checkpoint: bool = False) -> Archive:
    """Read an archive: configuration, problem, history, result (and the checkpoint tree when
    ``checkpoint=True``).

    Raises:
        FileNotFoundError: no such file.
        ArchiveError: the file is not HDF5, not a toolkit archive, or from a newer format.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no archive at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ArchiveError(f"{path} is not a readable HDF5 archive ({err})") from None
    with f:
        if f.attrs.get("magic") != _MAGIC or "config" not in f:
            raise ArchiveError(f"{path} is an HDF5 file but not an nqs-toolkit archive")
        version = int(f.attrs["format_version"])
        if version > FORMAT_VERSION:
            raise ArchiveError(f"{path} has archive format {version}; this toolkit reads up to {FORMAT_VERSION}")
        try:
            problem = {}
            for k, v in f["problem"].attrs.items():
                v = _attr(v)
                if k in ("parameters", "sector") and isinstance(v, str):
                    v = json.loads(v)
                problem[k] = v
            arch = Archive(
                config_toml=_attr(f["config"].attrs["toml"]),
                problem=problem,
                history={k: np.asarray(v[()]) for k, v in f["history"].items()},
                result={k: _attr(v) for k, v in f["result"].attrs.items()},
                observables=read_tree(f["result/observables"]) if "result/observables" in f else {},
                status=_attr(f.attrs.get("status", "unknown")),
                meta={k: _attr(v) for k, v in f.attrs.items() if k not in ("magic", "status")},
                path=path,
            )
            if "checkpoint" in f:
                arch.checkpoint_step = int(f["checkpoint"].attrs["step"])
                if checkpoint:
                    arch.checkpoint = read_tree(f["checkpoint/state"])
        except (KeyError, ValueError, json.JSONDecodeError) as err:
            raise ArchiveError(f"{path} is a damaged archive: {err}") from None
    return arch
