"""Anyon chains in NetKet and the autoregressive Transformer (issue 30, point 2).

The fusion-path sector goes to NetKet as the sector automaton's acceptance
(:class:`~hamiltonians.netket_backend.AutomatonConstraintNK`) and to the Transformer as its
masks, with no code for anyons in either; the Renyi-2 swap estimator (:mod:`nqs.entanglement`)
counts swapped configurations that leave the sector as zero. Checked against exact
diagonalisation and full enumeration on small chains.
"""

from __future__ import annotations

import time
from itertools import product
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hamiltonians
from hamiltonians.netket_backend import configs_from_netket, configs_to_netket
from hamiltonians.sign_gauge import stoquastic_gauge
from nqs.entanglement import exact_renyi2, exact_samples, model_log_psi, renyi2, swap_ratios
from nqs.models import model_spec

from conftest import perturbed


def _golden(L: int, theta: float, spin: float = 0.5, pbc: bool = True):
    return hamiltonians.get("anyon_chain", L=L, k=3, spin=spin, theta=theta, pbc=pbc)


@pytest.mark.parametrize("theta, pbc", [(0.0, True), (np.pi, True), (0.0, False)])
def test_to_netket_is_the_sector_and_the_hamiltonian(theta, pbc):
    p = _golden(6, theta, pbc=pbc)
    hilbert, op = p.to_netket()
    basis = p.basis()
    assert hilbert.n_states == len(basis)
    assert hilbert.size == p.n_sites and len(hilbert.local_states) == 4
    x = configs_to_netket(p.local_space, basis)
    assert np.array_equal(configs_from_netket(p.local_space, x), basis)
    assert np.asarray(hilbert.constraint(jnp.asarray(x))).all()
    idx = hilbert.states_to_numbers(x)
    h = op.to_sparse()[idx][:, idx]
    assert abs(h - p.sparse_matrix()).max() < 1e-12
    # random states are allowed fusion paths; a path with a broken fusion rule is not
    r = np.asarray(hilbert.random_state(jax.random.key(0), 16))
    assert p.constraint.check(configs_from_netket(p.local_space, r)).all()
    bad = basis[:1].copy()
    bad[0, 1] = (bad[0, 1] + 1) % 4  # the parity of neighbouring labels breaks
    assert not np.asarray(hilbert.constraint(jnp.asarray(configs_to_netket(p.local_space, bad)))).any()


def test_sign_rule_makes_the_golden_chain_stoquastic():
    afm, fm = _golden(8, 0.0), _golden(8, np.pi)
    assert not afm.stoquastic() and fm.stoquastic()
    gauge = stoquastic_gauge(afm)
    assert gauge is not None and afm.stoquastic(gauge)
    assert stoquastic_gauge(fm) is None  # nothing to do
    # frustrated spins have no local sign rule; the Marshall sign stays where it applies
    assert stoquastic_gauge(hamiltonians.get("j1j2", Lx=3, Ly=3, J2=0.5)) is None


class _Case:
    def __init__(self, L: int = 6, theta: float = 0.0):
        self.problem = p = _golden(L, theta)
        self.hilbert, _ = p.to_netket()
        spec = model_spec("transformer")
        options = spec.options(d_model=16, n_heads=2, n_layers=2, phase="learned")
        assert spec.fits(p) is None and (spec.check is None or spec.check(p, options) is None)
        self.model = spec.build(p, options)
        self.full = np.array(list(product(range(4), repeat=p.n_sites)), dtype=np.int8)
        x = jnp.asarray(configs_to_netket(p.local_space, self.full))
        params = self.model.init(jax.random.key(1), x[:2])
        self.params = perturbed(params, jax.random.key(2))
        self.log_psi = np.asarray(jax.jit(self.model.apply)(self.params, x))


_CASE: list[_Case] = []


def _case() -> _Case:
    if not _CASE:
        _CASE.append(_Case())
    return _CASE[0]


def test_transformer_is_normalised_on_fusion_paths():
    c = _case()
    ok = c.problem.constraint.check(c.full)
    assert ok.sum() == len(c.problem.basis())
    assert np.exp(2 * c.log_psi.real[ok]).sum() == pytest.approx(1.0, abs=1e-10)
    assert np.all(np.exp(c.log_psi.real[~ok]) == 0.0)
    # random parameters: a genuinely non-uniform state with phases
    assert np.ptp(c.log_psi.real[ok]) > 0.5 and np.ptp(c.log_psi.imag[ok]) > 0.3


