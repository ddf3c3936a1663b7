"""One VMC run over two JAX processes (``jax.distributed``, gloo CPU collectives) on this machine.

``nqs run`` is started twice with ``NQS_NUM_PROCESSES=2``, ``NQS_PROCESS_ID`` and a localhost
``NQS_COORDINATOR``, one CPU device each, and the configuration unchanged. The samples (the
Transformer's direct draws, the ViT's Metropolis chains) are split over the two processes. The
reference is one process with two CPU devices: the same split of the same random draws, so the
histories agree (measured: bit for bit, Transformer and ViT); one process with one device draws the same samples too, but NetKet's error of the
mean is computed from one "chain" instead of two, so only the means and variances agree. Process
0 alone writes the archive (each process runs in its own directory: the second one's stays
empty); a resume in two processes, from step 2 to 4, reaches the uninterrupted run.

The runs take minutes on a loaded two-core machine (the two processes compile concurrently):
marked slow. The default suite checks the environment parsing and that two processes join.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nqs.runs.distributed import settings

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 1200

MODELS = {
    # exact direct sampling: one "chain" per device
    "transformer": 'model = "transformer"\nd_model = 8\nn_heads = 2\nn_layers = 1\nproject_amplitude = false\n',
    # Metropolis: 16 chains, 8 per process
    # double precision: the comparisons are to round-off, and float32 round-off that differs
    # with the per-process batch shapes can flip a Metropolis decision
    "vit": 'model = "vit"\npatch_size = [2, 1]\nd_model = 8\nn_heads = 2\nn_layers = 1\nn_chains = 16\nprecision = "double"\n',
}


def config_text(model: str, n_iter: int) -> str:
    # constant schedules: a run extended from n_iter = 2 to 4 takes the same steps as one of 4
    return (
        '[problem]\nname = "heisenberg_chain"\nL = 8\n\n[method]\nkind = "vmc"\n' + MODELS[model]
        + f"n_iter = {n_iter}\nn_samples = 256\nn_samples_final = 256\nseed = 3\n"
        + "learning_rate = 0.05\nlearning_rate_final = 0.05\ndiag_shift = 0.01\ndiag_shift_final = 0.01\n\n"
        + '[output]\narchive = "runs/run.h5"\ncheckpoint_every = 2\nobservables = ["sz_correlation"]\n'
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def environment(n_devices: int = 1, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "NQS_", "NETKET_"))}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def launch(args: list[str], cwds: list[Path], n_devices: int = 1) -> list[subprocess.Popen]:
    """``python -m nqs.runs.cli run ARGS`` once (one process, ``n_devices``) or once per directory
    in ``cwds`` (that many processes, one device each)."""
    port, n = free_port(), len(cwds)
    procs = []
    for pid, cwd in enumerate(cwds):
        cwd.mkdir(parents=True, exist_ok=True)
        dist = {"NQS_NUM_PROCESSES": str(n), "NQS_PROCESS_ID": str(pid), "NQS_COORDINATOR": f"localhost:{port}"}
        env = environment(n_devices, **(dist if n > 1 else {}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "nqs.runs.cli", "run", *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    return procs


def finish(procs: list[subprocess.Popen]) -> list[str]:
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=TIMEOUT)
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]
    return outs


# ----------------------------------------------------------------------------- fast
def test_settings_from_the_environment():
    assert settings({}) is None
    assert settings({"NQS_NUM_PROCESSES": "1"}) is None
    assert settings({"NQS_NUM_PROCESSES": "4", "NQS_PROCESS_ID": "2", "NQS_COORDINATOR": "node1:1234"}) == {
        "coordinator_address": "node1:1234", "num_processes": 4, "process_id": 2,
        "cluster_detection_method": "deactivate",
    }
    with pytest.raises(ValueError, match="NQS_COORDINATOR"):
        settings({"NQS_NUM_PROCESSES": "2", "NQS_PROCESS_ID": "0"})
    with pytest.raises(ValueError, match="0..1"):
        settings({"NQS_NUM_PROCESSES": "2", "NQS_PROCESS_ID": "2", "NQS_COORDINATOR": "h:1"})
    srun = {"SLURM_JOB_ID": "77", "SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "1",
            "SLURM_LOCALID": "1", "SLURM_STEP_NODELIST": "node[01-02]"}
    assert settings(srun) == {}  # jax detects SLURM itself
    assert settings({**srun, "NQS_COORDINATOR": "node01:5000"}) == {"coordinator_address": "node01:5000"}
    # a batch script of an allocation of 4 tasks, run without srun: one process
    assert settings({**srun, "SLURM_STEP_NUM_TASKS": "1"}) is None


JOIN = r"""
import json
from nqs.runs import distributed
assert distributed.initialize()
import jax, netket, numpy as np
from jax.experimental import multihost_utils
total = multihost_utils.process_allgather(np.array([jax.process_index() + 1.0]))
print("RESULT", json.dumps({
    "writer": distributed.is_writer(), "processes": distributed.process_count(),
    "devices": jax.device_count(), "local": jax.local_device_count(),
    "mesh": int(jax.sharding.get_abstract_mesh().size), "gathered": np.asarray(total).ravel().tolist(),
}))
"""


def test_two_processes_join_and_share_one_mesh(tmp_path):
    """NetKet's mesh spans both processes' devices; process 0 alone is the writer."""
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", JOIN], cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=environment(1, NQS_NUM_PROCESSES="2", NQS_PROCESS_ID=str(pid), NQS_COORDINATOR=f"localhost:{port}"),
        )
        for pid in range(2)
    ]
    outs = finish(procs)
    results = [json.loads(next(l for l in o.splitlines() if l.startswith("RESULT "))[7:]) for o in outs]
    assert [r["writer"] for r in results] == [True, False]
    for r in results:
        assert r["processes"] == 2 and r["devices"] == 2 and r["local"] == 1 and r["mesh"] == 2
        assert r["gathered"] == [1.0, 2.0]


# ----------------------------------------------------------------------------- slow
@pytest.fixture(scope="module", params=sorted(MODELS))
def runs(request, tmp_path_factory):
    """One process with two devices (reference, n_iter = 4), two processes to n_iter = 2 (each
    in its own directory), then the two processes resume it to n_iter = 4; for the Transformer
    also one process with one device."""
    from nqs.runs.archive import load

    model = request.param
    base = tmp_path_factory.mktemp(f"dist_{model}")
    short, full = base / "short.toml", base / "full.toml"
    short.write_text(config_text(model, 2))
    full.write_text(config_text(model, 4))
    cwds = [base / "p0", base / "p1"]
    archive = cwds[0] / "runs" / "run.h5"
    # the first three at once: each is mostly import and compilation
    started = launch([str(full), "--quiet", "--archive", str(base / "ref2.h5")], [base], n_devices=2)
    if model == "transformer":
        started += launch([str(full), "--quiet", "--archive", str(base / "ref1.h5")], [base], n_devices=1)
    # relative archive path: each process would write into its own directory
    two = launch([str(short), "--quiet"], cwds)
    try:
        finish(started)
    finally:
        outs = finish(two)
    files = {str(p.relative_to(base)) for cwd in cwds for p in cwd.rglob("*") if p.is_file()}
    partial = load(archive)
    resumed_outs = finish(launch([str(full), "--quiet", "--resume", "--archive", str(archive)], cwds))
    return {
        "model": model, "files": files, "outs": outs, "resumed_outs": resumed_outs,
        "partial": partial, "resumed": load(archive), "ref2": load(base / "ref2.h5"),
        "ref1": load(base / "ref1.h5") if model == "transformer" else None,
    }


COLUMNS = ("energy", "energy_error", "variance", "acceptance", "r_hat")
RTOL = 1e-9  # measured: bit for bit; a margin for reductions in another order elsewhere


@pytest.mark.slow
def test_one_archive_written_by_process_zero(runs):
    assert runs["files"] == {"p0/runs/run.h5"}
    assert runs["partial"].status == "completed" and runs["resumed"].status == "completed"
    assert "2 processes" in runs["resumed"].meta["devices"]
    # process 0 prints the table, process 1 nothing of it
    for outs in (runs["outs"], runs["resumed_outs"]):
        assert "archive: " in outs[0] and "archive: " not in outs[1]


@pytest.mark.slow
def test_two_processes_repeat_one_process_and_resume(runs):
    ref, partial, resumed = runs["ref2"], runs["partial"], runs["resumed"]
    assert list(partial.history["step"]) == [0, 1] and list(resumed.history["step"]) == [0, 1, 2, 3]
    cols = [c for c in COLUMNS if c in ref.history]
    if runs["model"] == "vit":
        assert "acceptance" in cols
    for col in cols:
        np.testing.assert_allclose(partial.history[col], ref.history[col][:2], rtol=RTOL, err_msg=col)
        np.testing.assert_allclose(resumed.history[col], ref.history[col], rtol=RTOL, err_msg=col)
    for key in ("energy", "energy_error", "variance"):
        assert resumed.result[key] == pytest.approx(ref.result[key], rel=RTOL), key
    # measured on the final samples, gathered on every process
    for key in ("mean", "error"):
        np.testing.assert_allclose(
            resumed.observables["sz_correlation"][key], ref.observables["sz_correlation"][key], rtol=RTOL, atol=1e-14
        )


@pytest.mark.slow
def test_one_device_draws_the_same_samples(runs):
    """One process with one device: the same means and variances; the error of the mean differs
    (NetKet estimates it from the chains, here one per device)."""
    if runs["ref1"] is None:
        pytest.skip("Metropolis chains: checked against one process with two devices only")
    one, two = runs["ref1"], runs["resumed"]
    for col in ("energy", "variance"):
        np.testing.assert_allclose(two.history[col], one.history[col], rtol=RTOL, err_msg=col)
    assert two.result["energy"] == pytest.approx(one.result["energy"], rel=RTOL)
