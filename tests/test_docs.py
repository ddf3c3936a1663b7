"""The documentation site builds with warnings as errors.

``mkdocs build --strict`` fails on a broken link or cross-reference (mkdocs' link validation,
mkdocs-autorefs), on a public name rendered by the API reference without a docstring, on an
option field without a docstring, and on a failing table macro (``docs/hooks.py``).
"""

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs and mkdocstrings are not installed (pip install -e '.[docs]')",
)
def test_site_builds_strict(tmp_path):
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert proc.returncode == 0, "\n".join(warnings) or proc.stderr[-3000:]
    # the generated parts are there: an options table, a benchmark table, a notebook, the API
    dmrg = (tmp_path / "site" / "dmrg" / "index.html").read_text()
    assert "bond_dims" in dmrg and "truncation_tol" in dmrg
    assert "bench/results/exact_diag.json" in (tmp_path / "site" / "benchmarks" / "exact_diag" / "index.html").read_text()
    assert (tmp_path / "site" / "tutorials" / "j1j2" / "index.html").exists()
    assert "hamiltonians.get" in (tmp_path / "site" / "api" / "hamiltonians" / "index.html").read_text()
    # a budget of its own: the build must stay cheap enough for every test run
    assert time.perf_counter() - t0 < 120
