"""Constrained autoregressive models (Transformer, GRU) and their exact direct sampler on small
problems.

For every kind of constraint (total S^z, t-J electron numbers without double occupancy, Z2 and
U(1) Gauss law) at random parameters: psi is normalised over the sector (full enumeration),
vanishes outside it, samples never leave it and their frequencies follow |psi|^2 (chi-square),
and the cached one-site-per-call conditionals equal the teacher-forcing ones.
"""

from functools import partial
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import hamiltonians
from hamiltonians.netket_backend import configs_from_netket, configs_to_netket
from nqs.models import model_spec
from nqs.models.autoregressive import (
    configs_to_local, local_to_configs, marshall_characters, marshall_sublattice, site_symmetries,
)
from nqs.sampling.direct_sampler import ConstrainedDirectSampler

from conftest import perturbed

PROBLEMS = {
    "heisenberg_chain_L6": ("heisenberg_chain", {"L": 6}, "transformer"),
    "j1j2_3x3_Sz1/2": ("j1j2", {"Lx": 3, "Ly": 3, "J2": 0.5}, "transformer"),
    "tj_2x3_open_2holes": ("tj", {"Lx": 2, "Ly": 3, "n_holes": 2, "pbc": False}, "transformer"),
    "z2_gauge_3x2": ("z2_gauge", {"Lx": 3, "Ly": 2, "h": 0.3}, "gauge_transformer"),
    "u1_qlm_3x2": ("u1_qlm", {"Lx": 3, "Ly": 2, "lam": -0.5}, "gauge_transformer"),
    # the GRU on one problem per kind of constraint
    "rnn-heisenberg_chain_L6": ("heisenberg_chain", {"L": 6}, "ar_rnn"),
    "rnn-tj_2x3_open_2holes": ("tj", {"Lx": 2, "Ly": 3, "n_holes": 2, "pbc": False}, "ar_rnn"),
    "rnn-z2_gauge_3x2": ("z2_gauge", {"Lx": 3, "Ly": 2, "h": 0.3}, "ar_rnn"),
    "rnn-u1_qlm_3x2": ("u1_qlm", {"Lx": 3, "Ly": 2, "lam": -0.5}, "ar_rnn"),
    # |psi|^2 averaged over site symmetries: the sampler moves each draw by a random element
    "sym-j1j2_3x3_Sz1/2": ("j1j2", {"Lx": 3, "Ly": 3, "J2": 0.5}, "transformer"),
    "sym-tj_2x3_open_2holes": ("tj", {"Lx": 2, "Ly": 3, "n_holes": 2, "pbc": False}, "transformer"),
    "sym-rnn-j1j2_3x3_Sz1/2": ("j1j2", {"Lx": 3, "Ly": 3, "J2": 0.5}, "ar_rnn"),
}
SYMMETRIZE = {key: "point_group" for key in PROBLEMS if key.startswith("sym-")}
"""The point group (8 and 4 elements) keeps the sampling checks cheap; the invariance test also
runs the 72-element space group of the 3x3 torus."""

# Small but complete networks (two layers: the caches of stacked blocks are exercised); the
# checks are exact properties of the construction, independent of the sizes. Phases learned
# everywhere (``auto`` would fix them on the stoquastic problems) to exercise the phase heads.
# The Transformer's amplitude is not projected here (``auto`` would project it with the point
# group): these cases check exact sampling, and the projection has its own tests below.
SIZES = {
    "transformer": {
        "d_model": 16, "n_heads": 2, "n_layers": 2, "phase": "learned", "symmetrize": "none",
        "project_amplitude": False, "real_sign": False,
    },
    "gauge_transformer": {"d_model": 16, "n_heads": 2, "n_layers": 2, "phase": "learned"},
    "ar_rnn": {"hidden": 16, "n_layers": 2, "phase": "learned", "symmetrize": "none"},
}
N_SAMPLES = 20_000
# A fixed-seed chi-square test is deterministic; the threshold is the p-value below which the
# sample frequencies would be called incompatible with |psi|^2 at a 1e-3 false-alarm rate.
P_VALUE_MIN = 1e-3


class Case:
    """A problem, its model at random parameters, and 20,000 samples."""

    def __init__(self, key: str):
        name, params, model = PROBLEMS[key]
        self.problem = hamiltonians.get(name, **params)
        self.hilbert, self.hamiltonian = self.problem.to_netket()
        spec = model_spec(model)
        extra = {"symmetrize": SYMMETRIZE[key]} if key in SYMMETRIZE else {}
        options = spec.options(**{**SIZES[model], **extra})
        self.model = spec.build(self.problem, options)
        self.basis = self.problem.basis()
        x = jnp.asarray(configs_to_netket(self.problem.local_space, self.basis))
        params = self.model.init(jax.random.key(1), x[:2])
        # random parameters far from the near-uniform initialisation: strongly non-uniform
        # conditionals and phases
        self.params = perturbed(params, jax.random.key(2))
        self.log_psi = np.asarray(self.model.apply(self.params, x))
        self.sampler = spec.make_sampler(self.problem, self.hilbert, self.hamiltonian, SimpleNamespace(model_options=options))
        self.state = nk.vqs.MCState(self.sampler, self.model, variables=self.params, n_samples=N_SAMPLES, sampler_seed=3)
        self.samples = np.asarray(self.state.sample()).reshape(-1, self.hilbert.size)


