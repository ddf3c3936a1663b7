"""`nqs run` end to end: VMC runs against ED, archives, resume after a kill, and the CLI."""

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nqs
from nqs import config as cfg
from nqs.runs.cli import main
from nqs.runs.runner import RunError, run
from nqs.vmc import VMC

CONFIG = """
[problem]
name = "heisenberg_chain"
L = 10

[method]
kind = "vmc"
model = "rbm"
alpha = 1
n_iter = {n_iter}
n_samples = 512
n_chains = 64
learning_rate = 0.05
seed = 3

[output]
archive = "{archive}"
checkpoint_every = {every}
"""


def write_config(tmp_path: Path, name: str, n_iter: int = 150, every: int = 50) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(n_iter=n_iter, every=every, archive=(tmp_path / f"{name}.h5").as_posix()))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vmc")
    conf = cfg.load(write_config(tmp, "ref"))
    return run(conf, progress=False, log=lambda s: None), tmp


def test_vmc_reaches_the_exact_energy(finished):
    a, _ = finished
    exact = a.result["exact_energy"]
    # ED of the 10-site periodic chain; an RBM with alpha=1 and 150 SR steps gets within 0.3 %,
    # far beyond the statistical error (checked below)
    assert exact == pytest.approx(-4.515446354, abs=1e-8)
    assert abs(a.result["relative_error"]) < 3e-3
    assert a.result["energy"] - exact > -4 * a.result["energy_error"]  # variational, within noise
    assert a.result["v_score"] < 0.05


class _FinalSeesAnotherState(VMC):
    """The real VMC, its final estimate shifted by +1: as when the final samples reach
    configurations the training never weighed."""

    def final_result(self):
        out = super().final_result()
        return {**out, "energy": out["energy"] + 1.0}


def test_a_suspicious_result_is_stored_and_shown_as_warned(finished, tmp_path, capsys):
    a, _ = finished
    assert "warnings" not in a.result  # the sound run stays plainly completed
    conf = cfg.load(write_config(tmp_path, "warned"))
    shutil.copy(a.path, tmp_path / "warned.h5")
    # resuming the finished run does no step: only the (shifted) final estimate is new
    logged = []
    bad = run(dataclasses.replace(conf, method=_FinalSeesAnotherState), resume=True, progress=False, log=logged.append)
    assert "above the training energies" in bad.result["warnings"]
    assert any(line.startswith("warning: the final estimate") for line in logged)
    assert main(["compare", str(bad.path)]) == 0
    assert "completed (warned" in capsys.readouterr().out
    assert main(["show", str(bad.path)]) == 0
    assert "above the training energies" in capsys.readouterr().out


def test_archive_contents(finished):
    a, tmp = finished
    b = nqs.runs.archive.load(a.path, checkpoint=True)
    assert b.status == "completed"
    assert b.config["method"]["model"] == "rbm"
    assert b.problem["name"] == "heisenberg_chain" and b.problem["n_sites"] == 10
    assert b.problem["sector"] == {"Sz": 0.0}
    h = b.history
    assert len(h["step"]) == 150 and list(h["step"][:3]) == [0, 1, 2]
    for col in ("energy", "energy_error", "variance", "wall_time", "acceptance"):
        assert len(h[col]) == 150
    assert np.all(np.diff(h["wall_time"]) > 0)
    for key in ("energy", "energy_error", "variance", "v_score", "exact_energy", "relative_error", "n_parameters"):
        assert key in b.result
    assert b.result["n_parameters"] == 2 * (10 * 10 + 10 + 10)  # complex RBM, alpha = 1
    # the checkpoint holds parameters, optimiser state, sampler chains and RNG key
    ck = b.checkpoint
    assert "params" in ck["state"]["variables"]
    assert "σ" in ck["state"]["sampler_state"] and "rng" in ck["state"]["sampler_state"]
    assert "_optimizer_state" in ck and ck["_step_count"] == 150


def test_existing_archive_is_never_overwritten_silently(finished):
    a, tmp = finished
    conf = cfg.load(write_config(tmp, "ref"))
    with pytest.raises(RunError, match="exists .*--resume.*--overwrite"):
        run(conf, progress=False, log=lambda s: None)
    fresh = cfg.load(write_config(tmp, "never_run"))
    with pytest.raises(RunError, match="no archive"):
        run(fresh, resume=True, progress=False, log=lambda s: None)


