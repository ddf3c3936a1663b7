"""Three dimensions (issue 30, point 4): the cubic lattice, the 3D toric code (``z2_gauge`` with
``Lz``) and the X-cube fracton model (``x_cube``), against independent numbers: the geometry
from coordinates, sector sizes and ground degeneracies from GF(2) ranks, the zero-field energy
(minus the number of stabilisers in ``H``) and NetKet's matrix elements against ED. Two-site
DMRG does not reach ED on these lattices yet (``docs/models/cubic.md``, "Limits").
"""

from __future__ import annotations

import numpy as np
import pytest

import hamiltonians
from hamiltonians.lattice import CubicLattice, LinkLattice, SquareLattice
from hamiltonians.netket_backend import configs_from_netket, configs_to_netket

CUBE2 = dict(Lx=2, Ly=2, Lz=2)


def gf2_rank(rows: np.ndarray) -> int:
    """Rank over GF(2) of a 0/1 matrix."""
    m = np.asarray(rows, dtype=np.uint8) % 2
    rank = 0
    for col in range(m.shape[1]):
        pivots = np.flatnonzero(m[rank:, col])
        if not len(pivots):
            continue
        p = rank + pivots[0]
        m[[rank, p]] = m[[p, rank]]
        others = np.flatnonzero(m[:, col])
        m[others[others != rank]] ^= m[rank]
        rank += 1
        if rank == m.shape[0]:
            break
    return rank


def incidence(groups, n: int) -> np.ndarray:
    out = np.zeros((len(groups), n), dtype=np.uint8)
    for i, g in enumerate(groups):
        out[i, list(g)] = 1
    return out


# ----------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("shape", [(2, 2, 2), (3, 3, 3), (3, 2, 4), (4, 3, 1)])
def test_cubic_snake_order_steps_between_neighbours(shape):
    lat = CubicLattice(*shape, pbc=False)
    c = lat.coords
    assert sorted(map(tuple, c.tolist())) == sorted(np.ndindex(*shape))
    assert (np.abs(np.diff(c, axis=0)).sum(axis=1) == 1).all()  # one lattice step each
    assert all(lat.index(*xyz) == i for i, xyz in enumerate(c.tolist()))
    # layer z = 0 is the square snake order
    square = SquareLattice(shape[0], shape[1], pbc=False)
    assert np.array_equal(c[: shape[0] * shape[1], :2], square.coords)


@pytest.mark.parametrize(
    "pbc, expected",
    [(False, 2 * 3 * 3 * 3), (True, 3 * 27), ((True, False, True), 27 + 18 + 27)],
    ids=["open", "periodic", "periodic-open-periodic"],
)
def test_cubic_bonds_per_direction(pbc, expected):
    lat = CubicLattice(3, 3, 3, pbc=pbc)
    assert len(lat.bonds) == expected
    assert all(np.abs(lat.coords[i] - lat.coords[j]).sum() in (1, 2) for i, j in lat.bonds)  # 2: a wrap of 3
    with pytest.raises(IndexError, match="outside"):
        CubicLattice(3, 3, 3, pbc=False).index(3, 0, 0)
    with pytest.raises(ValueError, match="one flag per direction"):
        CubicLattice(3, 3, 3, pbc=(True, False))


