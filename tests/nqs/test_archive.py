"""The archive: layout, round trip, atomic writes, clear errors on foreign or damaged files."""

import h5py
import numpy as np
import pytest

from nqs import archive as ar


def sample_archive():
    return ar.Archive(
        config_toml='[problem]\nname = "j1j2"\nLx = 4\nLy = 4\n[method]\nkind = "vmc"\nmodel = "rbm"\n',
        problem={"name": "j1j2", "label": "j1j2(Lx=4)", "parameters": {"Lx": 4, "Ly": 4}, "n_sites": 16, "sector": {"Sz": 0.0}},
        history={"step": np.arange(3), "energy": np.array([-1.0, -2.0, -3.0]), "wall_time": np.array([0.1, 0.2, 0.3])},
        result={"energy": -3.0, "n_parameters": 10},
        observables={"structure_factor": np.ones((4, 4))},
        checkpoint={
            "params": {"w": np.arange(6.0).reshape(2, 3) + 1j, "b": np.zeros(2, dtype=np.float32)},
            "step": 3,
            "nothing": None,
            "σ": np.array([[1, -1]], dtype=np.int8),
            "key/with/slash": 1.5,
            "flag": True,
            "name": "rbm",
        },
        checkpoint_step=3,
        status="completed",
        meta=ar.run_metadata(),
    )


def test_round_trip_and_layout(tmp_path):
    path = tmp_path / "run.h5"
    ar.save(path, sample_archive())
    a = ar.load(path, checkpoint=True)
    assert a.status == "completed" and a.config["problem"]["Lx"] == 4 and a.method == "vmc" and a.model == "rbm"
    assert a.problem["parameters"] == {"Lx": 4, "Ly": 4} and a.n_sites == 16
    np.testing.assert_array_equal(a.history["energy"], [-1.0, -2.0, -3.0])
    assert a.result["energy"] == -3.0
    c = a.checkpoint
    np.testing.assert_array_equal(c["params"]["w"], np.arange(6.0).reshape(2, 3) + 1j)
    assert c["params"]["b"].dtype == np.float32
    assert c["step"] == 3 and isinstance(c["step"], int)
    assert c["nothing"] is None and c["flag"] is True and c["name"] == "rbm"
    assert c["key/with/slash"] == 1.5 and c["σ"].dtype == np.int8
    np.testing.assert_array_equal(a.observables["structure_factor"], np.ones((4, 4)))
    with h5py.File(path) as f:
        assert set(f) == {"config", "problem", "history", "result", "checkpoint"}
        assert f.attrs["format_version"] == ar.FORMAT_VERSION
        for key in ("created", "updated", "versions", "git_revision", "host", "devices"):
            assert key in f.attrs
        assert "toml" in f["config"].attrs


def test_a_failed_write_leaves_the_previous_archive(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    ar.save(path, sample_archive())
    bad = sample_archive()
    bad.checkpoint["params"]["w"] = object()  # cannot be stored: the write fails midway
    with pytest.raises(TypeError):
        ar.save(path, bad)
    assert ar.load(path, checkpoint=True).checkpoint["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["run.h5"]


def test_foreign_and_damaged_files_give_clear_errors(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(ar.ArchiveError, match="not a readable HDF5 archive"):
        ar.load(text)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(ar.ArchiveError, match="not an nqs-toolkit archive"):
        ar.load(foreign)
    good = tmp_path / "good.h5"
    ar.save(good, sample_archive())
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ar.ArchiveError):
        ar.load(truncated)
    with h5py.File(good, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(ar.ArchiveError, match="format 99"):
        ar.load(good)
    with pytest.raises(FileNotFoundError):
        ar.load(tmp_path / "missing.h5")
