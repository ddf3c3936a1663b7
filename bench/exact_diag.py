"""Exact diagonalisation cost: the registry's direct sector enumeration + sparse engine against
NetKet's route (constrained Hilbert index + ``operator.to_sparse``) on the same problems, side by
side in one process. Writes ``bench/results/exact_diag.json`` and prints the table.

    python bench/exact_diag.py
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse.linalg as sla

import hamiltonians

import report

PROBLEMS = [
    ("j1j2", dict(Lx=4, Ly=4, J2=0.5)),
    ("tj", dict(Lx=3, Ly=4, n_holes=2, pbc=False)),
    ("z2_gauge", dict(Lx=3, Ly=3, h=0.3)),
    ("u1_qlm", dict(Lx=4, Ly=2, lam=-0.5)),
    ("tj", dict(Lx=4, Ly=4, n_holes=2)),
]
# NetKet builds constrained sectors by filtering a larger enumeration; beyond this many
# candidate states we do not attempt it.
NETKET_CANDIDATE_LIMIT = 20_000_000


def ours(problem):
    t0 = time.perf_counter()
    problem._cache.clear()
    basis = problem.basis()
    e = float(sla.eigsh(problem.sparse_matrix(), k=1, which="SA", tol=1e-12)[0][0])
    return e, len(basis), time.perf_counter() - t0


def netket(problem):
    from math import comb

    hilbert, op = problem.to_netket()
    if problem.name == "tj":
        n, (ndn, nup) = hilbert.n_orbitals, hilbert.n_fermions_per_spin
        candidates = comb(n, nup) * comb(n, ndn)
    elif problem.name == "j1j2":
        candidates = comb(problem.n_sites, problem.n_sites // 2)
    else:
        candidates = 2**problem.n_sites
    if candidates > NETKET_CANDIDATE_LIMIT:
        return None, candidates, None
    t0 = time.perf_counter()
    sp = op.to_sparse()
    e = float(sla.eigsh(sp, k=1, which="SA", tol=1e-12)[0][0])
    return e, candidates, time.perf_counter() - t0


def main() -> None:
    rows = []
    for name, params in PROBLEMS:
        p = hamiltonians.get(name, **params)
        e1, n_states, t1 = ours(p)
        e2, candidates, t2 = netket(p)
        rows.append(
            {
                "problem": p.label,
                "sector_states": n_states,
                "netket_candidates": candidates,
                "energy": e1,
                "netket_energy": e2,
                "seconds": round(t1, 3),
                "netket_seconds": None if t2 is None else round(t2, 3),
                "speedup_vs_netket": None if t2 is None else round(t2 / t1, 2),
            }
        )
        if e2 is not None:
            assert abs(e1 - e2) < 1e-8, (p.label, e1, e2)
    report.write(
        "exact_diag", rows,
        ["problem", "sector_states", "seconds", "netket_seconds", "speedup_vs_netket", "energy"],
    )

if __name__ == "__main__":
    main()
