"""``kind = "dmrg"`` with ``backend = "block2"``: two-site DMRG on block2's block-sparse tensors.

The same method as :mod:`tensornets.dmrg` (bond-dimension schedule, stopping rule,
extrapolation in the truncation error, archive and resume), with the sweeps done by block2
(C++, threaded) on an MPS that carries the sector's charges (:mod:`tensornets.block2_model`):
the state cannot leave the sector, so there is no penalty and ``sector_leak`` is 0 by
construction. ``symmetry = "su2"`` (where :func:`~tensornets.block2_model.su2_couplings`
finds a Heisenberg spin-1/2 problem) keeps total spin 0 instead, and bond dimensions then count
SU(2) multiplets (``bond_dim_states`` in the history gives the number of ``S^z`` states).

Noise: the first sweep at each bond dimension adds block2's perturbative density-matrix noise
(``noise``), which lets a charged two-site update populate charge blocks the state lacks; the
other sweeps of a stage run without it, so the extrapolation points are noise-free.

Energies: a sweep's energy is the local eigenvalue before its last truncation (as for quimb),
the one the extrapolation in the truncation error uses; the result's ``energy`` is ``<H>`` of
the final, truncated MPS, a variational bound.

Checkpoint: block2's own MPS files (block-sparse, a few MB where dense tensors would take GB),
stored byte for byte in the archive and written back to a scratch folder on resume.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import weakref
from typing import Any

import numpy as np

from hamiltonians import Problem
from nqs.runs.methods import Recorder

from .block2_model import block2_su2_system, block2_system, operator_terms, su2_couplings
from .dmrg import DMRG, DMRGOptions, extrapolation

_TAG = "KET"


def resolve_symmetry(problem: Problem, options: DMRGOptions) -> str:
    """``"su2"`` or ``"abelian"``: what ``symmetry = "auto"`` means for ``problem``."""
    # "auto" is abelian: every observable can be measured on it; SU(2) is opt-in (docs/dmrg.md)
    return "abelian" if options.symmetry == "auto" else options.symmetry


def stack_memory(max_bond_dim: int) -> int:
    """Bytes of block2's working memory (allocated up front, resident): 1 GB up to bond
    dimension 256, 4 GB up to 1024, beyond that 40 % of the machine's memory (never more)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    want = 1 << 30 if max_bond_dim <= 256 else (4 << 30 if max_bond_dim <= 1024 else total)
    return int(min(want, 0.4 * total))


def observable_terms(problem: Problem) -> tuple:
    """Every term of every observable :mod:`nqs.observables` offers for ``problem``."""
    from nqs.observables import _flatten, available, build

    return tuple(t for name in available(problem) for t in _flatten(build(problem, name))[0])


