"""Accuracy within a wall-clock budget: J1-J2 6x6 periodic at J2 = 0.5 (reference -0.503810 per
site, hamiltonians/data/reference_energies.json) with the ViT and the autoregressive Transformer
at their default options, and NetKet's G-CNN over the space group (``gcnn``: 4 layers, 4 features,
about the Transformer's parameter count) and translation-symmetric RBM (``rbm_symm``, alpha 2),
both times the Marshall sign, through the same runner (target: relative error below 2e-3 within
one hour on 2 CPU cores, and at most half of NetKet's best).

Each model runs through the real run path in chunks of ``--chunk`` iterations, resuming its
archive (``n_iter`` is resumable) until the budget is spent; the row is the final estimate of the
last chunk (``relative_error`` against the reference, V-score, parameters, wall time).

    python bench/j1j2_6x6.py [--budget 3600] [--models vit transformer gcnn rbm_symm] [--chunk 50]
    python bench/j1j2_6x6.py --report-only    # the table again from the archives in --workdir

Writes ``bench/results/j1j2_6x6.json`` (keeping the rows of the models not run) and prints the table.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from nqs.runs.archive import Archive, load
from nqs.runs.config import loads
from nqs.runs.runner import run

import report

PROBLEM = "[problem]\nname = 'j1j2'\nLx = 6\nLy = 6\nJ2 = 0.5\n"


def archive_path(workdir: Path, model: str) -> Path:
    return workdir / f"j1j2_6x6_{model}.h5"


def row(model: str, a: Archive) -> dict:
    """The table row of a finished run (the final estimate of its archive)."""
    r = a.result
    return {
        "model": model,
        "n_iter": len(a.history["energy"]),
        "energy_per_site": r["energy"] / a.n_sites,
        "energy_error_per_site": r.get("energy_error", float("nan")) / a.n_sites,
        "relative_error": r.get("relative_error"),
        "v_score": r.get("v_score"),
        "n_parameters": r.get("n_parameters"),
        "wall_seconds": round(r["wall_time"], 1),
    }


def train(model: str, budget: float, chunk: int, seed: int, workdir: Path) -> dict:
    archive = archive_path(workdir, model)
    name, options = report.variant(model)
    n_iter, resume, a = chunk, False, None
    while True:
        text = (
            f"{PROBLEM}\n[method]\nkind = 'vmc'\nmodel = '{name}'\n{options}n_iter = {n_iter}\nseed = {seed}\n\n"
            f"[output]\narchive = '{archive}'\ncheckpoint_every = {chunk}\n"
        )
        a = run(loads(text), resume=resume, overwrite=not resume, progress=True, log=print)
        print(f"{model}: {n_iter} iterations, {a.result['wall_time']:.0f} s, "
              f"rel. error {a.result.get('relative_error', float('nan')):.2e}", flush=True)
        if a.result["wall_time"] >= budget:
            break
        n_iter, resume = n_iter + chunk, True
    return {**row(model, a), "budget_seconds": budget, "date": str(date.today())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=3600.0, help="wall seconds per model (default 3600)")
    ap.add_argument("--models", nargs="+", default=["vit", "transformer", "gcnn", "rbm_symm"],
                    help=f"models, or variants with other options: {', '.join(f'{k} ({m}: {o})' for k, (m, o) in report.VARIANTS.items())}")
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("runs/bench"))
    ap.add_argument(
        "--report-only", action="store_true",
        help="no training: the rows from the archives already in --workdir (j1j2_6x6_MODEL.h5)",
    )
    ap.add_argument("--note", default=None, help="a remark stored with the rows of this run (how they were made)")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    previous = report.previous("j1j2_6x6")
    if args.report_only:
        missing = [m for m in args.models if not archive_path(args.workdir, m).exists()]
        if missing:
            raise SystemExit(f"no archive for {', '.join(missing)} in {args.workdir}")
        # the archive gives the numbers; the recorded row keeps its budget, date and note
        before = {r["model"]: r for r in previous["rows"]}
        rows = [{**before.get(m, {}), **row(m, load(archive_path(args.workdir, m)))} for m in args.models]
    else:
        rows = [train(m, args.budget, args.chunk, args.seed, args.workdir) for m in args.models]
    if args.note:
        rows = [{**r, "note": args.note} for r in rows]
    # the recorded rows of the models not run this time stay (each row carries its own budget and note)
    kept = [r for r in previous["rows"] if r["model"] not in args.models]
    columns = ["model", "n_iter", "energy_per_site", "energy_error_per_site", "relative_error", "v_score",
               "n_parameters", "wall_seconds", "budget_seconds"]
    report.write("j1j2_6x6", kept + rows, columns=columns, reference_per_site=-0.50381)


if __name__ == "__main__":
    main()
