"""Run configurations: TOML parsed into typed dataclasses.

A configuration has three tables::

    [problem]   name = registry model, then its parameters
    [method]    kind = "vmc" | "dmrg" | ..., then the method's documented options
    [output]    archive = "runs/NAME.h5", checkpoint_every = 50

Everything is validated before any computation: the problem is built, the method's options are
type-checked and checked against the problem. An unknown key is an error naming the nearest valid
key.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import hamiltonians
from hamiltonians import Problem


class ConfigError(ValueError):
    """A run configuration that cannot run; the message says what to change."""


def suggest(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        return f"list of {_type_name(arg)}"
    if tp is type(None):
        return "none"
    return getattr(tp, "__name__", str(tp))


def _check(value: Any, tp: Any) -> tuple[bool, Any]:
    """``(ok, coerced)`` for a TOML value against a type annotation."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True, value
    if origin is Literal:
        return value in typing.get_args(tp), value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, v = _check(value, arg)
            if ok:
                return True, v
        return False, value
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            return False, value
        out = []
        for item in value:
            ok, v = _check(item, arg)
            if not ok:
                return False, value
            out.append(v)
        return True, out
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    if tp is dict:
        return isinstance(value, dict), value
    raise TypeError(f"unsupported option type {tp!r}")


def parse_options(cls: type, table: dict[str, Any], where: str, ignore: typing.Iterable[str] = ()) -> Any:
    """Instantiate the dataclass ``cls`` from a TOML table, checking keys and types.

    ``where`` names the table in messages (``"[method] (kind = 'dmrg')"``); keys in ``ignore``
    are skipped (they belong to an enclosing level).
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    ignore = set(ignore)
    for key in table:
        if key not in names and key not in ignore:
            raise ConfigError(
                f"{where}: unknown key {key!r}.{suggest(key, names)} Valid keys: {', '.join(sorted(names))}"
            )
    values = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in table:
            if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing required key {f.name!r}")
            continue
        ok, v = _check(table[f.name], hints[f.name])
        if not ok:
            raise ConfigError(
                f"{where}: key {f.name!r} must be {_type_name(hints[f.name])}, got {table[f.name]!r}"
            )
        values[f.name] = v
    try:
        return cls(**values)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None


def to_table(options: Any) -> dict[str, Any]:
    """The dataclass as a TOML-ready dict (``None`` values omitted: TOML has no null)."""
    return {k: v for k, v in dataclasses.asdict(options).items() if v is not None}


@dataclass
class OutputOptions:
    """``[output]`` keys of a run configuration."""

    archive: str | None = None
    """Archive path; default ``runs/<config file stem>.h5``."""
    checkpoint_every: int | None = None
    """Steps between checkpoints (VMC iterations, DMRG sweeps); default chosen by the method."""
    observables: list[str] = dataclasses.field(default_factory=list)
    """Observables measured on the final state and stored in ``/result/observables``
    (``nqs.observables.available(problem)`` lists them)."""

    def __post_init__(self):
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")


@dataclass
class RunConfig:
    """A validated run configuration."""

    text: str
    problem: Problem
    kind: str
    method: type
    options: Any
    output: OutputOptions
    path: Path | None = None

    @property
    def archive_path(self) -> Path:
        if self.output.archive:
            p = Path(self.output.archive)
        else:
            stem = self.path.stem if self.path is not None else "run"
            p = Path("runs") / f"{stem}.h5"
        return p

    @property
    def checkpoint_every(self) -> int:
        return self.output.checkpoint_every or self.method.default_checkpoint_every


_TOP = ("problem", "method", "output")


def loads(text: str, path: Path | None = None) -> RunConfig:
    """Parse and validate a configuration given as TOML text."""
    from .methods import method_class

    where = str(path) if path is not None else "config"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where} is not valid TOML: {err}") from None
    for key in raw:
        if key not in _TOP:
            raise ConfigError(f"{where}: unknown table or key {key!r}.{suggest(key, _TOP)} Valid: [problem], [method], [output]")
    for key in ("problem", "method"):
        if key not in raw or not isinstance(raw[key], dict):
            raise ConfigError(f"{where}: missing the [{key}] table")
    prob = dict(raw["problem"])
    name = prob.pop("name", None)
    if name is None:
        raise ConfigError(f"{where}: [problem] needs name = one of {', '.join(hamiltonians.available())}")
    try:
        problem = hamiltonians.get(name, **prob)
    except ValueError as err:
        raise ConfigError(f"{where}: [problem] {err}") from None
    meth = dict(raw["method"])
    kind = meth.get("kind")
    if kind is None:
        raise ConfigError(f"{where}: [method] needs kind = \"vmc\", \"dmrg\", ...")
    cls = method_class(kind, where)
    if problem.is_open and not getattr(cls, "open_problems", False):
        raise ConfigError(
            f"{where}: [method] kind {kind!r} seeks a pure (ground) state of a Hamiltonian, but {problem.label} "
            "is an open problem (jump operators) whose state is a mixed one; use kind = \"steady_state\" "
            "(model = \"transformer\") for its steady state"
        )
    options = cls.parse_options(meth, problem, where=f"{where}: [method] (kind = {kind!r})")
    out = parse_options(OutputOptions, raw.get("output", {}), where=f"{where}: [output]")
    if out.observables:
        from ..observables import available

        known = available(problem)
        for name in out.observables:
            if name not in known:
                raise ConfigError(
                    f"{where}: [output] observable {name!r} is not defined for {problem.name}.{suggest(name, known)} "
                    f"Available: {', '.join(known)}"
                )
    return RunConfig(text=text, problem=problem, kind=kind, method=cls, options=options, output=out, path=path)


def load(path: str | Path) -> RunConfig:
    """Read and validate a run configuration file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"no configuration file at {path}")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not valid TOML: not a text file") from None
    return loads(text, path)
