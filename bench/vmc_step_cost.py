"""Cost of one VMC step against the number of sites, for each ansatz of the toolkit.

Each (model, L) runs the real run path (``nqs.runs.config.loads`` + ``nqs.runs.runner.run``) for a few
iterations at a fixed number of samples; a step is sampling + local energies + the SR update.
The cost of a step is the median of the differences of the archive's ``wall_time`` history,
the first (compilation) step excluded. The exponent ``b`` of ``t = a N^b`` is a least-squares
fit in log-log over the sizes run; N counts sites (links for the gauge model).

Problems: ``j1j2`` LxL (J2=0.5) for ``transformer``, ``ar_rnn``, ``vit``; ``tj`` LxL with
``L^2/8`` holes (even, >= 2) for ``hfds``; ``z2_gauge`` LxL (h=0.3) for ``gauge_transformer``,
up to 6x6 only: its Gauss-law automaton keeps the first row of vertices open, ``2^(2L+1)``
states per depth (131,072 at 8x8, two tables of 128 x 131,072 x 2 entries), which is where the
exact-masking construction stops being cheap.

    python bench/vmc_step_cost.py [--sizes 4 6 8 10] [--models transformer vit ...] [--steps 4]

Writes ``bench/results/vmc_step_cost.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from nqs.runs.config import loads
from nqs.runs.runner import run

import report

MAX_L = {"gauge_transformer": 6}
"""Largest lattice per model (see the module docstring)."""

MODELS = {
    "transformer": "name = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5",
    "ar_rnn": "name = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5",
    "vit": "name = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5",
    "hfds": "name = 'tj'\nLx = {L}\nLy = {L}\nn_holes = {holes}",
    "gauge_transformer": "name = 'z2_gauge'\nLx = {L}\nLy = {L}\nh = 0.3",
}


def step_seconds(model: str, L: int, steps: int, n_samples: int, workdir: Path) -> tuple[float, int, int]:
    """Median seconds per VMC step, number of sites (or links), number of parameters."""
    holes = max(2, 2 * round(L * L / 16))
    problem = MODELS[model].format(L=L, holes=holes)
    text = (
        f"[problem]\n{problem}\n\n[method]\nkind = 'vmc'\nmodel = '{model}'\nn_iter = {steps + 1}\n"
        # the final estimate is not timed: at the step's sample count (not the default 4x)
        f"n_samples = {n_samples}\nn_samples_final = {n_samples}\nseed = 0\n\n"
        f"[output]\narchive = '{workdir / f'{model}_{L}.h5'}'\n"
    )
    a = run(loads(text), overwrite=True, progress=False, log=lambda s: None)
    wall = np.asarray(a.history["wall_time"], dtype=float)
    return float(np.median(np.diff(wall)[1:] if len(wall) > 2 else np.diff(wall))), a.n_sites, int(
        a.result.get("n_parameters", 0)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 6, 8, 10])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--steps", type=int, default=4, help="timed steps after the first (default 4)")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--keep", action="store_true",
                    help="keep the rows and fits of the models not measured now from the existing results file")
    args = ap.parse_args()
    rows, fits = [], []
    if args.keep and (report.RESULTS / "vmc_step_cost.json").exists():
        old = json.loads((report.RESULTS / "vmc_step_cost.json").read_text())
        rows = [r for r in old["rows"] if r["model"] not in args.models]
        fits = [f for f in old.get("fits", []) if f["model"] not in args.models]
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            ns, ts = [], []
            for L in args.sizes:
                if L > MAX_L.get(model, L):
                    print(f"{model} {L}x{L}: skipped (larger than {MAX_L[model]}x{MAX_L[model]})", flush=True)
                    continue
                t, n, n_par = step_seconds(model, L, args.steps, args.samples, Path(tmp))
                rows.append({"model": model, "lattice": f"{L}x{L}", "n_sites": n, "n_parameters": n_par,
                             "n_samples": args.samples, "seconds_per_step": round(t, 4)})
                print(f"{model} {L}x{L}: {t:.3f} s/step", flush=True)
                ns.append(n)
                ts.append(t)
            if len(ns) >= 2:
                b, log_a = np.polyfit(np.log(ns), np.log(ts), 1)
                fits.append({"model": model, "exponent": round(float(b), 3), "prefactor": float(np.exp(log_a))})
            # after every model, so that a run stopped later (memory, time) keeps what it measured
            report.write("vmc_step_cost", rows, fits=fits)
    print(report.table(fits))


if __name__ == "__main__":
    main()
