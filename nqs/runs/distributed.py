"""One run over several JAX processes (``jax.distributed``): set up from the environment.

``nqs run cfg.toml`` started N times, once per process, with the same configuration, runs one
VMC calculation whose samples (or Markov chains) are split over the devices of all processes
(NetKet's sharding, on by default, puts every global device in its mesh). The processes find
each other through

* our variables ``NQS_NUM_PROCESSES`` (> 1), ``NQS_PROCESS_ID`` (0 .. N-1) and
  ``NQS_COORDINATOR`` (``host:port`` of process 0, the same for all), or
* SLURM's (``srun -n N nqs run cfg.toml``): jax reads ``SLURM_NTASKS``, ``SLURM_PROCID``,
  ``SLURM_LOCALID`` and the first host of ``SLURM_STEP_NODELIST`` itself (the port follows
  from the job id; ``NQS_COORDINATOR`` overrides the address).

Nothing else changes: the configuration is the same as for one process. Across processes on
CPU the collectives are gloo's (TCP). :func:`initialize` must run before any JAX computation,
which in practice means before NetKet is imported (NetKet builds its device mesh at import);
the ``nqs run`` command calls it first. Process 0 (:func:`is_writer`) alone writes the archive
and prints; every process reads the archive on resume. See ``docs/distributed.md``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

_initialized = False


def settings(env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The arguments of :func:`jax.distributed.initialize` that ``env`` (default
    ``os.environ``) asks for, or ``None`` for a single-process run. ``{}`` means SLURM: jax
    detects everything itself. ``ValueError`` for an incomplete ``NQS_*`` set."""
    env = os.environ if env is None else env
    if env.get("NQS_NUM_PROCESSES"):
        n = int(env["NQS_NUM_PROCESSES"])
        if n <= 1:
            return None
        missing = [k for k in ("NQS_PROCESS_ID", "NQS_COORDINATOR") if not env.get(k)]
        if missing:
            raise ValueError(f"NQS_NUM_PROCESSES={n} needs {' and '.join(missing)} as well")
        pid = int(env["NQS_PROCESS_ID"])
        if not 0 <= pid < n:
            raise ValueError(f"NQS_PROCESS_ID={pid} must be in 0..{n - 1}")
        # every argument given: no cluster auto-detection (a SLURM allocation around a manual
        # launch must not override it)
        return {
            "coordinator_address": env["NQS_COORDINATOR"],
            "num_processes": n,
            "process_id": pid,
            "cluster_detection_method": "deactivate",
        }
    # the tasks of an srun step (srun sets the SLURM_STEP_* variables, which jax's detection
    # needs too); the batch script's own shell is one process
    tasks = env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS")
    if tasks and int(tasks) > 1 and "SLURM_PROCID" in env and "SLURM_STEP_NODELIST" in env:
        out: dict[str, Any] = {}
        if env.get("NQS_COORDINATOR"):
            out["coordinator_address"] = env["NQS_COORDINATOR"]
        return out
    return None


def initialize(env: Mapping[str, str] | None = None) -> bool:
    """Join the processes ``env`` describes (see :func:`settings`); ``False`` (nothing done)
    for a single process. Idempotent. ``RuntimeError`` if NetKet (whose import starts JAX's
    backend) is already imported: the processes would not see each other's devices."""
    global _initialized
    args = settings(env)
    if args is None:
        return False
    if _initialized:
        return True
    if "netket" in sys.modules:
        raise RuntimeError(
            "nqs.runs.distributed.initialize() must run before netket is imported "
            "(NetKet starts the JAX backend and builds its device mesh at import)"
        )
    os.environ.setdefault("NETKET_SHARDING", "1")  # NetKet's default: a mesh of all global devices
    import jax

    # gloo (TCP) collectives between the processes' CPU devices (jax's default in recent
    # versions; set so that an older default, none, cannot silently run without them)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**args)
    _initialized = True
    return True


def _joined() -> bool:
    """Whether this process is part of a multi-process JAX run (through :func:`initialize` or a
    ``jax.distributed.initialize`` of its own)."""
    if _initialized:
        return True
    jax = sys.modules.get("jax")
    return jax is not None and jax.distributed.is_initialized()


def process_count() -> int:
    """Processes of this run (1 without ``jax.distributed``)."""
    if not _joined():
        return 1
    import jax

    return jax.process_count()


def is_writer() -> bool:
    """Whether this process writes the archive and prints: process 0, or the only one."""
    if not _joined():
        return True
    import jax

    return jax.process_index() == 0


def to_host(x: Any) -> Any:
    """A ``jax.Array`` as one global numpy array on every process (other values unchanged).
    An array split over several processes is gathered: a collective, which every process must
    call in the same order."""
    jax = sys.modules.get("jax")
    if jax is None or not isinstance(x, jax.Array):
        return x
    import numpy as np

    if x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def barrier(name: str) -> None:
    """Wait until every process got here (nothing with one process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
