"""Neural quantum states on NetKet: ansätze, samplers, VMC, and the run/archive machinery.

Public entry points: :mod:`nqs.archive` (``load``), :func:`nqs.runner.run`,
:func:`nqs.config.load`, the ``nqs`` command (:mod:`nqs.cli`).
"""

from . import archive
from .archive import Archive, ArchiveError, load
from .config import ConfigError, RunConfig

__all__ = ["Archive", "ArchiveError", "ConfigError", "RunConfig", "archive", "load"]
