"""`nqs sweep`: a parameter grid of independent runs, locally and on a Dask cluster."""

import json

import numpy as np
import pytest

import hamiltonians
import nqs
from nqs.runs.config import ConfigError
from nqs.runs.sweep import parse_param, sweep

DMRG = """
[problem]
name = "z2_gauge"
Lx = 2
Ly = 2
h = 0.1

[method]
kind = "dmrg"
bond_dims = [8, 16]
max_sweeps = 4
"""

VMC = """
[problem]
name = "heisenberg_chain"
L = 6

[method]
kind = "vmc"
model = "rbm"
alpha = 1
n_iter = 15
n_samples = 256
n_chains = 32
learning_rate = 0.01
"""


def test_param_grammar():
    assert parse_param("h=0.1:0.6:6") == ("h", pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    assert parse_param("method.learning_rate=0.01,0.02") == ("method.learning_rate", [0.01, 0.02])
    assert parse_param("Lx=4,6") == ("Lx", [4, 6])
    for bad in ("h", "h=0.1:0.2:0", "h=a:b:c", "h="):
        with pytest.raises(ConfigError):
            parse_param(bad)


def test_local_sweep_runs_skips_and_reports_failures(tmp_path):
    cfg = tmp_path / "z2.toml"
    cfg.write_text(DMRG)
    out = tmp_path / "sweep"
    logs = []
    points = sweep(cfg, ["h=0.1:0.5:3"], workers=2, out_dir=out, log=logs.append)
    assert [p.status for p in points] == ["completed"] * 3
    index = json.loads((out / "index.json").read_text())
    assert [pt["values"]["problem.h"] for pt in index["points"]] == pytest.approx([0.1, 0.3, 0.5])
    for pt in index["points"]:
        a = nqs.load(pt["archive"])
        h = a.problem["parameters"]["h"]
        # DMRG at chi = 16 on 8 links is exact: compare with an independent ED of each point
        assert pt["energy"] == pytest.approx(hamiltonians.get("z2_gauge", Lx=2, Ly=2, h=h).exact(), abs=1e-8)
        assert a.status == "completed"
    # a rerun skips every finished point
    again = sweep(cfg, ["h=0.1:0.5:3"], workers=2, out_dir=out, log=logs.append)
    assert all(p.result["skipped"] for p in again)

    # a point that fails at run time (its archive path is taken by a directory) is retried,
    # then reported with its error; the other point completes
    vmc = tmp_path / "chain.toml"
    vmc.write_text(VMC)
    (tmp_path / "v" / "chain_001.h5").mkdir(parents=True)
    points = sweep(vmc, ["learning_rate=0.01,0.02"], workers=2, retries=1, out_dir=tmp_path / "v", log=logs.append)
    good, bad = points
    assert good.status == "completed" and bad.status == "failed"
    assert bad.attempts == 2 and "chain_001.h5" in bad.error
    index = json.loads((tmp_path / "v" / "index.json").read_text())
    assert index["points"][1]["status"] == "failed" and index["points"][1]["error"]
    assert any("retry 1 of 1" in line for line in logs)


def test_bad_sweep_points_fail_before_any_run(tmp_path):
    cfg = tmp_path / "z2.toml"
    cfg.write_text(DMRG)
    with pytest.raises(ConfigError, match="sweep point problem.Lx=1: .*lattice too small"):
        sweep(cfg, ["Lx=2,1"], out_dir=tmp_path / "s", log=lambda s: None)


def test_dask_cluster_sweep(tmp_path):
    import distributed  # a test dependency: the Dask path must be exercised in CI
    cfg = tmp_path / "z2.toml"
    cfg.write_text(DMRG)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        points = sweep(cfg, ["h=0.2,0.4"], scheduler=cluster.scheduler_address, out_dir=tmp_path / "d", log=lambda s: None)
    assert [p.status for p in points] == ["completed", "completed"]
    e = [p.result["energy"] for p in points]
    exact = [hamiltonians.get("z2_gauge", Lx=2, Ly=2, h=h).exact() for h in (0.2, 0.4)]
    np.testing.assert_allclose(e, exact, atol=1e-8)
