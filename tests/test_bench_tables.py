"""The comparison benchmark's table: running some rows must not erase the others."""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import comparison  # noqa: E402
import report  # noqa: E402


def test_rows_without_archives_are_carried_over(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    (tmp_path / "results").mkdir()
    old = {
        "machine": "m",
        "date": "2026-11-29",
        "rows": [
            {"problem": "z2_4x4_h=0.3", "method": "dmrg", "model": "-", "energy": -16.74},
            {"problem": "tj_4x4_2holes", "method": "vmc", "model": "hfds", "energy": -10.5},
            {"problem": "gone_problem", "method": "dmrg", "model": "-", "energy": 0.0},
        ],
    }
    (tmp_path / "results" / "comparison.json").write_text(json.dumps(old))
    rows = comparison.merged_rows(tmp_path / "empty_workdir")
    # table order (tj before z2 in PROBLEMS), the date they were measured, unknown problems dropped
    assert [(r["problem"], r["method"]) for r in rows] == [("tj_4x4_2holes", "vmc"), ("z2_4x4_h=0.3", "dmrg")]
    assert all(r["measured_on"] == "2026-11-29" for r in rows)
    assert rows[0]["energy"] == -10.5
