"""Issue 27, point 2: DMRG on ``symmray`` block-sparse arrays against our block2 backend.

The issue asked to try DMRG inside quimb with symmray (block-sparse U(1) arrays for quimb
tensors) before adding block2. quimb's ``DMRG2`` does not run on symmray arrays
(``--only quimb_check`` records how: with symmray's default fused ``tensordot`` the environment
contraction fails on a block-size mismatch; with every ``tensordot`` forced block-wise ``<H>``
is right, but the local eigensolve hands scipy a dense ``LinearOperator``). This script is
therefore the smallest charge-conserving two-site DMRG written directly on symmray's
``U1Array``, a bench prototype that the package never imports:

* MPO: :func:`hamiltonians.mpo.build_mpo` of the registry's terms (the exact MPO the quimb
  backend uses), each virtual state given the U(1) charge it carries (propagated from the left
  edge, ``q_right = q_left + q_out - q_in``), the site charges those of block2's
  (:func:`tensornets.block2_model.charges_of`: ``2 S^z`` for spins), converted with
  ``U1Array.from_dense(..., invalid_sectors="raise")`` so a term breaking the charge fails.
* Start: a random MPS in the target sector with about ``bond_dims[0]`` states spread over the
  reachable bond charges, right-canonical.
* Sweep: one pass across the chain (block2's unit: ``DMRGDriver.dmrg(n_sweeps=1)`` is one
  pass, the direction alternating), two-site update with scipy's ``eigsh`` (ARPACK Lanczos) on
  the packed blocks of the two-site tensor, the matrix-vector product four symmray
  ``tensordot`` calls (environment, two MPO tensors, environment), truncation by symmray's
  block-wise ``svd_truncated`` (``max_bond`` over all charge blocks together). No noise.
* Energy of a sweep: the last local eigenvalue; the final energy: ``<H>`` of the truncated MPS.

Both engines then run the same schedule (``--torus-chis``, ``--cylinder-chis``; ``--sweeps-per``
sweeps at each, no early stop) on the same problem, one after the other in this process; rows
give, per bond
dimension, the energy after its last sweep, the seconds per sweep at it (mean over its sweeps)
and the ratio symmray / block2 of those seconds, in wall clock and in CPU time of the process
(all threads; on a shared machine the CPU time of a one-thread run is the steadier number:
``--threads 1`` with ``OMP_NUM_THREADS=1``). ``--budget`` (CPU seconds) stops an engine after
the sweep that passes it (rows it did not reach are absent). Sections (``--only``):

* ``torus``: J1-J2 4x4 torus, ``J2 = 0.5`` (ED by ``problem.exact()``);
* ``cylinder``: J1-J2 6x6 cylinder (periodic around 6 sites, as ``bench/dmrg_scale.py``);
* ``quimb_check``: whether ``quimb.tensor.DMRG2`` accepts a symmray MPS and MPO.

Writes ``bench/results/dmrg_symmray.json`` (rows merged by section) and prints the table.

    OMP_NUM_THREADS=1 python bench/dmrg_symmray.py --only torus cylinder --threads 1
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

import hamiltonians

J1J2_TORUS = dict(Lx=4, Ly=4, J2=0.5, pbc=True)
J1J2_CYLINDER = dict(Lx=6, Ly=6, J2=0.5, pbc=[True, False])


# ------------------------------------------------------------------------------ MPO
def u1_charges(problem) -> tuple[list[list[int]], int]:
    """Per-site U(1) charge of each local state, and the target: block2's own charges."""
    from tensornets.block2_model import charges_of

    ch = charges_of(problem)
    if ch.groups != ("U1",):
        raise ValueError(f"one U(1) charge expected, got {ch.groups}")
    return [[c[0] for c in site] for site in ch.site_charges], ch.target[0]


def dense_mpo_arrays(problem) -> list[np.ndarray]:
    """``W[l, r, out, in]`` of :func:`hamiltonians.mpo.build_mpo`, boundaries padded to size 1."""
    from hamiltonians.mpo import build_mpo

    n = problem.n_sites
    mpo = build_mpo(problem.terms, problem.local_space, n)
    out = []
    for i in range(n):
        t = mpo[i]
        inds = []
        if i > 0:
            inds.append(mpo.bond(i - 1, i))
        if i < n - 1:
            inds.append(mpo.bond(i, i + 1))
        inds += [mpo.upper_ind(i), mpo.lower_ind(i)]
        w = np.asarray(t.transpose(*inds).data, dtype=float)
        if i == 0:
            w = w[None]
        if i == n - 1:
            w = w[:, None]
        out.append(w)
    return out


