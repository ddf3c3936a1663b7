"""Local energies of a VMC step: NetKet's packed kernel (``local_energies = "packed"``, our
default) against its padded one (``"padded"``), side by side on the same state and samples.

For every case the run path builds the VMC of a configuration (``model`` and the problem, all
else default), draws one batch of samples, and times ``MCState.local_estimators`` of the
Hamiltonian: padded, NetKet's default kernel on the numba operator (the network on all
``max_conn_size`` padded connected configurations of every sample, as VMC ran before), and packed,
NetKet's packed kernel on its jax form (the network only on the connected ``x' != x``). Median of
``--repeats`` calls after one warm-up, interleaved; ``compile_s`` is the first call's excess over
the median. ``evaluated`` is the mean number of connected ``x' != x`` per sample against
``max_conn_size`` (untrained parameters: a trained state has other configurations, so other
counts).

    python bench/local_energies.py [--repeats 3] [--cases j1j2-4x4-transformer ...]

Writes ``bench/results/local_energies.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from nqs.runs.config import loads
from nqs.vmc import packed_kernel

import report

CASES = {
    "j1j2-4x4-J2=0.5-transformer": ('name = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.5', "transformer", 1024),
    "j1j2-4x4-J2=0-transformer": ('name = "j1j2"\nLx = 4\nLy = 4\nJ2 = 0.0', "transformer", 1024),
    "j1j2-6x6-J2=0.5-transformer": ('name = "j1j2"\nLx = 6\nLy = 6\nJ2 = 0.5', "transformer", 256),
    "j1j2-6x6-J2=0.5-vit": ('name = "j1j2"\nLx = 6\nLy = 6\nJ2 = 0.5', "vit", 128),
    "tj-4x4-2holes-hfds": ('name = "tj"\nLx = 4\nLy = 4\nn_holes = 2', "hfds", 1024),
    "z2-3x3-h=0.3-gauge_transformer": ('name = "z2_gauge"\nLx = 3\nLy = 3\nh = 0.3', "gauge_transformer", 1024),
    "u1-3x3-gauge_transformer": ('name = "u1_qlm"\nLx = 3\nLy = 3', "gauge_transformer", 1024),
}
"""Problem, model and samples per case: fewer samples on 6x6 to keep a call under a minute (the
ViT averages over the 288 elements of the space group, the Transformer over 8), so that the
script runs in about 15 minutes on one core."""


def timed(f, repeats: int) -> tuple[float, float, np.ndarray]:
    """(first call, median of the next ``repeats``) in seconds, and the result."""
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        out = jax.block_until_ready(f())
        times.append(time.perf_counter() - t0)
    return times[0], float(np.median(times[1:])), np.asarray(out).reshape(-1)


def measure(case: str, repeats: int) -> dict:
    problem, model, n_samples = CASES[case]
    c = loads(f'[problem]\n{problem}\n\n[method]\nkind = "vmc"\nmodel = "{model}"\nn_samples = {n_samples}\nseed = 0\n')
    vmc = c.method(c.problem, c.options)
    state, h = vmc.state, vmc.hamiltonian
    samples = np.asarray(state.samples).reshape(-1, vmc.hilbert.size)
    conn, _ = h.get_conn_padded(samples)
    new = np.any(np.asarray(conn) != samples[:, None, :], axis=-1).sum(-1)

    def padded():
        with packed_kernel(False):  # NetKet's default kernel even where the flag was set
            return state.local_estimators(h).data

    def packed():
        with packed_kernel(True):
            return state.local_estimators(vmc.energy_operator).data

    first_pad, t_pad, e_pad = timed(padded, repeats)
    first_pack, t_pack, e_pack = timed(packed, repeats)
    return {
        "case": case,
        "n_samples": len(samples),
        "n_parameters": vmc.n_parameters,
        "max_conn_size": int(h.max_conn_size),
        "evaluated": round(float(new.mean()), 1),
        "padded_s": round(t_pad, 3),
        "packed_s": round(t_pack, 3),
        "speedup": round(t_pad / t_pack, 2),
        "padded_compile_s": round(first_pad - t_pad, 2),
        "packed_compile_s": round(first_pack - t_pack, 2),
        "max_rel_diff": float(np.max(np.abs(e_pack - e_pad)) / np.abs(np.mean(e_pad))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = ap.parse_args()
    rows = []
    for case in args.cases:
        rows.append(measure(case, args.repeats))
        print(report.table(rows[-1:]), flush=True)
    report.write("local_energies", rows, repeats=args.repeats)


if __name__ == "__main__":
    main()
