"""Direct-sampling throughput: our constrained autoregressive Transformer
(:class:`nqs.sampling.direct_sampler.ConstrainedDirectSampler`, one cached step per site) against
NetKet's ``FastARNNDense`` with ``ARDirectSampler`` at a matched parameter count, side by side in
one process on the spin-1/2 square lattices 6x6 and 10x10. Where ``FastARNNDense`` fails (NetKet
3.23 with JAX 0.10: its cache is sliced with a traced index), NetKet's side is ``ARNNDense``, the
same network without the cache; each row's ``netket_model`` names the model timed and
``netket_fast_model_error`` the failure.

Both draw exact independent samples of ``|psi|^2``. Ours samples the S^z = 0 sector of the
J1-J2 problem (masked conditionals); NetKet's AR models cannot be restricted to a sector, so
they sample the full 2^N space: the comparison is per sample at equal parameter count. The
timed call is ``sampler.sample(model, params, chain_length=n)`` after one warm-up (compilation),
median of ``--repeats`` calls, interleaved between the samplers. Our sampler runs the cached
steps in single precision by default (``sample_dtype``); each side is timed in single and in
double precision, and the ratios compare equal precisions. Ours is timed with its site loop in
one scan (``site_blocks = 1``: every step reads the whole key/value cache) and in 4 blocks; its
default (4 blocks from 32 sites on, else 1) is the row's ``samples_per_second``. The first of
the two blocks computes its attention from a table of keys and values by position and token (its
inputs depend on nothing else) by default; it is also timed with that block's keys and values
cached like the second's (``tabulate_first_block = False``), and with one key/value head per
query head (``attention = "multi_head"``, the default before multi-query attention).

Each row is timed in a process with ``devices`` JAX CPU devices (``--devices``; default 1 and
one per core, ``--xla_force_host_platform_device_count``): under NetKet's sharding both samplers
split the batch over them, so the cores run one device's share each.

    python bench/ar_sampling.py [--samples 1024] [--repeats 5] [--sizes 6 10] [--devices 1 2]

Writes ``bench/results/ar_sampling.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import jax
import netket as nk
import numpy as np

import hamiltonians
from nqs.models.registry import model_spec
from nqs.sampling.direct_sampler import ConstrainedDirectSampler

import report


def n_params(params) -> int:
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def ours(L: int, sample_dtype=np.float32, **options):
    problem = hamiltonians.get("j1j2", Lx=L, Ly=L, J2=0.5)
    spec = model_spec("transformer")
    model = spec.build(problem, spec.options(**options)).clone(sample_dtype=sample_dtype)
    hilbert, _ = problem.to_netket()
    sampler = ConstrainedDirectSampler(hilbert, problem.local_space.name)
    params = model.init(jax.random.PRNGKey(0), hilbert.random_state(jax.random.PRNGKey(1), 1))
    return sampler, model, params


def netket_matched(L: int, target: int, cls, dtype):
    """NetKet AR model ``cls`` on the unconstrained spin space with the feature width whose
    parameter count is closest to ``target`` (two layers, like our default Transformer's two
    blocks), weights and activations in ``dtype``."""
    hilbert = nk.hilbert.Spin(0.5, L * L)
    best = None
    for features in range(1, 64):
        model = cls(hilbert=hilbert, layers=2, features=features, param_dtype=dtype)
        params = model.init(jax.random.PRNGKey(0), np.ones((1, hilbert.size)))
        gap = abs(n_params(params) - target)
        if best is None or gap < best[0]:
            best = (gap, model, params, features)
        elif n_params(params) > target:
            break
    _, model, params, features = best
    return nk.sampler.ARDirectSampler(hilbert), model, params, features


def sample_once(sampler, model, params, n: int):
    """A function drawing ``n`` samples and returning its wall time (compiled on creation)."""
    state = [sampler.init_state(model, params, seed=0)]
    chain_length = n // sampler.n_batches  # one chain per device under NetKet's sharding

    def once() -> float:
        t0 = time.perf_counter()
        samples, state[0] = sampler.sample(model, params, state=state[0], chain_length=chain_length)
        jax.block_until_ready(samples)
        return time.perf_counter() - t0

    once()  # compilation
    return once


def rows_of_this_process(args) -> list[dict]:
    """The rows of every lattice size, timed in this process (its devices)."""
    rows = []
    for L in args.sizes:
        # ours: default (sampling in single precision) and in the parameters' double precision;
        # NetKet: its model in single and in double precision (its default)
        s1, m1, p1 = ours(L)
        # the site loop in one scan (every step reads the whole cache) and in 4 blocks
        runs = {
            f"ours_{blocks}": sample_once(ConstrainedDirectSampler(s1.hilbert, "spin_half", site_blocks=blocks), m1, p1, args.samples)
            for blocks in (1, 4)
        }
        runs["ours_f64"] = sample_once(*ours(L, sample_dtype=None), args.samples)
        # one key/value head per query head (the default before multi-query attention)
        runs["ours_multi_head"] = sample_once(*ours(L, attention="multi_head"), args.samples)
        # the first block's keys and values cached like the second's instead of tabulated
        runs["ours_first_cached"] = sample_once(s1, m1.clone(tabulate_first_block=False), p1, args.samples)
        fast_error = None
        for dtype, name in ((np.float32, "netket"), (np.float64, "netket_f64")):
            for cls in (nk.models.FastARNNDense, nk.models.ARNNDense):
                s2, m2, p2, features = netket_matched(L, n_params(p1), cls, dtype)
                try:
                    runs[name] = sample_once(s2, m2, p2, args.samples)
                    break
                except IndexError as err:
                    # NetKet 3.23's FastMaskedDense1D slices its cache with the traced site index,
                    # which this JAX rejects inside ARDirectSampler's scan; fall back to ARNNDense
                    # (same network, conditionals recomputed for every site) and say so.
                    fast_error = f"{cls.__name__}: {str(err).splitlines()[0]}"
        times = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved, so changes of the machine's load hit all alike
            for name, once in runs.items():
                times[name].append(once())
        rate = {name: args.samples / float(np.median(t)) for name, t in times.items()}
        rate["ours"] = rate[f"ours_{s1.site_blocks}"]
        rows.append(
            {
                "lattice": f"{L}x{L}",
                "devices": jax.device_count(),
                "cores": len(os.sched_getaffinity(0)),
                "n_parameters": n_params(p1),
                "netket_model": f"{type(m2).__name__}(layers=2, features={features})",
                "netket_fast_model_error": fast_error,
                "netket_n_parameters": n_params(p2),
                "samples_per_second": round(rate["ours"], 1),
                "netket_samples_per_second": round(rate["netket"], 1),
                "ratio_vs_netket": round(rate["ours"] / rate["netket"], 3),
                "site_blocks": s1.site_blocks,
                "samples_per_second_one_scan": round(rate["ours_1"], 1),
                "samples_per_second_4_blocks": round(rate["ours_4"], 1),
                "blocks_speedup": round(rate["ours_4"] / rate["ours_1"], 3),
                "samples_per_second_first_block_cached": round(rate["ours_first_cached"], 1),
                "tabulation_speedup": round(rate["ours"] / rate["ours_first_cached"], 3),
                "samples_per_second_multi_head": round(rate["ours_multi_head"], 1),
                "multi_query_speedup": round(rate["ours"] / rate["ours_multi_head"], 3),
                "samples_per_second_f64": round(rate["ours_f64"], 1),
                "netket_samples_per_second_f64": round(rate["netket_f64"], 1),
                "ratio_vs_netket_f64": round(rate["ours_f64"] / rate["netket_f64"], 3),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[6, 10])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, len(os.sched_getaffinity(0))],
                    help="JAX CPU devices per process (one process each; default 1 and one per core)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("ROWS " + json.dumps(rows_of_this_process(args)))
        return
    rows = []
    for devices in dict.fromkeys(args.devices):
        # JAX fixes its CPU devices at start: one process per device count
        env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"}
        out = subprocess.run(
            [sys.executable, __file__, "--worker", "--samples", str(args.samples), "--repeats", str(args.repeats),
             "--sizes", *map(str, args.sizes)], env=env, check=True, stdout=subprocess.PIPE, text=True,
        ).stdout
        rows += json.loads(next(line for line in out.splitlines() if line.startswith("ROWS "))[5:])
    report.write(
        "ar_sampling", rows, samples_per_call=args.samples,
        note=(
            "ours: Transformer (default options: multi-query attention; _multi_head: one key/value head per query head) in the S^z=0 sector, conditionals in single precision "
            "(the default sample_dtype; _f64: in double), site loop in site_blocks blocks (the default; "
            "_one_scan: in one scan, _4_blocks: in 4, blocks_speedup: their ratio), the first block's attention from a table by "
            "position and token (_first_block_cached: cached like the second block's, tabulation_speedup: the default over it); NetKet: netket_model (FastARNNDense, else ARNNDense, see "
            "netket_fast_model_error) + ARDirectSampler on the full space, in single precision (_f64: double, NetKet's default); ratios at equal precision; "
            "devices: JAX CPU devices of the row's process, both samplers splitting the batch over them under NetKet's sharding (ours: the site loop per device)"
        ),
    )


if __name__ == "__main__":
    main()
