"""Two-site DMRG on a registry problem: the ``kind = "dmrg"`` method of ``nqs run``.

One method, two engines (``backend``): quimb's dense two-site DMRG here, and block2's
block-sparse DMRG with the sector's charges (:mod:`tensornets.dmrg_block2`). Both take
``problem.to_mpo`` terms in snake order, follow the same schedule and stopping rule, and write
the same archive; one step of the run is one sweep, and the MPS tensors are the checkpoint.

Sector (quimb engine): the start lies in the problem's sector (:func:`initial_mps`: a random MPS
projected onto global sums; for gauge models the sector automaton's MPS pinned to a winding
sector, :func:`sector_mps`), and the sweeps minimise the bare MPO while the leak ``<P>``
(``P >= 1`` off the sector) stays below ``leak_tol`` or the sweep's truncation error; once it
does not, the penalty ``mu P`` is added for the rest of the run (``penalty``).

Schedule: each value of ``bond_dims`` is held for ``min_sweeps_per_bond_dim`` to
``max_sweeps_per_bond_dim`` sweeps until the energy per site settles to ``bond_dim_tol``; the
last is held to the end. ``eps`` of a sweep is its largest discarded weight at one bond.
Stopping: the energy per site changes by less than ``tol`` (against the previous sweep or the
last one in the same direction), and ``eps < truncation_tol`` or the last bond dimension ran
``min_sweeps_per_bond_dim`` sweeps. ``converged`` says whether both criteria hold at the end.

Extrapolation: the last sweep at each bond dimension gives a point ``(eps, E)``; the last
``extrapolation_points`` are fitted by ``E = E_0 + a eps`` (:func:`extrapolation`, never above
the last point), with an uncertainty from the fit and a fifth of the extrapolation distance.
The full rules and their reasons: ``docs/dmrg.md``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence
import quimb.tensor as qtn

from hamiltonians import Problem
from hamiltonians.automaton import SectorAutomaton, build_automaton
from nqs.runs.config import ConfigError
from nqs.runs.methods import Method, Recorder


@dataclass
class DMRGOptions:
    """``[method]`` keys of ``kind = "dmrg"``."""

    bond_dims: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])
    """Schedule of maximum bond dimensions, one stage each (held as ``min_sweeps_per_bond_dim``,
    ``max_sweeps_per_bond_dim`` and ``bond_dim_tol`` say; the last to the end). Values below the
    bond dimension of the initial sector MPS (the sector automaton's width, e.g. 64 on the Z2
    3x3 torus) are raised to it."""
    cutoff: float = 1e-10
    """Relative singular-value cutoff (sum of discarded squares) when splitting."""
    max_sweeps: int = 30
    """Upper limit on sweeps (steps of the run)."""
    min_sweeps_per_bond_dim: int = 2
    """Sweeps held at each bond dimension of the schedule before the next may start (2: one in
    each direction; the first at a new value only grows the state)."""
    max_sweeps_per_bond_dim: int = 4
    """Sweeps after which the schedule moves on even if ``bond_dim_tol`` is not met."""
    bond_dim_tol: float = 1e-6
    """Change of the energy per site between consecutive sweeps below which the schedule moves
    on to its next bond dimension (after ``min_sweeps_per_bond_dim``)."""
    tol: float = 1e-9
    """Energy criterion: largest change of the energy per site between two consecutive sweeps
    (see the module docstring for the full stopping rule)."""
    truncation_tol: float = 1e-8
    """Truncation criterion: the discarded weight of a sweep below which its bond dimension
    counts as not limiting; the schedule's larger bond dimensions are then skipped."""
    extrapolation_points: int = 3
    """Number of bond dimensions (the largest run) whose last-sweep energies enter the linear
    extrapolation in the truncation error; at least 2."""
    penalty: float | str = "auto"
    """Sector penalty ``mu``. ``"auto"``: none while the state stays in the sector (the start
    lies in it, and the Hamiltonian conserves it), ``problem.penalty_scale()`` from the first
    sweep after which ``<P>`` exceeds ``leak_tol`` and the sweep's truncation error (or from
    the start, if the start is not in the sector); a number: that penalty throughout (0: none,
    unguarded)."""
    leak_tol: float = 1e-8
    """``<P>`` after a sweep above which (and above the sweep's truncation error)
    ``penalty = "auto"`` switches the penalty on."""
    seed: int = 0
    """Seeds the random initial MPS."""
    local_eig_ncv: int = 20
    """Lanczos vectors of the local eigensolver (quimb's ``local_eig_ncv``)."""
    winding: str = "all"
    """Gauge models on the torus, whose electric windings the Hamiltonian conserves and two-site
    updates cannot change: ``"all"`` runs every non-empty winding sector (each screened at the
    schedule's first bond dimension, the full schedule in those within ``winding_margin`` of
    the lowest) and reports the lowest, as ED does over the whole Gauss-law sector;
    ``"reference"`` only the sector of the reference configuration (no strings beyond those
    the charges need)."""
    winding_margin: float = 0.005
    """Relative energy window above the lowest screened sector inside which ``winding = "all"``
    runs a sector's full schedule."""
    backend: str = "auto"
    """``"quimb"`` (dense tensors; the sector held by its start and a guarded penalty; every
    registry problem), ``"block2"`` (block-sparse tensors with the sector's charges, C++; needs
    ``pip install '.[block2]'``; sectors that are global sums: spins, t-J) or ``"auto"``:
    block2 where it is installed and can hold the sector, else quimb (:func:`resolve_backend`)."""
    symmetry: str = "auto"
    """block2 only. ``"abelian"``: the sector's charges (``S^z``; ``N_up, N_dn``); ``"su2"``:
    total spin 0 for Heisenberg spin-1/2 problems (bond dimensions count multiplets; about 3x
    fewer than states at equal accuracy on the 6x6 torus; no observables yet); ``"auto"``:
    abelian."""
    noise: float = 1e-5
    """block2 only: density-matrix noise of the first sweep at each bond dimension."""
    davidson_tol: float = 1e-10
    """block2 only: convergence threshold of the local Davidson eigensolver."""
    threads: int = 0
    """block2 only: threads of its tensor kernels (0: every core this process may use)."""

    predates: ClassVar[dict[str, Any]] = {
        "backend": "quimb", "symmetry": "abelian", "noise": 1e-5, "davidson_tol": 1e-10, "threads": 0,
        "winding": "reference", "winding_margin": 0.005,
    }
    """Values in effect before an option existed (archives written then resume with them)."""

    def explain_auto(self, problem: Problem) -> dict[str, tuple[Any, str]]:
        """What ``backend`` and ``symmetry`` resolve to on ``problem`` and why (stored in archives)."""
        from .block2_model import block2_available

        out: dict[str, tuple[Any, str]] = {}
        backend = resolve_backend(problem, self)
        if self.backend == "auto":
            out["backend"] = (backend, (
                "block2 is installed and the sector is a set of global charges" if backend == "block2" else
                "block2 cannot hold this sector (not global charges)" if block2_available() else
                "block2 is not installed (pip install '.[block2]')"
            ))
        if self.symmetry == "auto":
            out["symmetry"] = ("abelian", "the abelian charges of the sector; su2 is opt-in")
        return out

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
        if not 1 <= self.min_sweeps_per_bond_dim <= self.max_sweeps_per_bond_dim:
            raise ValueError(
                "need 1 <= min_sweeps_per_bond_dim <= max_sweeps_per_bond_dim, got "
                f"{self.min_sweeps_per_bond_dim} and {self.max_sweeps_per_bond_dim}"
            )
        if not self.bond_dim_tol > 0:
            raise ValueError(f"bond_dim_tol must be > 0, got {self.bond_dim_tol}")
        if not self.truncation_tol > 0:
            raise ValueError(f"truncation_tol must be > 0, got {self.truncation_tol}")
        if self.extrapolation_points < 2:
            raise ValueError(f"extrapolation_points must be >= 2, got {self.extrapolation_points}")
        if self.winding not in ("all", "reference"):
            raise ValueError(f'winding must be "all" or "reference", got {self.winding!r}')
        if not self.winding_margin >= 0:
            raise ValueError(f"winding_margin must be >= 0, got {self.winding_margin}")
        if self.backend not in ("auto", "quimb", "block2"):
            raise ValueError(f'backend must be "auto", "quimb" or "block2", got {self.backend!r}')
        if self.symmetry not in ("auto", "abelian", "su2"):
            raise ValueError(f'symmetry must be "auto", "abelian" or "su2", got {self.symmetry!r}')
        if self.noise < 0 or not self.davidson_tol > 0 or self.threads < 0:
            raise ValueError("need noise >= 0, davidson_tol > 0 and threads >= 0")


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


