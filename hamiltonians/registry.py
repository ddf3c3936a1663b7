"""The model registry: ``get(name, **params)`` and ``available()``.

A model registers its builder function once; the function's signature *is* the parameter
specification (names, types from the annotations, defaults), so the registry, the run-config
parser and the documentation cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable

from .problem import Problem


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # "int", "float", "bool", "list", "float|None", "int|None"
    default: Any
    required: bool


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., Problem]
    parameters: tuple[Parameter, ...]

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.builder) or ""
        return doc.splitlines()[0] if doc else ""

    def signature(self) -> str:
        parts = []
        for p in self.parameters:
            parts.append(p.name if p.required else f"{p.name}={p.default!r}")
        return f"{self.name}({', '.join(parts)})"


_MODELS: dict[str, ModelSpec] = {}


def _kind(annotation: Any) -> str:
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
    else:
        text = getattr(annotation, "__name__", str(annotation))
    if text in ("int", "float", "bool"):
        return text
    if text in ("float|None", "Optional[float]"):
        return "float|None"
    if text in ("int|None", "Optional[int]"):
        return "int|None"
    if text == "bool|list[bool]":
        return "bool|list[bool]"
    if text.startswith(("list", "tuple", "typing.Sequence", "Sequence")):
        return "list"
    raise TypeError(f"unsupported parameter annotation {annotation!r}")


def register(name: str, builder: Callable[..., Problem]) -> None:
    """Register a model; its keyword parameters are read from ``builder``'s signature."""
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    params = []
    for p in inspect.signature(builder).parameters.values():
        required = p.default is inspect.Parameter.empty
        params.append(Parameter(p.name, _kind(p.annotation), None if required else p.default, required))
    _MODELS[name] = ModelSpec(name, builder, tuple(params))


def _suggest(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def _coerce(model: str, p: Parameter, value: Any) -> Any:
    where = f"{model}: parameter {p.name!r}"
    if p.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if p.kind == "int|None" and value is None:
        return None
    if p.kind in ("int", "int|None"):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                raise ValueError(f"{where} must be an integer, got {value!r} (write {int(value)})")
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if p.kind in ("float", "float|None"):
        if value is None and p.kind == "float|None":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if p.kind == "bool|list[bool]":
        # boundary flags: one for both directions or one per direction (x, y); equal flags collapse
        if isinstance(value, bool):
            return value
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, bool) for v in value):
            return value[0] if value[0] == value[1] else [value[0], value[1]]
        raise ValueError(
            f"{where} must be true, false or one flag per direction [x, y] (a cylinder periodic "
            f"around x: [true, false]), got {value!r}"
        )
    if p.kind == "list":
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where} must be a list, got {value!r}")
        return [list(v) if isinstance(v, (list, tuple)) else v for v in value]
    raise AssertionError(p.kind)


def spec(name: str) -> ModelSpec:
    """The registered model ``name`` (its builder and typed parameters); ``ValueError`` listing
    the registered names if unknown."""
    if name not in _MODELS:
        known = ", ".join(sorted(_MODELS))
        raise ValueError(f"unknown model {name!r}.{_suggest(name, _MODELS)} Registered models: {known}")
    return _MODELS[name]


def validate(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Type-checked parameters with defaults filled in (model-specific checks happen in the
    builder)."""
    s = spec(name)
    known = {p.name: p for p in s.parameters}
    for key in params:
        if key not in known:
            raise ValueError(
                f"{name}: unknown parameter {key!r}.{_suggest(key, known)} "
                f"Parameters: {s.signature()}"
            )
    out = {}
    for p in s.parameters:
        if p.name in params:
            out[p.name] = _coerce(name, p, params[p.name])
        elif p.required:
            raise ValueError(f"{name}: missing required parameter {p.name!r}. Parameters: {s.signature()}")
        else:
            out[p.name] = p.default
    return out


def get(name: str, **params: Any) -> Problem:
    """The registered problem ``name`` with the given parameters.

    Raises:
        ValueError: unknown model (the message lists the registered ones), unknown or mistyped
            parameter, or parameter values the model rejects (the message names the parameter
            and the allowed range).
    """
    s = spec(name)
    validated = validate(name, params)
    shown = tuple(p.name for p in s.parameters if p.required or validated[p.name] != p.default)
    return dataclasses.replace(s.builder(**validated), name=name, params=validated, shown_params=shown, _cache={})


def available() -> dict[str, str]:
    """Registered models: ``{name: "name(param=default, ...)  -- summary"}``."""
    return {n: f"{s.signature()}  -- {s.summary}" for n, s in sorted(_MODELS.items())}
