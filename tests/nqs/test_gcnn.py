"""NetKet's G-CNN as ``model = "gcnn"``: NetKet's own lattice and space group (its fast Fourier
mode) behind a relabelling of our snake-order sites, times the problem's fixed sign."""

import jax
import numpy as np
import pytest

import hamiltonians
from hamiltonians.netket_backend import configs_to_netket
from nqs.models import model_spec
from nqs.models.autoregressive import site_symmetries
from nqs.runs.config import ConfigError, loads
from nqs.runs.runner import run


@pytest.mark.parametrize("name, params", [("j1j2", {"Lx": 4, "Ly": 4, "J2": 0.5}), ("j1j2", {"Lx": 4, "Ly": 3, "J2": 0.0}),
                                          ("heisenberg_chain", {"L": 10})])
def test_gcnn_is_invariant_under_our_space_group(name, params):
    """The network (sign prior off) gives the same amplitude on every image of a configuration
    under the space group in our site order: the relabelling maps NetKet's group onto ours."""
    problem = hamiltonians.get(name, **params)
    spec = model_spec("gcnn")
    model = spec.build(problem, spec.options(sign_prior="none"))
    rng = np.random.default_rng(0)
    configs = np.array([rng.permutation(problem.basis()[0]) for _ in range(6)])
    x = configs_to_netket(problem.local_space, configs)
    variables = model.init(jax.random.PRNGKey(1), x)
    ref = np.asarray(model.apply(variables, x))
    perms = np.asarray(site_symmetries(problem, "space_group"))
    assert len(perms) == (8 if params.get("Lx") == params.get("Ly", 1) else 4 if params.get("Ly", 1) > 1 else 2) * problem.n_sites
    for q in perms:
        np.testing.assert_allclose(np.asarray(model.apply(variables, x[:, q])), ref, atol=1e-10)
    # and a configuration that is no image of another has another amplitude
    assert np.ptp(ref.real) > 1e-6


def test_gcnn_fits_periodic_site_lattices_only():
    spec = model_spec("gcnn")
    assert spec.fits(hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)) is None
    assert "periodic" in spec.fits(hamiltonians.get("heisenberg_chain", L=8, pbc=False))
    assert spec.fits(hamiltonians.get("tj", Lx=3, Ly=3, n_holes=1)) is not None
    with pytest.raises(ConfigError, match="features"):
        loads('[problem]\nname = "heisenberg_chain"\nL = 8\n[method]\nkind = "vmc"\nmodel = "gcnn"\nfeatures = 0\n')


def test_gcnn_vmc_against_ed(tmp_path):
    """Through the runner on the periodic 8-site chain (Marshall sign by default): 30 steps
    within 1e-2 of exact diagonalisation."""
    text = (f'[problem]\nname = "heisenberg_chain"\nL = 8\n[method]\nkind = "vmc"\nmodel = "gcnn"\nn_iter = 30\n'
            f'n_samples = 512\nseed = 0\n[output]\narchive = "{tmp_path / "g.h5"}"\n')
    a = run(loads(text), progress=False, log=lambda s: None)
    assert a.status == "completed"
    assert abs(a.result["relative_error"]) < 1e-2, a.result