def mps_variance(mps: qtn.MatrixProductState, mpo: qtn.MatrixProductOperator, energy: float,
                 max_environment: float = 2e7) -> float | None:
    """Energy variance ``<H^2> - <H>^2`` of a normalised-or-not MPS (``energy = <H>``), the
    accuracy measure shared with VMC (V-score); ``None`` when the ``(chi, w, w, chi)``
    environment of the contraction would exceed ``max_environment`` numbers."""
    chi, w = mps.max_bond(), max(mpo.bond_sizes())
    if chi**2 * w**2 > max_environment:
        return None
    norm = float(np.real(mps.H @ mps))
    h2 = float(np.real(qtn.expec_TN_1D(mps.H, mpo, mpo, mps))) / norm
    return max(h2 - energy**2, 0.0)


def asymptotic_points(points: list[tuple[float, float]], n_max: int) -> list[tuple[float, float]]:
    """The ``(energy, eps)`` points (in order of growing bond dimension) to extrapolate: at most
    the last ``n_max``, and only the trailing run whose discarded weight ``eps`` falls as the
    bond dimension grows. At the SVD's noise floor (a converged state, ``eps ~ 1e-11`` rising
    and falling at random) ``eps`` no longer measures the error, and a line through such points
    lands off the variational energy (4x3 J1-J2 cylinder: 2.5 sigma above ED, which the last
    sweep matched to 1e-10); there only the last point is left and nothing is extrapolated."""
    start = len(points) - 1
    while start > 0 and points[start - 1][1] > points[start][1]:
        start -= 1
    return points[max(start, len(points) - n_max) :]