_CASES: dict[str, Case] = {}


def get_case(key: str) -> Case:
    if key not in _CASES:
        _CASES[key] = Case(key)
    return _CASES[key]


@pytest.fixture(params=list(PROBLEMS), ids=list(PROBLEMS))
def case(request) -> Case:
    return get_case(request.param)


ATTENTION_CASES = [key for key, (_, _, model) in PROBLEMS.items() if "transformer" in model and key not in SYMMETRIZE]
"""The cases whose model reads a key/value cache (the sampler's blocks and ``visible`` apply);
the symmetrised ones add nothing there (the cache does not see the symmetry)."""


def test_normalised_over_the_sector(case):
    norm = np.exp(2 * case.log_psi.real).sum()
    # exact normalisation by construction; only rounding of ~N log-softmax terms remains
    assert norm == pytest.approx(1.0, abs=1e-10)
    # the random parameters give a genuinely non-uniform distribution and non-trivial phases
    assert np.ptp(case.log_psi.real) > 0.5 and np.ptp(case.log_psi.imag) > 0.5


@pytest.mark.parametrize(
    "key, kind, order",
    [
        ("sym-j1j2_3x3_Sz1/2", "point_group", 8),
        ("sym-j1j2_3x3_Sz1/2", "space_group", 72),
        ("sym-tj_2x3_open_2holes", "point_group", 4),
        ("sym-rnn-j1j2_3x3_Sz1/2", "point_group", 8),
    ],
)
def test_symmetrised_moduli_are_invariant(key, kind, order):
    """``|psi(a[perm])| = |psi(a)|`` for every element of the group (8 and 72 on the periodic 3x3
    lattice, 4 on the open 2x3 one), every basis configuration; without the average they differ."""
    case = get_case(key)
    model = case.model.clone(symmetries=site_symmetries(case.problem, kind))
    perms = np.asarray(model.symmetries)
    assert len(perms) == order
    assert len({tuple(q) for q in perms.tolist()}) == len(perms)  # distinct elements
    assert np.array_equal(perms[0], np.arange(case.problem.n_sites))
    # every image of every basis configuration, (G, n_basis, n) in one batch
    x = jnp.asarray(configs_to_netket(case.problem.local_space, case.basis))
    images = jnp.asarray(configs_to_netket(case.problem.local_space, case.basis[:, perms].transpose(1, 0, 2)))
    apply = jax.jit(model.apply)
    log_psi = np.asarray(apply(case.params, images).real)
    reference = np.asarray(apply(case.params, x).real)
    np.testing.assert_allclose(log_psi, np.broadcast_to(reference, log_psi.shape), atol=1e-10)
    plain = np.asarray(jax.jit(model.clone(symmetries=None).apply)(case.params, images[:2]).real)
    assert np.ptp(plain[1] - plain[0]) > 0.1


def test_symmetric_phase_makes_the_amplitude_invariant():
    """``symmetric_phase``: ``psi(a[perm]) = psi(a)`` as complex numbers for the 8 elements of the
    point group on every basis configuration of the 3x3 torus, the moduli (so the normalisation)
    unchanged; with the network's own phase the phases of the images differ."""
    case = get_case("sym-j1j2_3x3_Sz1/2")
    model = case.model.clone(symmetries=site_symmetries(case.problem, "point_group"))
    perms = np.asarray(model.symmetries)
    x = jnp.asarray(configs_to_netket(case.problem.local_space, case.basis))
    images = jnp.asarray(configs_to_netket(case.problem.local_space, case.basis[:, perms].transpose(1, 0, 2)))
    plain = np.asarray(jax.jit(model.apply)(case.params, images))
    symmetric = model.clone(symmetric_phase=True)
    apply = jax.jit(symmetric.apply)
    psi = np.exp(np.asarray(apply(case.params, images)))
    reference = np.exp(np.asarray(apply(case.params, x)))
    np.testing.assert_allclose(psi, np.broadcast_to(reference, psi.shape), atol=1e-10)
    np.testing.assert_allclose(np.abs(reference), np.exp(plain[0].real), rtol=1e-10)
    assert np.sum(np.abs(reference) ** 2) == pytest.approx(1.0, abs=1e-10)
    phase_spread = np.abs(np.exp(1j * plain.imag) - np.exp(1j * plain.imag[:1])).max(axis=0)
    assert np.median(phase_spread) > 0.1


