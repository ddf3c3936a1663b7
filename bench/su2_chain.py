"""The SU(2)-invariant autoregressive state of the open Heisenberg chain against DMRG.

For each chain length ``L`` (open, spin 1/2, ``H = sum S_i . S_{i+1}``):

* ``dmrg spin basis``: two-site DMRG of ``heisenberg_chain(L, pbc=False)`` in ``S^z = 0`` (the
  reference: bond dimensions up to 128, truncation error recorded);
* ``dmrg su2 basis`` (``--su2-dmrg``): the same DMRG on ``su2_chain(L)``, the spin-network basis
  (one state per singlet), a second engine on the same energy;
* ``vmc``: ``su2_chain(L)`` through the runner with only ``n_iter`` and ``seed`` set (the default
  model: the Transformer over fusion-path labels, masked by the path automaton, with the sign
  rule that makes the chain stoquastic), its final estimate against the spin-basis DMRG.

Rows: energy, its error, the relative error against the spin-basis DMRG, V-score, parameters,
wall time; rows merge into ``bench/results/su2_chain.json`` by (L, engine, n_iter, seed). VMC
archives go to ``--workdir``; a run finds its archive there on a second call and resumes it
(a larger ``--n-iter`` continues it).

    python bench/su2_chain.py [--sizes 32] [--n-iter 300] [--seed 0] [--workdir runs/su2_chain] [--su2-dmrg]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import hamiltonians
from nqs.runs.config import loads
from nqs.runs.methods import NullRecorder
from nqs.runs.runner import run
from tensornets.dmrg import DMRG, DMRGOptions

import report

COLUMNS = ["L", "engine", "energy", "energy_error", "reference", "rel_error", "v_score", "truncation_error",
           "bond_dim", "n_parameters", "n_iter", "seed", "status", "wall_s"]


def dmrg_energy(problem: hamiltonians.Problem, bond_dims: list[int]) -> dict[str, Any]:
    t0 = time.perf_counter()
    method = DMRG(problem, DMRGOptions(bond_dims=bond_dims, max_sweeps=12, cutoff=1e-12, seed=0))
    method.run(0, NullRecorder())
    r = method.final_result()
    return {"energy": r["energy"], "truncation_error": r["truncation_error"], "bond_dim": r["bond_dim"],
            "status": "completed", "wall_s": time.perf_counter() - t0}


def vmc_energy(L: int, n_iter: int, seed: int, workdir: Path) -> dict[str, Any]:
    archive = workdir / f"su2_chain_L{L}_seed{seed}.h5"
    text = (f'[problem]\nname = "su2_chain"\nL = {L}\n\n[method]\nkind = "vmc"\nn_iter = {n_iter}\nseed = {seed}\n\n'
            f'[output]\narchive = "{archive.as_posix()}"\n')
    a = run(loads(text), resume=archive.exists(), progress=True, log=print)
    r = a.result
    return {"energy": r["energy"], "energy_error": r["energy_error"], "v_score": r["v_score"],
            "n_parameters": r["n_parameters"], "n_iter": n_iter, "seed": seed, "status": a.status,
            "wall_s": r["wall_time"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32])
    parser.add_argument("--n-iter", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "su2_chain")
    parser.add_argument("--su2-dmrg", action="store_true", help="also DMRG in the spin-network basis")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    key = lambda r: (r["L"], r["engine"], r.get("n_iter"), r.get("seed"))  # noqa: E731
    rows = {key(r): r for r in report.previous("su2_chain")["rows"]}  # rows not re-run stay

    def ordered() -> list[dict[str, Any]]:
        return sorted(rows.values(), key=lambda r: (r["L"], r["engine"], r.get("n_iter") or 0))

    def add(row: dict[str, Any], reference: float) -> None:
        row["reference"] = reference
        row["rel_error"] = (row["energy"] - reference) / abs(reference)
        rows[key(row)] = row
        report.write("su2_chain", ordered(), columns=COLUMNS, quiet=True)

    for L in args.sizes:
        ref = dmrg_energy(hamiltonians.get("heisenberg_chain", L=L, pbc=False), [32, 64, 128])
        add({"L": L, "engine": "dmrg spin basis", **ref}, ref["energy"])
        if args.su2_dmrg:
            add({"L": L, "engine": "dmrg su2 basis", **dmrg_energy(hamiltonians.get("su2_chain", L=L), [16, 32, 64])},
                ref["energy"])
        add({"L": L, "engine": "vmc", **vmc_energy(L, args.n_iter, args.seed, args.workdir)}, ref["energy"])
    print(report.table(ordered(), COLUMNS))


if __name__ == "__main__":
    main()
