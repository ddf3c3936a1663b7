"""Ansatz registry: the ``model = "..."`` names a VMC run configuration accepts.

Each entry says how to build the flax module for a problem, which options it takes (a dataclass
whose fields are the documented TOML keys), how it is sampled, and which problems it fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hamiltonians import Problem


@dataclass(frozen=True)
class ModelSpec:
    name: str
    options: type
    """Dataclass of the model's hyperparameters (TOML keys in ``[method]``)."""
    build: Callable[[Problem, Any], Any]
    """``build(problem, options) -> flax module`` acting on NetKet configurations."""
    sampler: str
    """``"metropolis"`` (Markov chain) or ``"direct"`` (exact autoregressive sampling)."""
    fits: Callable[[Problem], str | None]
    """``None`` if the model applies to the problem, else the reason it does not."""
    summary: str = ""


_MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> None:
    if spec.name in _MODELS:
        raise ValueError(f"model {spec.name!r} is already registered")
    _MODELS[spec.name] = spec


def model_spec(name: str) -> ModelSpec:
    return _MODELS[name]


def model_names() -> list[str]:
    return sorted(_MODELS)


def any_problem(problem: Problem) -> str | None:
    return None