def symmray_mpo(problem):
    """The registry's MPO as ``U1Array`` tensors ``W[wl, wr, out, in]`` (duals: wl and out
    incoming), each virtual state carrying its charge."""
    import symmray as sr

    site_q, _ = u1_charges(problem)
    arrays = dense_mpo_arrays(problem)
    q_left = [0]
    tensors = []
    for s, w in enumerate(arrays):
        q_right: list[int | None] = [None] * w.shape[1]
        for a, b, o, i in zip(*np.nonzero(np.abs(w) > 1e-14)):
            q = q_left[a] + site_q[s][o] - site_q[s][i]
            if q_right[b] is None:
                q_right[b] = q
            elif q_right[b] != q:
                raise ValueError(f"site {s}: virtual state {b} has charges {q_right[b]} and {q}")
        q_right = [0 if q is None else q for q in q_right]  # unreachable states (zero columns)
        tensors.append(sr.U1Array.from_dense(
            w, index_maps=[q_left, q_right, site_q[s], site_q[s]], duals=[True, False, True, False],
            charge=0, invalid_sectors="raise",
        ))
        q_left = q_right
    return tensors


# ------------------------------------------------------------------------------ MPS
def _counts(site_q: list[list[int]]) -> list[dict[int, int]]:
    """``counts[k][Q]``: number of configurations of the first ``k`` sites with charge ``Q``."""
    out = [{0: 1}]
    for qs in site_q:
        nxt: dict[int, int] = {}
        for Q, c in out[-1].items():
            for q in qs:
                nxt[Q + q] = nxt.get(Q + q, 0) + c
        out.append(nxt)
    return out


def random_mps(problem, chi0: int, seed: int = 0):
    """Random MPS ``A[l, p, r]`` (l, p incoming) in the target sector, bond charges all reachable
    ones, about ``chi0`` states per bond, right-canonical (orthogonality centre at site 0)."""
    import symmray as sr
    from symmray import BlockIndex

    rng = np.random.default_rng(seed)
    site_q, target = u1_charges(problem)
    n = len(site_q)
    left = _counts(site_q)
    right = _counts(site_q[::-1])[::-1]  # right[k][Q]: configurations of sites k.. with charge Q
    bonds = [{0: 1}]
    for b in range(1, n):
        weight = {Q: c * right[b].get(target - Q, 0) for Q, c in left[b].items()}
        weight = {Q: w for Q, w in weight.items() if w > 0}
        total = sum(weight.values())
        bonds.append({Q: max(1, min(left[b][Q], right[b][target - Q], round(chi0 * w / total)))
                      for Q, w in weight.items()})
    bonds.append({target: 1})
    # the physical index maps (local state -> position in the block) are the identity only when
    # each charge occurs once per site, as for spin 1/2
    if any(len(set(q)) != len(q) for q in site_q):
        raise ValueError("the prototype handles one local state per charge (spin 1/2)")
    mps = []
    for s in range(n):
        phys: dict[int, int] = {}
        for q in site_q[s]:
            phys[q] = phys.get(q, 0) + 1
        blocks = {}
        for ql, dl in bonds[s].items():
            for qp, dp in phys.items():
                if ql + qp in bonds[s + 1]:
                    blocks[(ql, qp, ql + qp)] = rng.normal(size=(dl, dp, bonds[s + 1][ql + qp]))
        idx = (BlockIndex(bonds[s], True), BlockIndex(phys, True), BlockIndex(bonds[s + 1], False))
        mps.append(sr.U1Array.from_blocks(blocks, duals=idx, charge=0))
    for s in range(n - 1, 0, -1):
        u, _, vh = split(mps[s], 0, cutoff=0.0, absorb="left", left_axes=1)
        mps[s] = vh
        mps[s - 1] = sr.tensordot(mps[s - 1], u, axes=([2], [0]))
    mps[0] = mps[0] / float(sr.linalg.norm(mps[0]))
    return mps