def test_zero_outside_the_sector(case):
    p = case.problem
    rng = np.random.default_rng(0)
    x = case.basis[rng.integers(len(case.basis), size=64)].copy()
    # change one local state at a random site: every such configuration leaves these sectors
    sites = rng.integers(p.n_sites, size=len(x))
    x[np.arange(len(x)), sites] = (x[np.arange(len(x)), sites] + 1) % p.local_space.dim
    assert not p.constraint.check(x).any()
    log_psi = np.asarray(case.model.apply(case.params, jnp.asarray(configs_to_netket(p.local_space, x))))
    assert np.all(np.exp(log_psi.real) == 0.0)


def test_no_sample_violates_the_constraint(case):
    local = configs_from_netket(case.problem.local_space, case.samples)
    assert len(local) >= 10_000
    assert case.problem.constraint.check(local).all()


def test_sample_frequencies_follow_psi_squared(case, chi_square):
    local = configs_from_netket(case.problem.local_space, case.samples)
    index = {tuple(c): i for i, c in enumerate(case.basis.tolist())}
    counts = np.bincount([index[tuple(c)] for c in local.tolist()], minlength=len(case.basis))
    expected = len(local) * np.exp(2 * case.log_psi.real)
    n_bins, p_value = chi_square(counts, expected)
    assert n_bins >= 10
    assert p_value > P_VALUE_MIN, n_bins


def test_sampler_log_probabilities_are_log_psi_squared(case):
    (sigma, log_q), _ = case.sampler.sample(
        case.model, case.params, state=case.sampler.init_state(case.model, case.params, 5),
        chain_length=64, return_log_probabilities=True,
    )
    sigma = sigma.reshape(-1, case.hilbert.size)
    log_psi = case.model.apply(case.params, sigma)
    np.testing.assert_allclose(np.asarray(log_q).ravel(), 2 * np.asarray(log_psi.real), atol=1e-10)


@pytest.mark.parametrize("key", ATTENTION_CASES)
def test_draws_do_not_depend_on_the_site_blocks(key):
    """The site loop in blocks (the default from 32 sites on) reads less of the key/value cache
    than in one scan; the same key gives the same samples."""
    case = get_case(key)
    reference = ConstrainedDirectSampler(case.hilbert, case.problem.local_space.name, site_blocks=4)
    other = ConstrainedDirectSampler(case.hilbert, case.problem.local_space.name, site_blocks=1)
    draws = [
        np.asarray(s.sample(case.model, case.params, state=s.init_state(case.model, case.params, 7), chain_length=256)[0])
        for s in (reference, other)
    ]
    np.testing.assert_array_equal(draws[0], draws[1])


def check_cached_steps_equal_teacher_forcing(case: Case, grow: bool, model=None) -> None:
    """``grow``: every step reads only the cached positions up to itself (``visible = k + 1``),
    so a key/value cache grows by one position per step, the extreme of the sampler's blocks.
    ``model``: a variant of the case's model (same parameters)."""
    model = case.model if model is None else model
    a = jnp.asarray(case.basis, dtype=jnp.int32)
    log_p, phases = model.apply(case.params, a, method="conditionals")
    steps_p, steps_phi = [], []
    cache = {}
    # compiled per step shape (``visible`` is static): op by op, each growing shape would compile
    # every operation anew
    step = jax.jit(partial(model.apply, method="conditional_step", mutable=["cache"]), static_argnums=3)
    for k in range(case.problem.n_sites):
        a_prev = a[:, k - 1] if k else jnp.zeros_like(a[:, 0])
        (lp, ph), mutables = step({**case.params, **cache}, a_prev, k, k + 1 if grow else None)
        cache = {"cache": mutables["cache"]}
        steps_p.append(lp)
        steps_phi.append(ph)
    steps_p, steps_phi = jnp.stack(steps_p, 1), jnp.stack(steps_phi, 1)
    allowed = np.isfinite(np.asarray(log_p))
    assert (np.isfinite(np.asarray(steps_p)) == allowed).all()  # same masks
    np.testing.assert_allclose(np.asarray(steps_p)[allowed], np.asarray(log_p)[allowed], atol=1e-12)
    np.testing.assert_allclose(np.asarray(steps_phi), np.asarray(phases), atol=1e-12)


@pytest.mark.parametrize("key", [key for key in PROBLEMS if key not in SYMMETRIZE])
def test_cached_steps_equal_teacher_forcing(key):
    # the conditionals, cached or not, do not see the symmetry average: its cases add nothing
    check_cached_steps_equal_teacher_forcing(get_case(key), grow=False)