def extrapolate_in_truncation(truncation_errors: Any, energies: Any) -> tuple[float, float]:
    """Energy at zero truncation error from ``(eps_i, E_i)`` points, with its uncertainty.

    Least-squares fit ``E = E_0 + a eps`` (two-site DMRG's asymptotic law for small discarded
    weight ``eps``). The uncertainty adds in quadrature the standard error of ``E_0`` from the
    fit residuals (three or more points) and ``|E_0 - E_last| / 5``, ``E_last`` the energy of the
    point with the smallest ``eps``: the linear law holds only asymptotically, so the distance
    extrapolated is itself a measure of the model error.

    Raises:
        ValueError: fewer than two points with distinct truncation errors.
    """
    eps = np.asarray(truncation_errors, dtype=float)
    e = np.asarray(energies, dtype=float)
    if eps.shape != e.shape or eps.ndim != 1:
        raise ValueError("truncation_errors and energies must be 1D arrays of equal length")
    if len(np.unique(eps)) < 2:
        raise ValueError(f"need two points with distinct truncation errors to extrapolate, got eps = {eps}")
    n = len(eps)
    design = np.stack([np.ones(n), eps], axis=1)
    (e0, slope), *_ = np.linalg.lstsq(design, e, rcond=None)
    fit_se = 0.0
    if n >= 3:
        resid = e - (e0 + slope * eps)
        s2 = float(resid @ resid) / (n - 2)
        sxx = float(((eps - eps.mean()) ** 2).sum())
        fit_se = float(np.sqrt(s2 * (1.0 / n + eps.mean() ** 2 / sxx)))
    e_last = float(e[np.argmin(eps)])
    return float(e0), float(np.hypot(fit_se, abs(e0 - e_last) / 5.0))


def extrapolation(points: list[tuple[float, float]], n_max: int) -> tuple[float, float, int] | None:
    """``(E_0, error, n)`` from the schedule's ``(energy, eps)`` points, the line fitted through
    the last ``n`` of them, or ``None`` when they do not allow it: :func:`asymptotic_points`,
    then the earliest of them dropped while the line lands above the energy of the smallest
    ``eps``. Two-site DMRG is variational and its error
    falls with ``eps``, so ``E_0`` above ``E_last`` means a point outside the linear regime
    bends the fit (an example: ``docs/benchmarks/defaults.md``)."""
    last = asymptotic_points(points, n_max)
    while len({t for _, t in last}) >= 2:
        e0, err = extrapolate_in_truncation([t for _, t in last], [e for e, _ in last])
        if e0 <= min(last, key=lambda p: p[1])[0]:
            return e0, err, len(last)
        last = last[1:]
    return None


def sector_mps(problem: Problem, seed: int, noise: float = 0.5, automaton: SectorAutomaton | None = None) -> qtn.MatrixProductState:
    """An MPS lying exactly in the problem's sector, pinned to the conserved quantities of its
    reference configuration (:meth:`hamiltonians.constraints.Constraint.pinned`: one winding
    sector of a gauge model), with every such configuration in its support.

    A sector automaton (:mod:`hamiltonians.automaton`) is an MPS already: the bond
    space before site ``k`` is the set of automaton states at depth ``k`` and
    ``A_k[s, t, a] = w`` when reading ``a`` in state ``s`` leads to ``t`` (0 otherwise). With all
    ``w = 1`` it is the uniform superposition of the sector; here ``w = 1 + noise * N(0, 1)``
    (seeded), which breaks the lattice symmetries the uniform state has (a ground state in
    another momentum or parity sector would be orthogonal to it) while keeping the sector.
    Normalised; bond dimension = the automaton's number of states per depth.
    """
    automaton = automaton or build_automaton(problem.constraint.pinned())
    rng = np.random.default_rng(seed)
    d = problem.local_space.dim
    arrays = []
    for k, t in enumerate(automaton.transitions):
        n_in = len(t)
        n_out = len(automaton.counts[k + 1])
        a = np.zeros((n_in, n_out, d))
        s_in, local = np.nonzero(t >= 0)
        a[s_in, t[s_in, local], local] = 1.0 + noise * rng.standard_normal(len(s_in))
        arrays.append(a)
    arrays[0] = arrays[0][0]  # (right, physical): depth 0 has the single state 0
    arrays[-1] = arrays[-1][:, 0]  # (left, physical): so has depth N
    mps = qtn.MatrixProductState(arrays, shape="lrp")
    mps.normalize()
    return mps