def split(theta, max_bond: int, cutoff: float, absorb, left_axes: int):
    """``theta`` (first ``left_axes`` axes against the rest) as ``u . vh``, ``max_bond`` states
    over all blocks (0: no limit); returns ``(u, discarded weight, vh)`` with the singular
    values absorbed as ``absorb`` says (``None``: into neither, discarded weight only)."""
    nd = theta.ndim
    m = theta.fuse(tuple(range(left_axes)), tuple(range(left_axes, nd)))
    u, s, vh = m.svd_truncated(cutoff=cutoff, cutoff_mode="rel", max_bond=max_bond or -1, absorb=None)
    kept = float(sum(float(np.sum(np.asarray(b) ** 2)) for b in s.blocks.values()))
    total = float(np.sum([np.sum(np.asarray(b) ** 2) for b in m.blocks.values()]))
    eps = max(0.0, 1.0 - kept / total) if total > 0 else 0.0
    if absorb == "left":
        u = u.multiply_diagonal(s, axis=1)
    elif absorb == "right":
        vh = vh.multiply_diagonal(s, axis=0)
    return u.unfuse_all(), eps, vh.unfuse_all()


# ------------------------------------------------------------------------------ DMRG
class SymmrayDMRG:
    """Two-site DMRG on ``U1Array`` tensors (module docstring)."""

    def __init__(self, problem, chi0: int, seed: int = 0, eig_tol: float = 1e-10, cutoff: float = 1e-14):
        import symmray as sr

        self.sr = sr
        self.n = problem.n_sites
        self.W = symmray_mpo(problem)
        self.A = random_mps(problem, chi0, seed)
        _, target = u1_charges(problem)
        self.eig_tol, self.cutoff = eig_tol, cutoff
        one = np.ones((1, 1, 1))
        self.left_edge = sr.U1Array.from_blocks({(0, 0, 0): one}, duals=(False, False, True))
        self.right_edge = sr.U1Array.from_blocks({(target, 0, target): one}, duals=(True, True, False))
        self.L: list = [None] * self.n
        self.R: list = [None] * self.n
        self.L[0] = self.left_edge
        self.R[self.n - 1] = self.right_edge
        for s in range(self.n - 1, 0, -1):
            self.R[s - 1] = self._grow_right(self.R[s], self.A[s], self.W[s])
        self.forward = True
        self.energy = float("nan")
        self.products = 0  # effective-Hamiltonian products, all updates so far

    def _grow_left(self, L, A, W):
        td = self.sr.tensordot
        x = td(L, A, axes=([0], [0]))  # (wl, l', p, r)
        x = td(x, W, axes=([0, 2], [0, 3]))  # (l', r, wr, o)
        return td(x, A.conj(), axes=([0, 3], [0, 1]))  # (r, wr, r')

    def _grow_right(self, R, A, W):
        td = self.sr.tensordot
        x = td(A, R, axes=([2], [0]))  # (l, p, wr, r')
        x = td(x, W, axes=([1, 2], [3, 1]))  # (l, r', wl, o)
        return td(x, A.conj(), axes=([1, 3], [2, 1]))  # (l, wl, l')

    def _heff(self, L, W1, W2, R, theta):
        td = self.sr.tensordot
        x = td(L, theta, axes=([0], [0]))  # (wl, l', p1, p2, r)
        x = td(x, W1, axes=([0, 2], [0, 3]))  # (l', p2, r, wm, o1)
        x = td(x, W2, axes=([3, 1], [0, 3]))  # (l', r, o1, wr, o2)
        x = td(x, R, axes=([1, 3], [0, 1]))  # (l', o1, o2, r')
        return x.transpose((0, 1, 2, 3))  # already theta's order (kept: the measured code)

    def _local(self, i: int, chi: int) -> tuple[float, float]:
        """Optimise sites ``i, i+1``; returns (eigenvalue, discarded weight)."""
        from scipy.sparse.linalg import LinearOperator, eigsh

        sr = self.sr
        theta = sr.tensordot(self.A[i], self.A[i + 1], axes=([2], [0]))
        theta = theta.copy()
        theta.fill_missing_blocks()
        sectors = list(theta.blocks)
        shapes = [theta.blocks[k].shape for k in sectors]
        sizes = [math.prod(sh) for sh in shapes]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        dim = int(offsets[-1])

        def unpack(v):
            return theta.copy_with(blocks={k: v[offsets[j]:offsets[j + 1]].reshape(shapes[j])
                                           for j, k in enumerate(sectors)})

        def pack(x):
            out = np.zeros(dim)
            blocks = x.blocks
            for j, k in enumerate(sectors):
                b = blocks.get(k)
                if b is not None:
                    out[offsets[j]:offsets[j + 1]] = np.asarray(b).ravel()
            return out

        L, R, W1, W2 = self.L[i], self.R[i + 1], self.W[i], self.W[i + 1]

        def matvec(v):
            self.products += 1
            return pack(self._heff(L, W1, W2, R, unpack(np.asarray(v).ravel())))

        v0 = pack(theta)
        if dim <= 64:  # tiny: dense
            h = np.column_stack([matvec(e) for e in np.eye(dim)])
            vals, vecs = np.linalg.eigh(0.5 * (h + h.T))
            e, v = vals[0], vecs[:, 0]
        else:
            op = LinearOperator((dim, dim), matvec=matvec, dtype=float)
            vals, vecs = eigsh(op, k=1, which="SA", v0=v0, tol=self.eig_tol, ncv=min(20, dim - 1))
            e, v = vals[0], vecs[:, 0]
        theta = unpack(v / np.linalg.norm(v))
        absorb = "right" if self.forward else "left"
        u, eps, vh = split(theta, chi, self.cutoff, absorb, left_axes=2)
        self.A[i], self.A[i + 1] = u, vh
        if self.forward:
            self.L[i + 1] = self._grow_left(self.L[i], u, W1)
        else:
            self.R[i] = self._grow_right(self.R[i + 1], vh, W2)
        return float(e), eps

    def sweep(self, chi: int) -> tuple[float, float, int]:
        """One pass across the chain; returns (last eigenvalue, largest discarded weight, bond)."""
        pairs = range(self.n - 1) if self.forward else range(self.n - 2, -1, -1)
        e, eps_max = float("nan"), 0.0
        for i in pairs:
            e, eps = self._local(i, chi)
            eps_max = max(eps_max, eps)
        self.forward = not self.forward
        self.energy = e
        return e, eps_max, self.bond_dim()

    def bond_dim(self) -> int:
        return max(int(a.shape[2]) for a in self.A[:-1])

    def expectation(self) -> float:
        """``<H> / <psi|psi>`` of the current MPS by full contractions from the left."""
        td = self.sr.tensordot
        h = self.left_edge
        for A, W in zip(self.A, self.W):
            h = self._grow_left(h, A, W)
        nrm = None
        for A in self.A:
            x = A if nrm is None else td(nrm, A, axes=([0], [0]))  # (l', p, r)
            nrm = td(x, A.conj(), axes=([0, 1], [0, 1]))  # (r, r')
        total = lambda t: float(sum(float(np.sum(np.asarray(b))) for b in t.blocks.values()))  # noqa: E731
        return total(h) / total(nrm)