def test_killed_run_resumes_to_the_same_result(finished, tmp_path):
    ref, _ = finished
    path = write_config(tmp_path, "killed", every=20)
    archive = tmp_path / "killed.h5"
    cmd = [sys.executable, "-m", "nqs.runs.cli", "run", str(path), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.time() + 240
    step = 0
    while time.time() < deadline and proc.poll() is None:
        if archive.exists():
            try:
                step = nqs.load(archive).checkpoint_step or 0
            except nqs.ArchiveError:
                step = 0
            if step >= 40:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the killed run left a complete, readable archive at a checkpoint
    killed = nqs.load(archive, checkpoint=True)
    assert killed.status == "running"
    assert killed.checkpoint_step % 20 == 0 and killed.checkpoint_step >= 40
    assert len(killed.history["step"]) >= killed.checkpoint_step
    resumed = run(cfg.load(path), resume=True, progress=False, log=lambda s: None)
    assert resumed.status == "completed"
    np.testing.assert_array_equal(resumed.history["step"], np.arange(150))
    # bit-for-bit the same trajectory and result as the uninterrupted run with the same seed
    np.testing.assert_array_equal(resumed.history["energy"], ref.history["energy"])
    assert resumed.result["energy"] == ref.result["energy"]


def test_resume_refuses_changed_defaults(finished, tmp_path):
    """The archive stores the resolved options: a resume whose config text is unchanged but
    whose defaults moved (here: the archive's diagonal shift rewritten, as a new default would)
    is refused, naming the key. A change of the resumable n_iter alone still resumes
    (``test_extend_a_finished_run``, whose archives carry the options too)."""
    import json
    import shutil

    ref, tmp = finished
    stored = json.loads(ref.meta["options"])
    assert stored["learning_rate"] == 0.05 and stored["n_iter"] == 150 and stored["model_options"]["alpha"] == 1
    shutil.copy(ref.path, tmp_path / "moved.h5")
    moved = nqs.load(tmp_path / "moved.h5", checkpoint=True)
    moved.meta["options"] = json.dumps({**stored, "diag_shift": 0.123})
    nqs.runs.archive.save(moved.path, moved)
    conf = cfg.load(write_config(tmp_path, "moved", n_iter=151))
    with pytest.raises(RunError, match=r"default diag_shift: archive 0.123, now 0.01"):
        run(conf, resume=True, progress=False, log=lambda s: None)


def test_extend_a_finished_run(finished, tmp_path):
    ref, _ = finished
    short = write_config(tmp_path, "short", n_iter=30, every=10)
    run(cfg.load(short), progress=False, log=lambda s: None)
    longer = cfg.load(write_config(tmp_path, "short", n_iter=60, every=10))
    a = run(longer, resume=True, progress=False, log=lambda s: None)
    np.testing.assert_array_equal(a.history["step"], np.arange(60))
    np.testing.assert_array_equal(a.history["energy"][:30], ref.history["energy"][:30])
    changed = cfg.load(write_config(tmp_path, "short", n_iter=60, every=10))
    changed.text = changed.text.replace("alpha = 1", "alpha = 2")
    with pytest.raises(RunError, match=r"\[method\] alpha: archive 1, config 2"):
        run(changed, resume=True, progress=False, log=lambda s: None)


def test_cli_compare_plot_show(finished, tmp_path, capsys):
    a, _ = finished
    assert main(["compare", str(a.path)]) == 0
    out = capsys.readouterr().out
    assert "rel. error" in out and "V-score" in out and f"{a.result['exact_energy']:.8f}" in out
    assert main(["compare", str(a.path), "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("| run |")
    png = tmp_path / "fig.png"
    assert main(["plot", str(a.path), "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # the truncation plot is for DMRG archives: a VMC one gets a message, no figure
    capsys.readouterr()
    assert main(["plot", str(a.path), "--truncation", "-o", str(tmp_path / "eps.png")]) == 2
    assert "no DMRG archive with extrapolation points" in capsys.readouterr().err
    assert not (tmp_path / "eps.png").exists()
    assert main(["show", str(a.path)]) == 0
    out = capsys.readouterr().out
    assert "checkpoint at step 150" in out and '"diag_shift": 0.01' in out  # a default, resolved
    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    assert main(["compare", str(bad)]) == 2
    assert "not a readable HDF5 archive" in capsys.readouterr().err
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tj(Lx, Ly, n_holes" in out and "rbm_symm" in out and "dmrg" in out


def test_plot_against_wall_time(finished, tmp_path, monkeypatch):
    """``nqs plot --x wall`` draws each run against its cumulative wall time (runs of different
    cost per step at equal budget); an archive without ``wall_time`` is refused, naming it."""
    from nqs.runs import plotting

    a, _ = finished
    figures = []
    monkeypatch.setattr(plotting, "_save", lambda fig, path: figures.append(fig) or Path(path))
    plotting.plot_energy([a], tmp_path / "wall.png", x="wall")
    line = figures[0].axes[0].lines[0]
    np.testing.assert_array_equal(line.get_xdata(), a.history["wall_time"])
    assert figures[0].axes[-1].get_xlabel() == "wall time (s)"
    shutil.copy(a.path, tmp_path / "nowall.h5")
    stripped = nqs.load(tmp_path / "nowall.h5")
    del stripped.history["wall_time"]
    with pytest.raises(ValueError, match="no wall_time in the history of .*plot against the step"):
        plotting.plot_energy([stripped], tmp_path / "x.png", x="wall")
    monkeypatch.undo()
    png = tmp_path / "wall_cli.png"
    assert main(["plot", str(a.path), "--x", "wall", "-o", str(png)]) == 0 and png.exists()


def test_archived_config_pins_the_defaults_the_archive_ran_with(finished, tmp_path):
    """``archived_config`` rebuilds an archive's method with the defaults it ran with: a default
    that moved since (the archive's diagonal shift rewritten, as a new default would) comes back
    as archived, a model option newer than the archive takes the value of the model's
    ``predates`` table, and one without an entry there is refused, naming it."""
    import json
    import shutil
    from types import SimpleNamespace

    from nqs.runs.runner import archived_config, resolved_options

    ref, _ = finished
    rebuilt = archived_config(ref)
    assert resolved_options(rebuilt.options, rebuilt.problem) == ref.meta["options"]  # nothing moved
    stored = json.loads(ref.meta["options"])
    shutil.copy(ref.path, tmp_path / "moved.h5")
    moved = nqs.load(tmp_path / "moved.h5")
    moved.meta["options"] = json.dumps({**stored, "diag_shift": 0.123})
    options = archived_config(moved).options
    assert options.diag_shift == 0.123 and options.learning_rate == 0.05 and options.model_options.alpha == 1
    moved.meta["options"] = json.dumps({**stored, "model_options": {k: v for k, v in stored["model_options"].items() if k != "alpha"}})
    with pytest.raises(RunError, match="predates option 'alpha'"):
        archived_config(moved)

    # a Transformer archive from before project_amplitude and real_sign existed (their
    # ``auto`` defaults would project this frustrated model): rebuilt without them
    text = '[problem]\nname = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.5\n\n[method]\nkind = "vmc"\nmodel = "transformer"\n'
    now = json.loads(resolved_options(cfg.loads(text).options))
    for key in ("project_amplitude", "real_sign"):
        now["model_options"].pop(key)
    old = SimpleNamespace(config_toml=text, meta={"options": json.dumps(now)}, path=tmp_path / "old.h5")
    model_options = archived_config(old).options.model_options
    assert model_options.project_amplitude is False and model_options.real_sign is False
    from nqs.models.transformer import resolve_projection

    assert resolve_projection(cfg.loads(text).problem, cfg.loads(text).options.model_options) == (True, True)


def test_auto_options_are_stored_as_resolved(tmp_path):
    """The archive stores what each ``auto`` option resolved to on the problem, so that a later
    change of an ``auto`` rule is seen like a changed default: on resume (refused, naming the
    option) and by ``archived_config`` (rebuilt as it ran). Archives from before the resolution
    (``"auto"`` stored) still resume. Building from the resolved values gives the same model."""
    import json
    from types import SimpleNamespace

    from nqs.models import model_spec
    from nqs.runs.runner import _check_resumable, archived_config, resolved_options

    text = '[problem]\nname = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.5\n\n[method]\nkind = "vmc"\nmodel = "transformer"\n'
    conf = cfg.loads(text)
    stored = json.loads(resolved_options(conf.options, conf.problem))
    auto_keys = ("symmetrize", "sign_prior", "phase", "project_amplitude", "real_sign")
    assert {k: stored["model_options"][k] for k in auto_keys} == {
        "symmetrize": "point_group", "sign_prior": "marshall", "phase": "learned", "project_amplitude": True, "real_sign": True
    }
    spec = model_spec("transformer")
    resolved = spec.options(**{k: stored["model_options"][k] for k in auto_keys})
    assert spec.build(conf.problem, resolved) == spec.build(conf.problem, conf.options.model_options)
    # unfrustrated: the Marshall sign is exact, the phase fixed, nothing projected; t-J: no images
    heis = cfg.loads(text.replace("J2 = 0.5", "J2 = 0.0"))
    assert {k: v for k, v in json.loads(resolved_options(heis.options, heis.problem))["model_options"].items() if k in auto_keys} == {
        "symmetrize": "point_group", "sign_prior": "marshall", "phase": "fixed", "project_amplitude": False, "real_sign": False
    }

    # an archive whose auto rule resolved the projection off (as an older rule might have)
    ruled = {**stored, "model_options": {**stored["model_options"], "project_amplitude": False, "real_sign": False}}
    old = SimpleNamespace(config_toml=text, meta={"options": json.dumps(ruled)}, path=tmp_path / "old.h5")
    with pytest.raises(RunError, match=r"default project_amplitude: archive False, now True"):
        _check_resumable(old, conf)
    rebuilt = archived_config(old).options.model_options
    assert rebuilt.project_amplitude is False and rebuilt.real_sign is False and rebuilt.symmetrize == "auto"

    # stored before the resolution: "auto" as written, which matches today's resolution
    unresolved = json.loads(resolved_options(conf.options))
    assert unresolved["model_options"]["project_amplitude"] == "auto"
    old.meta["options"] = json.dumps(unresolved)
    _check_resumable(old, conf)
    assert archived_config(old).options.model_options == conf.options.model_options


def test_models_command_explains_each_auto_option(capsys):
    """``nqs models NAME PROBLEM ...`` prints what each ``"auto"`` option of an ansatz or a
    method resolves to there and why, one line each, from the same rules the builders and the
    archive use (:func:`~nqs.runs.methods.explain_options`); bad names are refused by name."""
    import json

    from nqs.runs.cli import main
    from nqs.runs.methods import explain_options
    from nqs.runs.runner import resolved_options

    assert main(["models", "transformer", "j1j2", "Lx=4", "Ly=4", "J2=0.5"]) == 0
    out = capsys.readouterr().out
    assert "symmetrize = 'point_group': spin-1/2" in out and "phase = 'learned': not stoquastic" in out
    assert "project_amplitude = True" in out
    assert main(["models", "transformer", "tj", "Lx=3", "Ly=2", "n_holes=1", "pbc=false"]) == 0
    out = capsys.readouterr().out
    assert "symmetrize = 'none'" in out and "sign_prior = 'none'" in out and "phase = 'learned'" in out
    # the explanation is the archive's resolution, for the method's own options too
    conf = cfg.loads('[problem]\nname = "z2_gauge"\nLx = 2\nLy = 2\nh = 0.3\n\n[method]\nkind = "vmc"\nmodel = "gauge_transformer"\n')
    explained = explain_options(conf.options, conf.problem)
    assert explained["model_options.phase"][0] == "fixed"
    assert json.loads(resolved_options(conf.options, conf.problem))["model_options"]["phase"] == "fixed"
    assert main(["models", "dmrg", "heisenberg_chain", "L=8"]) == 0
    assert "backend = " in capsys.readouterr().out
    assert main(["models", "transfomer", "j1j2"]) == 2
    assert "did you mean 'transformer'" in capsys.readouterr().err.lower()
    assert main(["models", "hfds", "j1j2", "Lx=4", "Ly=4"]) == 1  # does not apply: says why
    assert "does not apply" in capsys.readouterr().out
