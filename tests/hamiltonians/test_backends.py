"""Every model, two small sizes: NetKet ED == quimb MPO ED == our ED, to 1e-8.

The three are built by independent code paths from the same terms: NetKet's LocalOperator (or,
for t-J, our projected operator, itself checked element by element against NetKet's
FermionOperator2nd), quimb's MPO contracted with dense vectors, and the sparse ED engine.
"""

import numpy as np
import pytest
import scipy.sparse.linalg as sla

import hamiltonians
from hamiltonians.exact import BasisIndex
from hamiltonians.netket_backend import configs_from_netket, configs_to_netket, fermion_operator

CASES = [
    ("heisenberg_chain", dict(L=8, J2=0.3)),
    ("heisenberg_chain", dict(L=9, J2=0.2, pbc=False)),
    ("j1j2", dict(Lx=3, Ly=3, J2=0.5)),
    ("j1j2", dict(Lx=4, Ly=3, J2=0.3)),
    ("j1j2", dict(Lx=3, Ly=3, J2=0.3, pbc=[True, False])),
    ("tj", dict(Lx=2, Ly=3, n_holes=2, pbc=False)),
    ("tj", dict(Lx=3, Ly=3, n_holes=1, J=0.3)),
    ("tj", dict(Lx=3, Ly=2, n_holes=2, pbc=[True, False])),
    ("z2_gauge", dict(Lx=2, Ly=2, h=0.3)),
    ("z2_gauge", dict(Lx=3, Ly=2, h=0.5, charges=[[0, 0], [2, 1]])),
    ("u1_qlm", dict(Lx=2, Ly=2, lam=0.2)),
    ("u1_qlm", dict(Lx=3, Ly=2, lam=-0.5)),
]
IDS = [f"{n}-" + "-".join(f"{k}{v}" for k, v in p.items()) for n, p in CASES]


def lowest(matvec_or_matrix, n):
    if n <= 400:
        m = matvec_or_matrix if not callable(matvec_or_matrix) else None
        if m is None:
            m = np.column_stack([matvec_or_matrix(e) for e in np.eye(n)])
        return np.linalg.eigvalsh(np.asarray(m))[0]
    op = matvec_or_matrix if not callable(matvec_or_matrix) else sla.LinearOperator((n, n), matvec=matvec_or_matrix)
    return sla.eigsh(op, k=1, which="SA", tol=1e-12)[0][0]


def mpo_sector_matvec(problem, penalty=0):
    """``v -> P H P v`` on the sector, with ``H`` applied as the quimb MPO to a dense vector."""
    mpo = problem.to_mpo(penalty=penalty)
    basis = problem.basis()
    d, n = problem.local_space.dim, problem.n_sites
    flat = (basis.astype(np.int64) * d ** np.arange(n)[::-1]).sum(axis=1)
    ws = []
    for i in range(n):
        w = mpo[i].transpose(*_order(mpo, i)).data
        if i == 0:
            w = w[None]  # (l=1, r, out, in)
        if i == n - 1:
            w = w[:, None]  # (l, r=1, out, in)
        ws.append(np.asarray(w))

    def matvec(v):
        full = np.zeros(d**n)
        full[flat] = np.ravel(v)
        t = full.reshape((1,) + (d,) * n)  # (l, s_0 .. s_{n-1})
        for i, w in enumerate(ws):
            t = np.tensordot(t, w, axes=([0, 1 + i], [0, 3]))  # (..., r, out)
            t = np.moveaxis(t, [-2, -1], [0, 1 + i])
        return t.reshape(-1)[flat]

    return matvec


def _order(mpo, i):
    inds = []
    if i > 0:
        inds.append(mpo.bond(i - 1, i))
    if i < mpo.L - 1:
        inds.append(mpo.bond(i, i + 1))
    return inds + [mpo.upper_ind(i), mpo.lower_ind(i)]


@pytest.mark.parametrize("name, params", CASES, ids=IDS)
def test_netket_mpo_and_exact_agree(name, params):
    p = hamiltonians.get(name, **params)
    e_ed = p.exact()
    hilbert, op = p.to_netket()
    # NetKet's own Hilbert-space enumeration and sparse matrix
    sp = op.to_sparse()
    assert sp.shape[0] == len(p.basis()) == hilbert.n_states
    e_nk = lowest(sp if sp.shape[0] > 400 else sp.toarray(), sp.shape[0])
    e_mpo = lowest(mpo_sector_matvec(p), len(p.basis()))
    assert e_nk == pytest.approx(e_ed, abs=1e-8)
    assert e_mpo == pytest.approx(e_ed, abs=1e-8)


@pytest.mark.parametrize("name, params", CASES[:1] + CASES[4:5] + CASES[6:7], ids=[IDS[0], IDS[4], IDS[6]])
def test_mpo_equals_ed_matrix_element_by_element(name, params):
    """Every column of the MPO's sector matrix on small sectors; on larger ones (the 630 states
    of the periodic 3x3 t-J model) the action on 8 random vectors, which a wrong element changes
    with probability one."""
    p = hamiltonians.get(name, **params)
    n = len(p.basis())
    mv = mpo_sector_matvec(p)
    vectors = np.eye(n) if n <= 200 else np.random.default_rng(0).normal(size=(n, 8))
    m = np.column_stack([mv(v) for v in vectors.T])
    assert np.abs(m - p.sparse_matrix() @ vectors).max() < 1e-12 * max(1.0, np.abs(vectors).max() * np.sqrt(n))