# ------------------------------------------------------------------------------ bench
def run_symmray(problem, chis: list[int], sweeps_per: int, budget: float, seed: int = 0, label: str = "",
                threads: int = 0):
    """Fixed schedule; returns the per-sweep log ``(chi, seconds, energy, eps, bond, cpu seconds,
    products per update)``, ``<H>`` of the final MPS and the set-up seconds. ``threads`` is not
    used: numpy's BLAS takes its threads from ``OMP_NUM_THREADS`` and the like."""
    t0 = time.perf_counter()
    eng = SymmrayDMRG(problem, chis[0], seed=seed)
    setup = time.perf_counter() - t0
    print(f"  symmray {label}: set-up {setup:.1f} s", flush=True)
    log, spent = [], 0.0
    for chi in chis:
        for _ in range(sweeps_per):
            t, c, n0 = time.perf_counter(), time.process_time(), eng.products
            e, eps, bond = eng.sweep(chi)
            dt, dc = time.perf_counter() - t, time.process_time() - c
            spent += dc
            per_update = (eng.products - n0) / (problem.n_sites - 1)
            log.append((chi, dt, e, eps, bond, dc, per_update))
            print(f"  symmray {label} chi {chi}: E/N {e / problem.n_sites:.10f} eps {eps:.1e} bond {bond}"
                  f" {dt:.1f} s (cpu {dc:.1f} s, {per_update:.0f} products per update)", flush=True)
            if spent > budget:
                print(f"  symmray {label}: budget of {budget:.0f} s spent", flush=True)
                return log, eng.expectation(), setup
    return log, eng.expectation(), setup