def test_samples_are_fusion_paths_with_frequencies_psi_squared(chi_square):
    c = _case()
    samples = exact_samples(c.model, c.params, c.hilbert, c.problem.local_space, 8000, seed=3)
    assert c.problem.constraint.check(samples).all()
    ok = c.problem.constraint.check(c.full)
    paths = c.full[ok]
    index = {tuple(a): i for i, a in enumerate(paths.tolist())}
    counts = np.bincount([index[tuple(a)] for a in samples.tolist()], minlength=len(paths))
    n_bins, p_value = chi_square(counts, len(samples) * np.exp(2 * c.log_psi.real[ok]))
    assert n_bins >= 10 and p_value > 1e-3


def test_renyi2_of_the_model_matches_its_exact_value():
    """Swap estimator on 2 x 8000 exact samples of the random-parameter Transformer against the
    exact S_2 of its full state: within 4 standard errors for every cut of the ring, with swaps
    that leave the sector (labels at a boundary of A that no longer fuse) counted as zero."""
    c = _case()
    p = c.problem
    ok = p.constraint.check(c.full)
    amplitudes, basis = np.exp(c.log_psi[ok]), c.full[ok]
    samples = exact_samples(c.model, c.params, c.hilbert, p.local_space, 16000, seed=4)
    f = model_log_psi(c.model, c.params, p.local_space)
    forbidden = []
    for l in range(1, p.n_sites):
        est = renyi2(f, samples, range(l), p.constraint.check)
        exact = exact_renyi2(amplitudes, basis, range(l))
        assert abs(est.s2 - exact) < 4 * est.s2_error + 1e-3, (l, est, exact)
        forbidden.append(est.forbidden)
    assert min(forbidden) > 0.05  # the constraint matters at every cut


def test_renyi2_of_the_ed_ground_state_and_the_zero_of_forbidden_swaps():
    """The estimator on samples of the exact ground state (golden chain, 10 anyons): within
    4 standard errors of the exact S_2; dropping the forbidden swaps instead of counting them as
    zero would bias the purity up, far outside the error."""
    p = _golden(10, 0.0)
    e0, v, basis = p.exact_ground_state()
    rng = np.random.default_rng(0)
    samples = basis[rng.choice(len(basis), size=40000, p=np.abs(v) ** 2 / np.sum(np.abs(v) ** 2))]
    index = {tuple(a): i for i, a in enumerate(basis.tolist())}

    def log_psi(a):
        # amplitudes of allowed paths only: the estimator never asks for others
        return np.log(np.array([v[index[tuple(x)]] for x in np.asarray(a).tolist()], dtype=complex))

    for l in (1, 2, 5):
        est = renyi2(log_psi, samples, range(l), p.constraint.check)
        exact = exact_renyi2(v, basis, range(l))
        assert abs(est.s2 - exact) < 4 * est.s2_error, (l, est, exact)
        ratios, allowed = swap_ratios(log_psi, samples[:20000], samples[20000:], range(l), p.constraint.check)
        assert not allowed.all()
        biased = -np.log(ratios[allowed].mean())
        assert abs(biased - exact) > 10 * est.s2_error


def _vmc(tmp_path: Path, L: int, theta: float, n_iter: int, extra: str = "") -> tuple[dict, float]:
    from nqs import config as cfg
    from nqs.runs.runner import run

    text = f"""
[problem]
name = "anyon_chain"
L = {L}
k = 3
spin = 1.0
theta = {theta}

[method]
kind = "vmc"
model = "transformer"
n_iter = {n_iter}
seed = 0
{extra}

[output]
archive = "{(tmp_path / 'run.h5').as_posix()}"
"""
    t0 = time.perf_counter()
    archive = run(cfg.loads(text), progress=False, log=lambda s: None)
    return archive.result, time.perf_counter() - t0


def test_vmc_runs_on_a_short_golden_chain(tmp_path):
    """The runner takes the anyon chain with ``model = "transformer"`` as it is: a short run on
    6 Fibonacci anyons gets within 1% of ED."""
    result, _ = _vmc(tmp_path, 6, 0.0, 20, "n_samples = 128\nd_model = 8\nn_heads = 2\nn_layers = 1")
    assert result["relative_error"] < 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("theta", [0.0, np.pi], ids=["afm", "fm"])
def test_vmc_golden_chain_against_ed(theta, tmp_path):
    """Defaults only (300 steps): 10 Fibonacci anyons, relative error below 1e-3."""
    result, wall = _vmc(tmp_path, 10, theta, 300)
    assert result["relative_error"] < 1e-3, (result, wall)