@pytest.mark.parametrize("tabulated", [True, False], ids=["first_block_tabulated", "first_block_cached"])
@pytest.mark.parametrize("key", ATTENTION_CASES)
def test_cached_steps_with_a_growing_cache_equal_teacher_forcing(key, tabulated):
    """Both sampling paths of the first block (its keys and values from a table by position
    and token, the default, or cached like the later blocks) against teacher forcing."""
    case = get_case(key)
    check_cached_steps_equal_teacher_forcing(case, grow=True, model=case.model.clone(tabulate_first_block=tabulated))


def test_conversions_round_trip(case):
    space = case.problem.local_space
    x = configs_to_netket(space, case.basis)
    a = configs_to_local(space.name, jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(a), case.basis)
    np.testing.assert_array_equal(np.asarray(local_to_configs(space.name, a, x.dtype)), x)


@pytest.mark.parametrize("key", ["tj_2x3_open_2holes", "u1_qlm_3x2"])
def test_mc_energy_matches_full_summation(key):
    """End to end through NetKet: the MC estimate with our samples equals <psi|H|psi> summed over
    the whole NetKet Hilbert space (fermion signs and conversions included)."""
    c = _CASES.get(key) or Case(key)
    exact = nk.vqs.FullSumState(c.hilbert, c.model, variables=c.params).expect(c.hamiltonian)
    mc = c.state.expect(c.hamiltonian)
    # 20,000 independent samples: within 4 standard errors of the exact value
    assert abs(mc.mean.real - exact.mean.real) < 4 * mc.error_of_mean
    assert mc.error_of_mean < 0.05


def test_marshall_sublattice():
    chain = hamiltonians.get("heisenberg_chain", L=6)
    np.testing.assert_array_equal(marshall_sublattice(chain), [True, False] * 3)
    assert marshall_sublattice(hamiltonians.get("j1j2", Lx=3, Ly=3)) is None  # odd periodic: frustrated
    assert marshall_sublattice(hamiltonians.get("j1j2", Lx=4, Ly=4, marshall=True)) is None
    # snake order on 4x4: sublattice parity of (x + y) alternates along the snake
    sub = marshall_sublattice(hamiltonians.get("j1j2", Lx=4, Ly=4))
    assert sub.sum() == 8 and all(sub[i] != sub[i + 1] for i in range(15))


@pytest.mark.parametrize(
    "pbc, order", [(True, 8), (False, 8), ([True, False], 4)], ids=["torus", "open", "cylinder"]
)
def test_point_group_maps_bonds_onto_bonds(pbc, order):
    """Every element of ``symmetrize = "point_group"`` is an automorphism of the J1-J2 lattice
    (nearest and diagonal bonds onto themselves); a cylinder loses the 90-degree rotations."""
    p = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5, pbc=pbc)
    perms = np.asarray(site_symmetries(p, "point_group"))
    assert len(perms) == order and len({tuple(g) for g in perms}) == order
    for bonds in (p.geometry.bonds, p.geometry.diagonals):
        edges = {frozenset(b) for b in bonds}
        for g in perms:
            assert {frozenset((g[i], g[j])) for i, j in bonds} == edges
    # the cylinder keeps its bipartite Marshall sublattice (even circumference)
    assert marshall_sublattice(p).sum() == 8


def test_model_fits_and_options():
    tr, gt = model_spec("transformer"), model_spec("gauge_transformer")
    z2 = hamiltonians.get("z2_gauge", Lx=2, Ly=2, h=0.1)
    chain = hamiltonians.get("heisenberg_chain", L=6)
    assert tr.fits(chain) is None and gt.fits(z2) is None
    assert "gauge_transformer" in tr.fits(z2)
    assert gt.fits(chain) is not None
    with pytest.raises(ValueError, match="n_heads"):
        tr.options(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="n_layers"):
        gt.options(n_layers=0)
    with pytest.raises(ValueError, match="sign_prior"):
        tr.build(hamiltonians.get("j1j2", Lx=3, Ly=3), tr.options(sign_prior="marshall"))
    rnn = model_spec("ar_rnn")
    assert rnn.fits(chain) is None and rnn.fits(z2) is None
    assert rnn.check(hamiltonians.get("j1j2", Lx=3, Ly=3), rnn.options(sign_prior="marshall")) is not None
    assert rnn.check(chain, rnn.options(sign_prior="marshall")) is None


