"""Dissipative dynamics (``kind = "evolve"`` on open problems): the exact Lindblad engine against
the dense exponential of the Liouvillian, the POVM Transformer's trapezoid step against the exact
evolution (its own full sum and its Monte Carlo estimates), resume, and bad input."""

import numpy as np
import pytest
import scipy.linalg as sla
from conftest import assert_same_history, killed_and_resumed

import hamiltonians
from hamiltonians import lindblad
from hamiltonians import povm as pv
from nqs.runs.config import ConfigError, loads
from nqs.runs.runner import run
from nqs.steady_state import all_outcomes
from tensornets.evolution import Evolve, EvolveOptions


class _Keep:
    """Keeps the history and, when ``full`` is given, ``<sigma^z>`` of the POVM model summed over
    every outcome string at each step (the exact twin of the sampled estimate)."""

    def __init__(self, method=None, problem=None):
        self.rows, self.full, self.method = [], [], method
        if method is not None:
            n = problem.n_sites
            self.strings = all_outcomes(n)
            self.sz = pv.observable([(1.0 / n, (("Z", i),)) for i in range(n)], problem.local_space, "tetrahedral")

    def record(self, step, values):
        self.rows.append(dict(values))
        if self.method is not None:
            p = self.method.engine.probabilities(self.strings)
            self.full.append((float(p.sum()), float(np.real(self.sz.expectation(p)))))

    def checkpoint_due(self, step):
        return False

    def checkpoint(self, next_step, state):
        pass


def _sigma_z(method) -> np.ndarray:
    """Site-averaged ``<sigma^z>`` per step (the ``sz`` observable is ``S^z = sigma^z / 2``)."""
    return np.array([2 * np.mean(s) for s in method.series["sz"]])


def _open(problem, **options):
    n = problem.n_sites
    kw = dict(initial_state="product", initial_config=[0] * n, observables=["sz"])
    return EvolveOptions(**{**kw, **options})


def test_exact_engine_matches_dense_lindblad_exponential():
    """Dissipative XYZ, open 3-site chain, from all up: the engine's ``<S^z_i>`` and ``tr(rho H)``
    against ``scipy.linalg.expm`` of the dense Liouvillian, both exact (1e-10: round-off of
    Krylov steps); the trace stays 1."""
    problem = hamiltonians.get("dissipative_xyz", Lx=3, Ly=1, pbc=False)
    method = Evolve(problem, _open(problem, engine="exact", t_final=1.0, dt=0.1))
    rec = _Keep()
    method.run(0, rec)
    lv = lindblad.liouvillian(problem).toarray()
    rho0 = lindblad.product_state(problem, [0, 0, 0]).reshape(-1)
    for k in (0, 3, 10):
        rho = (sla.expm(lv * 0.1 * k) @ rho0).reshape(8, 8)
        sz = [lindblad.expectation(problem, rho, [(1.0, (("Sz", i),))]).real for i in range(3)]
        np.testing.assert_allclose(method.series["sz"][k], sz, atol=1e-10)
        assert rec.rows[k]["energy"] == pytest.approx(lindblad.expectation(problem, rho, problem.terms).real, abs=1e-10)
    assert max(r.get("trace_error", 0.0) for r in rec.rows) < 1e-12
    assert np.ptp(_sigma_z(method)) > 1.0  # decay and precession move it: not a constant compared


def test_povm_trapezoid_follows_the_exact_evolution():
    """Dissipative XYZ (Jx = 0.9, Jy = 1.6, Jz = 1, gamma = 1), open 3-site chain, from all up to
    t = 1/gamma in steps of 0.1: the POVM Transformer (d_model 16, one layer, 2452 parameters,
    256 samples per fit, seed 0) against the exact Lindblad engine.

    Exact twin: the model summed over all 64 outcome strings is normalised to round-off and
    its ``<sigma^z>`` deviates from the exact one by at most 2e-3 in our runs (the fit's error
    accumulated over 10 steps, plus the trapezoid's O(dt^3) per step): 5e-3 is asserted, well
    inside the issue's 2e-2. Monte Carlo twin: the recorded estimate (65536 samples per step)
    within 5e-3 plus 4 of its error bars. The per-step residual is recorded and small."""
    problem = hamiltonians.get("dissipative_xyz", Lx=3, Ly=1, pbc=False)
    ref, method, rec = _xyz_against_exact(problem, n_samples=256, n_samples_measure=65536, inner_iter=8)
    norm, full = np.array(rec.full).T
    assert np.abs(norm - 1).max() < 1e-12
    assert np.abs(full - ref).max() < 5e-3, np.round(full - ref, 4)
    mc, err = _sigma_z(method), np.array([2 * np.mean(e) for e in method.errors["sz"]])
    assert np.all(np.abs(mc - ref) < 5e-3 + 4 * err), np.round((mc - ref) / err, 2)
    residuals = [r["residual"] for r in rec.rows[1:]]
    assert all(np.isfinite(residuals)) and max(residuals) < 1e-4
    assert np.ptp(ref) > 1.0


