"""Neural quantum states on NetKet: ansätze (:mod:`nqs.models`), samplers (:mod:`nqs.sampling`),
VMC (:mod:`nqs.vmc`) and observables (:mod:`nqs.observables`).

The run machinery shared by every method (configuration, runner, archive, CLI) lives in
:mod:`nqs.runs`; its public names are re-exported here: ``nqs.load``, ``nqs.run``,
``nqs.RunConfig``, and the modules ``nqs.archive``, ``nqs.config``, ``nqs.sweep``.
"""

from .runs import archive, config, sweep
from .runs.archive import Archive, ArchiveError, load
from .runs.config import ConfigError, RunConfig
from .runs.runner import RunError, run

__all__ = [
    "Archive", "ArchiveError", "ConfigError", "RunConfig", "RunError", "archive", "config", "load",
    "run", "sweep",
]