def projected_random_mps(problem: Problem, bond_dim: int, seed: int, automaton: SectorAutomaton) -> qtn.MatrixProductState:
    """A random MPS projected exactly onto the sector: the configuration-wise product
    ``psi(x) = R(x) S(x)`` of a random MPS ``R`` of bond dimension ``bond_dim`` and the uniform
    sector MPS ``S`` of ``automaton`` (site tensors ``C_k = A_k (x) B_k`` over the bonds, diagonal
    in the physical index), compressed back to ``bond_dim``. Normalised."""
    sector = sector_mps(problem, seed, noise=0.0, automaton=automaton)
    rand = qtn.MPS_rand_state(problem.n_sites, bond_dim=bond_dim, phys_dim=problem.local_space.dim, seed=seed)
    arrays = []
    for a, b in zip(mps_arrays(sector), mps_arrays(rand)):
        if a.ndim == 2:  # boundary site (bond, physical)
            arrays.append(np.einsum("ip,jp->ijp", a, b).reshape(-1, a.shape[-1]))
        else:
            c = np.einsum("ilp,jmp->ijlmp", a, b)
            arrays.append(c.reshape(a.shape[0] * b.shape[0], a.shape[1] * b.shape[1], a.shape[-1]))
    mps = qtn.MatrixProductState(arrays, shape="lrp")
    mps.compress(max_bond=bond_dim, cutoff=0.0)
    mps.normalize()
    return mps


def initial_mps(
    problem: Problem, bond_dims: list[int], seed: int, max_exact_bond: int = 1024, winding: tuple[float, ...] | None = None
) -> qtn.MatrixProductState:
    """The starting MPS: :func:`sector_mps` for sectors with conserved windings (gauge models on
    the torus), else a random MPS of bond dimension ``min(bond_dims[0], 8)``.

    Gauge models: the plaquette terms conserve the electric winding numbers, and two-site
    updates cannot move weight between winding sectors (the winding is a string across the
    whole lattice), so DMRG keeps whatever mixture of windings it starts with; a random start on
    Z2 3x3 (h = 0.4) settled 0.43 above ED, in the winding sector of the first excited level. A
    product state of the reference configuration cannot grow its bonds under four-site
    plaquette moves and stopped 0.13 above. The pinned sector MPS starts in the reference's
    winding sector (no strings beyond those the charges need, where the ground states of these
    models lie) with every such configuration present, and reaches ED. Where its automaton is
    wider than ``max_exact_bond`` (large gauge lattices) a random MPS is used instead.
    ``winding`` names another sector (values of ``problem.constraint.conserved``).

    Global sums (total S^z, electron numbers): no windings; a random MPS projected onto the
    sector (:func:`projected_random_mps`, bond dimension ``bond_dims[0]``). The bare sector MPS
    has a single state per quantum number on each bond and, on the 4x4 J1-J2 model at
    ``chi <= 48``, two-site sweeps from it stalled 2% above ED; a plain random MPS lies mostly
    outside the sector, and pulling it in against the penalty is slow: on the open 6x6 J1-J2
    model (``J2 = 0.5``, ``chi = 32``, one core) ten sweeps from it under the penalty reached
    -16.9112 in 9.5 s, ten from the projected start on the bare MPO -16.9216 in 7.4 s.
    """
    con = problem.constraint
    sector = con.pinned() if winding is None or not con.conserved else con.with_conserved(winding)
    try:
        automaton = build_automaton(sector, max_states=max_exact_bond)
    except ValueError:  # wider than max_exact_bond
        automaton = None
    if automaton is not None and con.conserved:
        mps = sector_mps(problem, seed, automaton=automaton)
        if mps.max_bond() > max(bond_dims):
            mps.compress(max_bond=max(bond_dims), cutoff=0.0)
            mps.normalize()
        return mps
    if automaton is not None:
        return projected_random_mps(problem, bond_dims[0], seed, automaton)
    return qtn.MPS_rand_state(
        problem.n_sites, bond_dim=min(bond_dims[0], 8), phys_dim=problem.local_space.dim, seed=seed, dtype="float64"
    )


