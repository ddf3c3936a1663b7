"""Local energies of VMC (``local_energies = "packed" | "padded"``) against the exact ones.

``E_loc(x) = (H psi)(x) / psi(x)`` with ``H psi`` from the sparse Hamiltonian applied to the
amplitudes of every basis state of the sector: an independent number for each sample. The packed
kernel skips the diagonal and the padding of the connected configurations; these tests check it
loses no term (hopping signs of t-J included) and that a run gives the padded run's energies.
"""

from __future__ import annotations

import netket as nk
import numpy as np
import pytest
from netket.vqs.mc import get_local_kernel
from netket.vqs.mc.kernels_packed import local_value_kernel_jax_packed

from nqs.runs.config import loads
from nqs.runs.runner import run
from nqs.vmc import packed_kernel

SMALL_TRANSFORMER = 'd_model = 8\nn_heads = 2\nn_layers = 1'
CASES = {
    "j1j2-4x2-transformer": ('name = "j1j2"\nLx = 4\nLy = 2\nJ2 = 0.5\npbc = false', f'model = "transformer"\n{SMALL_TRANSFORMER}'),
    "tj-3x2-hfds": ('name = "tj"\nLx = 3\nLy = 2\nn_holes = 2\npbc = false', 'model = "hfds"'),
    "z2-2x2-gauge_transformer": ('name = "z2_gauge"\nLx = 2\nLy = 2\nh = 0.3', f'model = "gauge_transformer"\n{SMALL_TRANSFORMER}'),
}


def config(case: str, local_energies: str, n_iter: int = 3, archive: str | None = None):
    problem, model = CASES[case]
    text = (
        f"[problem]\n{problem}\n\n[method]\nkind = \"vmc\"\n{model}\nn_iter = {n_iter}\nn_samples = 256\n"
        f"seed = 3\nlocal_energies = \"{local_energies}\"\n"
    )
    if archive:
        text += f"\n[output]\narchive = \"{archive}\"\n"
    return loads(text)


@pytest.mark.parametrize("case", list(CASES))
def test_packed_local_energies_are_exact(case):
    c = config(case, "packed")
    vmc = c.method(c.problem, c.options)
    state, hilbert = vmc.state, vmc.hilbert
    flag = nk.config.netket_experimental_packed_kernel
    with packed_kernel(not flag):
        pass
    assert nk.config.netket_experimental_packed_kernel == flag  # restored after the block
    with packed_kernel(True):
        assert get_local_kernel(state, vmc.energy_operator) is local_value_kernel_jax_packed
        e_loc = np.asarray(state.local_estimators(vmc.energy_operator).data).reshape(-1)
    samples = np.asarray(state.samples).reshape(-1, hilbert.size)
    basis = hilbert.all_states()
    psi = np.exp(np.asarray(state.log_value(basis), dtype=complex))
    h_psi = vmc.hamiltonian.to_sparse() @ psi
    rows = hilbert.states_to_numbers(samples)
    np.testing.assert_allclose(e_loc, h_psi[rows] / psi[rows], rtol=1e-9, atol=1e-9)


def test_packed_run_repeats_the_padded_run(tmp_path):
    """Three SR steps and the final estimate: the same energies to rounding, whichever kernel."""
    results = {}
    for kind in ("packed", "padded"):
        a = run(config("j1j2-4x2-transformer", kind, archive=str(tmp_path / f"{kind}.h5")), progress=False, log=lambda s: None)
        results[kind] = (np.asarray(a.history["energy"]), a.result["energy"])
    np.testing.assert_allclose(results["packed"][0], results["padded"][0], rtol=1e-9)
    assert results["packed"][1] == pytest.approx(results["padded"][1], rel=1e-9)
