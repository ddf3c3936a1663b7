"""The exact ground-state manifold: its dimension against known degeneracies, and manifold
averages that keep the symmetries of the Hamiltonian (a single vector of the manifold need not)."""

import numpy as np
import pytest

import hamiltonians
from hamiltonians.exact import ground_manifold
from nqs import observables as ob


@pytest.mark.parametrize("dense_max", [2000, 0], ids=["dense", "lanczos"])
def test_toric_code_has_four_ground_states_on_the_torus(dense_max):
    """Z2 gauge theory at h = 0 in the Gauss-law sector is the toric code: every plaquette +1,
    E0 = -(number of plaquettes), one ground state per topological sector (2^2 on a torus)."""
    p = hamiltonians.get("z2_gauge", Lx=3, Ly=3, h=0.0)
    e0, v = ground_manifold(p.sparse_matrix(), dense_max=dense_max)
    assert e0 == pytest.approx(-9.0, abs=1e-10)
    assert v.shape == (len(p.basis()), 4)
    np.testing.assert_allclose(v.T @ v, np.eye(4), atol=1e-10)


def test_lanczos_manifold_is_completed_by_deflation():
    """A level of known multiplicity beyond what Lanczos is asked for: ``H = 1_12 (x) A`` (A a
    random sparse symmetric 250 x 250 matrix) has its lowest level exactly 12-fold; eight wanted
    levels cannot hold it, so the deflation must add the rest, and refuse above the cap."""
    import scipy.sparse as sp

    a = sp.random(250, 250, density=0.05, random_state=np.random.default_rng(3))
    a = a + a.T
    h = sp.kron(sp.identity(12), a, format="csr")
    e_a = np.linalg.eigvalsh(a.toarray())[0]
    e0, v = ground_manifold(h)
    assert e0 == pytest.approx(e_a, abs=1e-9)
    assert v.shape == (3000, 12)
    np.testing.assert_allclose(h @ v, e0 * v, atol=1e-8)
    np.testing.assert_allclose(v.T @ v, np.eye(12), atol=1e-10)
    with pytest.raises(ValueError, match="max_degeneracy"):
        ground_manifold(h, max_degeneracy=10)


# ~30 s on one core (103 s with the suite beside it): the deflation path is covered above
@pytest.mark.slow
def test_single_hole_on_the_4x4_torus_is_sixfold_degenerate():
    """One hole in the t-J model on the 4x4 torus (J/t = 0.4, S^z = 1/2): the ground level holds
    the four momenta (+-pi/2, +-pi/2) and the two (pi, 0), (0, pi), degenerate through the
    extra symmetry of the 4x4 torus (it is the 4D hypercube). Lanczos with eight wanted levels
    returns only four copies here: the deflation must find the other two. The manifold average
    of the hole density is then 1/16 on every site, as translation invariance requires."""
    p = hamiltonians.get("tj", Lx=4, Ly=4, n_holes=1)
    e0, v, _ = p.exact_ground_manifold()
    assert e0 == pytest.approx(p.exact(), abs=1e-9)
    assert v.shape[1] == 6
    h = p.sparse_matrix()
    np.testing.assert_allclose(h @ v, e0 * v, atol=1e-9)
    np.testing.assert_allclose(v.T @ v, np.eye(6), atol=1e-10)
    density = ob.measure_exact(p, ["hole_density"])["hole_density"]
    np.testing.assert_allclose(density, 1 / 16, atol=1e-10)
    # the average is Tr(P0 O)/6: any orthonormal basis of the manifold gives it
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))
    rotated = ob.measure_exact(p, ["hole_density", "spin_correlation"], v @ rotation)
    direct = ob.measure_exact(p, ["spin_correlation"], v)
    np.testing.assert_allclose(rotated["hole_density"], density, atol=1e-10)
    np.testing.assert_allclose(rotated["spin_correlation"], direct["spin_correlation"], atol=1e-10)
    # while one vector of the manifold is not translation invariant (what the average fixes)
    spread = [np.ptp(ob.measure_exact(p, ["hole_density"], v[:, 0] + v[:, i])["hole_density"]) for i in range(6)]
    assert max(spread) > 1e-3


def test_non_degenerate_ground_state_is_one_vector():
    p = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
    e0, v = ground_manifold(p.sparse_matrix())
    assert v.shape[1] == 1
    assert e0 == pytest.approx(p.exact(), abs=1e-9)
