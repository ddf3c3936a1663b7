"""Vision Transformer with factored attention: symmetries, sign prior, configuration checks,
(accuracy on the frustrated 4x4 J1-J2 model: tests/nqs/test_accuracy.py)."""

import jax
import numpy as np
import pytest

import hamiltonians
from nqs import config
from nqs.runs.config import ConfigError
from nqs.models import model_spec
from nqs.models.vit import ViTOptions

from conftest import perturbed


def _translated(x: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Configuration after moving the spin of site i to site perm[i]."""
    out = np.empty_like(x)
    out[..., perm] = x
    return out


def _model_and_params(problem, **options):
    # double precision unless asked: the structural tests below hold to double round-off
    model = model_spec("vit").build(problem, ViTOptions(**{"precision": "double", **options}))
    hi, _ = problem.to_netket()
    x = np.asarray(hi.random_state(jax.random.PRNGKey(0), 16))
    params = model.init(jax.random.PRNGKey(1), x)
    # random, not small, weights everywhere so that symmetries are not accidental
    return model, perturbed(params, jax.random.PRNGKey(2)), x


def _on_translations(model, params, x: np.ndarray, translations) -> tuple[np.ndarray, np.ndarray]:
    """``log psi`` of ``x`` ``(batch,)`` and of all its translates ``(n_translations, batch)``,
    in one evaluation (the model accepts any leading batch shape)."""
    xs = np.stack([x] + [_translated(x, perm) for perm in translations])
    out = np.asarray(model.apply(params, xs))
    return out[0], out[1:]


@pytest.mark.parametrize("symmetrize", ["translations", "space_group"])
@pytest.mark.parametrize("sign_prior", ["none", "marshall"])
def test_symmetrized_vit_is_invariant_under_every_translation(sign_prior, symmetrize):
    p = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    model, params, x = _model_and_params(p, symmetrize=symmetrize, sign_prior=sign_prior)
    ref, out = _on_translations(model, params, x, p.geometry.translations)
    assert np.std(ref.real) > 0.1  # a non-trivial function of the configuration
    # log-amplitudes modulo 2 pi i (a sign is exp(i pi))
    np.testing.assert_allclose(np.exp(out - ref), 1.0, atol=1e-10)


def test_unsymmetrized_vit_is_invariant_under_patch_translations_only():
    p = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    model, params, x = _model_and_params(p, symmetrize="none", sign_prior="none")
    geo = p.geometry
    ref, out = _on_translations(model, params, x, geo.translations)
    for (tx, ty), o in zip(geo.coords, out):
        if tx % 2 == 0 and ty % 2 == 0:  # whole 2x2 patches
            np.testing.assert_allclose(o, ref, atol=1e-10)
        else:
            assert np.max(np.abs(o - ref)) > 1e-3


@pytest.mark.parametrize("symmetrize, invariant", [("space_group", True), ("translations", False)])
def test_space_group_vit_is_invariant_under_the_point_group(symmetrize, invariant):
    """Rotations by 90 degrees and reflections of the 4x4 torus (site permutations built from
    the coordinates, independent of the model's array operations)."""
    p = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    model, params, x = _model_and_params(p, symmetrize=symmetrize, sign_prior="marshall")
    coords = [tuple(c) for c in p.geometry.coords]
    index = {c: i for i, c in enumerate(coords)}
    ops = [lambda a, b: ((-b) % 4, a), lambda a, b: ((-a) % 4, b), lambda a, b: (b, a)]
    perms = [np.array([index[op(a, b)] for a, b in coords]) for op in ops]
    ref, out = _on_translations(model, params, x, perms)
    for o in out:
        close = np.allclose(np.exp(o - ref), 1.0, atol=1e-10)
        assert close is invariant


def test_vit_on_a_chain_with_the_marshall_prior():
    """Heisenberg chain of 8 sites, patches of 2: the prior gives the sign (-1)^(N_up on even
    sites), so translation by one site (A <-> B, N/2 = 4 up spins swapped) keeps psi."""
    p = hamiltonians.get("heisenberg_chain", L=8)
    model, params, x = _model_and_params(p, patch_size=[2], sign_prior="auto")
    ref, out = _on_translations(model, params, x, p.geometry.translations)
    up_even = ((x[:, ::2] + 1) / 2).sum(-1)
    no_prior = model.clone(sign_sites=None).apply(params, x)
    np.testing.assert_allclose(np.exp(ref - no_prior), (-1.0) ** up_even, atol=1e-12)
    np.testing.assert_allclose(np.exp(out - ref), 1.0, atol=1e-10)


def test_configuration_checks_fail_before_compute():
    base = '[problem]\nname = "{name}"\n{size}\n[method]\nkind = "vmc"\nmodel = "vit"\n{extra}\n'
    j1j2 = dict(name="j1j2", size="Lx = 4\nLy = 4\nJ2 = 0.5")
    with pytest.raises(ConfigError, match=r"patch_size \[3, 3\].*does not tile the 4x4.*\[2, 2\]"):
        config.loads(base.format(**j1j2, extra="patch_size = [3, 3]"))
    with pytest.raises(ConfigError, match=r"d_model \(10\) must be a multiple of n_heads \(4\)"):
        config.loads(base.format(**j1j2, extra="d_model = 10"))
    with pytest.raises(ConfigError, match="set pbc = true"):
        config.loads(base.format(name="j1j2", size="Lx = 4\nLy = 4\npbc = false", extra=""))
    with pytest.raises(ConfigError, match="for t-J use 'hfds'"):
        config.loads(base.format(name="tj", size="Lx = 4\nLy = 4\nn_holes = 2", extra=""))
    with pytest.raises(ConfigError, match="sign_prior = 'none'"):
        config.loads(base.format(name="heisenberg_chain", size="L = 9", extra='sign_prior = "marshall"\npatch_size = [3]'))
    with pytest.raises(ConfigError, match=r"patch_size \[4\] = 4x1 does not tile the 10x1"):
        config.loads(base.format(name="heisenberg_chain", size="L = 10", extra="patch_size = [4]"))
    for gauge in ('name = "u1_qlm"\nLx = 2\nLy = 2', 'name = "z2_gauge"\nLx = 2\nLy = 2\nh = 0.5'):
        with pytest.raises(ConfigError, match="not on links.*'gauge_transformer'"):
            config.loads(f'[problem]\n{gauge}\n[method]\nkind = "vmc"\nmodel = "vit"\n')


def test_build_refuses_what_the_configuration_refuses():
    """Code that bypasses the configuration gets the same message, as a ValueError."""
    p = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    with pytest.raises(ValueError, match=r"does not tile the 4x4"):
        model_spec("vit").build(p, ViTOptions(patch_size=[3, 2]))
    with pytest.raises(ValueError, match="d_model"):
        ViTOptions(d_model=6, n_heads=4)


def test_model_vmc_defaults_apply_unless_written():
    text = '[problem]\nname = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.5\n[method]\nkind = "vmc"\nmodel = "vit"\n'
    o = config.loads(text).options
    for key, value in ViTOptions.vmc_defaults.items():
        assert getattr(o, key) == value
    o = config.loads(text + "n_samples = 256\nlearning_rate = 0.1\n").options
    assert (o.n_samples, o.learning_rate) == (256, 0.1)
    assert o.diag_shift_final == ViTOptions.vmc_defaults["diag_shift_final"]


def test_chunked_evaluation_equals_one_batch():
    # the local energies evaluate thousands of configurations: mapped in chunks, same numbers
    problem = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    model, params, _ = _model_and_params(problem)
    hi, _ = problem.to_netket()
    x = np.asarray(hi.random_state(jax.random.PRNGKey(3), 700))
    chunked = np.asarray(model.apply(params, x))
    whole = np.asarray(model.clone(eval_chunk=None).apply(params, x))
    assert model.eval_chunk < len(x)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)


def test_transformer_with_vit_phase_is_normalised_and_takes_the_vit_phase():
    # phase = "vit": modulus from the Transformer (exact sampling), phase = arg of a
    # space-group ViT; on the 4x4 torus the whole S^z = 0 sector (12870 states) is enumerated
    from nqs.models.transformer import TransformerOptions

    problem = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    model = model_spec("transformer").build(problem, TransformerOptions(phase="vit", sign_prior="none"))
    hi, _ = problem.to_netket()
    basis = np.asarray(hi.all_states())
    params = model.init(jax.random.PRNGKey(0), basis[:2])
    params = perturbed(params, jax.random.PRNGKey(2))
    log_psi = np.asarray(model.apply(params, basis))
    assert np.sum(np.exp(2 * log_psi.real)) == pytest.approx(1.0, abs=1e-10)
    vit_log = np.asarray(model.phase_net.apply({"params": params["params"]["phase_net"]}, basis))
    np.testing.assert_allclose(np.exp(1j * log_psi.imag), np.exp(1j * vit_log.imag), atol=1e-10)


def test_single_precision_encoder_matches_double():
    # the same parameters (kept in double): the encoder in float32 changes log psi by float32
    # round-off only, its real part (the modulus) and its phase alike; differences of log psi
    # between configurations (what local energies use) keep that accuracy
    problem = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    model, params, x = _model_and_params(problem)
    single = model_spec("vit").build(problem, ViTOptions())  # single precision: the default
    assert jax.tree_util.tree_structure(single.init(jax.random.PRNGKey(1), x)) == jax.tree_util.tree_structure(params)
    double_log, single_log = np.asarray(model.apply(params, x)), np.asarray(single.apply(params, x))
    assert single_log.dtype == np.complex128
    assert np.abs(double_log - single_log).max() < 1e-4 * (1 + np.abs(double_log).max())
    assert 0 < np.abs(double_log - single_log).max()  # it did compute in single precision
    with pytest.raises(ValueError, match="precision must be"):
        ViTOptions(precision="half")
