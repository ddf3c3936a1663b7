"""Central charge of the golden chain from the entanglement entropy of its DMRG ground state.

The Fibonacci chain (``anyon_chain``, k = 3, spin 1) at ``theta = 0`` (antiferromagnetic,
tricritical Ising, c = 7/10) and ``theta = pi`` (ferromagnetic, Z_3 parafermions, c = 4/5),
by two-site DMRG (quimb) in the fusion-path sector, then the Calabrese-Cardy fit of
:func:`tensornets.entanglement.central_charge`:

* periodic rings: bond entropies of the MPS, ``S = c/3 log[(L/pi) sin(pi l/L)] + s0``;
* open chains (boundary labels 0): entropies of cuts through a label, which both halves share
  (the cut between two anyons), with the quantum-dimension term of the anyonic entropy,
  ``S = c/6 log[(2L/pi) sin(pi l/L)] + s0`` with one constant per residue ``l mod 6`` (the
  two chains oscillate with periods 2 and 3).

A fifth of the bonds next to each end is left out of the fit. Ferromagnetic sizes are
multiples of 6: the Z_3 spectrum depends on L mod 3. One row per chain; ``c_error`` is the
fit's standard error, ``rel_error`` the deviation from the exact c.

    python bench/anyon_chain.py [--sizes 48] [--boundaries periodic open] [--bond-dims 32 64 96]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import hamiltonians
from hamiltonians.anyons import quantum_dimension
from report import write
from nqs.runs.methods import NullRecorder
from tensornets.dmrg import DMRG, DMRGOptions
from tensornets.entanglement import central_charge, entanglement_entropies, shared_site_entropies


def measure(L: int, theta: float, periodic: bool, bond_dims: list[int], skip: float) -> dict:
    problem = hamiltonians.get("anyon_chain", L=L, k=3, spin=1.0, theta=theta, pbc=periodic)
    options = DMRGOptions(
        bond_dims=bond_dims, max_sweeps=14, backend="quimb", cutoff=1e-11, truncation_tol=1e-9, seed=0
    )
    t0 = time.perf_counter()
    method = DMRG(problem, options)
    method.run(0, NullRecorder())
    result = method.final_result()
    wall = time.perf_counter() - t0
    if periodic:
        fit = central_charge(entanglement_entropies(method.mps), periodic=True, skip=skip, period=1)
    else:
        dims = [quantum_dimension(n / 2, 3) for n in range(4)]
        # labels x_1 .. x_{L-1}: the cut at x_l has l anyons on its left
        entropies = shared_site_entropies(method.mps, dims)[1:-1]
        fit = central_charge(entropies, length=L, skip=skip, period=6)
    exact = 0.7 if theta == 0.0 else 0.8
    return {
        "L": L,
        "theta": "0 (AFM)" if theta == 0.0 else "pi (FM)",
        "boundary": "periodic" if periodic else "open",
        "energy": result["energy"],
        "bond_dim": result["bond_dim"],
        "truncation_error": result["truncation_error"],
        "sweeps": result["sweeps"],
        "sector_penalty": result["sector_penalty"],
        "c": fit.c,
        "c_error": fit.c_error,
        "c_exact": exact,
        "rel_error": abs(fit.c - exact) / exact,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[48])
    parser.add_argument("--boundaries", nargs="+", default=["periodic", "open"], choices=["periodic", "open"])
    parser.add_argument("--bond-dims", type=int, nargs="+", default=[32, 64, 96])
    parser.add_argument("--skip", type=float, default=0.2)
    args = parser.parse_args()
    rows = []
    for boundary in args.boundaries:
        for L in args.sizes:
            for theta in (0.0, float(np.pi)):
                rows.append(measure(L, theta, boundary == "periodic", args.bond_dims, args.skip))
                print(rows[-1], flush=True)
    write(
        "anyon_chain",
        rows,
        columns=["L", "theta", "boundary", "bond_dim", "truncation_error", "sweeps", "c", "c_error", "c_exact", "rel_error", "wall_s"],
        skip=args.skip,
    )


if __name__ == "__main__":
    main()
