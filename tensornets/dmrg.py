"""Two-site DMRG (quimb) on a registry problem: the ``kind = "dmrg"`` method of ``nqs run``.

The MPO is ``problem.to_mpo()`` in snake order with the sector penalty ``mu P`` (``P >= 1`` off the
sector, 0 on it), so DMRG works in the same symmetry sector as VMC and exact diagonalisation; the
final result reports ``<P>`` (``sector_penalty``) to show it. One step of the run is one sweep; the
bond dimension follows ``bond_dims`` (last value repeated). The largest discarded weight of each
sweep is recorded as its truncation error. The MPS tensors are the checkpoint.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import quimb.tensor as qtn

from hamiltonians import Problem
from nqs.methods import Method, Recorder


@dataclass
class DMRGOptions:
    """``[method]`` keys of ``kind = "dmrg"``."""

    bond_dims: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])
    """Maximum bond dimension per sweep; the last value repeats."""
    cutoff: float = 1e-10
    """Relative singular-value cutoff (sum of discarded squares) when splitting."""
    max_sweeps: int = 20
    """Upper limit on sweeps (steps of the run)."""
    tol: float = 1e-9
    """Stop when the energy per site changes by less than this between two sweeps at the
    final bond dimension."""
    penalty: float | str = "auto"
    """Strength of the sector penalty; "auto" uses ``problem.penalty_scale()``, 0 disables it."""
    seed: int = 0
    """Seeds the random initial MPS."""
    local_eig_ncv: int = 20
    """Lanczos vectors of the local eigensolver (quimb's ``local_eig_ncv``)."""

    def __post_init__(self):
        if not self.bond_dims or any(d < 1 for d in self.bond_dims):
            raise ValueError(f"bond_dims must be a non-empty list of positive integers, got {self.bond_dims}")
        if self.max_sweeps < 1:
            raise ValueError(f"max_sweeps must be >= 1, got {self.max_sweeps}")
        if isinstance(self.penalty, str) and self.penalty != "auto":
            raise ValueError(f"penalty must be \"auto\" or a number >= 0, got {self.penalty!r}")
        if not isinstance(self.penalty, str) and self.penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty}")
        if self.cutoff < 0 or self.tol <= 0:
            raise ValueError("cutoff must be >= 0 and tol > 0")


class _MaxError(dict):
    """Receives quimb's split ``info``; keeps the largest discarded norm of a sweep."""

    def __init__(self):
        super().__init__()
        self.max_error = 0.0

    def __setitem__(self, key, value):
        if key == "error" and value is not None:
            self.max_error = max(self.max_error, float(value))
        super().__setitem__(key, value)


def mps_arrays(mps: qtn.MatrixProductState) -> list[np.ndarray]:
    """Site tensors in ``(left, right, physical)`` order (boundary sites lack a bond)."""
    out = []
    for i in range(mps.L):
        inds = []
        if i > 0:
            inds.append(mps.bond(i - 1, i))
        if i < mps.L - 1:
            inds.append(mps.bond(i, i + 1))
        inds.append(mps.site_ind(i))
        out.append(np.asarray(mps[i].transpose(*inds).data))
    return out


class DMRG(Method):
    """Two-site DMRG with a bond-dimension schedule."""

    kind = "dmrg"
    Options = DMRGOptions
    default_checkpoint_every = 1
    resumable_keys = frozenset({"max_sweeps", "tol"})

    def __init__(self, problem: Problem, options: DMRGOptions):
        super().__init__(problem, options)
        self.mpo = problem.to_mpo(penalty=options.penalty)
        # A random MPS, not an in-sector product state: two-site updates cannot leave a product
        # state when the Hamiltonian moves four sites at once (gauge plaquettes); the penalty
        # drives the state into the sector within the first sweeps.
        self.mps = qtn.MPS_rand_state(
            problem.n_sites, bond_dim=min(options.bond_dims[0], 8), phys_dim=problem.local_space.dim,
            seed=options.seed, dtype="float64",
        )
        self.energies: list[float] = []

    @property
    def total_steps(self) -> int:
        return self.options.max_sweeps

    @property
    def n_parameters(self) -> int:
        return int(sum(t.size for t in self.mps.tensors))

    def bond_dim(self, sweep: int) -> int:
        dims = self.options.bond_dims
        return dims[min(sweep, len(dims) - 1)]

    def run(self, start: int, recorder: Recorder) -> None:
        o = self.options
        dmrg = qtn.DMRG2(self.mpo, bond_dims=self.bond_dim(start), cutoffs=o.cutoff, p0=self.mps)
        # quimb's default of 4 Lanczos vectors needs ~100 ARPACK restarts per local problem on
        # 2D snake MPOs; 20 cuts the sweep time about fourfold at equal energies.
        dmrg.opts["local_eig_ncv"] = o.local_eig_ncv
        n = self.problem.n_sites
        for sweep in range(start, o.max_sweeps):
            info = _MaxError()
            direction = "R" if sweep % 2 == 0 else "L"
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                energy = dmrg.sweep(
                    direction,
                    canonize=(sweep == start),
                    max_bond=self.bond_dim(sweep),
                    cutoff=o.cutoff,
                    cutoff_mode=dmrg.opts["bond_compress_cutoff_mode"],
                    method=dmrg.opts["bond_compress_method"],
                    info=info,
                )
            energy = float(np.real(energy))
            self.energies.append(energy)
            self.mps = dmrg.state
            recorder.record(
                sweep,
                {
                    "energy": energy,
                    "bond_dim": float(self.mps.max_bond()),
                    "truncation_error": info.max_error**2,
                    "sweep_seconds": time.perf_counter() - t0,
                },
            )
            converged = (
                len(self.energies) >= 2
                and sweep + 1 >= len(o.bond_dims)
                and abs(self.energies[-1] - self.energies[-2]) / n < o.tol
            )
            if recorder.checkpoint_due(sweep) or converged or sweep == o.max_sweeps - 1:
                recorder.checkpoint(sweep + 1, self.state_dict())
            if converged:
                break

    def state_dict(self) -> dict[str, Any]:
        return {
            "mps": {str(i): a for i, a in enumerate(mps_arrays(self.mps))},
            "energies": np.asarray(self.energies, dtype=float),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        arrays = [np.asarray(state["mps"][str(i)]) for i in range(len(state["mps"]))]
        self.mps = qtn.MatrixProductState(arrays, shape="lrp")
        self.energies = [float(e) for e in np.atleast_1d(state["energies"])]

    def final_result(self) -> dict[str, Any]:
        mps = self.mps
        norm = float(np.real(mps.H @ mps))
        bare = self.problem.to_mpo(penalty=0)
        energy = float(np.real(qtn.expec_TN_1D(mps.H, bare, mps))) / norm
        penalty = float(np.real(qtn.expec_TN_1D(mps.H, self.problem.to_mpo(penalty=1.0), mps))) / norm - energy
        return {
            "energy": energy,
            "sector_penalty": penalty,
            "bond_dim": int(mps.max_bond()),
            "sweeps": len(self.energies),
        }