def resolve_backend(problem: Problem, options: DMRGOptions) -> str:
    """``"quimb"`` or ``"block2"``; raises ``ValueError`` naming the alternative where the
    chosen backend cannot run ``problem``.

    ``"auto"`` takes block2 where it is installed and the sector is a set of global charges
    (block2 reaches the same energies tens to hundreds of times faster, docs/benchmarks.md),
    quimb otherwise (gauge models, whose Gauss law is a local constraint; machines without the
    ``block2`` extra)."""
    from .block2_model import block2_available, charges_of, su2_couplings

    if options.backend == "quimb":
        if options.symmetry == "su2":
            raise ValueError('symmetry = "su2" needs backend = "block2"')
        return "quimb"
    try:
        charges_of(problem)
        why = None
    except ValueError as err:
        why = str(err)
    if options.symmetry == "su2" and su2_couplings(problem) is None:
        why = (f"{problem.label}: symmetry = \"su2\" needs Heisenberg couplings between spins 1/2 in "
               "S^z = 0; use symmetry = \"abelian\" (or \"auto\")")
    if options.backend == "auto":
        return "block2" if why is None and block2_available() else "quimb"
    if not block2_available():
        raise ValueError(
            'backend = "block2" needs the optional block2 engine: pip install -e \'.[block2]\' '
            '(or backend = "quimb", which needs nothing more)'
        )
    if why is not None:
        raise ValueError(why)
    return "block2"


