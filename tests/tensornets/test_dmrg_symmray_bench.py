"""The symmray DMRG prototype of ``bench/dmrg_symmray.py`` (issue 27) reaches ED on a small chain."""

import importlib.util
from pathlib import Path

import pytest

import hamiltonians

pytest.importorskip("symmray", reason="symmray is a bench extra (pip install '.[bench]')")

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "dmrg_symmray.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_dmrg_symmray", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_symmray_prototype_matches_exact_on_heisenberg_chain():
    bench = _bench()
    problem = hamiltonians.get("heisenberg_chain", L=10)
    engine = bench.SymmrayDMRG(problem, chi0=8, seed=1)
    for _ in range(4):
        energy, _, bond = engine.sweep(32)
    assert bond <= 32
    exact = problem.exact()
    assert abs(energy - exact) < 1e-8
    assert abs(engine.expectation() - exact) < 1e-8
