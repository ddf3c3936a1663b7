"""The contract between the runner and a ground-state method (VMC, DMRG, PEPS, ANTN).

Methods are found through the ``nqs.methods`` entry-point group declared in ``pyproject.toml``
(``vmc`` lives here, ``dmrg`` and the other tensor-network methods in :mod:`tensornets`), so the
runner never imports :mod:`tensornets` itself and the dependency direction of the design holds.
"""

from __future__ import annotations

import abc
from importlib import metadata
from typing import Any, ClassVar, Protocol

from hamiltonians import Problem

from .config import ConfigError, parse_options, suggest


class Recorder(Protocol):
    """What a method reports to while it runs (implemented by the runner)."""

    def record(self, step: int, values: dict[str, float]) -> None:
        """Values of one finished step (``energy`` is required; totals, not per site)."""

    def checkpoint_due(self, step: int) -> bool:
        """Whether to checkpoint after finishing ``step``."""

    def checkpoint(self, next_step: int, state: dict[str, Any]) -> None:
        """Store the method's state, from which the run continues at ``next_step``."""


class NullRecorder:
    """A :class:`Recorder` that keeps nothing: runs a method outside the runner (a ground state
    prepared inside another method, a benchmark, a test)."""

    def record(self, step: int, values: dict[str, float]) -> None:
        pass

    def checkpoint_due(self, step: int) -> bool:
        return False

    def checkpoint(self, next_step: int, state: dict[str, Any]) -> None:
        pass


class Method(abc.ABC):
    """A ground-state method run by ``nqs run``."""

    kind: ClassVar[str]
    Options: ClassVar[type]
    default_checkpoint_every: ClassVar[int] = 50
    ground_state: ClassVar[bool] = True
    """Whether the method seeks the ground state (its energy is then compared with the reference)."""
    open_problems: ClassVar[bool] = False
    """Whether the method handles open problems (jump operators: a mixed state, not a ground
    state); the configuration refuses any other method for them (``kind = "steady_state"``)."""
    resumable_keys: ClassVar[frozenset[str]] = frozenset()
    """Options that may differ between an archive and the configuration that resumes it
    (e.g. a larger ``n_iter`` to extend a finished run)."""

    def __init__(self, problem: Problem, options: Any):
        self.problem = problem
        self.options = options

    @classmethod
    def parse_options(cls, table: dict[str, Any], problem: Problem, where: str) -> Any:
        """Typed options from the ``[method]`` table; incompatibilities with the problem raise
        :class:`~nqs.runs.config.ConfigError` before any computation."""
        options = parse_options(cls.Options, table, where, ignore=("kind",))
        cls.check(problem, options, where)
        return options

    @classmethod
    def check(cls, problem: Problem, options: Any, where: str) -> None:
        """Reject options that cannot work on ``problem`` (default: accept)."""

    @property
    @abc.abstractmethod
    def total_steps(self) -> int:
        """Number of steps of a complete run (iterations or sweeps)."""

    @property
    @abc.abstractmethod
    def n_parameters(self) -> int:
        """Number of variational parameters (real numbers)."""

    @abc.abstractmethod
    def run(self, start: int, recorder: Recorder) -> None:
        """Run steps ``start .. total_steps-1`` (or stop early when converged)."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: parameters, optimiser, sampler, RNG."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""

    @abc.abstractmethod
    def final_result(self) -> dict[str, Any]:
        """Final estimates: ``energy`` and, where available, ``energy_error``, ``variance``."""

    def measure(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Observables of the final state, ``{name: {"mean": array[, "error": array]}}``
        (:mod:`nqs.observables`). Called after :meth:`final_result`."""
        raise NotImplementedError(f"method {self.kind!r} cannot measure observables yet")


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group="nqs.methods")}


def available_methods() -> list[str]:
    return sorted(_entry_points())


def method_class(kind: str, where: str = "config") -> type[Method]:
    eps = _entry_points()
    if kind not in eps:
        known = ", ".join(sorted(eps)) or "none (is the package installed? run `make demo` or `pip install -e .`)"
        raise ConfigError(f"{where}: [method] unknown kind {kind!r}.{suggest(kind, eps)} Known kinds: {known}")
    return eps[kind].load()


def explain_options(options: Any, problem: Problem) -> dict[str, tuple[Any, str]]:
    """What the ``"auto"`` options of a method's ``options`` (and of its ``model_options``, keys
    prefixed ``model_options.``) resolve to on ``problem``, and why: ``{key: (value, reason)}``.
    Each options dataclass answers for itself through an ``explain_auto(problem)`` method (the
    rules live with the model or method that owns them); options without one resolve nothing."""
    out = dict(_own_autos(options, problem))
    model_options = getattr(options, "model_options", None)
    if model_options is not None:
        out.update({f"model_options.{k}": v for k, v in _own_autos(model_options, problem).items()})
    return out


def _own_autos(options: Any, problem: Problem) -> dict[str, tuple[Any, str]]:
    explain = getattr(options, "explain_auto", None)
    return explain(problem) if explain is not None else {}