_CONFIG = """
[problem]
name = "dissipative_xyz"
Lx = 2
Ly = 1
pbc = false
[method]
kind = "evolve"
engine = "{engine}"
t_final = 0.4
dt = 0.1
initial_state = "product"
initial_config = [0, 0]
observables = ["sz"]
{extra}
[output]
archive = "{path}"
checkpoint_every = 2
"""

_POVM = 'n_samples = 64\ninner_iter = 3\nn_samples_measure = 64\nmodel_options = { d_model = 8, n_heads = 2, n_layers = 1 }'


@pytest.mark.parametrize("engine", ["exact", "povm"])
def test_resume_reproduces_uninterrupted_run(tmp_path, monkeypatch, engine):
    """A run killed in step 3 (checkpoints every 2 steps) and resumed ends with the same
    history (time, energy, residuals, observables and their errors), observables and state as
    the uninterrupted run, bit for bit."""
    import nqs.povm_dynamics as pd

    extra = _POVM if engine == "povm" else ""
    whole = run(loads(_CONFIG.format(engine=engine, extra=extra, path=tmp_path / "whole.h5")), progress=False, log=lambda s: None)
    cls = pd.POVMEngine if engine == "povm" else pd.LindbladEngine
    config = loads(_CONFIG.format(engine=engine, extra=extra, path=tmp_path / "cut.h5"))
    resumed = killed_and_resumed(config, cls, 3, monkeypatch)
    assert len(whole.history["time"]) == 5
    if engine == "povm":
        assert "residual" in whole.history and "sz_error" in whole.history
    assert_same_history(whole, resumed, ("sz",), ("mean",))
    a, b = whole.checkpoint["state"], resumed.checkpoint["state"]
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _xyz_against_exact(problem, **povm):
    """The exact site-averaged ``<sigma^z>(t)`` up to t = 1 (dt = 0.1) and the POVM run (d_model 16,
    one layer; ``povm``: its sampling and fit options) with its recorder."""
    kw = dict(t_final=1.0, dt=0.1)
    exact = Evolve(problem, _open(problem, engine="exact", **kw))
    exact.run(0, _Keep())
    method = Evolve(problem, _open(problem, engine="povm", fit_tol=1e-7, **povm,
                                   model_options={"d_model": 16, "n_heads": 2, "n_layers": 1}, **kw))
    rec = _Keep(method, problem)
    method.run(0, rec)
    return _sigma_z(exact), method, rec


def _loads(method: str, problem: str = 'name = "dissipative_xyz"\nLx = 2\nLy = 2\npbc = false') -> None:
    loads(f"[problem]\n{problem}\n[method]\nkind = \"evolve\"\n{method}\n")


_START = 't_final = 1.0\ndt = 0.1\ninitial_state = "product"\ninitial_config = [0, 0, 0, 0]'


@pytest.mark.parametrize(
    "method, problem, message",
    [
        ('engine = "povm"\nt_final = 1.0\ndt = -0.1\ninitial_state = "product"\ninitial_config = [0, 0, 0, 0]', None,
         "dt > 0"),
        (f'engine = "povm"\n{_START}', 'name = "heisenberg_chain"\nL = 4', "is closed"),
        (f'engine = "mps"\n{_START}', None, "evolves a pure state"),
        (f'engine = "vmc"\n{_START}', None, "evolves a pure state"),
        (f'engine = "povm"\nmodel = "rbm"\n{_START}', None, "cannot represent a mixed state"),
        ('engine = "povm"\nt_final = 1.0\ndt = 0.1\ninitial_state = "product"', None, "give initial_config"),
        ('engine = "exact"\nt_final = 1.0\ndt = 0.1\ninitial_problem = { Jz = 2.0 }', None, "from a product configuration"),
        (f'engine = "povm"\npovm = "cube"\n{_START}', None, "unknown povm"),
        ('engine = "exact"\nt_final = 1.0\ndt = 0.1\ninitial_state = "product"\ninitial_config = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]',
         'name = "dissipative_ising"\nL = 11', "at most 1024 states"),
        (f'engine = "exact"\npovm = "pauli4"\n{_START}', None, 'need engine = "povm"'),
    ],
    ids=["dt", "closed", "mps", "vmc", "pure_model", "config", "ground_state", "povm", "size", "povm_key"],
)
def test_bad_input_fails_before_compute(method, problem, message):
    with pytest.raises(ConfigError, match=message):
        if problem is None:
            _loads(method)
        else:
            _loads(method, problem)