def run_block2(problem, chis: list[int], sweeps_per: int, budget: float, seed: int = 0, label: str = "",
               threads: int = 0):
    from tensornets.dmrg import DMRGOptions
    from tensornets.dmrg_block2 import Block2DMRG

    opts = DMRGOptions(backend="block2", symmetry="abelian", bond_dims=chis,
                       max_sweeps=sweeps_per * len(chis),
                       min_sweeps_per_bond_dim=sweeps_per, max_sweeps_per_bond_dim=sweeps_per, tol=1e-300,
                       truncation_tol=1e-300, seed=seed, threads=threads)
    t0 = time.perf_counter()
    m = Block2DMRG(problem, opts)
    setup = time.perf_counter() - t0
    print(f"  block2 {label}: set-up {setup:.1f} s", flush=True)
    log: list = []
    cpu = [time.process_time()]

    class Rec:
        def record(self, step, v):
            chi = chis[min(step // sweeps_per, len(chis) - 1)]
            c = time.process_time()  # since the previous record: the sweep and the bookkeeping
            log.append((chi, v["sweep_seconds"], v["energy"], v["truncation_error"], int(v["bond_dim"]),
                        c - cpu[0], None))
            cpu[0] = c
            print(f"  block2 {label} chi {chi}: E/N {v['energy'] / problem.n_sites:.10f}"
                  f" eps {v['truncation_error']:.1e} bond {int(v['bond_dim'])} {v['sweep_seconds']:.1f} s",
                  flush=True)
            if sum(x[5] for x in log) > budget:
                raise TimeoutError

        def checkpoint_due(self, step):
            return False

        def checkpoint(self, *a):
            pass

    try:
        m.run(0, Rec())
    except TimeoutError:
        print(f"  block2 {label}: budget of {budget:.0f} s spent", flush=True)
    return log, m.final_result()["energy"], setup


def rows_of(section, name, engine, log, final_energy, reference, n_sites, setup):
    rows = []
    chis = list(dict.fromkeys(x[0] for x in log))
    for k, chi in enumerate(chis):
        at = [x for x in log if x[0] == chi]
        e = at[-1][2] if k < len(chis) - 1 else final_energy  # last stage: <H> of the final MPS
        rows.append({
            "section": section, "problem": name, "engine": engine, "bond_dim": chi,
            "bond_dim_reached": at[-1][4], "sweeps": len(at), "energy": e, "energy_per_site": e / n_sites,
            "last_sweep_energy": at[-1][2],
            "relative_error": None if reference is None else abs(e - reference) / abs(reference),
            "truncation_error": at[-1][3],
            "seconds_per_sweep": float(np.mean([x[1] for x in at])),
            "cpu_seconds_per_sweep": float(np.mean([x[5] for x in at])),
            "products_per_update": None if at[-1][6] is None else float(np.mean([x[6] for x in at])),
            "setup_seconds": setup,
        })
    return rows


def compare(section, name, problem, reference, args, chis):
    out = {}
    for engine, run, label in (("symmray", run_symmray, "symmray (U1, prototype)"),
                               ("block2", run_block2, "block2 (abelian)")):
        if engine not in args.engines:
            continue
        load = os.getloadavg()[0]
        log, energy, setup = run(problem, chis, args.sweeps_per, args.budget, label=name,
                                 threads=args.threads)
        out[engine] = rows_of(section, name, label, log, energy, reference, problem.n_sites, setup)
        for r in out[engine]:
            r["load_average_before"] = load
    if "symmray" in out and "block2" in out:
        by_chi = {r["bond_dim"]: r for r in out["block2"]}
        for r in out["symmray"]:
            o = by_chi.get(r["bond_dim"])
            if o is not None:
                r["ratio_symmray_over_block2"] = r["seconds_per_sweep"] / o["seconds_per_sweep"]
                r["cpu_ratio_symmray_over_block2"] = r["cpu_seconds_per_sweep"] / o["cpu_seconds_per_sweep"]
                r["energy_difference_to_block2"] = r["energy"] - o["energy"]
    return [r for rows in out.values() for r in rows]


def section_torus(args):
    p = hamiltonians.get("j1j2", **J1J2_TORUS)
    t0 = time.perf_counter()
    ref = p.exact()
    print(f"  ED of the J1-J2 4x4 torus: {ref:.12f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return compare("torus", "j1j2 4x4 torus J2=0.5", p, ref, args, args.torus_chis)


def section_cylinder(args):
    p = hamiltonians.get("j1j2", **J1J2_CYLINDER)
    return compare("cylinder", "j1j2 6x6 cylinder J2=0.5", p, None, args, args.cylinder_chis)


def section_quimb_check(args):
    """Does ``quimb.tensor.DMRG2`` run with a symmray MPS and MPO? Tried with symmray's default
    tensordot (``mode="auto"``, fused) and with every tensordot forced block-wise."""
    import quimb
    import quimb.tensor as qtn
    import symmray as sr

    p = hamiltonians.get("heisenberg_chain", L=8)
    W = symmray_mpo(p)
    A = random_mps(p, 8)
    # quimb's DMRG contracts the MPO's upper index with the ket: our "in" index (shape "lrdu")
    mpo = qtn.MatrixProductOperator([sr.squeeze(W[0], 0)] + W[1:-1] + [sr.squeeze(W[-1], 1)], shape="lrdu")
    mps = qtn.MatrixProductState([sr.squeeze(A[0], 0)] + A[1:-1] + [sr.squeeze(A[-1], 2)], shape="lpr")
    # <H> of the same random MPS (same seed) by this script's own contraction
    ours = SymmrayDMRG(p, 8).expectation()
    rows = []
    original = sr.AbelianArray._tensordot_abelian

    def blockwise(self, other, axes=2, mode="auto", preserve_array=False):
        return original(self, other, axes=axes, mode="blockwise", preserve_array=preserve_array)

    for mode in ("auto", "blockwise"):
        if mode == "blockwise":
            sr.AbelianArray._tensordot_abelian = blockwise
        out = {}
        try:
            for step in ("expec_TN_1D", "DMRG2"):
                if step == "expec_TN_1D":
                    out[step] = float(qtn.expec_TN_1D(mps.H, mpo, mps))
                else:
                    d = qtn.DMRG2(mpo, bond_dims=[16], cutoffs=1e-10, p0=mps.copy())
                    d.solve(max_sweeps=2, verbosity=0)
                    out[step] = float(d.energy)
        except Exception as exc:  # the point of the check
            out[step] = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:140]}"
        finally:
            sr.AbelianArray._tensordot_abelian = original
        print(f"  quimb with symmray arrays, tensordot {mode}: {out}", flush=True)
        rows.append({"section": "quimb_check", "problem": "heisenberg_chain L=8",
                     "engine": "quimb DMRG2 + symmray",
                     "tensordot_mode": mode, "outcome": "; ".join(f"{k}: {v}" for k, v in out.items()),
                     "reference": p.exact(), "ours_expectation_of_start": ours,
                     "versions": f"quimb {quimb.__version__}, symmray {sr.__version__}"})
    return rows


SECTIONS = {"torus": section_torus, "cylinder": section_cylinder, "quimb_check": section_quimb_check}


def main() -> None:
    import report

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    ap.add_argument("--torus-chis", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--cylinder-chis", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--sweeps-per", type=int, default=2)
    ap.add_argument("--engines", nargs="+", choices=["symmray", "block2"], default=["symmray", "block2"])
    ap.add_argument("--budget", type=float, default=600.0,
                    help="CPU seconds of sweeps per engine and problem (checked after each sweep)")
    ap.add_argument("--threads", type=int, default=0,
                    help="block2's threads (0: all cores); set OMP_NUM_THREADS etc. for numpy's BLAS")
    args = ap.parse_args()
    columns = ["section", "problem", "engine", "bond_dim", "sweeps", "energy", "relative_error",
               "truncation_error", "seconds_per_sweep", "cpu_seconds_per_sweep", "ratio_symmray_over_block2",
               "cpu_ratio_symmray_over_block2"]
    threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    threads["block2"] = args.threads or len(os.sched_getaffinity(0))
    new: list = []

    def write(quiet):
        # the file is read again at each write, so sections run by separate processes all stay
        old = report.previous("dmrg_symmray")
        done = {r["section"] for r in new}
        keep = [r for r in old["rows"] if r.get("section") not in done]
        report.write("dmrg_symmray", keep + new, columns, quiet=quiet, threads=threads)

    for name in args.only:
        print(f"== {name}", flush=True)
        new += SECTIONS[name](args)
        write(quiet=True)
    write(quiet=False)


if __name__ == "__main__":
    main()