class Block2DMRG(DMRG):
    """Two-site DMRG by block2 with the sector's charges in the tensors (module docstring)."""

    def __init__(self, problem: Problem, options: DMRGOptions):
        # not DMRG.__init__: no dense MPO or dense start is built
        self.problem, self.options = problem, options
        self.symmetry = resolve_symmetry(problem, options)
        self.scratch = tempfile.mkdtemp(prefix="nqs-block2-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.scratch, True)
        threads = options.threads or len(os.sched_getaffinity(0))
        kw = {"n_threads": threads, "stack_mem": stack_memory(max(options.bond_dims))}
        if self.symmetry == "su2":
            self.system = block2_su2_system(problem, self.scratch, **kw)
        else:
            self.system = block2_system(problem, self.scratch, extra_terms=observable_terms(problem), **kw)
        self.driver = self.system.driver
        self.driver.bw.b.Random.rand_seed(options.seed + 1)  # block2 reads 0 as "from the clock"
        self.ket = self.driver.get_random_mps(tag=_TAG, bond_dim=options.bond_dims[0], nroots=1)
        self.min_bond = 1
        self.penalty_on = False
        self.reset_schedule()

    @property
    def total_steps(self) -> int:
        return self.options.max_sweeps

    @property
    def n_parameters(self) -> int:
        total = 0
        for i in range(self.problem.n_sites):
            self.ket.load_tensor(i)
            total += int(self.ket.tensors[i].total_memory)
            self.ket.unload_tensor(i)
        return total

    def bond_sizes(self) -> tuple[int, int]:
        """``(bond dimension, S^z states)``: the largest bond of the MPS in block2's units
        (states for abelian charges, multiplets for SU(2)) and in states, ``sum (2S + 1) n_S``
        over the multiplets for SU(2)."""
        info = self.ket.info
        info.load_mutable()
        units = states = 0
        for i in range(1, self.problem.n_sites):
            dims = info.left_dims[i]
            units = max(units, int(dims.n_states_total))
            if self.symmetry == "su2":
                states = max(states, sum(int(dims.n_states[k]) * (dims.quanta[k].twos + 1) for k in range(dims.n)))
        return units, (states if self.symmetry == "su2" else units)

    def run(self, start: int, recorder: Recorder) -> None:
        o = self.options
        d = self.driver
        for sweep in range(start, o.max_sweeps):
            t0 = time.perf_counter()
            bond = self.bond_dim()
            noise = o.noise if self.stage_sweeps == 0 else 0.0
            energy = d.dmrg(
                self.system.mpo, self.ket, n_sweeps=1, bond_dims=[bond], noises=[noise],
                thrds=[o.davidson_tol], tol=0.0, iprint=0, cutoff=1e-20,
            )
            _, dws, _ = d.get_dmrg_results()
            energy, eps = float(np.real(energy)), float(dws[-1])
            self.energies.append(energy)
            self.truncation_errors.append(eps)
            self.points[bond] = (energy, eps)
            units, states = self.bond_sizes()
            values = {
                "energy": energy, "bond_dim": float(units), "bond_dim_states": float(states), "truncation_error": eps,
                "sector_leak": 0.0, "sweep_seconds": time.perf_counter() - t0,
            }
            recorder.record(sweep, values)
            stop = self._stop_after()
            self._advance_schedule()
            if recorder.checkpoint_due(sweep) or stop or sweep == o.max_sweeps - 1:
                recorder.checkpoint(sweep + 1, self.state_dict())
            if stop:
                break

    # ------------------------------------------------------------- checkpoint
    def _mps_files(self) -> list[str]:
        self.ket.save_data()
        self.ket.info.save_data(os.path.join(self.scratch, f"{_TAG}-mps_info.bin"))
        return sorted(
            f for f in os.listdir(self.scratch)
            if f.startswith(f"{_TAG}-") or f".{_TAG}." in f or f.endswith(f".{_TAG}")
        )

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict_common()
        files = self._mps_files()
        state["block2_mps"] = {
            str(k): np.frombuffer(open(os.path.join(self.scratch, f), "rb").read(), dtype=np.uint8)
            for k, f in enumerate(files)
        }
        state["block2_mps_names"] = np.asarray([f.encode() for f in files])
        state["symmetry"] = self.symmetry
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(state["block2_mps_names"])]
        for k, name in enumerate(names):
            with open(os.path.join(self.scratch, name), "wb") as fh:
                fh.write(np.asarray(state["block2_mps"][str(k)], dtype=np.uint8).tobytes())
        self.ket = self.driver.load_mps(_TAG)
        self.load_state_common(state)

    # ----------------------------------------------------------- measurements
    def measure(self, names: list[str]) -> dict[str, dict[str, Any]]:
        from nqs.observables import build

        if self.symmetry == "su2":
            raise NotImplementedError(
                "observables on the SU(2) MPS are not available; rerun with symmetry = \"abelian\" to measure"
            )
        out = {}
        for name in names:
            obs = build(self.problem, name)
            out[name] = {"mean": self._observable(obs)}
        return out

    def _observable(self, obs) -> np.ndarray:
        """``<O>`` for each term of an observable: terms on one or two sites from block2's
        one- and two-point functions (all pairs at once per operator pattern), longer ones by
        an MPO expectation each."""
        from nqs.observables import _collect, _flatten

        terms, _ = _flatten(obs)
        values = np.zeros(len(terms))
        ops = operator_terms(tuple(terms), self.problem, self.system.op_names)
        norm = self._norm()
        by_pattern: dict[str, list[tuple[int, list[int], float]]] = {}
        for k, (op, sites, c) in enumerate(ops):
            if not op:
                values[k] = c
            elif len(sites) <= 2:
                by_pattern.setdefault(op, []).append((k, sites, c))
            else:
                values[k] = c * self._expectation(op, sites) / norm
        for pattern, items in by_pattern.items():
            pdm = np.asarray(self.driver.get_npdm(self.ket, pdm_type=len(items[0][1]), npdm_expr=pattern,
                                                  fermionic_ops="", iprint=0))[0]
            for k, sites, c in items:
                values[k] = c * float(np.real(pdm[tuple(sites)])) / norm
        return _collect(obs, values)

    def _norm(self) -> float:
        return float(np.real(self.driver.expectation(self.ket, self.driver.get_identity_mpo(), self.ket)))

    def _expectation(self, op: str, sites: list[int]) -> float:
        b = self.driver.expr_builder()
        b.add_term(op, sites, 1.0)
        mpo = self.driver.get_mpo(b.finalize(adjust_order=False), iprint=0)
        return float(np.real(self.driver.expectation(self.ket, mpo, self.ket)))

    def final_result(self) -> dict[str, Any]:
        energy = float("nan")
        if self.energies:  # <H> of the truncated MPS, not the last sweep's local eigenvalue
            energy = float(np.real(self.driver.expectation(self.ket, self.system.mpo, self.ket))) / self._norm()
        out: dict[str, Any] = {
            "energy": energy,
            "sector_penalty": 0.0,
            **dict(zip(("bond_dim", "bond_dim_states"), self.bond_sizes())),
            "symmetry": self.symmetry,
            "backend": "block2",
            "sweeps": len(self.energies),
            "converged": bool(self.converged),
            "truncation_error": self.truncation_errors[-1] if self.truncation_errors else float("nan"),
            **self.extrapolation_result(),
        }
        return out
