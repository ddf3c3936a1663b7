"""Simple- and full-update PEPS (quimb) on a 2D registry problem: the ``kind = "peps"`` method of ``nqs run``.

State: a finite PEPS with open boundaries, one tensor per site of the ``Lx x Ly`` square lattice
(site ``(x, y)`` of :mod:`hamiltonians.lattice` at quimb's ``(i, j) = (x, y)``), virtual bond
dimension ``D = bond_dim``, plus the simple-update bond weights (``gauges``, one vector per bond).
The Hamiltonian is ``problem.to_local_ham_2d()``: nearest-neighbour and diagonal (J2) pairs.

Algorithm: imaginary-time evolution ``|psi> -> prod_<ij> exp(-tau h_ij) |psi>`` in Trotter
sweeps, the simple update of Jiang, Weng and Xiang, PRL 101, 090603 (2008), each sweep in a
fresh random pair order seeded by ``seed`` and the stage (a fixed order biases the fixed point;
a resumed run repeats the order); diagonal pairs routed through a shortest nearest-neighbour
path. One step of the run is one *stage*: ``sweeps_per_stage`` sweeps at the stage's ``tau``.
The stages of ``full_update_taus`` then continue with quimb's full update (Jordan et al., PRL
101, 250602 (2008); finite-PEPS form of Lubasch, Cirac and Bañuls, PRB 90, 064425 (2014)), each
gate fitted in the environment of the rest of the network (boundary MPS at ``chi``), which
removes the bias of the simple update's product environment; nearest-neighbour gates only, so
problems with J2 terms stay with the simple update. Accuracy: ``docs/methods/peps.md``.

Energy: ``<psi|H|psi> / <psi|psi>``, each term's reduced density matrix from a boundary-MPS
contraction at bond dimension ``chi`` (quimb ``compute_local_expectation``, normalised locally).

Sector: the PEPS does not fix total ``S^z``. For the SU(2)-symmetric ``j1j2`` model every ground
multiplet has a member in the default sector (``S^z = 0`` or ``1/2``), so the PEPS targets the
global ground energy; other sectors and models raise :class:`~nqs.runs.config.ConfigError`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import quimb.tensor as qtn

from hamiltonians import Problem
from hamiltonians.lattice import SquareLattice
from hamiltonians.local_ham import local_ham_2d_obstacle
from nqs.runs.config import ConfigError
from nqs.runs.methods import Method, Recorder

# Problems whose default sector holds the global ground state (see the module docstring).
_SU2_SPIN_MODELS = frozenset({"j1j2"})


@dataclass
class PEPSOptions:
    """``[method]`` keys of ``kind = "peps"``."""

    bond_dim: int = 4
    """PEPS virtual bond dimension ``D``."""
    taus: list[float] = field(default_factory=lambda: [0.3, 0.1, 0.03, 0.01])
    """Imaginary-time step of each stage (one stage = one step of the run), in units of 1/J."""
    sweeps_per_stage: int = 50
    """Second-order Trotter sweeps over all pairs per stage."""
    chi: int | None = None
    """Boundary-MPS bond dimension of the energy contraction; default ``bond_dim**2``."""
    cutoff: float = 1e-10
    """Relative singular-value cutoff of the gate truncations."""
    seed: int = 0
    """Seeds the random initial PEPS."""
    full_update_taus: list[float] | None = None
    """Imaginary-time step of each full-update stage, run after the simple-update stages (one
    stage = one step of the run). Default: ``[0.1, 0.05, 0.05, 0.02, 0.02, 0.01]`` when every
    term is nearest-neighbour (quimb's full update applies no diagonal gates), else ``[]``;
    ``[]`` means simple update only. Each full-update sweep costs an environment per gate:
    on the 4x4 lattice at ``D = 4`` about 2.7 s against 0.02 s of a simple-update sweep."""
    full_update_sweeps: int = 10
    """Trotter sweeps per full-update stage."""

    def __post_init__(self):
        if self.bond_dim < 1:
            raise ValueError(f"bond_dim must be >= 1, got {self.bond_dim}")
        if not self.taus or any(not t > 0 for t in self.taus):
            raise ValueError(f"taus must be a non-empty list of positive time steps, got {self.taus}")
        if self.full_update_taus is not None and any(not t > 0 for t in self.full_update_taus):
            raise ValueError(f"full_update_taus must be positive time steps, got {self.full_update_taus}")
        if self.full_update_sweeps < 1:
            raise ValueError(f"full_update_sweeps must be >= 1, got {self.full_update_sweeps}")
        if self.sweeps_per_stage < 1:
            raise ValueError(f"sweeps_per_stage must be >= 1, got {self.sweeps_per_stage}")
        if self.chi is not None and self.chi < 1:
            raise ValueError(f"chi must be >= 1, got {self.chi}")
        if self.cutoff < 0:
            raise ValueError(f"cutoff must be >= 0, got {self.cutoff}")

    @property
    def boundary_bond_dim(self) -> int:
        return self.chi if self.chi is not None else self.bond_dim**2


DEFAULT_FULL_UPDATE_TAUS = (0.1, 0.05, 0.05, 0.02, 0.02, 0.01)
"""Full-update stages on nearest-neighbour problems (their effect: ``docs/methods/peps.md``)."""


def _nearest_neighbour_only(problem: Problem) -> bool:
    """Whether every two-site term joins lattice neighbours (full update can apply it)."""
    return all(
        abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in problem.to_local_ham_2d().terms
    )


def _neighbours(Lx: int, Ly: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Nearest-neighbour pairs of the open ``Lx x Ly`` lattice, first site smaller."""
    out = []
    for i in range(Lx):
        for j in range(Ly):
            if i + 1 < Lx:
                out.append(((i, j), (i + 1, j)))
            if j + 1 < Ly:
                out.append(((i, j), (i, j + 1)))
    return out


def _site_inds(psi: qtn.PEPS, site: tuple[int, int], Lx: int, Ly: int) -> list[str]:
    """Index order ``(up, right, down, left, physical)`` of quimb's ``shape="urdlp"``, missing
    bonds skipped; 'up' is ``i + 1`` and 'right' ``j + 1`` in quimb's convention."""
    i, j = site
    inds = []
    for di, dj in ((1, 0), (0, 1), (-1, 0), (0, -1)):
        if 0 <= i + di < Lx and 0 <= j + dj < Ly:
            inds.append(psi.bond(site, (i + di, j + dj)))
    inds.append(psi.site_ind(site))
    return inds


class PEPS(Method):
    """Simple-, then full-update imaginary-time evolution of a finite PEPS."""

    kind = "peps"
    Options = PEPSOptions
    default_checkpoint_every = 1
    resumable_keys = frozenset({"taus", "full_update_taus"})

    @classmethod
    def check(cls, problem: Problem, options: PEPSOptions, where: str) -> None:
        why = local_ham_2d_obstacle(problem)
        if why is not None:
            raise ConfigError(f"{where}: kind \"peps\" needs one spin per site of a 2D lattice; {why}")
        if isinstance(problem.geometry, SquareLattice) and any(problem.geometry.periodic):
            raise ConfigError(
                f"{where}: kind \"peps\" is a finite PEPS with open boundaries (simple update and "
                f"boundary-MPS contraction); {problem.label} is periodic, set pbc = false"
            )
        if problem.name not in _SU2_SPIN_MODELS:
            raise ConfigError(
                f"{where}: kind \"peps\" cannot impose the sector {problem.sector} of {problem.name!r}; "
                f"supported: {', '.join(sorted(_SU2_SPIN_MODELS))}"
            )
        if options.full_update_taus and not _nearest_neighbour_only(problem):
            raise ConfigError(
                f"{where}: quimb's full update applies nearest-neighbour gates only and "
                f"{problem.label} has longer-range terms (J2); set full_update_taus = [] "
                "(simple update, which routes the diagonal gates) or J2 = 0"
            )
        if abs(problem.sector.get("Sz", 0.0)) > 0.5:
            raise ConfigError(
                f"{where}: kind \"peps\" does not fix total S^z; only the default sector (|Sz| <= 1/2, "
                f"which holds the global ground state) is supported, got Sz = {problem.sector['Sz']}"
            )

    def __init__(self, problem: Problem, options: PEPSOptions):
        super().__init__(problem, options)
        g = problem.geometry
        self.Lx, self.Ly = g.Lx, g.Ly
        self.ham = problem.to_local_ham_2d()
        self.pairs = sorted(self.ham.terms)
        psi = qtn.PEPS.rand(
            self.Lx, self.Ly, bond_dim=options.bond_dim, phys_dim=problem.local_space.dim,
            seed=options.seed, dtype="float64",
        )
        self.su = self._simple_update(psi, gauges=None)
        self.fu_taus = (
            options.full_update_taus if options.full_update_taus is not None
            else (list(DEFAULT_FULL_UPDATE_TAUS) if _nearest_neighbour_only(problem) else [])
        )
        """Full-update stages of this run (:attr:`PEPSOptions.full_update_taus` resolved)."""
        self.fu: qtn.FullUpdate | None = None
        """The full-update evolver, once the simple-update stages are done."""
        self.energies: list[float] = []

    def _ordering(self, stage: int):
        """Pair order of each sweep of ``stage``: a random permutation per sweep."""
        rng = np.random.default_rng([self.options.seed, stage])
        return lambda: [self.pairs[k] for k in rng.permutation(len(self.pairs))]

    def _simple_update(self, psi: qtn.PEPS, gauges: dict[str, np.ndarray] | None) -> qtn.SimpleUpdate:
        o = self.options
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            su = qtn.SimpleUpdate(
                psi, self.ham, D=o.bond_dim, chi=o.boundary_bond_dim, cutoff=o.cutoff,
                # replaced per stage by _ordering (quimb's default needs networkx)
                ordering="sort",
                compute_energy_every=None, compute_energy_final=False, progbar=False,
                # resuming must not re-gauge the stored weights
                equilibrate_start=gauges is None,
            )
        if gauges is not None:
            su.set_state(psi, gauges=gauges)
        return su

    def _full_update(self, psi: qtn.PEPS) -> qtn.FullUpdate:
        o = self.options
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return qtn.FullUpdate(
                psi, self.ham, D=o.bond_dim, chi=o.boundary_bond_dim, ordering="sort",
                compute_energy_every=None, compute_energy_final=False, progbar=False,
            )

    @property
    def total_steps(self) -> int:
        return len(self.options.taus) + len(self.fu_taus)

    @property
    def state(self) -> qtn.PEPS:
        """The current PEPS (simple-update bond weights absorbed)."""
        return self.fu.state if self.fu is not None else self.su.state

    @property
    def n_parameters(self) -> int:
        if self.fu is not None:
            return int(sum(t.size for t in self.fu.state.tensors))
        psi, _ = self.su.get_state(absorb_gauges="return")
        return int(sum(t.size for t in psi.tensors))

    def energy(self) -> float:
        """Total energy of the current state by boundary contraction at ``chi``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = self.state.compute_local_expectation(
                self.ham.terms, max_bond=self.options.boundary_bond_dim, cutoff=0.0, normalized=True,
            )
        return float(np.real(e))

    def run(self, start: int, recorder: Recorder) -> None:
        o = self.options
        n_simple = len(o.taus)
        for stage in range(start, self.total_steps):
            t0 = time.perf_counter()
            full = stage >= n_simple
            if full and self.fu is None:
                self.fu = self._full_update(self.su.state)
            evolver = self.fu if full else self.su
            tau = self.fu_taus[stage - n_simple] if full else o.taus[stage]
            evolver.ordering = self._ordering(stage)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                evolver.evolve(o.full_update_sweeps if full else o.sweeps_per_stage, tau=tau)
            t1 = time.perf_counter()
            energy = self.energy()
            self.energies.append(energy)
            recorder.record(
                stage,
                {
                    "energy": energy,
                    "tau": float(tau),
                    "full_update": float(full),
                    "bond_dim": float(self.state.max_bond()),
                    "evolve_seconds": t1 - t0,
                    "energy_seconds": time.perf_counter() - t1,
                },
            )
            if recorder.checkpoint_due(stage) or stage == self.total_steps - 1:
                recorder.checkpoint(stage + 1, self.state_dict())

    def state_dict(self) -> dict[str, Any]:
        # full update keeps no bond weights: its tensors are the whole state
        psi, gauges = (self.fu.state, {}) if self.fu is not None else self.su.get_state(absorb_gauges="return")
        tensors = {}
        for i in range(self.Lx):
            for j in range(self.Ly):
                inds = _site_inds(psi, (i, j), self.Lx, self.Ly)
                tensors[f"{i},{j}"] = np.asarray(psi[i, j].transpose(*inds).data)
        weights = {}
        for a, b in _neighbours(self.Lx, self.Ly):
            ix = psi.bond(a, b)
            if ix in gauges:
                weights[f"{a[0]},{a[1]}-{b[0]},{b[1]}"] = np.asarray(gauges[ix])
        return {
            "tensors": tensors,
            "gauges": weights,
            "energies": np.asarray(self.energies, dtype=float),
            "full_update": int(self.fu is not None),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        arrays = [
            [np.asarray(state["tensors"][f"{i},{j}"]) for j in range(self.Ly)] for i in range(self.Lx)
        ]
        psi = qtn.PEPS(arrays, shape="urdlp")
        gauges = {}
        for key, g in state["gauges"].items():
            a, b = (tuple(int(c) for c in s.split(",")) for s in key.split("-"))
            gauges[psi.bond(a, b)] = np.asarray(g)
        if int(state.get("full_update", 0)):
            self.fu = self._full_update(psi)
        else:
            self.su = self._simple_update(psi, gauges=gauges)
            self.fu = None
        self.energies = [float(e) for e in np.atleast_1d(state["energies"])]

    def final_result(self) -> dict[str, Any]:
        energy = self.energies[-1] if self.energies else self.energy()
        return {
            "energy": energy,
            "bond_dim": int(self.state.max_bond()),
            "update": "full" if self.fu is not None else "simple",
            "chi": self.options.boundary_bond_dim,
            "stages": len(self.energies),
        }
