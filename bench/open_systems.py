"""Open systems: the POVM Transformer against exact Lindblad solutions and NetKet's neural density matrix.

Rows (``bench/results/open_systems.json``):

* ``steady``: dissipative Ising chain (``V = 2``, ``gamma = 1``, periodic), one row per ``(L, g,
  engine)``. ``povm``: ``kind = "steady_state"`` with its defaults (relax solver, 30 steps of
  512 samples, ``d_model = 16``, two layers), observables from 32768 final samples. ``ndm``:
  NetKet's ``NDM(beta=1)`` and ``SteadyState`` driver with the settings of its dissipative Ising
  example (2000 samples, 300 iterations; :mod:`nqs.ndm`). Reference: the exact steady state
  (:func:`hamiltonians.lindblad.steady_state`) up to ``--exact-max`` sites; beyond, the time
  averages of one quantum-jump trajectory (:mod:`hamiltonians.trajectories`, ``--trajectory-time``
  after a burn-in of 20, block errors in ``ref_*_err``), one row ``engine = "trajectory"`` per
  ``(L, g)``. ``dev_*`` = engine - reference. ``samples`` counts every draw (training and
  measurement).
* ``dynamics``: dissipative XYZ on ``Lx x Ly`` (``Jx = 0.9``, ``Jy = 1.6``, ``Jz = 1``,
  ``gamma = 1``, periodic) from all up to ``t = 1``: ``kind = "evolve"`` with ``engine =
  "povm"`` against ``"exact"``; ``max_dev_sz`` is the largest deviation of the site-averaged
  ``<sigma^z>(t)``.

Observables: site averages of ``<sigma^x>``, ``<sigma^z>`` and the nearest-neighbour average of
``<sigma^z sigma^z>``.

    python bench/open_systems.py                                    # L = 8 and 16, g = 0.5 1 2 4; XYZ 3x3
    python bench/open_systems.py --sizes 4 --g 1 --xyz 3x1 --keep   # a quick subset; --keep keeps other rows
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import hamiltonians
from hamiltonians.trajectories import jump_trajectory_averages
from report import previous, write
from nqs.ndm import ndm_steady_state
from nqs.runs.methods import NullRecorder
from nqs.steady_state import exact_observables, observable_terms

OBS = ("sx", "sz", "szsz")


def obs_terms(problem) -> dict[str, list]:
    return {k: v for k, v in observable_terms(problem).items() if k in OBS}


def exact(problem) -> tuple[dict[str, float], float]:
    t0 = time.perf_counter()
    vals = exact_observables(problem, max_states=2**problem.n_sites)
    return vals, time.perf_counter() - t0


def povm_steady(problem, seed: int) -> dict:
    from nqs.steady_state import SteadyState

    options = SteadyState.parse_options({"seed": seed, "exact_max_sites": 0, "n_samples_final": 32768}, problem, "bench")
    method = SteadyState(problem, options)
    t0 = time.perf_counter()
    method.run(0, NullRecorder())
    r = method.final_result()
    wall = time.perf_counter() - t0
    o = options
    samples = o.n_iter * 7 * o.n_samples + o.n_samples_final  # 2 fits, residual, 4x measure
    return {**{k: r[k] for k in OBS}, **{f"{k}_err": r[f"{k}_error"] for k in OBS},
            "parameters": method.n_parameters, "samples": samples, "wall_s": wall}


def steady_rows(args, save) -> None:
    for L in args.sizes:
        for g in args.g:
            problem = hamiltonians.get("dissipative_ising", L=L, g=g)
            ref_err = {}
            if L <= args.exact_max:
                ref, ref_s = exact(problem)
            elif args.trajectory_time > 0 and (done := _kept_trajectory(args, L, g)):
                ref, ref_s = {k: done[k] for k in OBS}, done["wall_s"]
                ref_err = {k: done[f"{k}_err"] for k in OBS}
            elif args.trajectory_time > 0:
                traj = jump_trajectory_averages(problem, obs_terms(problem), t_total=args.trajectory_time, seed=args.seed)
                ref, ref_s = {k: traj[k]["mean"] for k in OBS}, traj["wall_seconds"]
                ref_err = {k: traj[k]["error"] for k in OBS}
                save({"kind": "steady", "L": L, "g": g, "engine": "trajectory", "seed": args.seed, **ref,
                      **{f"{k}_err": ref_err[k] for k in OBS}, "jumps": traj["jumps"],
                      "t_total": args.trajectory_time, "wall_s": ref_s})
                print(f"L = {L}, g = {g}: trajectory {ref} +- {ref_err} ({ref_s:.0f} s)", flush=True)
            else:
                ref, ref_s = None, None
            for engine in args.engines:
                r = povm_steady(problem, args.seed) if engine == "povm" else ndm_steady_state(
                    problem, obs_terms(problem), n_iter=args.ndm_iter, n_samples=args.ndm_samples, seed=args.seed)
                row = {"kind": "steady", "L": L, "g": g, "engine": engine, **r, "reference": None if ref is None else (
                    "exact" if L <= args.exact_max else "trajectory"), "ref_s": ref_s}
                for k in OBS:
                    row[f"ref_{k}"] = None if ref is None else ref[k]
                    row[f"ref_{k}_err"] = ref_err.get(k)  # None for the exact reference
                    row[f"dev_{k}"] = None if ref is None else r[k] - ref[k]
                save(row)
                print({k: row[k] for k in ("L", "g", "engine", "sx", "sz", "szsz", "dev_sx", "dev_sz", "dev_szsz", "wall_s")}, flush=True)


def _kept_trajectory(args, L: int, g: float) -> dict | None:
    """A kept trajectory row of the same ``(L, g)``, length and seed (``--keep``): the reference
    is not recomputed."""
    for r in args.kept:
        if (r["kind"], r["L"], r["g"], r["engine"]) == ("steady", L, g, "trajectory") and r.get("t_total") == args.trajectory_time \
                and r.get("seed", args.seed) == args.seed:
            return r
    return None


def dynamics_rows(args, save) -> None:
    from tensornets.evolution import Evolve, EvolveOptions

    for lx, ly in args.xyz:
        problem = hamiltonians.get("dissipative_xyz", Lx=lx, Ly=ly)
        common = dict(initial_state="product", initial_config=[0] * problem.n_sites, observables=["sz"],
                      t_final=args.t_final, dt=args.dt)
        series = {}
        for engine in ("exact", "povm"):
            extra = {} if engine == "exact" else dict(
                seed=args.seed, n_samples=args.xyz_samples, inner_iter=5, model_options={"d_model": 16, "n_heads": 2, "n_layers": 1}
            )
            method = Evolve(problem, EvolveOptions(engine=engine, **common, **extra))
            t0 = time.perf_counter()
            method.run(0, NullRecorder())
            wall = time.perf_counter() - t0
            series[engine] = (np.array([2 * np.mean(s) for s in method.series["sz"]]), wall, method)
        dev = np.abs(series["povm"][0] - series["exact"][0])
        eng = series["povm"][2].engine
        save({"kind": "dynamics", "L": f"{lx}x{ly}", "engine": "povm", "t_final": args.t_final, "dt": args.dt,
                     "sz_final": float(series["povm"][0][-1]), "exact_sz_final": float(series["exact"][0][-1]),
                     "max_dev_sz": float(dev.max()), "parameters": eng.n_parameters(),
                     "samples": round(args.t_final / args.dt) * 7 * args.xyz_samples,
                     "wall_s": series["povm"][1], "exact_s": series["exact"][1]})
        print(f"dynamics {lx}x{ly}: max |dev sz| {dev.max():.3g}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[8, 16], help="Ising chain lengths")
    ap.add_argument("--g", type=float, nargs="*", default=[0.5, 1.0, 2.0, 4.0])
    ap.add_argument("--engines", nargs="*", default=["povm", "ndm"], choices=["povm", "ndm"])
    ap.add_argument("--exact-max", type=int, default=8, help="exact steady state up to this many sites")
    ap.add_argument("--trajectory-time", type=float, default=400.0,
                    help="beyond --exact-max: length of the quantum-jump trajectory of the reference (0: none)")
    ap.add_argument("--ndm-iter", type=int, default=300)
    ap.add_argument("--ndm-samples", type=int, default=2000)
    ap.add_argument("--xyz", nargs="*", default=["3x3"], help="XYZ lattices LxxLy (none: no dynamics rows)")
    ap.add_argument("--xyz-samples", type=int, default=1024)
    ap.add_argument("--t-final", type=float, default=1.0)
    ap.add_argument("--dt", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the previous file's rows not measured now")
    args = ap.parse_args()
    args.xyz = [tuple(int(v) for v in s.split("x")) for s in args.xyz]
    kept = args.kept = previous("open_systems")["rows"] if args.keep else []
    rows: list[dict] = []

    def save(row: dict, final: bool = False) -> None:
        # written after every row: a long run that is stopped keeps what it measured
        if row:
            rows.append(row)
        new = {_key(r) for r in rows}
        write("open_systems", [r for r in kept if _key(r) not in new] + rows, COLUMNS, quiet=not final,
              note="steady: default relax solver vs NetKet's NDM example settings; dynamics: POVM trapezoid vs exact")

    steady_rows(args, save)
    dynamics_rows(args, save)
    save({}, final=True)


COLUMNS = ["kind", "L", "g", "engine", "sx", "sz", "szsz", "dev_sx", "dev_sz", "dev_szsz", "max_dev_sz",
           "parameters", "samples", "wall_s"]


def _key(r: dict) -> tuple:
    return r["kind"], str(r["L"]), r.get("g"), r["engine"]


if __name__ == "__main__":
    main()