@pytest.mark.slow
def test_povm_xyz_3x3_within_2e_2_of_exact():
    """The issue's accuracy target: dissipative XYZ on the periodic 3x3 lattice (Jx = 0.9,
    Jy = 1.6, Jz = 1, gamma = 1) from all up, ``<sigma^z>`` up to t = 1/gamma within 2e-2 of
    the exact Lindblad evolution (D = 512), dt = 0.1, d_model 16, one layer, 512 samples per
    fit, seed 0. Exact twin: the model summed over all 4^9 strings within 2e-2; Monte Carlo
    twin: 32768 samples per step (error of the site average about 1.1e-2 at t = 0), within 2e-2
    plus 2 error bars. Not yet passed: a shortened run (256 samples, 3 iterations per fit) was
    off by 0.03 after the first step (docs/open_systems.md, "Measured")."""
    problem = hamiltonians.get("dissipative_xyz", Lx=3, Ly=3)
    ref, method, rec = _xyz_against_exact(problem, n_samples=512, n_samples_measure=32768, inner_iter=5)
    _, full = np.array(rec.full).T
    assert np.abs(full - ref).max() < 2e-2, np.round(full - ref, 4)
    mc, err = _sigma_z(method), np.array([2 * np.mean(e) for e in method.errors["sz"]])
    assert np.all(np.abs(mc - ref) < 2e-2 + 2 * err), np.round(mc - ref, 4)


@pytest.mark.parametrize("implicit", [0.5, 1.0])
def test_fit_jacobian_over_distinct_strings_is_the_derivative_of_the_residuals(implicit):
    """The Gauss-Newton Jacobian, assembled from one gradient per distinct string (a sparse
    matrix times per-string gradients), equals central differences of the residuals along random
    directions (open 3-site XYZ chain, random parameters, samples of the model itself)."""
    import jax

    problem = hamiltonians.get("dissipative_xyz", Lx=3, Ly=1, pbc=False)
    method = Evolve(problem, _open(problem, engine="povm", t_final=0.1, dt=0.1, n_samples=32,
                                   model_options={"d_model": 8, "n_heads": 2, "n_layers": 1}))
    eng = method.engine
    rng = np.random.default_rng(5)
    theta = eng.theta + 0.3 * rng.standard_normal(eng.theta.size)
    x = eng.sample(theta, jax.random.PRNGKey(3), 32)
    uniq = np.unique(x, axis=0)
    dt = 0.7
    rows = eng._rows(theta, uniq, (1 - implicit) * dt)
    design = eng._design(rows, implicit * dt)
    r, m = eng._residuals(theta, rows, design)
    jac = eng._jacobian(theta, m, design)
    assert jac.shape == (len(uniq), theta.size) and np.abs(jac).max() > 1e-3
    for _ in range(3):
        v = rng.standard_normal(theta.size)
        eps = 1e-6
        fd = (eng._residuals(theta + eps * v, rows, design)[0] - eng._residuals(theta - eps * v, rows, design)[0]) / (2 * eps)
        np.testing.assert_allclose(jac @ v, fd, rtol=1e-5, atol=1e-7)


def test_fit_drops_strings_impossible_under_the_reference_model():
    """The second fit round draws from a mixture of the reference model and the fitted one; a
    string of the fitted model can have probability 0 under a sharply peaked reference (log P
    below -745), weight 0 and an infinite target. Those rows must not turn the loss into NaN
    (which rejected every step of an L = 16 steady-state run): the fit stays finite."""
    import jax

    from nqs.povm_dynamics import usable_rows

    problem = hamiltonians.get("dissipative_xyz", Lx=3, Ly=1, pbc=False)
    method = Evolve(problem, _open(problem, engine="povm", t_final=0.1, dt=0.1, n_samples=64,
                                   model_options={"d_model": 8, "n_heads": 2, "n_layers": 1}))
    eng = method.engine
    rng = np.random.default_rng(2)
    theta = 400.0 * rng.standard_normal(eng.theta.size)  # a reference with nearly all weight on few strings
    other = eng.theta + 0.3 * rng.standard_normal(eng.theta.size)  # nearly uniform over the 64 strings
    x = np.concatenate([eng.sample(theta, jax.random.PRNGKey(1), 64), eng.sample(other, jax.random.PRNGKey(2), 64)])
    assert np.any(eng.log_prob(theta, np.unique(x, axis=0)) < -745.0)  # exp underflows to 0 there
    new, loss, _ = eng._fit_step(theta, theta, x, [other], 1.0, 0.0, 3)
    assert np.isfinite(loss) and np.all(np.isfinite(new))
    # a model whose probabilities are all unusable stops the run with a message, not a numpy error
    broken = np.full_like(theta, np.nan)
    with pytest.raises(FloatingPointError, match="no sample has a finite residual target"):
        eng._fit_step(broken, broken, x, [], 1.0, 0.0, 3)
    rows, w = usable_rows((np.zeros((3, 2)), np.zeros((3, 1, 2)), np.ones((3, 1)), np.array([-1.0, -np.inf, -1.0]),
                           np.array([1.0, np.nan, np.inf])), np.array([0.5, 0.0, 0.5]))
    assert len(w) == 1 and rows[3].tolist() == [-1.0]
