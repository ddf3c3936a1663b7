"""Ansatz registry: the ``model = "..."`` names a VMC run configuration accepts.

Each entry says how to build the flax module for a problem, which options it takes (a dataclass
whose fields are the documented TOML keys), how it is sampled, and which problems it fits. Every
module of :mod:`nqs.models` is imported on the first look-up, so a new ansatz is one new file
ending in a :func:`register_model` call.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from hamiltonians import Problem


@dataclass(frozen=True)
class ModelSpec:
    """A VMC ansatz as the registry knows it: options dataclass, builder, applicability."""

    name: str
    """The ``[method] model`` value."""
    options: type
    """Dataclass of the model's hyperparameters (TOML keys in ``[method]``)."""
    build: Callable[[Problem, Any], Any]
    """``build(problem, options) -> flax module`` acting on NetKet configurations."""
    fits: Callable[[Problem], str | None]
    """``None`` if the model applies to the problem, else the reason it does not."""
    summary: str = ""
    direct: bool = False
    """Exact (autoregressive) sampling: no Markov chain, no thermalisation."""
    make_sampler: Callable[..., Any] | None = None
    """``make_sampler(problem, hilbert, hamiltonian, vmc_options) -> netket sampler``; ``None``
    lets VMC choose (exchange moves for spin models, Hamiltonian moves otherwise)."""
    check: Callable[[Problem, Any], str | None] | None = None
    """``check(problem, options)``: ``None`` if the hyperparameters suit the problem (e.g. patch
    sizes that tile the lattice), else what to change; called when the configuration is parsed."""


_MODELS: dict[str, ModelSpec] = {}
_discovered = False


def register_model(spec: ModelSpec) -> None:
    """Make ``spec`` selectable as ``model = spec.name``; a second, different spec of that name
    is a ``ValueError``."""
    if spec.name in _MODELS and _MODELS[spec.name] is not spec:
        raise ValueError(f"model {spec.name!r} is already registered")
    _MODELS[spec.name] = spec


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    import nqs.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name != "registry":
            importlib.import_module(f"nqs.models.{info.name}")


def model_spec(name: str) -> ModelSpec:
    """The registered ansatz ``name`` (``KeyError`` if unknown)."""
    _discover()
    return _MODELS[name]


def model_names() -> list[str]:
    """Names of every registered ansatz, sorted (imports the modules of ``nqs.models``)."""
    _discover()
    return sorted(_MODELS)


AUTO_PREFERENCE = ("gauge_transformer", "hfds", "transformer", "rbm")
"""``model = "auto"`` (the default) takes the first of these that fits the problem: the gauge
Transformer on link models, HFDS for t-J, the Transformer for spin and anyon chains, else the RBM.
Measured on every family across its phase diagram: ``bench/defaults.py``."""


def default_model(problem: Problem) -> str:
    """The registry name ``model = "auto"`` resolves to on ``problem`` (:data:`AUTO_PREFERENCE`)."""
    _discover()
    for name in AUTO_PREFERENCE:
        if name in _MODELS and _MODELS[name].fits(problem) is None:
            return name
    raise ValueError(f"no registered model fits problem {problem.name!r}")


def any_problem(problem: Problem) -> str | None:
    return None
