"""What a new user gets: every registry family across its phase diagram, every model that fits,
only ``model``, ``n_iter`` and ``seed`` set, against exact diagonalisation; NetKet's own example
settings beside them where NetKet has the model.

For each point of :data:`POINTS` (a family at an ED size, several parameters across its phase
diagram) and each model (``auto``, the default, resolves to the registry's choice) this runs the
configuration a user would write through the runner. Where NetKet ships the model (``rbm``,
``rbm_symm``, ``jastrow`` on the Heisenberg and J1-J2 models) the same point also runs NetKet's
example script: ``nk.operator.Heisenberg`` (Pauli matrices, Marshall sign rule), the model with
real weights (``alpha = 1``), exchange moves, 1008 samples, ``Sgd(0.01)`` with ``SR(0.1)``, and
its energy divided by 4 (our spin-operator units). Rows: the final estimates (4x the training
samples), their relative error against ED (none where the exact energy is zero) and error per
site, the run's status and wall time.

    python bench/defaults.py [--families j1j2 z2_gauge] [--models auto rbm] [--n-iter 300]
                             [--points 0 2] [--seed 0] [--engines nqs netket]

Rows merge into ``bench/results/defaults.json`` by (family, point, model, engine, seed, n_iter),
so partial runs accumulate; the table printed is the whole file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import hamiltonians
from nqs.models import default_model, model_names, model_spec
from nqs.runs.config import loads
from nqs.runs.diagnostics import relative_error
from nqs.runs.runner import run

import report

POINTS: dict[str, list[dict[str, Any]]] = {
    "heisenberg_chain": [dict(L=8), dict(L=8, J2=0.5), dict(L=16)],
    "j1j2": [dict(Lx=4, Ly=4, J2=0.0), dict(Lx=4, Ly=4, J2=0.5), dict(Lx=4, Ly=4, J2=0.8)],
    "tj": [dict(Lx=4, Ly=4, n_holes=1, J=0.4), dict(Lx=4, Ly=4, n_holes=2, J=0.3), dict(Lx=4, Ly=4, n_holes=2, J=1.0)],
    "z2_gauge": [dict(Lx=3, Ly=3, h=h) for h in (0.1, 0.3, 0.5, 0.7, 1.0)],
    "u1_qlm": [dict(Lx=4, Ly=2, lam=lam) for lam in (-1.0, 0.0, 1.0)],
    "anyon_chain": [dict(L=12, theta=0.0), dict(L=12, theta=3.141592653589793)],
}
"""ED sizes per family, several points across each phase diagram (Z2: both sides of h_c ~ 0.33;
U(1): lam from -1 to 1; J1-J2: Neel, frustrated, stripe; t-J: one and two holes, J 0.3 to 1;
the golden chain's antiferromagnetic and ferromagnetic signs)."""

NETKET_MODELS = ("rbm", "rbm_symm", "jastrow")


def point_label(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def ours(family: str, params: dict[str, Any], model: str, n_iter: int, seed: int, workdir: Path) -> dict[str, Any]:
    """The user's configuration through the runner: ``[problem]`` plus model, n_iter and seed."""
    problem = "\n".join(f"{k} = {json.dumps(v)}" for k, v in params.items())
    model_line = "" if model == "auto" else f'model = "{model}"\n'
    archive = workdir / f"{family}_{abs(hash(point_label(params)))}_{model}_{seed}.h5"
    text = (f'[problem]\nname = "{family}"\n{problem}\n\n[method]\nkind = "vmc"\n{model_line}'
            f"n_iter = {n_iter}\nseed = {seed}\n\n[output]\narchive = {json.dumps(archive.as_posix())}\n")
    t0 = time.perf_counter()
    a = run(loads(text), overwrite=True, progress=False, log=lambda s: None)
    return {"energy": a.result["energy"], "energy_error": a.result["energy_error"], "status": a.status,
            "wall_s": time.perf_counter() - t0}


def netket_example(family: str, params: dict[str, Any], model: str, n_iter: int, seed: int) -> dict[str, Any]:
    """NetKet's example settings for ``model`` on the Heisenberg/J1-J2 point, in NetKet alone."""
    import netket as nk
    import numpy as np

    problem = hamiltonians.get(family, **params)
    geo = problem.geometry
    J1, J2 = params.get("J", params.get("J1", 1.0)), params.get("J2", 0.0)
    if family == "heisenberg_chain":
        graph = nk.graph.Chain(params["L"], pbc=params.get("pbc", True), max_neighbor_order=2 if J2 else 1)
    else:
        graph = nk.graph.Square(params["Lx"], pbc=params.get("pbc", True), max_neighbor_order=2 if J2 else 1)
    hi = nk.hilbert.Spin(0.5, N=graph.n_nodes, total_sz=0)
    # NetKet's Heisenberg: J sum sigma.sigma (4x our S.S), Marshall sign rule on the first neighbours
    ha = nk.operator.Heisenberg(hi, graph, J=[J1, J2] if J2 else J1, sign_rule=[True, False] if J2 else True)
    if model == "rbm":
        net = nk.models.RBM(alpha=1, param_dtype=float)
    elif model == "rbm_symm":
        net = nk.models.RBMSymm(symmetries=nk.utils.HashableArray(np.asarray(geo.translations)), alpha=1, param_dtype=float)
    else:
        net = nk.models.Jastrow(param_dtype=float)
    sampler = nk.sampler.MetropolisExchange(hi, graph=graph)
    vs = nk.vqs.MCState(sampler, net, n_samples=1008, seed=seed, sampler_seed=seed + 1)
    driver = nk.driver.VMC(ha, nk.optimizer.Sgd(learning_rate=0.01), variational_state=vs,
                           preconditioner=nk.optimizer.SR(diag_shift=0.1))
    t0 = time.perf_counter()
    driver.run(n_iter, out=(), show_progress=False)
    vs.n_samples = 4 * 1008
    stats = vs.expect(ha)
    return {"energy": float(np.real(stats.mean)) / 4, "energy_error": float(stats.error_of_mean) / 4,
            "status": "completed", "wall_s": time.perf_counter() - t0}


def fitting_models(problem) -> list[str]:
    return ["auto"] + [m for m in model_names() if model_spec(m).fits(problem) is None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="*", default=list(POINTS))
    ap.add_argument("--models", nargs="*", default=None, help="default: auto and every model that fits")
    ap.add_argument("--points", nargs="*", type=int, default=None, help="indices into each family's points")
    ap.add_argument("--n-iter", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", nargs="*", default=["nqs", "netket"], help="nqs (ours) and/or netket (its example)")
    args = ap.parse_args()

    rows = report.previous("defaults")["rows"]
    key = lambda r: (r["family"], r["point"], r["model"], r["engine"], r["seed"], r["n_iter"])  # noqa: E731
    by_key = {key(r): r for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            for i, params in enumerate(POINTS[family]):
                if args.points is not None and i not in args.points:
                    continue
                problem = hamiltonians.get(family, **params)
                exact = problem.exact()
                for model in args.models or fitting_models(problem):
                    if model != "auto" and model_spec(model).fits(problem) is not None:
                        continue
                    engines = [("nqs", ours)] if "nqs" in args.engines else []
                    if model in NETKET_MODELS and family in ("heisenberg_chain", "j1j2") and "netket" in args.engines:
                        engines.append(("netket example", netket_example))
                    for engine, fn in engines:
                        out = (fn(family, params, model, args.n_iter, args.seed, Path(tmp)) if engine == "nqs"
                               else fn(family, params, model, args.n_iter, args.seed))
                        row = {"family": family, "point": point_label(params), "model": model, "engine": engine,
                               "resolved_model": default_model(problem) if model == "auto" else model,
                               "seed": args.seed, "n_iter": args.n_iter, **out, "exact": exact,
                               "rel_error": relative_error(out["energy"], exact, problem.n_sites),
                               "error_per_site": (out["energy"] - exact) / problem.n_sites}
                        by_key[key(row)] = row
                        print(report.table([row], COLUMNS), flush=True)
                        report.write("defaults", list(by_key.values()), COLUMNS, quiet=True)
    report.write("defaults", list(by_key.values()), COLUMNS)


COLUMNS = ["family", "point", "model", "resolved_model", "engine", "energy", "energy_error", "exact", "rel_error",
           "error_per_site", "status", "wall_s"]

if __name__ == "__main__":
    main()