@pytest.mark.parametrize("L", [2, 3])
def test_link_lattice_3d_from_midpoints(L):
    """Vertex stars, plaquettes and cubes found again from the link midpoints alone."""
    lat = LinkLattice(L, L, L)
    mid = lat.link_coords
    assert lat.dim == 3 and lat.n_links == 3 * L**3 and mid.shape == (3 * L**3, 3)

    def wrapped_distance(a, b):
        d = np.abs(a - b) % L
        return np.minimum(d, L - d)

    for v, (links, signs) in enumerate(lat.vertex_links):
        star = np.flatnonzero(np.abs(wrapped_distance(mid, lat.sites.coords[v]).sum(axis=1) - 0.5) < 1e-9)
        assert sorted(links) == sorted(star.tolist()) and signs == (1, 1, 1, -1, -1, -1)
    assert len(lat.plaquettes) == 3 * L**3 and len(lat.cubes) == L**3
    for plaquette in lat.plaquettes:
        centre = mid[list(plaquette)]
        # the 4 links of a unit square: midpoints at distance 1/2 from its centre in one plane
        spread = np.array([wrapped_distance(centre[i], centre[(i + 2) % 4]) for i in range(4)])
        assert np.allclose(np.sort(spread.sum(axis=1)), [1, 1, 1, 1])
    for cube in lat.cubes:
        axes = np.argmax(np.abs(mid[list(cube)] - np.floor(mid[list(cube)])) > 0.25, axis=1)
        assert sorted(axes.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    # every link: two vertex stars, four plaquettes, four cubes
    for groups, k in (([l for l, _ in lat.vertex_links], 2), (lat.plaquettes, 4), (lat.cubes, 4)):
        assert set(np.bincount(np.concatenate(groups), minlength=lat.n_links)) == {k}


def test_square_link_lattice_is_unchanged():
    lat = LinkLattice(3, 2)
    assert lat.Lz is None and lat.dim == 2 and lat.n_links == 12
    assert lat.vertex_links[0] == ((0, 1, 4, 11), (1, 1, -1, -1))
    assert lat.plaquettes[0] == (0, 3, 10, 1)
    with pytest.raises(ValueError, match="give Lz"):
        lat.cubes


# --------------------------------------------------------------------- zero field, ED
def stabiliser_counts(p) -> tuple[int, int, int]:
    """``(n_stabilisers in H, sector size, ground degeneracy)`` from GF(2) ranks: the sector is
    the kernel of the vertex parities, the stabilisers flip links, and each ground state of
    ``-sum_s S_s`` is one class of the sector modulo the flips."""
    lat = p.geometry
    n = p.n_sites
    vertex = incidence([c.sites for c in p.constraint.linear], n)
    flips = incidence(lat.plaquettes if p.name == "z2_gauge" else lat.cubes, n)
    sector = n - gf2_rank(vertex)
    return len(flips), 2**sector, 2 ** (sector - gf2_rank(flips))


@pytest.mark.parametrize("name, stabilisers, degeneracy", [("z2_gauge", 24, 8), ("x_cube", 8, 2**9)])
def test_zero_field_ground_energy_is_minus_the_stabilisers(name, stabilisers, degeneracy):
    # 3D toric code: 3 L^3 plaquettes, 2^3 ground states on the 3-torus; X-cube: L^3 cubes,
    # 2^(6L - 3) ground states (Vijay, Haah, Fu 2016), 2^9 at L = 2
    p = hamiltonians.get(name, **CUBE2, h=0.0)
    n_stab, size, ground = stabiliser_counts(p)
    assert (n_stab, ground) == (stabilisers, degeneracy)
    assert len(p.basis()) == size
    # the degeneracy itself is the GF(2) count above (ED's ground manifold search stops at 64)
    assert p.exact() == pytest.approx(-stabilisers, abs=1e-8)


@pytest.mark.parametrize("name", ["z2_gauge", "x_cube"])
def test_basis_obeys_the_vertex_terms(name):
    p = hamiltonians.get(name, **CUBE2, h=0.3)
    lat = p.geometry
    b = p.basis()
    for links, _ in lat.vertex_links:
        if name == "z2_gauge":
            assert (b[:, list(links)].sum(axis=1) % 2 == 0).all()
        else:  # each of the three planes at the vertex: the 4 links not along its normal
            for mu in range(3):
                plane = [links[a] for a in range(6) if a % 3 != mu]
                assert (b[:, plane].sum(axis=1) % 2 == 0).all()
    # a field favours no strings: the reference (all links 0) is in every sector
    assert p.constraint.check(np.zeros((1, p.n_sites), dtype=np.int8)).all()


@pytest.mark.parametrize("name", ["z2_gauge", "x_cube"])
def test_netket_matrix_elements_equal_ed(name):
    """NetKet's operator, row by row on 64 sector configurations, equals our sparse matrix
    (NetKet's full ED is the slow twin below: enumerating its constrained Hilbert space alone
    takes a minute)."""
    p = hamiltonians.get(name, **CUBE2, h=0.7)
    _, op = p.to_netket()
    basis = p.basis()
    h = p.sparse_matrix().tocsr()
    rows = np.random.default_rng(0).choice(len(basis), 64, replace=False)
    xp, mels = (np.asarray(a) for a in op.get_conn_padded(configs_to_netket(p.local_space, basis[rows])))
    flat = (basis.astype(np.int64) << np.arange(p.n_sites)[::-1]).sum(axis=1)
    for r, conn, values in zip(rows, xp, mels):
        got = np.zeros(len(basis))
        local = configs_from_netket(p.local_space, conn)
        code = (local.astype(np.int64) << np.arange(p.n_sites)[::-1]).sum(axis=1)
        idx = np.searchsorted(flat, code)
        assert (flat[idx] == code).all()  # every connected configuration is in the sector
        np.add.at(got, idx, values)
        np.testing.assert_allclose(got, h[r].toarray()[0], atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["z2_gauge", "x_cube"])
def test_netket_ed_equals_ed(name):
    # ~75 s for x_cube, ~45 s for z2_gauge (131072 states) on a loaded 2-core machine
    import scipy.sparse.linalg as sla

    p = hamiltonians.get(name, **CUBE2, h=0.5)
    hilbert, op = p.to_netket()
    sp = op.to_sparse()
    assert sp.shape[0] == hilbert.n_states == len(p.basis())
    assert sla.eigsh(sp, k=1, which="SA", tol=1e-12)[0][0] == pytest.approx(p.exact(), abs=1e-8)


def test_winding_parities_are_conserved():
    p = hamiltonians.get("z2_gauge", **CUBE2, h=0.5)
    con = p.constraint
    assert len(con.conserved) == 3 and all(len(c.sites) == 4 for c in con.conserved)
    assert con.conserved_sectors() == [tuple(map(float, w)) for w in np.ndindex(2, 2, 2)]
    for term in p.terms:
        if len(term[1]) == 4:
            flipped = [s for _, s in term[1]]
            assert all(len(set(flipped) & set(c.sites)) % 2 == 0 for c in con.conserved)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "name, params, message",
    [
        ("z2_gauge", dict(Lx=2, Ly=2, Lz=1, h=0.1), "parameter 'Lz'=1; need Lz >= 2"),
        ("z2_gauge", dict(Lx=2, Ly=2, Lz=0, h=0.1), "parameter 'Lz' must be positive"),
        ("z2_gauge", dict(Lx=2, Ly=2, Lz=2, h=0.1, charges=[[0, 0], [1, 1]]), r"entries must be \[x, y, z\]"),
        ("z2_gauge", dict(Lx=2, Ly=2, Lz=2, h=0.1, charges=[[0, 0, 2], [1, 1, 1]]), "not on the 2x2x2 torus"),
        ("z2_gauge", dict(Lx=2, Ly=2, Lz=2, h=0.1, charges=[[0, 0, 1]]), "odd number of charges"),
        ("z2_gauge", dict(Lx=2, Ly=2, Lz=2.0, h=0.1), "'Lz' must be an integer"),
        ("x_cube", dict(Lx=2, Ly=1, Lz=2, h=0.1), "parameter 'Ly'=1; need Ly >= 2"),
        ("x_cube", dict(Lx=2, Ly=2, h=0.1), "missing required parameter 'Lz'"),
        ("x_cube", dict(Lx=2, Ly=2, Lz=2, h="big"), "'h' must be a number"),
        ("u1_qlm", dict(Lx=2, Ly=2, Lz=2), r"unknown parameter 'Lz'.*u1_qlm\(Lx, Ly"),
    ],
)
def test_bad_parameters_name_what_is_allowed(name, params, message):
    with pytest.raises(ValueError, match=message):
        hamiltonians.get(name, **params)


def test_charges_in_3d_are_joined_by_a_string():
    p = hamiltonians.get("z2_gauge", **CUBE2, h=0.4, charges=[[0, 0, 0], [1, 1, 1]])
    ref = np.asarray(p.constraint.reference)
    assert ref.sum() == 3 and p.constraint.check(ref[None]).all()
    free = hamiltonians.get("z2_gauge", **CUBE2, h=0.4)
    assert p.sector["charges"] == [[0, 0, 0], [1, 1, 1]]
    assert len(p.basis()) == len(free.basis())  # a coset of the same size