@pytest.mark.parametrize(
    "name, params, model, fixed",
    [
        ("heisenberg_chain", {"L": 6}, "transformer", True),  # Marshall sign exact
        ("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.5}, "ar_rnn", False),  # frustrated
        ("tj", {"Lx": 2, "Ly": 3, "n_holes": 2, "pbc": False}, "transformer", False),  # fermions
        ("z2_gauge", {"Lx": 3, "Ly": 2, "h": 0.3}, "gauge_transformer", True),  # positive
        ("u1_qlm", {"Lx": 3, "Ly": 2, "J": -1.0}, "gauge_transformer", False),  # +|J| flips
    ],
    ids=["chain", "j1j2-frustrated", "tj", "z2", "u1-negative-J"],
)
def test_auto_phase_is_fixed_exactly_where_the_sign_is_known(name, params, model, fixed):
    """``phase = "auto"`` drops the phase head where the Hamiltonian is stoquastic after the sign
    prior; the phase is then the prior alone, and SR runs in real mode."""
    from nqs.vmc import _sr_mode

    p = hamiltonians.get(name, **params)
    spec = model_spec(model)
    m = spec.build(p, spec.options(**{k: v for k, v in SIZES[model].items() if k != "phase"}))
    assert m.learn_phase is (not fixed)
    hilbert, _ = p.to_netket()
    x = jnp.asarray(configs_to_netket(p.local_space, p.basis()[:50]))
    variables = m.init(jax.random.key(0), x)
    assert ("phase_head" in variables["params"]) is (not fixed)
    if fixed:
        # the imaginary part is the prior's (Marshall: pi per down spin on sublattice A), mod 2 pi
        prior = np.zeros((p.n_sites, p.local_space.dim)) if m.phase_prior is None else np.asarray(m.phase_prior)
        expected = prior[np.arange(p.n_sites), p.basis()[:50]].sum(axis=1)
        got = np.asarray(m.apply(variables, x)).imag
        np.testing.assert_allclose(np.cos(got - expected), 1.0, atol=1e-12)
        state = nk.vqs.MCState(spec.make_sampler(p, hilbert, None, None), m, variables=variables, n_samples=8)
        assert _sr_mode(hilbert, state, m) == "real"


def test_fixed_phase_is_refused_where_it_is_not_exact():
    from nqs.runs.config import ConfigError, loads

    with pytest.raises(ConfigError, match="phase 'fixed'.*stoquastic"):
        loads('[problem]\nname = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.5\n\n[method]\nkind = "vmc"\nmodel = "transformer"\nphase = "fixed"\n')
    loads('[problem]\nname = "j1j2"\nLx = 4\nLy = 4\n\n[method]\nkind = "vmc"\nmodel = "transformer"\nphase = "fixed"\n')


def test_sampler_refuses_other_models():
    chain = hamiltonians.get("heisenberg_chain", L=6)
    hilbert, _ = chain.to_netket()
    sampler = ConstrainedDirectSampler(hilbert, "spin_half")
    with pytest.raises(TypeError, match="ConstrainedAR"):
        nk.vqs.MCState(sampler, nk.models.RBM(), n_samples=16)


BAD_CONFIGS = {
    "unknown model": ('name = "heisenberg_chain"\nL = 6', 'model = "transfomer"', "unknown model 'transfomer'. Available:"),
    "gauge model on spins": ('name = "heisenberg_chain"\nL = 6', 'model = "gauge_transformer"', "use 'transformer'"),
    "site model on links": ('name = "z2_gauge"\nLx = 2\nLy = 2\nh = 0.1', 'model = "transformer"', "use model 'gauge_transformer'"),
    "heads": ('name = "heisenberg_chain"\nL = 6', 'model = "transformer"\nd_model = 30\nn_heads = 4', r"d_model \(30\) must be a multiple of n_heads \(4\)"),
    "rnn size": ('name = "heisenberg_chain"\nL = 6', 'model = "ar_rnn"\nhidden = 0', "hidden must be >= 1"),
    "frustrated marshall": ('name = "j1j2"\nLx = 3\nLy = 3', 'model = "ar_rnn"\nsign_prior = "marshall"', "use sign_prior = 'auto' or 'none'"),
    "unknown symmetry": ('name = "heisenberg_chain"\nL = 6', 'model = "transformer"\nsymmetrize = "rotations"', r"key 'symmetrize' must be 'auto' \| 'none' \| 'point_group'"),
    "translations on an open lattice": (
        'name = "tj"\nLx = 2\nLy = 3\nn_holes = 2\npbc = false', 'model = "transformer"\nsymmetrize = "translations"',
        "needs a lattice periodic in both directions; use 'point_group'; or symmetrize = 'none'",
    ),
    "translations on a cylinder": (
        'name = "j1j2"\nLx = 4\nLy = 3\npbc = [true, false]', 'model = "transformer"\nsymmetrize = "space_group"',
        "needs a lattice periodic in both directions; use 'point_group'",
    ),
    "rnn symmetry on links": (
        'name = "z2_gauge"\nLx = 2\nLy = 2\nh = 0.1', 'model = "ar_rnn"\nsymmetrize = "point_group"',
        "needs a model on the sites of a square lattice or chain; or symmetrize = 'none'",
    ),
    "projection without images": (
        'name = "tj"\nLx = 2\nLy = 3\nn_holes = 2\npbc = false', 'model = "transformer"\nproject_amplitude = true',
        "project_amplitude sums over the images of symmetrize, which is 'auto' .no images. here; set symmetrize = 'point_group'",
    ),
    "projection with a ViT phase": (
        'name = "j1j2"\nLx = 4\nLy = 4', 'model = "transformer"\nproject_amplitude = true\nphase = "vit"',
        "use phase = 'auto' with it",
    ),
    "real signs without the projection": (
        'name = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.5', 'model = "transformer"\nproject_amplitude = false\nreal_sign = true',
        "set project_amplitude = true with it",
    ),
    "real signs where the phase is fixed": (
        'name = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.0', 'model = "transformer"\nreal_sign = true',
        "a phase that is not learned.*real_sign = false",
    ),
    "misspelt key": ('name = "heisenberg_chain"\nL = 6', 'model = "transformer"\nn_layer = 2', "Did you mean 'n_layers'"),
    "unknown attention": (
        'name = "heisenberg_chain"\nL = 6', 'model = "transformer"\nattention = "grouped"', "key 'attention' must be 'multi_query' \\| 'multi_head'",
    ),
}


@pytest.mark.parametrize("key", list(BAD_CONFIGS), ids=list(BAD_CONFIGS))
def test_bad_configurations_fail_when_parsed(key):
    """Mistakes are reported by ``nqs.runs.config.loads``, before any model is built or compiled,
    with a message naming the fix."""
    from nqs.runs.config import ConfigError, loads

    problem, method, message = BAD_CONFIGS[key]
    text = f'[problem]\n{problem}\n\n[method]\nkind = "vmc"\n{method}\n'
    with pytest.raises(ConfigError, match=message):
        loads(text)


@pytest.mark.parametrize("model", [pytest.param("ar_rnn", marks=pytest.mark.slow), "transformer"])
def test_vmc_steps_under_on_the_fly_sr(model, tmp_path):
    """More parameters than samples: NetKet's SR takes its on-the-fly NTK route, which evaluates
    the model inside shard_map (scan carries must match the inputs' sharding type). Regression:
    the GRU's initial hidden state used to fail there."""
    from nqs.runs.config import loads
    from nqs.runs.runner import run

    # one layer and no symmetry images: the regression is about the scan carry, not the depth
    # or the average, and compiling the on-the-fly NTK of the 16 images costs a minute
    sizes = "hidden = 16\nn_layers = 1" if model == "ar_rnn" else 'd_model = 16\nn_heads = 2\nn_layers = 1\nsymmetrize = "none"'
    text = (
        f"[problem]\nname = 'heisenberg_chain'\nL = 8\n\n[method]\nkind = 'vmc'\nmodel = '{model}'\n{sizes}\n"
        f"n_iter = 2\nn_samples = 64\nn_chains = 16\non_the_fly = true\n\n"
        f"[output]\narchive = '{tmp_path / 'run.h5'}'\n"
    )
    a = run(loads(text), progress=False, log=lambda s: None)
    assert a.status == "completed"
    exact = hamiltonians.get("heisenberg_chain", L=8).exact()
    assert exact - 5 * a.result["energy_error"] <= a.result["energy"] < 0


# --------------------------------------------------------------------------- projected amplitude
def projected_case() -> tuple[Case, Any, jax.Array, jax.Array]:
    """The point-group case with ``project_amplitude``: the model, the basis as NetKet configs
    and the images ``(G, n_basis, n)`` of every basis configuration."""
    case = get_case("sym-j1j2_3x3_Sz1/2")
    model = case.model.clone(project_amplitude=True)
    perms = np.asarray(model.symmetries)
    x = jnp.asarray(configs_to_netket(case.problem.local_space, case.basis))
    images = jnp.asarray(configs_to_netket(case.problem.local_space, case.basis[:, perms].transpose(1, 0, 2)))
    return case, model, x, images


def test_projected_amplitude_is_the_mean_of_the_images():
    """``project_amplitude``: ``psi(a) = mean_g psi_AR(g a)`` against the unsymmetrised network
    on the 8 images of every basis configuration of the 3x3 torus; the state is invariant, its
    norm below 1, ``|psi|^2 <= q`` pointwise, and ``q`` (the exact sampler's law) is normalised."""
    case, model, x, images = projected_case()
    apply = jax.jit(model.apply)
    psi = np.exp(np.asarray(apply(case.params, x)))
    plain = np.exp(np.asarray(jax.jit(model.clone(symmetries=None, project_amplitude=False).apply)(case.params, images)))
    np.testing.assert_allclose(psi, plain.mean(axis=0), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.exp(np.asarray(apply(case.params, images))), np.broadcast_to(psi, images.shape[:2]), rtol=1e-9)
    q = np.exp(np.asarray(jax.jit(partial_method(model, "log_proposal"))(case.params, x)))
    np.testing.assert_allclose(q, (np.abs(plain) ** 2).mean(axis=0), rtol=1e-10)
    assert q.sum() == pytest.approx(1.0, abs=1e-10)
    assert np.all(np.abs(psi) ** 2 <= q * (1 + 1e-10))
    norm = np.sum(np.abs(psi) ** 2)
    assert 0.05 < norm < 0.95  # the random images interfere: a real test of the reweighting


@pytest.mark.parametrize("key", ["sym-j1j2_3x3_Sz1/2", "heisenberg_chain_L6"])
def test_real_sign_images_carry_real_factors(key):
    """``real_sign``: ``psi(a) = mean_g sqrt(p(g a)) exp(i prior(g a)) tanh(1 + u(g a))``, ``u``
    the network's summed phase output without the prior, computed here from the unsymmetrised
    network's conditionals; real (the priors are signs), ``|psi|^2 <= q``. The 3x3 torus has no sign
    prior, the chain (with its reflection) the Marshall sign."""
    case = get_case(key)
    symmetries = site_symmetries(case.problem, "point_group")
    perms = np.asarray(symmetries)
    model = case.model.clone(symmetries=symmetries, project_amplitude=True, real_sign=True)
    x = jnp.asarray(configs_to_netket(case.problem.local_space, case.basis))
    plain = case.model.clone(symmetries=None)
    images = case.basis[:, perms]  # (n_basis, G, N)
    flat = jnp.asarray(images.reshape(-1, images.shape[-1]), dtype=jnp.int32)
    picked = lambda t: np.take_along_axis(t, np.asarray(flat)[..., None], axis=-1)[..., 0].sum(axis=-1)  # noqa: E731
    prior_table = np.zeros((case.problem.n_sites, 2)) if plain.phase_prior is None else np.asarray(plain.phase_prior)
    prior = prior_table[np.arange(images.shape[-1]), images].sum(axis=-1)

    def summed(params):
        log_p, phases = (np.asarray(t) for t in plain.apply(params, flat, method="conditionals"))
        return picked(log_p).reshape(images.shape[:2]), picked(phases).reshape(images.shape[:2])

    # centre 1 + u on zero, so that the sign factors take both signs and the checks below are
    # not those of a state of one sign: the phase head's bias adds N times its shift to u
    params = jax.tree_util.tree_map(lambda t: t, case.params)
    shift = -(1 + np.median(summed(params)[1] - prior)) / case.problem.n_sites
    params["params"]["phase_head"]["bias"] = params["params"]["phase_head"]["bias"] + shift
    log_p, phase = summed(params)
    psi = np.exp(np.asarray(jax.jit(model.apply)(params, x)))
    expected = (np.exp(0.5 * log_p) * np.exp(1j * prior) * np.tanh(1 + phase - prior)).mean(axis=1)
    np.testing.assert_allclose(psi, expected, rtol=1e-9, atol=1e-14)
    assert np.abs(psi.imag).max() < 1e-12 * np.abs(psi).max()
    q = np.exp(np.asarray(jax.jit(partial_method(model, "log_proposal"))(params, x)))
    assert np.all(np.abs(psi) ** 2 <= q * (1 + 1e-10))
    assert (np.sign(expected.real) < 0).any() and (np.sign(expected.real) > 0).any()  # signs do flip


def partial_method(model, method: str):
    return lambda params, x: model.apply(params, x, method=method)


def test_projected_sampler_frequencies_and_energy(chi_square, optimized_xla):
    """The Metropolis chains with exact proposals (:mod:`nqs.sampling.projected_sampler`) sample
    ``|psi|^2 / <psi|psi>`` of the projected amplitude: chi-square over 2,000 chains, one sample
    each, every sample in the sector, and the energy within 4 errors of NetKet's full summation.
    An independence chain forgets its start at least as ``(1 - 1 / max(pi / q))^n`` in total
    variation (Mengersen and Tweedie 1996); the discarded proposals bring that below 2e-3."""
    from nqs.sampling.projected_sampler import make_projected_sampler
    from nqs.vmc import VMCOptions

    case, model, x, _ = projected_case()
    n_chains = 2000
    sampler = make_projected_sampler(case.problem, case.hilbert, VMCOptions(n_samples=n_chains, n_chains=n_chains))
    assert not sampler.is_exact
    prob = np.abs(np.exp(np.asarray(model.apply(case.params, x)))) ** 2
    q = np.exp(np.asarray(model.apply(case.params, x, method="log_proposal")))
    n_discard = 40
    assert (1 - 1 / (prob / prob.sum() / q).max()) ** n_discard < 2e-3  # max(pi/q) = 6.2 here
    state = nk.vqs.MCState(sampler, model, variables=case.params, n_samples=n_chains, n_discard_per_chain=n_discard, sampler_seed=5)
    samples = np.asarray(state.sample()).reshape(-1, case.hilbert.size)
    index = {tuple(c): i for i, c in enumerate(np.asarray(x).tolist())}
    hits = [index.get(tuple(s)) for s in samples.tolist()]
    assert None not in hits  # no sample outside the sector
    counts = np.bincount(hits, minlength=len(index))
    n_bins, p_value = chi_square(counts, n_chains * prob / prob.sum())
    assert n_bins > 30 and p_value > P_VALUE_MIN
    acceptance = float(state.sampler_state.acceptance)
    assert 0.05 < acceptance < 0.99  # proposals are rejected: the target is not q
    exact = nk.vqs.FullSumState(case.hilbert, model, variables=case.params).expect(case.hamiltonian)
    mc = state.expect(case.hamiltonian)
    assert abs(mc.mean.real - exact.mean.real) < 4 * mc.error_of_mean


@pytest.mark.parametrize(
    "name, params, options, projected",
    [
        ("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.5}, {}, True),  # frustrated: the phase is learned
        ("heisenberg_chain", {"L": 6, "J2": 0.3}, {}, True),
        ("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.0}, {}, False),  # Marshall sign exact: phase fixed
        ("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.5}, {"phase": "vit"}, False),
        ("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.5}, {"symmetrize": "none"}, False),
        ("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.5}, {"project_amplitude": False}, False),
        ("tj", {"Lx": 2, "Ly": 3, "n_holes": 2, "pbc": False}, {}, False),  # no images by default
        ("j1j2", {"Lx": 3, "Ly": 3, "J2": 0.5}, {}, False),  # not bipartite: the irrep is unknown
    ],
)
def test_projection_defaults(name, params, options, projected):
    """``project_amplitude = real_sign = "auto"``: the amplitude is projected, with real signs,
    exactly where the Transformer learns the phase over symmetry images; the model and the
    sampler the registry builds follow (Metropolis chains with exact proposals, else the exact
    direct sampler)."""
    from nqs.sampling.projected_sampler import ARProposalRule

    problem = hamiltonians.get(name, **params)
    spec = model_spec("transformer")
    o = spec.options(**options)
    assert spec.check(problem, o) is None
    model = spec.build(problem, o)
    assert (model.project_amplitude, model.real_sign) == (projected, projected)
    hilbert, hamiltonian = problem.to_netket()
    sampler = spec.make_sampler(problem, hilbert, hamiltonian, SimpleNamespace(model_options=o, n_chains=8))
    assert isinstance(getattr(sampler, "rule", None), ARProposalRule) is projected
    assert isinstance(sampler, ConstrainedDirectSampler) is (not projected)


@pytest.mark.parametrize(
    "name, params, symmetrize",
    [
        ("heisenberg_chain", {"L": 6, "J2": 0.3}, "point_group"),  # reflection odd
        ("heisenberg_chain", {"L": 6, "J2": 0.3}, "translations"),  # momentum pi
        ("heisenberg_chain", {"L": 8, "J2": 0.3}, "point_group"),
        ("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.5, "marshall": True}, "point_group"),  # rotated: trivial
        ("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.5}, "point_group"),
        ("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.8}, "point_group"),
    ],
)
def test_projection_irrep_is_the_ground_states(name, params, symmetrize):
    """The characters the amplitude is projected with (``marshall_characters``) are those of the
    exact ground state, ``<psi_0|P_g|psi_0> = chi(g)`` (ED), and the projected Transformer at
    random parameters transforms with them, ``psi(g a) = chi(g) psi(a)`` for every basis
    configuration: on a chain of 6 sites the trivial irrep would miss the ground state."""
    problem = hamiltonians.get(name, **params)
    symmetries = site_symmetries(problem, symmetrize)
    chi = np.asarray(marshall_characters(problem, symmetries))
    _, ground, basis = problem.exact_ground_state()
    index = {tuple(c): i for i, c in enumerate(basis.tolist())}
    for g, perm in enumerate(np.asarray(symmetries)):
        moved = np.array([index[tuple(c)] for c in basis[:, perm].tolist()])
        assert np.vdot(ground, ground[moved]).real == pytest.approx(chi[g], abs=1e-8), g
    spec = model_spec("transformer")
    options = spec.options(d_model=8, n_heads=2, n_layers=1, symmetrize=symmetrize)
    model = spec.build(problem, options)
    assert model.project_amplitude and model.real_sign
    x = jnp.asarray(configs_to_netket(problem.local_space, basis))
    params_ = model.init(jax.random.key(0), x[:2])
    params_ = perturbed(params_, jax.random.key(1))
    psi = np.exp(np.asarray(jax.jit(model.apply)(params_, x)))
    assert np.abs(psi).max() > 0
    for g, perm in enumerate(np.asarray(symmetries)):
        moved = np.array([index[tuple(c)] for c in basis[:, perm].tolist()])
        np.testing.assert_allclose(psi[moved], chi[g] * psi, rtol=1e-9, atol=1e-12 * np.abs(psi).max())
