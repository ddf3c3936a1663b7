"""The machinery every method shares: configuration, method protocol, runner, archive, CLI.

Modules: :mod:`~nqs.runs.config` (TOML -> :class:`RunConfig`), :mod:`~nqs.runs.methods`
(the :class:`Method` protocol and the ``nqs.methods`` entry points), :mod:`~nqs.runs.runner`
(:func:`run`: validate, build, resume, archive), :mod:`~nqs.runs.archive` (HDF5 layout,
:func:`load`), :mod:`~nqs.runs.diagnostics` (self-checks of a finished run),
:mod:`~nqs.runs.sweep`, :mod:`~nqs.runs.compare`, :mod:`~nqs.runs.plotting` and the ``nqs``
command (:mod:`~nqs.runs.cli`). Nothing here knows a particular ansatz or engine: methods
register themselves and answer for their own options.
"""

from . import archive, config
from .archive import Archive, ArchiveError, load
from .config import ConfigError, RunConfig
from .methods import Method, Recorder

__all__ = [
    "Archive", "ArchiveError", "ConfigError", "Method", "Recorder", "RunConfig", "archive", "config",
    "load",
]
