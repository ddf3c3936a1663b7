"""Scheme ``"tdvp"`` of the ``vmc`` evolution (NetKet's TDVP driver with the Schmitt-Heyl cut,
:mod:`tensornets.tdvp_netket`): an RBM against the exact engine on a small quench, resume of a
killed evolution, the scheme chosen from the model, and the configuration errors."""

import numpy as np
import pytest
from conftest import assert_same_history, killed_and_resumed

from nqs.runs.config import ConfigError, loads
from nqs.runs.runner import run

_CONFIG = """
[problem]
name = "z2_gauge"
Lx = 2
Ly = 2
h = 0.5
[method]
kind = "evolve"
engine = "vmc"
model = "rbm"
t_final = {t_final}
dt = 0.1
initial_problem = {{ h = 0.0 }}
observables = ["plaquette", "electric_field"]
n_samples = 512
model_options = {{ alpha = 1 }}
[output]
archive = "{path}"
checkpoint_every = 2
"""
"""Z2 gauge theory on the 2x2 torus (8 links, 8 states in the reference winding sector), the
toric code quenched to h = 0.5; a complex RBM with 8 hidden units (80 complex parameters),
fitted exactly to the initial state, 512 Metropolis samples in 16 chains."""


def _loads(method: str, problem: str = 'name = "z2_gauge"\nLx = 2\nLy = 2\nh = 0.5') -> None:
    loads(f"[problem]\n{problem}\n[method]\nkind = \"evolve\"\nt_final = 0.2\ndt = 0.1\n{method}\n")


@pytest.mark.parametrize(
    "method, message",
    [
        ('engine = "vmc"\nmodel = "rbm"\nscheme = "projected"', 'use scheme = "tdvp"'),
        ('engine = "vmc"\nmodel = "rbm"\nmodel_options = { param_dtype = "real" }', "real amplitudes"),
        ('engine = "vmc"\nmodel = "rbm"\nn_samples = 100', "multiple of n_chains"),
        ('engine = "vmc"\nsnr_atol = 2.0', 'belongs to scheme "tdvp"'),
        ('engine = "vmc"\nmodel = "rbm"\nscheme = "tdpv"', "Did you mean 'tdvp'"),
        ('engine = "exact"\nscheme = "tdvp"', 'scheme needs engine = "vmc"'),
        ('engine = "vmc"\nmodel = "rbm"\nsubsteps = 0', "substeps >= 1"),
    ],
    ids=["projected_rbm", "real_rbm", "chains", "tdvp_key_projected", "typo", "scheme_elsewhere", "substeps"],
)
def test_tdvp_bad_input_fails_before_compute(method, message):
    with pytest.raises(ConfigError, match=message):
        _loads(method)


def test_scheme_follows_the_model():
    """``scheme = "auto"``: projected for exactly sampled models, NetKet's TDVP for the others;
    a forced scheme wins."""
    from types import SimpleNamespace

    from nqs.models import model_spec
    from tensornets.tdvmc import resolve_scheme

    auto = SimpleNamespace(scheme="auto")
    assert resolve_scheme(model_spec("gauge_transformer"), auto) == "projected"
    assert [resolve_scheme(model_spec(m), auto) for m in ("rbm", "vit", "jastrow", "hfds")] == ["tdvp"] * 4
    assert resolve_scheme(model_spec("gauge_transformer"), SimpleNamespace(scheme="tdvp")) == "tdvp"
    _loads('engine = "vmc"\nmodel = "rbm"\nsnr_atol = 2.0\nsubsteps = 2')  # parses, nothing compiled


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    path = tmp_path_factory.mktemp("tdvp") / "whole.h5"
    return run(loads(_CONFIG.format(t_final=0.3, path=path)), progress=False, log=lambda s: None)


def test_tdvp_rbm_tracks_exact_z2_quench(whole):
    """Up to t = 0.3 (the plaquette falls by 0.25), against the exact engine. Measured (seed 0):
    the Monte Carlo means within 0.06 of the exact values, the largest single-entry error bar
    0.03 (512 correlated samples); tolerance: each entry within 4 of its error bar plus 0.02,
    the largest deviation of the RBM's own state seen on this quench (``docs/dynamics.md``)."""
    import hamiltonians
    from tensornets.evolution import Evolve, EvolveOptions

    quench = hamiltonians.get("z2_gauge", Lx=2, Ly=2, h=0.5)
    names = ["plaquette", "electric_field"]
    exact = Evolve(quench, EvolveOptions(engine="exact", t_final=0.3, dt=0.1, initial_problem={"h": 0.0}, observables=names))

    class _Keep:
        def record(self, step, values):
            pass

        def checkpoint_due(self, step):
            return False

        def checkpoint(self, next_step, state):
            pass

    exact.run(0, _Keep())
    assert whole.result["scheme"] == "tdvp" and whole.result["model"] == "rbm"
    assert whole.history["infidelity"][0] < 1e-8  # the exact initial fit
    for name in names:
        mc, err = whole.observables[name]["mean"], whole.observables[name]["error"]
        ref = np.asarray(exact.series[name])
        assert mc.shape == ref.shape == err.shape
        assert np.all(np.abs(mc - ref) <= 4 * err + 0.02), (name, np.abs(mc - ref).max())
    assert np.ptp(np.asarray(exact.series["plaquette"]).mean(axis=1)) > 0.2
    for key in ("plaquette_error", "energy_error", "energy_drift"):
        assert key in whole.history, key


def test_tdvp_resume_reproduces_uninterrupted_run(whole, tmp_path, monkeypatch):
    """Killed during step 3 and resumed from its last checkpoint: the same history,
    observables, errors and variational state as the uninterrupted run, bit for bit (the
    checkpoint holds the parameters, the Markov chains, the random key and the time)."""
    from tensornets.tdvp_netket import TDVPEngine

    config = loads(_CONFIG.format(t_final=0.3, path=tmp_path / "cut.h5"))
    resumed = killed_and_resumed(config, TDVPEngine, 3, monkeypatch)
    assert_same_history(whole, resumed, ("plaquette", "electric_field"))
    a, b = _leaves(resumed.checkpoint["state"]["vstate"]), _leaves(whole.checkpoint["state"]["vstate"])
    assert a.keys() == b.keys() and any("params" in k for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _leaves(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix: np.asarray(tree)}
    return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{prefix}/{key}").items()}