@pytest.mark.parametrize("params", [dict(Lx=2, Ly=3, n_holes=2, pbc=False), dict(Lx=3, Ly=3, n_holes=2)])
def test_tj_operator_matches_netket_fermion_operator(params):
    """Our projected t-J operator equals NetKet's FermionOperator2nd element by element, in
    NetKet's own Jordan-Wigner convention; the latter's doubly-occupied connections cancel."""
    p = hamiltonians.get("tj", **params)
    basis = p.basis()
    x = configs_to_netket(p.local_space, basis)
    index = BasisIndex(basis, 3)

    def dense(op):
        xp, mels = (np.asarray(a) for a in op.get_conn_padded(x))
        n = x.shape[1] // 2
        physical = (xp[..., :n] * xp[..., n:]).sum(-1) == 0
        out = np.zeros((len(basis), len(basis)))
        unphysical: dict = {}
        for i in range(len(basis)):
            for k in range(xp.shape[1]):
                if mels[i, k] == 0:
                    continue
                if physical[i, k]:
                    j = index(configs_from_netket(p.local_space, xp[i, k][None]))[0]
                    out[i, j] += mels[i, k]
                else:
                    key = (i, xp[i, k].tobytes())
                    unphysical[key] = unphysical.get(key, 0.0) + mels[i, k]
        return out, max((abs(v) for v in unphysical.values()), default=0.0)

    _, ours = p.to_netket()
    m_ours, leak_ours = dense(ours)
    m_nk, leak_nk = dense(fermion_operator(p))
    assert leak_ours == 0.0
    assert leak_nk < 1e-12
    assert np.abs(m_ours - m_nk).max() < 1e-12
    assert np.abs(m_ours - m_ours.T).max() < 1e-12


@pytest.mark.parametrize("name, params", CASES, ids=IDS)
def test_random_states_obey_the_constraint(name, params):
    import jax

    p = hamiltonians.get(name, **params)
    hilbert, _ = p.to_netket()
    x = np.asarray(hilbert.random_state(jax.random.PRNGKey(1), 64))
    assert np.all(np.asarray(hilbert.constraint(x)))
    assert p.constraint.check(configs_from_netket(p.local_space, x)).all()
    assert len(np.unique(x, axis=0)) > 1


def test_penalty_selects_the_sector_and_is_needed_for_tj():
    """Without the penalty the MPO's ground state leaves the t-J sector (fewer holes are
    cheaper); with the automatic penalty its global ground state is the sector's."""
    p = hamiltonians.get("tj", Lx=2, Ly=3, n_holes=2, pbc=False)
    bare = p.to_mpo(penalty=0).to_dense()
    penalised = p.to_mpo().to_dense()
    e_sector = p.exact()
    assert np.linalg.eigvalsh(bare)[0] < e_sector - 0.1
    assert np.linalg.eigvalsh(penalised)[0] == pytest.approx(e_sector, abs=1e-9)


def test_penalty_vanishes_exactly_on_the_sector():
    for name, params in CASES:
        p = hamiltonians.get(name, **params)
        if p.local_space.dim ** p.n_sites > 5000:
            continue
        pen = np.asarray(p.penalty_mpo(1.0).to_dense())
        # the penalty alone is what to_mpo adds to H
        added = np.asarray(p.to_mpo(penalty=2.5).to_dense()) - np.asarray(p.to_mpo(penalty=0).to_dense())
        assert np.abs(added - 2.5 * pen).max() < 1e-9
        d, n = p.local_space.dim, p.n_sites
        flat = (p.basis().astype(np.int64) * d ** np.arange(n)[::-1]).sum(axis=1)
        diag = np.diag(pen)
        assert np.abs(pen - np.diag(diag)).max() < 1e-10 or name == "z2_gauge"
        assert np.abs(diag[flat]).max() < 1e-10
        outside = np.setdiff1d(np.arange(d**n), flat)
        if name != "z2_gauge":
            # diagonal (asserted above), so its spectrum is this diagonal: >= 1 off the sector
            assert diag[outside].min() >= 1 - 1e-9


@pytest.mark.parametrize(
    "name, params",
    [
        ("z2_gauge", dict(Lx=3, Ly=3, h=0.3)),
        ("z2_gauge", dict(Lx=2, Ly=3, h=0.5, charges=[[0, 0], [1, 2]])),
        ("u1_qlm", dict(Lx=2, Ly=2, lam=0.5)),
        ("u1_qlm", dict(Lx=4, Ly=2)),
    ],
    ids=["z2-3x3", "z2-2x3-charges", "u1-2x2", "u1-4x2"],
)
def test_windings_are_conserved_and_pin_a_sector(name, params):
    """The conserved windings commute with H: no matrix element of H joins configurations
    of different windings, and the pinned sector (the reference's windings) is a proper,
    non-empty part of the Gauss-law sector."""
    p = hamiltonians.get(name, **params)
    basis, h = p.basis(), p.sparse_matrix().tocoo()
    pinned = p.constraint.pinned()
    assert len(p.constraint.conserved) == 2
    inside = pinned.check(basis)
    assert inside[h.row].tolist() == inside[h.col].tolist()
    assert 0 < inside.sum() < len(basis)
    assert pinned.check(np.asarray(p.constraint.reference))
