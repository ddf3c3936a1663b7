"""Registry contract: names, parameters, conventions in docstrings, and clear errors."""

import pytest

import hamiltonians
from hamiltonians.registry import spec

MODELS = ["heisenberg_chain", "j1j2", "tj", "z2_gauge", "u1_qlm", "dissipative_ising", "dissipative_xyz", "anyon_chain", "su2_chain", "x_cube"]


def test_available_lists_every_model_with_parameters():
    av = hamiltonians.available()
    assert sorted(av) == sorted(MODELS)
    assert "j1j2(Lx, Ly, J1=1.0, J2=0.0, pbc=True, marshall=False, Sz=None)" in av["j1j2"]
    assert "tj(Lx, Ly, n_holes, t=1.0, J=0.4, pbc=True, Sz=None)" in av["tj"]


@pytest.mark.parametrize("name", MODELS)
def test_docstring_states_the_conventions(name):
    doc = spec(name).builder.__doc__
    assert "H = " in doc and "Sector" in doc
    # spin normalisation or basis convention is written out
    assert "sigma" in doc or "S^z" in doc or "fusion-path basis" in doc


@pytest.mark.parametrize(
    "name, params, n_sites, sector",
    [
        ("heisenberg_chain", dict(L=6), 6, {"Sz": 0.0}),
        ("j1j2", dict(Lx=3, Ly=3), 9, {"Sz": 0.5}),
        ("tj", dict(Lx=3, Ly=3, n_holes=2), 9, {"n_up": 4, "n_dn": 3}),
        ("tj", dict(Lx=3, Ly=3, n_holes=1), 9, {"n_up": 4, "n_dn": 4}),
        ("z2_gauge", dict(Lx=3, Ly=2, h=0.1), 12, None),
        ("u1_qlm", dict(Lx=2, Ly=2), 8, None),
    ],
)
def test_problem_sizes_and_sectors(name, params, n_sites, sector):
    p = hamiltonians.get(name, **params)
    assert p.n_sites == n_sites
    assert p.name == name and p.params["Lx" if "Lx" in params else "L"] == params.get("Lx", params.get("L"))
    if sector is not None:
        assert p.sector == sector
    assert p.constraint.check(p.basis()).all()


def test_params_are_filled_with_defaults():
    p = hamiltonians.get("j1j2", Lx=4, Ly=4)
    assert p.params == dict(Lx=4, Ly=4, J1=1.0, J2=0.0, pbc=True, marshall=False, Sz=None)


@pytest.mark.parametrize(
    "call, fragments",
    [
        (lambda: hamiltonians.get("j1j3", Lx=4, Ly=4), ["unknown model 'j1j3'", "Did you mean 'j1j2'", "heisenberg_chain", "u1_qlm"]),
        (lambda: hamiltonians.get("j1j2", Lx=4, Ly=4, J3=1.0), ["unknown parameter 'J3'", "Did you mean"]),
        (lambda: hamiltonians.get("j1j2", Lx=4), ["missing required parameter 'Ly'"]),
        (lambda: hamiltonians.get("j1j2", Lx=4.0, Ly=4), ["'Lx' must be an integer"]),
        (lambda: hamiltonians.get("j1j2", Lx=-4, Ly=4), ["'Lx' must be positive"]),
        (lambda: hamiltonians.get("j1j2", Lx=2, Ly=4), ["lattice too small", "'Lx'=2", "Lx >= 3"]),
        (lambda: hamiltonians.get("heisenberg_chain", L=1, pbc=False), ["lattice too small", "'L'=1"]),
        (lambda: hamiltonians.get("heisenberg_chain", L=4, J2=0.5), ["too small for J2", "L >= 5"]),
        (lambda: hamiltonians.get("j1j2", Lx=3, Ly=3, Sz=0.0), ["'Sz'=0.0 is impossible", "9 spins"]),
        (lambda: hamiltonians.get("tj", Lx=3, Ly=3, n_holes=2, Sz=0.0), ["'Sz'=0.0 is impossible", "7 electrons", "odd"]),
        (lambda: hamiltonians.get("tj", Lx=3, Ly=3, n_holes=10), ["'n_holes'=10", "between 0 and", "9"]),
        (lambda: hamiltonians.get("tj", Lx=3, Ly=3, n_holes=-1), ["'n_holes'=-1"]),
        (lambda: hamiltonians.get("z2_gauge", Lx=3, Ly=3, h=0.1, charges=[[0, 0]]), ["odd number of charges", "cannot exist"]),
        (lambda: hamiltonians.get("z2_gauge", Lx=3, Ly=3, h=0.1, charges=[[5, 0], [0, 0]]), ["not on the 3x3 torus"]),
        (lambda: hamiltonians.get("u1_qlm", Lx=2, Ly=2, charges=[[0, 0, 1]]), ["total charge 1", "cannot exist"]),
        (lambda: hamiltonians.get("u1_qlm", Lx=2, Ly=2, charges=[[0, 0, 3], [1, 1, -3]]), ["|q| <= 2"]),
        (lambda: hamiltonians.get("z2_gauge", Lx=1, Ly=3, h=0.1), ["lattice too small", "'Lx'=1"]),
        (lambda: hamiltonians.get("j1j2", Lx=3, Ly=4, marshall=True), ["marshall", "bipartite"]),
        (lambda: hamiltonians.get("j1j2", Lx=3, Ly=4, pbc=[True, False], marshall=True), ["marshall", "bipartite"]),
        (lambda: hamiltonians.get("j1j2", Lx=4, Ly=4, pbc=[True]), ["one flag per direction", "[true, false]"]),
        (lambda: hamiltonians.get("tj", Lx=2, Ly=4, n_holes=1, pbc=[True, False]), ["lattice too small", "'Lx'=2"]),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(call, fragments):
    with pytest.raises(ValueError) as err:
        call()
    for fragment in fragments:
        assert fragment in str(err.value)


def test_u1_charges_select_a_sector():
    p = hamiltonians.get("u1_qlm", Lx=3, Ly=2, charges=[[0, 0, 1], [1, 1, -1]])
    basis = p.basis()
    assert len(basis) > 0 and p.constraint.check(basis).all()
    assert p.constraint.check(p.constraint.reference)[()]


def test_a_z2_gauss_sector_with_charges_enumerates_directly():
    p = hamiltonians.get("z2_gauge", Lx=3, Ly=3, h=0.2, charges=[[0, 0], [1, 2]])
    # 2^(links - vertices + 1) states in any consistent Gauss-law sector
    assert len(p.basis()) == 2 ** (18 - 9 + 1)
