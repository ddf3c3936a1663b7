"""Real-time evolution: every engine of ``kind = "evolve"`` against the exact one on three quenches.

Quenches (ground state of the first Hamiltonian, evolved by the second): the U(1) quantum link
model on the 3x2 torus from lam = -1 to lam = 0 (12 states in the reference winding sector) and
the Z2 gauge theory from the toric code (h = 0) to h = 0.5 on the 3x2 torus (``z2``, 32 states)
and on the 3x3 torus (``z2_3x3``, 256 states).
Engines: ``exact``, ``mps`` (TDVP, bond dimension 64; 128 on the 3x3 torus), ``vmc`` with the
projected scheme and a one-layer gauge Transformer, ``vmc`` with NetKet's TDVP (Schmitt-Heyl cut)
and a complex RBM (alpha = 2), both fitted exactly to the initial state. Per engine: the largest
deviation of the recorded observables (every entry, every time) from ``exact``; for ``vmc`` also
the state's deviation (the same observables of the model's amplitudes summed over the sector,
free of sampling noise); seconds of evolution per unit of simulated time (preparation apart);
seconds per step. The last rows are the ratio of the seconds per step of the two ``vmc`` schemes,
measured in the same run on the same problem.

    python bench/dynamics.py [--t-final 1.0] [--dt 0.1] [--samples 1024] [--quenches u1 z2 z2_3x3]

Writes ``bench/results/dynamics.json`` (keeping the recorded rows of the quenches and engines not
run) and prints the table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import hamiltonians
from tensornets.evolution import Evolve, EvolveOptions

import report

QUENCHES = {
    "u1": ("u1_qlm", {"Lx": 3, "Ly": 2, "lam": 0.0}, {"lam": -1.0}, ["plaquette", "flippability", "electric_field"]),
    "z2": ("z2_gauge", {"Lx": 3, "Ly": 2, "h": 0.5}, {"h": 0.0}, ["plaquette", "electric_field"]),
    "z2_3x3": ("z2_gauge", {"Lx": 3, "Ly": 3, "h": 0.5}, {"h": 0.0}, ["plaquette", "electric_field"]),
}
OVERRIDES = {("z2_3x3", "mps"): {"bond_dim": 128}}
"""Engine options per (quench, engine) over :data:`ENGINES`: the toric code on the 3x3 torus
already fills bond dimension 64 in snake order, so at 64 every step truncates."""
ENGINES = {
    "exact": {"engine": "exact"},
    "mps": {"engine": "mps", "bond_dim": 64},
    "vmc_projected": {"engine": "vmc", "model": "gauge_transformer", "scheme": "projected",
                      "model_options": {"d_model": 16, "n_heads": 2, "n_layers": 1}},
    "vmc_tdvp": {"engine": "vmc", "model": "rbm", "scheme": "tdvp"},
}


class _Clock:
    """Recorder: wall time of every record and, for ``vmc``, the observables of the state's
    exact amplitudes (through the exact engine's matrices)."""

    def __init__(self, method: Evolve, exact: Evolve | None):
        self.method, self.exact, self.times, self.state_obs = method, exact, [], []
        self.aside = 0.0
        """Seconds spent on the diagnostic, taken out of the times."""

    def record(self, step, values):
        now = time.perf_counter()
        self.times.append(now - self.aside)
        engine = self.method.engine
        if self.exact is not None and hasattr(engine, "amplitudes"):
            e = self.exact.engine
            keep, e.vector = e.vector, engine.amplitudes(e.basis)
            self.state_obs.append(e.measure(self.method.names))
            e.vector = keep
        self.aside += time.perf_counter() - now

    def checkpoint_due(self, step):
        return False

    def checkpoint(self, next_step, state):
        pass


def run_engine(quench: str, engine: str, t_final: float, dt: float, samples: int, exact: Evolve | None):
    name, params, start, names = QUENCHES[quench]
    problem = hamiltonians.get(name, **params)
    extra = {**ENGINES[engine], **OVERRIDES.get((quench, engine), {})}
    if extra["engine"] == "vmc":
        extra.update(n_samples=samples, seed=0)
    method = Evolve(problem, EvolveOptions(t_final=t_final, dt=dt, initial_problem=start, observables=names, **extra))
    clock = _Clock(method, exact)
    t0 = time.perf_counter()
    method.run(0, clock)
    return method, clock, clock.times[0] - t0


def _deviation(a: dict, b: dict, names: list[str]) -> float:
    return max(float(np.abs(np.asarray(a[n]) - np.asarray(b[n])).max()) for n in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--t-final", type=float, default=1.0)
    ap.add_argument("--dt", type=float, default=0.1)
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--quenches", nargs="+", default=list(QUENCHES), choices=list(QUENCHES))
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    args = ap.parse_args()
    rows, cost = [], []
    # a run keeps the recorded rows of the (quench, engine) pairs it does not run
    run_now = {(q, e) for q in args.quenches for e in args.engines}
    kept = [r for r in report.previous("dynamics")["rows"] if (r["quench"], r["engine"]) not in run_now]
    rows, cost = [r for r in kept if r["section"] == "accuracy"], [r for r in kept if r["section"] != "accuracy"]
    conditions = f"seed 0, {args.samples} samples per vmc step; times include the machine's other load"
    for quench in args.quenches:
        names = QUENCHES[quench][3]
        exact, clock, _ = run_engine(quench, "exact", args.t_final, args.dt, args.samples, None)
        ref = {n: np.asarray(v) for n, v in exact.series.items()}
        steps = {}
        for engine in args.engines:
            if engine == "exact":
                method, c, prep = exact, clock, float("nan")
            else:
                method, c, prep = run_engine(quench, engine, args.t_final, args.dt, args.samples, exact)
            evolve_s = c.times[-1] - c.times[0]
            steps[engine] = float(np.median(np.diff(c.times)))
            row = {"section": "accuracy", "quench": quench, "engine": engine, "t_final": args.t_final, "dt": args.dt,
                   "n_parameters": int(method.n_parameters),
                   "max_deviation": _deviation({n: np.asarray(v) for n, v in method.series.items()}, ref, names),
                   "state_deviation": None, "seconds_per_time": evolve_s / args.t_final,
                   "seconds_per_step": steps[engine], "prepare_seconds": None if engine == "exact" else prep}
            if c.state_obs:
                row["state_deviation"] = max(_deviation(o, {n: ref[n][k] for n in names}, names)
                                             for k, o in enumerate(c.state_obs))
            rows.append(row)
            print(report.table([row]), flush=True)
            report.write("dynamics", rows + cost, quiet=True, conditions=conditions)
        if "vmc_projected" in steps and "vmc_tdvp" in steps:
            cost = [r for r in cost if r["quench"] != quench]
            cost.append({"section": "step_cost", "quench": quench, "engine": "vmc_projected / vmc_tdvp",
                         "seconds_per_step": steps["vmc_projected"] / steps["vmc_tdvp"]})
        report.write("dynamics", rows + cost, quiet=True, conditions=conditions)
    order = {(q, e): i for i, (q, e) in enumerate((q, e) for q in QUENCHES for e in ENGINES)}
    rows.sort(key=lambda r: order.get((r["quench"], r["engine"]), len(order)))
    report.write("dynamics", rows + cost, conditions=conditions)


if __name__ == "__main__":
    main()
