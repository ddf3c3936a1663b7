"""The Heisenberg chain in the SU(2) spin-network basis (``su2_chain``) against the same chain in
the spin basis (``heisenberg_chain``, dense spin-1 matrices) and against classical SU(2) data."""

from itertools import product
from math import comb

import numpy as np
import pytest

import hamiltonians
from hamiltonians import anyons


def _multiset_difference(a, b, decimals=9):
    rest = list(np.round(a, decimals))
    for x in np.round(b, decimals):
        rest.remove(x)
    return np.sort(rest)


def _spin_basis_spectrum(L, sz):
    return np.linalg.eigvalsh(hamiltonians.get("heisenberg_chain", L=L, pbc=False, Sz=sz).sparse_matrix().toarray())


@pytest.mark.parametrize("L, total_spin", [(8, 0.0), (8, 1.0), (9, 0.5), (9, 1.5)])
def test_spectrum_is_the_spin_chain_multiplets_of_that_total_spin(L, total_spin):
    # every multiplet of total spin S has one state in each S^z sector |S^z| <= S: the spectrum in
    # S^z = S minus that in S^z = S + 1 is the multiplets of spin exactly S, each once
    p = hamiltonians.get("su2_chain", L=L, total_spin=total_spin)
    h = p.sparse_matrix().toarray()
    np.testing.assert_allclose(h, h.T, atol=1e-13)
    expected = _multiset_difference(_spin_basis_spectrum(L, total_spin), _spin_basis_spectrum(L, total_spin + 1))
    np.testing.assert_allclose(np.linalg.eigvalsh(h), expected, atol=1e-9)


@pytest.mark.parametrize("L", [10, 12])
def test_sector_dimension_is_the_number_of_singlets(L):
    # singlets of L spins 1/2: the Catalan number C_{L/2}
    p = hamiltonians.get("su2_chain", L=L)
    assert len(p.basis()) == comb(L, L // 2) // (L // 2 + 1)
    assert p.automaton().n_configs == len(p.basis())


def _dense_spin1_chain(L):
    sz = np.diag([1.0, 0.0, -1.0])
    sp = np.sqrt(2) * np.diag([1.0, 1.0], 1)

    def at(o, i):
        m = np.eye(1)
        for s in range(L):
            m = np.kron(m, o if s == i else np.eye(3))
        return m

    return sum(at(sz, i) @ at(sz, i + 1) + (at(sp, i) @ at(sp.T, i + 1) + at(sp.T, i) @ at(sp, i + 1)) / 2 for i in range(L - 1))


@pytest.mark.parametrize("L", [4, 5])
def test_spin_one_chain_ground_energy(L):
    # Lieb-Mattis: the default sector (total spin 0 for even L, 1 for odd) holds the ground state
    e = np.linalg.eigvalsh(_dense_spin1_chain(L))[0]
    assert hamiltonians.get("su2_chain", L=L, spin=1.0).exact() == pytest.approx(e, abs=1e-10)


def test_classical_six_j_symbols():
    # SU(2) (k = None): F orthogonal and pentagon-consistent on small labels, and the Racah value
    # {1/2 1/2 1; 1/2 1/2 0} = 1/2 ... through F^{1/2 1/2 1/2}_{1/2}: [[-1/2, sqrt3/2], [sqrt3/2, 1/2]]
    # up to the sign convention
    es, fs, f = anyons.f_matrix(0.5, 0.5, 0.5, 0.5, None)
    assert es == [0.0, 1.0] and fs == [0.0, 1.0]
    np.testing.assert_allclose(np.abs(f), [[0.5, 3**0.5 / 2], [3**0.5 / 2, 0.5]], atol=1e-14)
    labels = [n / 2 for n in range(5)]
    for a, b, c, d in product(labels, repeat=4):
        es, fs, f = anyons.f_matrix(a, b, c, d, None)
        if es:
            np.testing.assert_allclose(f @ f.T, np.eye(len(es)), atol=1e-12)
    assert anyons.quantum_dimension(1.5, None) == 4.0
    assert anyons.fusion(1.0, 1.5, None) == [0.5, 1.5, 2.5]


def test_dmrg_in_the_spin_network_basis_matches_the_spin_chain(tmp_path):
    from nqs.runs.config import loads
    from nqs.runs.runner import run

    text = (f'[problem]\nname = "su2_chain"\nL = 12\n\n[method]\nkind = "dmrg"\nbond_dims = [8, 16]\n'
            f'max_sweeps = 8\n\n[output]\narchive = "{(tmp_path / "su2.h5").as_posix()}"\n')
    a = run(loads(text), progress=False, log=lambda s: None)
    assert a.result["energy"] == pytest.approx(hamiltonians.get("heisenberg_chain", L=12, pbc=False).exact(), abs=1e-8)


def test_stoquastic_with_a_sign_rule():
    from hamiltonians.sign_gauge import stoquastic_gauge

    assert stoquastic_gauge(hamiltonians.get("su2_chain", L=10)) is not None


@pytest.mark.parametrize(
    "params, allowed",
    [
        (dict(L=1), "L >= 2"),
        (dict(L=6, spin=0.3), "allowed: 1/2, 1"),
        (dict(L=6, spin=0.0), "allowed: 1/2, 1"),
        (dict(L=6, total_spin=0.5), "allowed: 0, 1, ..., 3"),
        (dict(L=5, total_spin=3.5), "allowed: 0.5, 1.5, ..., 2.5"),
    ],
)
def test_bad_parameters_name_what_is_allowed(params, allowed):
    with pytest.raises(ValueError, match=allowed):
        hamiltonians.get("su2_chain", **params)


def test_vmc_in_the_spin_network_basis_against_the_spin_chain(tmp_path):
    """The default model (the Transformer over path labels, automaton-masked, with the sign rule)
    through the runner on 10 spins: within 1e-2 of the spin-basis ED after 60 short steps."""
    from nqs.runs.config import loads
    from nqs.runs.runner import run

    text = (f'[problem]\nname = "su2_chain"\nL = 10\n\n[method]\nkind = "vmc"\nn_iter = 60\nseed = 0\n'
            f'n_samples = 512\nd_model = 16\nn_heads = 2\nn_layers = 1\n\n'
            f'[output]\narchive = "{(tmp_path / "vmc.h5").as_posix()}"\n')
    a = run(loads(text), progress=False, log=lambda s: None)
    assert a.model == "transformer"
    exact = hamiltonians.get("heisenberg_chain", L=10, pbc=False).exact()
    assert abs(a.result["energy"] - exact) / abs(exact) < 1e-2, a.result