class DMRG(Method):
    """Two-site DMRG with a bond-dimension schedule (dense quimb tensors; ``backend``
    selects :class:`tensornets.dmrg_block2.Block2DMRG` instead)."""

    kind = "dmrg"
    Options = DMRGOptions
    default_checkpoint_every = 1
    resumable_keys = frozenset({"max_sweeps", "tol", "truncation_tol", "extrapolation_points", "threads"})

    def __new__(cls, problem: Problem, options: DMRGOptions):
        if cls is DMRG and resolve_backend(problem, options) == "block2":
            from .dmrg_block2 import Block2DMRG

            return super().__new__(Block2DMRG)
        return super().__new__(cls)

    @classmethod
    def check(cls, problem: Problem, options: DMRGOptions, where: str) -> None:
        try:
            resolve_backend(problem, options)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None

    def __init__(self, problem: Problem, options: DMRGOptions):
        super().__init__(problem, options)
        self.bare_mpo = problem.to_mpo(penalty=0)
        self.unit_penalty_mpo = problem.penalty_mpo(1.0)
        self.guarded = options.penalty == "auto"
        con = problem.constraint
        # the winding sectors to run (module docstring); [None] where nothing is conserved
        # beyond the sector, or only the reference's sector is asked for
        self.windings: list[tuple[float, ...] | None] = [None]
        if con.conserved:
            self.windings = (
                list(con.conserved_sectors()) if options.winding == "all" else [con.conserved_values(con.reference)]
            )
        # "screen": every sector at the first bond dimension; "full": the schedule in `queue`
        self.phase = "screen" if len(self.windings) > 1 else "full"
        self.queue: list[int] = list(range(1, len(self.windings)))
        self.screen_energies = np.full(len(self.windings), np.nan)
        self.full_energies = np.full(len(self.windings), np.nan)
        self.best: dict[str, Any] | None = None
        self._start_sector(0)

    def _start_sector(self, k: int) -> None:
        """A fresh schedule in winding sector ``k`` from its sector start."""
        o = self.options
        self.sector = k
        self.mps = initial_mps(self.problem, o.bond_dims, o.seed, winding=self.windings[k])
        # "auto" starts without the penalty only if the start lies in the sector
        self.penalty_on = not self.guarded or self.sector_leak() > o.leak_tol
        # Sweeps never truncate a sector start below its own width: two-site updates under the
        # sector penalty grow the bonds only through the states already present (Z2 3x3 at
        # h = 0.4 from bond 16: stuck 1.0 above ED with zero truncation error; from 64: ED).
        self.min_bond = self.mps.max_bond() if self.problem.constraint.conserved else 1
        self.reset_schedule()

    def reset_schedule(self) -> None:
        """The schedule at its start: no sweeps, no points, the first bond dimension."""
        self.energies: list[float] = []
        self.truncation_errors: list[float] = []
        # bond dimension of the schedule -> (energy, eps) of the last sweep run at it
        self.points: dict[int, tuple[float, float]] = {}
        self.converged = False
        # position in the schedule: index into bond_dims, and sweeps run at it so far
        self.stage = 0
        self.stage_sweeps = 0

    def _finish_sector(self) -> bool:
        """After a sector's sweeps: note its energy, keep the best fully run sector, and start
        the next sector (``True``) or restore the best one as the final state (``False``)."""
        energy = self._expectation(self.bare_mpo)
        k = self.sector
        if self.phase == "screen":
            self.screen_energies[k] = energy
        else:
            self.full_energies[k] = energy
            if self.best is None or energy < self.best["energy"]:
                self.best = {"energy": energy, **self._sector_state()}
        if not self.queue and self.phase == "screen":
            lowest = np.nanmin(self.screen_energies)
            window = self.options.winding_margin * abs(lowest)
            self.queue = [int(i) for i in np.flatnonzero(self.screen_energies <= lowest + window)]
            self.phase = "full"
        if self.queue:
            self._start_sector(self.queue.pop(0))
            return True
        self._restore_sector(self.best)
        return False

    def _sector_state(self) -> dict[str, Any]:
        return {
            "sector": self.sector, "mps": {str(i): a for i, a in enumerate(mps_arrays(self.mps))},
            **self.state_dict_common(),
        }

    def _restore_sector(self, state: dict[str, Any]) -> None:
        self.sector = int(state["sector"])
        arrays = [np.asarray(state["mps"][str(i)]) for i in range(len(state["mps"]))]
        self.mps = qtn.MatrixProductState(arrays, shape="lrp")
        self.load_state_common(state)

    @property
    def total_steps(self) -> int:
        """``max_sweeps`` per winding sector run (an upper bound where sectors are screened)."""
        return self.options.max_sweeps * (2 * len(self.windings) - 1 if len(self.windings) > 1 else 1)

    @property
    def n_parameters(self) -> int:
        return int(sum(t.size for t in self.mps.tensors))

    def bond_dim(self) -> int:
        """Maximum bond dimension of the current stage: the schedule's, raised to the initial
        MPS's bond dimension (capped at the schedule's largest value)."""
        dims = self.options.bond_dims
        return min(max(dims[min(self.stage, len(dims) - 1)], self.min_bond), max(dims))

    @property
    def at_final_stage(self) -> bool:
        return self.stage >= len(self.options.bond_dims) - 1

    def _advance_schedule(self) -> None:
        """After a sweep: count it in its stage and move to the next bond dimension once the
        stage has converged (module docstring)."""
        o = self.options
        self.stage_sweeps += 1
        if self.at_final_stage or self.stage_sweeps < o.min_sweeps_per_bond_dim:
            return
        settled = self._energy_change(self.stage_sweeps) < o.bond_dim_tol
        if settled or self.stage_sweeps >= o.max_sweeps_per_bond_dim:
            self.stage += 1
            self.stage_sweeps = 0

    @property
    def mpo(self) -> qtn.MatrixProductOperator:
        """The MPO the sweeps minimise: ``H``, or ``H + mu P`` once the penalty is on."""
        if not self.penalty_on:
            return self.bare_mpo
        return self.problem.to_mpo(penalty=self.options.penalty)

    def _expectation(self, mpo: qtn.MatrixProductOperator) -> float:
        mps = self.mps
        return float(np.real(qtn.expec_TN_1D(mps.H, mpo, mps) / (mps.H @ mps)))

    def _energy_and_leak(self) -> tuple[float, float]:
        """``<H>`` and ``<P>`` of the current MPS, normalised."""
        return self._expectation(self.bare_mpo), self.sector_leak()

    def sector_leak(self) -> float:
        """``<P>`` of the current MPS (0 in the sector, >= 1 for each configuration's unit of
        violation, weighted by probability); the penalty MPO alone, a few bonds wide."""
        return self._expectation(self.unit_penalty_mpo)

    def _eigensolver(self) -> qtn.DMRG2:
        dmrg = qtn.DMRG2(self.mpo, bond_dims=self.bond_dim(), cutoffs=self.options.cutoff, p0=self.mps)
        # quimb's default of 4 Lanczos vectors needs ~100 ARPACK restarts per local problem on
        # 2D snake MPOs; 20 cuts the sweep time about fourfold at equal energies.
        dmrg.opts["local_eig_ncv"] = self.options.local_eig_ncv
        return dmrg

    def run(self, start: int, recorder: Recorder) -> None:
        step = start
        while True:
            step = self._run_sector(step, recorder)
            if not self._finish_sector():
                break
            recorder.checkpoint(step, self.state_dict())

    def _run_sector(self, step: int, recorder: Recorder) -> int:
        """Sweeps in the current sector from global step ``step`` until the stopping rule (or,
        while screening, until the first bond dimension has settled); the next step."""
        o = self.options
        dmrg = self._eigensolver()
        canonize = True
        while len(self.energies) < o.max_sweeps:
            sweep, step = step, step + 1
            info = _MaxError()
            direction = "R" if len(self.energies) % 2 == 0 else "L"
            t0 = time.perf_counter()
            sweep_kwargs = dict(max_bond=self.bond_dim(), cutoff=o.cutoff, info=info,
                                cutoff_mode=dmrg.opts["bond_compress_cutoff_mode"],
                                method=dmrg.opts["bond_compress_method"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    energy = dmrg.sweep(direction, canonize=canonize, **sweep_kwargs)
                except ArpackNoConvergence:
                    # ARPACK from its random start fails now and then on local problems with
                    # many degenerate levels (the Fibonacci chain outside its fusion paths):
                    # the sweep again, from a canonical state, with dense local eigensolvers
                    # (full diagonalisation: local dimensions of a few thousand at most here)
                    dmrg.opts.update(local_eig_ham_dense=True, local_eig_backend="NUMPY")
                    energy = dmrg.sweep(direction, canonize=True, **sweep_kwargs)
                    dmrg.opts.update(local_eig_ham_dense=None, local_eig_backend=None)
            energy = float(np.real(energy))
            eps = info.max_error**2
            self.energies.append(energy)
            self.truncation_errors.append(eps)
            self.points[self.bond_dim()] = (energy, eps)
            self.mps = dmrg.state
            canonize = False
            leak = self.sector_leak()
            values = {
                "energy": energy, "bond_dim": float(self.mps.max_bond()), "truncation_error": eps, "sector_leak": leak,
            }
            if len(self.windings) > 1:
                values["winding_sector"] = float(self.sector)
            switched = self.guarded and not self.penalty_on and leak > max(o.leak_tol, eps)
            if switched:
                # H conserves the sector, so only round-off in the local eigensolver leaves it,
                # and it grows where a lower state lies outside (t-J at zero chemical potential);
                # the energies so far mix sectors: no extrapolation point and no stop from them
                self.penalty_on = True
                self.points.clear()
                self.stage_sweeps = -1  # the stage starts over under the penalty
                if leak > 0.5:
                    # mostly outside (the ferromagnetic anyon chain drops to a product state of
                    # energy 0 outside the fusion paths in its first sweep, and two-site updates
                    # under the penalty did not bring it back from bond dimension 1): from the
                    # sector start again
                    self.mps = initial_mps(self.problem, o.bond_dims, o.seed,
                                           winding=self.windings[self.sector])
                dmrg, canonize = self._eigensolver(), True
            values["sweep_seconds"] = time.perf_counter() - t0
            recorder.record(sweep, values)
            stop = self._stop_after() and not switched
            self._advance_schedule()
            if self.phase == "screen" and self.stage > 0:
                stop = True  # screened: the first bond dimension has settled
            if recorder.checkpoint_due(sweep) or stop or len(self.energies) == o.max_sweeps:
                recorder.checkpoint(step, self.state_dict())
            if stop:
                break
        return step

    def _energy_change(self, n_held: int) -> float:
        """Change of the energy per site at the last sweep, ``n_held`` sweeps of it at the
        current bond dimension: against the sweep before, or against the last sweep in the same
        direction if that is smaller and at this bond dimension too. A truncated state's sweep
        energy depends on the direction (Z2 4x4 torus at chi = 256, eps = 2e-4: -16.74265 to
        the right, -16.74263 to the left from the fourth sweep on; 4x3 J1-J2 cylinder at chi = 6:
        3e-7 per site apart), which the first alone never sees settle."""
        e = self.energies
        if len(e) < 2:
            return float("inf")
        change = abs(e[-1] - e[-2])
        if n_held >= 3:
            change = min(change, abs(e[-1] - e[-3]))
        return change / self.problem.n_sites

    def _stop_after(self) -> bool:
        """The stopping rule of the module docstring; sets :attr:`converged`."""
        o = self.options
        if len(self.energies) < 2:
            self.converged = False
            return False
        energy_ok = self._energy_change(self.stage_sweeps + 1) < o.tol
        truncation_ok = self.truncation_errors[-1] < o.truncation_tol
        self.converged = energy_ok and truncation_ok
        n_held = self.stage_sweeps + 1  # sweeps at this bond dimension, this one included
        held = self.at_final_stage and n_held >= o.min_sweeps_per_bond_dim
        grown = n_held >= 2  # a stage's first sweep discards little while the state grows
        return energy_ok and ((truncation_ok and grown) or held)

    def state_dict(self) -> dict[str, Any]:
        state = self._sector_state()
        if len(self.windings) > 1:
            state["windings"] = {
                "phase": self.phase, "queue": np.asarray(self.queue, dtype=np.int64),
                "screen_energies": self.screen_energies, "full_energies": self.full_energies,
                **({} if self.best is None else {"best": self.best}),
            }
        return state

    def state_dict_common(self) -> dict[str, Any]:
        """The schedule's state, shared by the backends (the MPS is each backend's own)."""
        return {
            "energies": np.asarray(self.energies, dtype=float),
            "truncation_errors": np.asarray(self.truncation_errors, dtype=float),
            "points": {
                "bond_dim": np.asarray(list(self.points), dtype=np.int64),
                "energy": np.asarray([e for e, _ in self.points.values()], dtype=float),
                "truncation_error": np.asarray([t for _, t in self.points.values()], dtype=float),
            },
            "converged": bool(self.converged),
            "penalty_on": bool(self.penalty_on),
            "min_bond": int(self.min_bond),
            "stage": int(self.stage),
            "stage_sweeps": int(self.stage_sweeps),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restore_sector({"sector": state.get("sector", 0), **state})
        if "windings" in state:
            w = state["windings"]
            self.phase = str(w["phase"].decode() if isinstance(w["phase"], bytes) else w["phase"])
            self.queue = [int(i) for i in np.atleast_1d(w["queue"])]
            self.screen_energies = np.asarray(w["screen_energies"], dtype=float)
            self.full_energies = np.asarray(w["full_energies"], dtype=float)
            self.best = None
            if "best" in w:
                self.best = {**w["best"], "energy": float(w["best"]["energy"])}

    def load_state_common(self, state: dict[str, Any]) -> None:
        """Restore the engine-independent part of a checkpoint (energies, truncation errors,
        extrapolation points, schedule position)."""
        self.energies = [float(e) for e in np.atleast_1d(state["energies"])]
        self.truncation_errors = [float(t) for t in np.atleast_1d(state["truncation_errors"])]
        pts = state["points"]
        self.points = {
            int(b): (float(e), float(t))
            for b, e, t in zip(
                np.atleast_1d(pts["bond_dim"]), np.atleast_1d(pts["energy"]), np.atleast_1d(pts["truncation_error"])
            )
        }
        self.converged = bool(state["converged"])
        self.penalty_on = bool(state.get("penalty_on", True))
        self.min_bond = int(state.get("min_bond", self.min_bond))
        if "stage" in state:
            self.stage, self.stage_sweeps = int(state["stage"]), int(state["stage_sweeps"])
        else:  # a checkpoint of the one-sweep-per-value schedule (stop 16 and earlier)
            n, last = len(self.energies), len(self.options.bond_dims) - 1
            self.stage, self.stage_sweeps = min(n, last), max(n - last, 0)

    def measure(self, names: list[str]) -> dict[str, dict[str, Any]]:
        from nqs.observables import measure_mps

        return {k: {"mean": v} for k, v in measure_mps(self.problem, self.mps, names).items()}

    def final_result(self) -> dict[str, Any]:
        mps = self.mps
        # the MPOs built at the start (t-J 4x4: 1.3 s per build)
        energy, penalty = self._energy_and_leak()
        variance = mps_variance(mps, self.bare_mpo, energy)
        out: dict[str, Any] = {
            "energy": energy,
            **({} if variance is None else {"variance": variance}),
            "sector_penalty": penalty,
            "bond_dim": int(mps.max_bond()),
            "sweeps": len(self.energies),
            "converged": bool(self.converged),
            "truncation_error": self.truncation_errors[-1] if self.truncation_errors else float("nan"),
            "backend": "quimb",
            **self.extrapolation_result(),
        }
        if self.windings[self.sector] is not None:
            out["winding"] = np.asarray(self.windings[self.sector])
        if len(self.windings) > 1:
            # every sector: the energy after screening, and after the full schedule where it ran
            out["winding_sectors"] = np.asarray(self.windings)
            out["winding_screen_energies"] = self.screen_energies
            out["winding_energies"] = self.full_energies
        return out

    def extrapolation_result(self) -> dict[str, Any]:
        """The schedule's points and, where they allow it, the extrapolated energy."""
        out: dict[str, Any] = {
            "extrapolation_bond_dims": np.asarray(list(self.points), dtype=np.int64),
            "extrapolation_energies": np.asarray([e for e, _ in self.points.values()]),
            "extrapolation_truncation_errors": np.asarray([t for _, t in self.points.values()]),
        }
        fit = extrapolation(list(self.points.values()), self.options.extrapolation_points)
        if fit is not None:
            out["energy_extrapolated"], out["energy_extrapolated_error"], n_fit = fit
            out["extrapolation_fit_bond_dims"] = np.asarray(list(self.points)[-n_fit:], dtype=np.int64)
        return out
