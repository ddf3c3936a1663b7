"""Cost of one VMC step against the number of sites, for each ansatz of the toolkit.

Each (model, L) runs the real run path (``nqs.runs.config.loads`` + ``nqs.runs.runner.run``) for a few
iterations at a fixed number of samples; a step is sampling + local energies + the SR update.
The cost of a step is the median of the differences of the archive's ``wall_time`` history,
the first (compilation) step excluded. The exponent ``b`` of ``t = a N^b`` is a least-squares
fit in log-log over the sizes run; N counts sites (links for the gauge model).
``gflop_per_step`` sums XLA's ``cost_analysis()["flops"]`` of the functions a step runs (sampling,
local energies, Jacobian, SR update: :func:`step_flops`), lowered with the step's shapes and
parameters; XLA counts a ``scan``/``while`` body once, so :func:`loop_flops` multiplies the
bodies by their trip counts. ``fraction_of_dense`` divides the achieved rate by that of a dense
float64 product measured in the same process just before the row (:func:`dense_gflops`).

Problems: ``j1j2`` LxL (J2=0.5) for ``transformer``, ``ar_rnn``, ``vit`` (``vit_double``: its encoder in
double precision) and NetKet's ``gcnn``
and ``rbm_symm``; ``tj`` LxL with ``L^2/8`` holes (even, >= 2) for ``hfds``; ``z2_gauge`` LxL (h=0.3) for ``gauge_transformer``,
up to 6x6 only: its Gauss-law automaton keeps the first row of vertices open, ``2^(2L+1)``
states per depth (131,072 at 8x8, two tables of 128 x 131,072 x 2 entries), which is where the
exact-masking construction stops being cheap.

    python bench/vmc_step_cost.py [--sizes 4 6 8 10] [--models transformer vit ...] [--steps 4]

Writes ``bench/results/vmc_step_cost.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore
from jax.sharding import PartitionSpec

from nqs.runs.config import loads
from nqs.runs.runner import run
from nqs.vmc import packed_kernel

import report

MAX_L = {"gauge_transformer": 6}
"""Largest lattice per model (see the module docstring)."""

MODELS = {
    "transformer": "name = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5",
    "ar_rnn": "name = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5",
    "vit": "name = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5",
    "gcnn": "name = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5",
    "rbm_symm": "name = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5",
    "hfds": "name = 'tj'\nLx = {L}\nLy = {L}\nn_holes = {holes}",
    "gauge_transformer": "name = 'z2_gauge'\nLx = {L}\nLy = {L}\nh = 0.3",
    "vit_double": "name = 'j1j2'\nLx = {L}\nLy = {L}\nJ2 = 0.5",
}



def config_text(model: str, L: int, steps: int, n_samples: int, workdir: Path) -> str:
    """The run configuration of one (model, L) row."""
    holes = max(2, 2 * round(L * L / 16))
    problem = MODELS[model].format(L=L, holes=holes)
    name, options = report.variant(model)
    return (
        f"[problem]\n{problem}\n\n[method]\nkind = 'vmc'\nmodel = '{name}'\n{options}n_iter = {steps + 1}\n"
        # the final estimate is not timed: at the step's sample count (not the default 4x)
        f"n_samples = {n_samples}\nn_samples_final = {n_samples}\nseed = 0\n\n"
        f"[output]\narchive = '{workdir / f'{model}_{L}.h5'}'\n"
    )


def step_seconds(model: str, L: int, steps: int, n_samples: int, workdir: Path) -> tuple[float, int, int]:
    """Median seconds per VMC step, number of sites (or links), number of parameters."""
    text = config_text(model, L, steps, n_samples, workdir)
    a = run(loads(text), overwrite=True, progress=False, log=lambda s: None)
    wall = np.asarray(a.history["wall_time"], dtype=float)
    return float(np.median(np.diff(wall)[1:] if len(wall) > 2 else np.diff(wall))), a.n_sites, int(
        a.result.get("n_parameters", 0)
    )


# ------------------------------------------------------------------ flop counting
_XLA_CACHE: dict = {}


def _concrete(cj: jcore.ClosedJaxpr) -> jcore.ClosedJaxpr:
    """``cj`` with shape-only constants (NetKet leaves ``ShapeDtypeStruct``s in some closures)
    replaced by zeros, recursively, so that it can be compiled on its own."""
    consts = [jnp.zeros(c.shape, c.dtype) if isinstance(c, jax.ShapeDtypeStruct) else c for c in cj.consts]
    eqns = []
    for eq in cj.jaxpr.eqns:
        params = {}
        for k, p in eq.params.items():
            if isinstance(p, jcore.ClosedJaxpr):
                p = _concrete(p)
            elif isinstance(p, (list, tuple)) and any(isinstance(q, jcore.ClosedJaxpr) for q in p):
                p = type(p)(_concrete(q) if isinstance(q, jcore.ClosedJaxpr) else q for q in p)
            params[k] = p
        eqns.append(eq.replace(params=params))
    return jcore.ClosedJaxpr(cj.jaxpr.replace(eqns=eqns), consts)


def xla_flops(cj: jcore.ClosedJaxpr, mesh=None) -> float:
    """XLA's ``cost_analysis()["flops"]`` of ``cj`` compiled alone (loop bodies counted once);
    inside a ``shard_map`` (NetKet's kernels) it is compiled under that map's ``mesh``."""
    key = (str(cj.jaxpr), tuple(str(v.aval) for v in cj.jaxpr.invars), mesh is None)
    if key not in _XLA_CACHE:
        fun = jcore.jaxpr_as_fun(_concrete(cj))
        if mesh is not None:
            fun = jax.shard_map(fun, mesh=mesh, in_specs=PartitionSpec(), out_specs=PartitionSpec(), check_vma=False)
        args = [jnp.zeros(v.aval.shape, v.aval.dtype) for v in cj.jaxpr.invars]
        cost = jax.jit(fun).lower(*args).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        _XLA_CACHE[key] = float(cost.get("flops", 0.0))
    return _XLA_CACHE[key]


def _subjaxprs(eqn) -> list[jcore.ClosedJaxpr]:
    out = []
    for p in eqn.params.values():
        for q in p if isinstance(p, (list, tuple)) else [p]:
            if isinstance(q, jcore.ClosedJaxpr):
                out.append(q)
            elif isinstance(q, jcore.Jaxpr):
                out.append(jcore.ClosedJaxpr(q, []))
    return out


def _loops(jaxpr: jcore.Jaxpr, mesh, out: list, whiles: list) -> None:
    """The outermost ``scan``s of ``jaxpr`` (through nested calls), as (body, length, mesh)."""
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "scan":
            out.append((eqn.params["jaxpr"], eqn.params["length"], mesh))
        elif name == "while":  # trip count unknown when traced: its body stays counted once
            whiles.append(eqn)
            _loops(eqn.params["body_jaxpr"].jaxpr, mesh, out, whiles)
        else:
            inner = eqn.params.get("mesh", mesh) if name == "shard_map" else mesh
            for sub in _subjaxprs(eqn):
                _loops(sub.jaxpr, inner, out, whiles)


def loop_flops(cj: jcore.ClosedJaxpr, mesh=None) -> float:
    """Floating-point operations of ``cj`` with every ``scan`` body (``lax.scan``, ``fori_loop``
    with static bounds, ``lax.map``) counted ``length`` times: XLA's count of the whole plus, per
    scan, ``length * loop_flops(body) - xla_flops(body)``. A ``while`` of unknown trip count
    (none in the models measured here) stays counted once."""
    loops, whiles = [], []
    _loops(cj.jaxpr, mesh, loops, whiles)
    total = xla_flops(cj, mesh)
    for body, length, m in loops:
        total += length * loop_flops(body, m) - xla_flops(body, m)
    return total


def sampling_flops(vstate) -> float:
    """One step's sampling: the sampler's chain function for the discarded sweeps and for the
    kept ones (Metropolis: every sweep's proposals and forward passes; exact samplers: the
    site loop)."""
    total = 0.0
    for length in (getattr(vstate, "n_discard_per_chain", 0) or 0, vstate.chain_length):
        if length:
            f = lambda v, s, n=length: vstate.sampler.sample(vstate.model, v, state=s, chain_length=n)
            total += loop_flops(jax.make_jaxpr(f)(vstate.variables, vstate.sampler_state))
    return total


def local_energy_flops(method) -> float:
    """Local energies of the step's samples (the packed kernel as in the run: the network on the
    connected configurations, the operator's matrix elements)."""
    with packed_kernel(method.options.local_energies == "packed"):
        return loop_flops(jax.make_jaxpr(lambda: method.state.local_estimators(method.energy_operator))())


def gradient_and_sr_flops(method) -> tuple[float, float]:
    """(Jacobian, SR update) of NetKet's SR function as the driver calls it: the per-sample
    Jacobian (the jitted ``jacobian`` inside) and the rest (centring, the ``n_s x n_s`` NTK
    ``O O^T`` or the ``n_p x n_p`` S matrix, the solve and the update). XLA counts LAPACK's
    Cholesky (a custom call) as 0: ``n^3 / 3`` multiply-adds (``2 n^3 / 3`` flops) are added for it."""
    from netket._src.ngd.sr_srt_common import get_samples_and_pdf, sr, srt
    from netket._src.ngd.srt_onthefly import srt_onthefly

    d, vs = method.driver, method.state
    with packed_kernel(method.options.local_energies == "packed"):
        e_loc = vs.local_estimators(method.energy_operator)
    e_loc = getattr(e_loc, "data", e_loc)
    samples, pdf = get_samples_and_pdf(vs)
    update = (srt_onthefly if d.on_the_fly else srt) if d.use_ntk else sr
    shift = d.diag_shift(0) if callable(d.diag_shift) else d.diag_shift
    kw = {"diag_shift": shift, "solver_fn": d._linear_solver, "mode": d.mode, "proj_reg": None, "momentum": None,
          "old_updates": None, "chunk_size": d.chunk_size_bwd}
    cj = jax.make_jaxpr(lambda e, p, s, w: update(vs._apply_fun, e, p, vs.model_state, s, weights=w, **kw))(
        e_loc, vs.parameters, samples, pdf)
    # the update is one jit whose inner calls include the jitted ``jacobian``
    inner = [e for eq in cj.jaxpr.eqns for sub in _subjaxprs(eq) for e in sub.jaxpr.eqns]
    jac = sum(loop_flops(e.params["jaxpr"]) for e in inner
              if e.primitive.name == "jit" and e.params.get("name") == "jacobian")
    n = samples.reshape(-1, samples.shape[-1]).shape[0] if d.use_ntk else method.n_parameters
    n = n * (2 if d.mode == "complex" else 1)
    return jac, loop_flops(cj) - jac + 2 * n**3 / 3


def step_flops(model: str, L: int, n_samples: int, workdir: Path) -> dict[str, float]:
    """GFlop of one step, per piece, on the objects the run builds (a fresh VMC method of the
    same configuration, its state sampled once so that the shapes are the step's)."""
    config = loads(config_text(model, L, 1, n_samples, workdir))
    method = config.method(config.problem, config.options)
    method.state.sample()
    jac, sr_ = gradient_and_sr_flops(method)
    pieces = {"gflop_sampling": sampling_flops(method.state), "gflop_local_energy": local_energy_flops(method),
              "gflop_gradient": jac, "gflop_sr": sr_}
    _XLA_CACHE.clear()
    return {k: v / 1e9 for k, v in pieces.items()}


def dense_gflops(dtype=jnp.float64, n: int = 2048, repeats: int = 5) -> float:
    """GFlop/s of an ``n x n @ n x n`` product (``2 n^3`` flops) in ``dtype``, compiled first,
    median of ``repeats``: the reference rate on the same cores, under the same load."""
    import time

    a = jnp.ones((n, n), dtype)
    dot = jax.jit(jnp.dot)
    dot(a, a).block_until_ready()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        dot(a, a).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / float(np.median(times)) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 6, 8, 10])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--steps", type=int, default=4, help="timed steps after the first (default 4)")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--keep", action="store_true",
                    help="keep the rows of the (model, size, samples) not measured now from the existing results "
                         "file; a model's fit then runs over all its rows at this --samples (kept if it has one row)")
    args = ap.parse_args()
    rows, fits, old_fits = [], [], {}
    if args.keep:
        old = report.previous("vmc_step_cost")
        measured = {(m, f"{L}x{L}", args.samples) for m in args.models for L in args.sizes}
        rows = [r for r in old["rows"] if (r["model"], r["lattice"], r["n_samples"]) not in measured]
        old_fits = {f["model"]: f for f in old.get("fits", [])}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for L in args.sizes:
                if L > MAX_L.get(model, L):
                    print(f"{model} {L}x{L}: skipped (larger than {MAX_L[model]}x{MAX_L[model]})", flush=True)
                    continue
                flops = step_flops(model, L, args.samples, Path(tmp))
                dense64, dense32 = dense_gflops(jnp.float64), dense_gflops(jnp.float32)
                t, n, n_par = step_seconds(model, L, args.steps, args.samples, Path(tmp))
                gflop = sum(flops.values())
                rows.append({"model": model, "lattice": f"{L}x{L}", "n_sites": n, "n_parameters": n_par,
                             "n_samples": args.samples, "seconds_per_step": round(t, 4),
                             "gflop_per_step": round(gflop, 3), **{k: round(v, 3) for k, v in flops.items()},
                             "dense_gflops": round(dense64, 2), "dense_gflops_f32": round(dense32, 2),
                             "fraction_of_dense": round(gflop / t / dense64, 4)})
                print(f"{model} {L}x{L}: {t:.3f} s/step, {gflop:.2f} GFlop/step, "
                      f"{gflop / t:.2f} GFlop/s of {dense64:.1f} (f64 dense)", flush=True)
            mine = sorted((r["n_sites"], r["seconds_per_step"]) for r in rows
                          if r["model"] == model and r["n_samples"] == args.samples)
            if len(mine) >= 2:
                ns, ts = np.asarray(mine, dtype=float).T
                b, log_a = np.polyfit(np.log(ns), np.log(ts), 1)
                fits.append({"model": model, "exponent": round(float(b), 3), "prefactor": float(np.exp(log_a))})
                old_fits.pop(model, None)
            # after every model, so that a run stopped later (memory, time) keeps what it measured
            # a model measured at one size only keeps its fit over the kept rows of another sample count
            report.write("vmc_step_cost", rows, fits=fits + list(old_fits.values()))
    if fits:  # one size per model fits no exponent
        print(report.table(fits))


if __name__ == "__main__":
    main()
