"""Neural quantum states, MPS, ANTN and PEPS on the same registry problems, in one table.

Every run is an ordinary ``nqs run`` configuration (the problem table is shared, only
``[method]`` differs) and leaves its archive in ``--workdir``; the table is read back from the
archives, so a finished run is not repeated when the script is run again and a stopped one is
continued from its last checkpoint (``--rerun`` starts every run afresh). Budgets are fixed
numbers of steps (iterations, sweeps or stages); ``wall_seconds`` says what each run cost.
Measured on one core of the 2-core machine (2026-11-30 .. 12-01), with the budgets of ``RUNS``:
the 6x6 DMRG 18-20 min per periodic row, 7 min open; the 6x6 Transformer (no symmetry average)
35-58 min; the 6x6 ANTN (no symmetry average) 62 min at J2 = 0, 92 min at J2 = 0.5; the 6x6 ViT
(translation average) 11-17 min; HFDS, ANTN and DMRG on t-J 4x4 16-30 min each; the Z2 4x4 rows
about 10 min each; the PEPS 15 min. With the defaults instead the 6x6 ViT (space-group average,
8 x 4 images per amplitude) takes 62 s per step, 2.6 h per row, the Transformer (point-group
average) did not reach its 50-step checkpoint in 71 min, nor the ANTN in 37 min, so the whole
table is a long job for one machine (about 7 h on one core). A run stopped before its end
(resumable) appears with the energy of its last recorded step and says so in ``status``.
Each run shows its progress bar on stderr (steps, energy per site, error against the reference;
every 10 s when stderr is a file), so an hour-long row can be followed with ``tail``.

    python bench/comparison.py --only z2_4x4_h=0.3 --runs dmrg    # one row

Problems (references: ED where the sector allows, else the published value of
``hamiltonians/data/reference_energies.json``):

* J1-J2 6x6 periodic at ``J2 = 0`` and ``0.5``: VMC (Transformer, ViT), ANTN, DMRG;
* t-J 4x4 periodic, 2 holes, ``J = 0.4``: VMC (HFDS), ANTN, DMRG;
* Z2 gauge 4x4 torus, ``h = 0.3``: VMC (gauge Transformer), DMRG;
* J1-J2 6x6 *open* at ``J2 = 0``: PEPS (finite, open boundaries only) against DMRG, the
  reference being the DMRG energy of the same open problem (no ED at 36 sites).

The V-score is ``N Var(E) / E^2`` (Wu et al., Science 2024) where the run estimates the energy
variance (VMC and ANTN from samples, DMRG from the MPS where the contraction is small enough).

    python bench/comparison.py [--only j1j2_6x6_J2=0 ...] [--runs dmrg ...] [--workdir runs/bench/comparison]

Writes ``bench/results/comparison.json``, ``bench/results/comparison.md`` (the README table)
and prints the table. Rows of the existing ``comparison.json`` whose runs have no archive in
``--workdir`` are kept (marked ``measured_on``), so one row can be run at a time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nqs.runs.archive import ArchiveError, load
from nqs.runs.config import loads
from nqs.runs.runner import run

import report

PROBLEMS = {
    "j1j2_6x6_J2=0": "name = 'j1j2'\nLx = 6\nLy = 6\nJ2 = 0.0",
    "j1j2_6x6_J2=0.5": "name = 'j1j2'\nLx = 6\nLy = 6\nJ2 = 0.5",
    "tj_4x4_2holes": "name = 'tj'\nLx = 4\nLy = 4\nn_holes = 2",
    "z2_4x4_h=0.3": "name = 'z2_gauge'\nLx = 4\nLy = 4\nh = 0.3",
    "j1j2_6x6_open_J2=0": "name = 'j1j2'\nLx = 6\nLy = 6\nJ2 = 0.0\npbc = false",
}

# the default engine where installed (block2), SU(2) multiplets on these Heisenberg problems, two
# sweeps per bond dimension; the dense quimb rows before it ended near 1e-2 after 12-20 min at chi = 256
DMRG = "kind = 'dmrg'\nsymmetry = 'su2'\nbond_dims = [256, 512, 768]\nmax_sweeps = 6\nmax_sweeps_per_bond_dim = 2"
# no point-group average (the default's 8 images per amplitude): 34-58 min per 6x6 row on one
# core; with it the J2 = 0 row did not reach step 50 in 71 min. The schedules are the defaults of
# 36 sites (AR_VMC_LARGE_LATTICE of nqs.models.autoregressive, 0.02 -> 0.004 and the diagonal
# shift 1e-2 -> 1e-3), introduced after these runs at J2 = 0: with the 4x4 defaults (0.05 -> 0.01,
# shift to 1e-4) the energy reached 2.8e-2 over steps 10-19 and then rose (0.35 around step 100,
# 0.11 at the end); with the smaller step alone it reached 1.5e-2 to 1.8e-2 over steps 35-45 and
# drifted up again (5.4e-2 at the end); with both it stayed at 1.4e-2 to 1.8e-2 per step from
# step 40 on (1.57e-2 final)
TRANSFORMER_6x6 = "kind = 'vmc'\nmodel = 'transformer'\nsymmetrize = 'none'\nn_iter = 150\nseed = 0"
# translation average only (4 images per amplitude): 11-17 min per 6x6 row; the space-group
# default (8 x 4 images) took 62 s per step, 2.6 h per row
VIT_6x6 = "kind = 'vmc'\nmodel = 'vit'\nsymmetrize = 'translations'\nn_iter = 150\nseed = 0"
# at J2 = 0.5 the default learning rate 0.05 diverged with the translation average (energy rising
# from the first step, Metropolis acceptance down to 1 %, NaN at step 12); 0.02 descends
VIT_6x6_FRUSTRATED = VIT_6x6 + "\nlearning_rate = 0.02"
# no point-group average either: with it a 6x6 ANTN step took over 44 s (the 50-step checkpoint
# not reached in 37 min); without, 22-35 s per step on one core (2026-12-01), 62-92 min per row
ANTN_6x6 = "kind = 'antn'\nsymmetrize = 'none'\nn_iter = 150\nseed = 0"
# J2 = 0 (2026-12-01) at the large-lattice defaults: 1.32e-2 (per step 1.0e-2 to 1.3e-2 over the
# last 15). Before them: the 4x4 step (0.05 -> 0.01) reached 2.0e-2 at step 19, then the energy
# rose (6.6e-2 at step 34, 1.3e-1 at step 55; stopped); 0.02 -> 0.004 with the shift to 1e-4
# kept descending (1.39e-2 final)
# J2 = 0.5 ran before them, with the 4x4 defaults of the time, written out
ANTN_6x6_4x4_SCHEDULE = ANTN_6x6 + "\nlearning_rate = 0.05\nlearning_rate_final = 0.01\ndiag_shift_final = 1e-4"
RUNS = {
    "j1j2_6x6_J2=0": {
        "vmc-transformer": TRANSFORMER_6x6,
        "vmc-vit": VIT_6x6,
        "antn": ANTN_6x6,
        "dmrg": DMRG,
    },
    "j1j2_6x6_J2=0.5": {
        "vmc-transformer": TRANSFORMER_6x6,
        "vmc-vit": VIT_6x6_FRUSTRATED,
        "antn": ANTN_6x6_4x4_SCHEDULE,
        "dmrg": DMRG,
    },
    "tj_4x4_2holes": {
        "vmc-hfds": "kind = 'vmc'\nmodel = 'hfds'\nn_iter = 300\nseed = 0",
        "antn": "kind = 'antn'\nn_iter = 150\nseed = 0",
        # block2 with (N_up, N_dn) charges: exact to 5e-10 at chi = 2048-3000 (bench/dmrg_scale.py)
        "dmrg": "kind = 'dmrg'\nbond_dims = [256, 512, 1024, 2048]\nmax_sweeps = 10\nmax_sweeps_per_bond_dim = 2",
    },
    "z2_4x4_h=0.3": {
        "vmc-gauge_transformer": "kind = 'vmc'\nmodel = 'gauge_transformer'\nn_iter = 200\nseed = 0",
        "dmrg": "kind = 'dmrg'\nbond_dims = [64, 128, 256]\nmax_sweeps = 14",
    },
    "j1j2_6x6_open_J2=0": {
        "dmrg": DMRG,
        "peps": "kind = 'peps'\nbond_dim = 4",
    },
}
COLUMNS = ["problem", "method", "model", "energy", "relative_error", "v_score", "n_parameters", "wall_seconds", "status"]
"""Columns of the printed and the Markdown table (the JSON rows hold more)."""

OPEN_REFERENCE = {"j1j2_6x6_open_J2=0": "dmrg"}
"""Problems without ED or published reference: the run whose energy serves as reference."""


def archive_path(workdir: Path, problem: str, run_name: str) -> Path:
    return workdir / f"{problem}__{run_name}.h5".replace("=", "")


def run_one(workdir: Path, problem: str, run_name: str, rerun: bool) -> None:
    """Run one row: skipped if its archive is complete, continued from its last checkpoint if
    it was stopped (``--rerun``: started afresh either way)."""
    path = archive_path(workdir, problem, run_name)
    resume = False
    if not rerun:
        try:
            old = load(path)
        except (ArchiveError, OSError):
            old = None  # none yet, or unreadable: start afresh
        if old is not None and old.status == "completed":
            print(f"{problem} {run_name}: done already ({path})", flush=True)
            return
        resume = old is not None and old.checkpoint_step is not None
    text = f"[problem]\n{PROBLEMS[problem]}\n\n[method]\n{RUNS[problem][run_name]}\n\n[output]\narchive = '{path}'\n"
    t0 = time.perf_counter()
    a = run(loads(text), resume=resume, overwrite=not resume, progress=True, log=print)
    how = "continued" if resume else "ran"
    print(f"{problem} {run_name}: {how}, E = {a.result['energy']:.6f}, {time.perf_counter() - t0:.0f} s", flush=True)


def rows_of(workdir: Path, problem: str) -> list[dict]:
    archives = {}
    for run_name in RUNS[problem]:
        try:
            archives[run_name] = load(archive_path(workdir, problem, run_name))
        except (ArchiveError, OSError):
            continue
    ref_run = OPEN_REFERENCE.get(problem)
    reference = archives[ref_run].result.get("energy") if ref_run in archives else None
    # the problem's ED or published value, from any run that finished (unfinished ones lack it)
    reference = next((a.result["exact_energy"] for a in archives.values() if "exact_energy" in a.result), reference)
    out = []
    for run_name, a in archives.items():
        r = a.result
        exact = r.get("exact_energy", reference)
        energy = r.get("energy")
        status = a.status
        if energy is None and not len(a.history.get("energy", [])):
            continue  # killed before its first checkpoint: nothing measured, no row
        if energy is None and len(a.history.get("energy", [])):
            # stopped before its end (budget or interruption; resumable): the last recorded
            # sweep's or step's energy, flagged in the status column
            energy = float(a.history["energy"][-1])
            status = f"stopped at step {int(a.history['step'][-1])}"
        out.append(
            {
                "problem": problem,
                "method": a.method,
                "model": a.model if a.method == "vmc" else "-",
                "energy": energy,
                "energy_error": r.get("energy_error"),
                "reference": exact,
                "reference_source": r.get("reference_source", f"{ref_run} of the same problem" if ref_run else None),
                "relative_error": None if exact is None or energy is None else (energy - exact) / abs(exact),
                "v_score": r.get("v_score"),
                "n_parameters": r.get("n_parameters"),
                "steps": r.get("steps"),
                "wall_seconds": None if r.get("wall_time") is None else round(float(r["wall_time"]), 1),
                "status": status,
            }
        )
    return out


def _key(row: dict) -> tuple[str, str, str]:
    return row["problem"], row["method"], row["model"]


def merged_rows(workdir: Path) -> list[dict]:
    """Rows of the archives in ``workdir``, plus the rows of the existing results file for runs
    that have no archive there (measured earlier, elsewhere or in a workdir since deleted):
    running one row must not erase the others. A carried row keeps its numbers and gains
    ``measured_on``, the date of the file it came from."""
    fresh = {_key(r): r for problem in PROBLEMS for r in rows_of(workdir, problem)}
    old = report.previous("comparison")
    for r in old["rows"]:
        if _key(r) not in fresh and r["problem"] in PROBLEMS:
            fresh[_key(r)] = {**r, "measured_on": r.get("measured_on", old.get("date"))}
    # table order: problems as in PROBLEMS, runs as in RUNS
    order = {
        (problem, *_method_model(run_name)): (i, j)
        for i, problem in enumerate(PROBLEMS)
        for j, run_name in enumerate(RUNS[problem])
    }
    return sorted(fresh.values(), key=lambda r: order.get(_key(r), (len(PROBLEMS), 0)))


def _method_model(run_name: str) -> tuple[str, str]:
    """``"vmc-hfds"`` -> ``("vmc", "hfds")``; ``"dmrg"`` -> ``("dmrg", "-")``."""
    method, _, model = run_name.partition("-")
    return method, model or "-"


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(report._cell(r.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=list(PROBLEMS), help="problems to run (default all)")
    ap.add_argument("--workdir", type=Path, default=Path("runs/bench/comparison"))
    names = sorted({name for runs in RUNS.values() for name in runs})
    ap.add_argument("--runs", nargs="+", choices=names, help="run names to run (default all of each problem)")
    ap.add_argument("--rerun", action="store_true", help="run again even where a completed archive exists")
    ap.add_argument("--table-only", action="store_true", help="no runs: the table of the archives present")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    chosen = args.only or list(PROBLEMS)
    if not args.table_only:
        for problem in chosen:
            for run_name in RUNS[problem]:
                if args.runs and run_name not in args.runs:
                    continue
                run_one(args.workdir, problem, run_name, args.rerun)
    rows = merged_rows(args.workdir)
    report.write(
        "comparison", rows,
        columns=COLUMNS,
        note="budgets: see RUNS in bench/comparison.py; relative_error against ED or the published reference",
    )
    (report.RESULTS / "comparison.md").write_text(markdown(rows))


if __name__ == "__main__":
    main()
