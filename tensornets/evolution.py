"""Real-time evolution of a registry problem: the ``kind = "evolve"`` run of ``nqs run``.

``|psi(t)> = exp(-i H t) |psi(0)>`` with hbar = 1, time in units of the inverse couplings of
``H``, the ``[problem]`` of the configuration (the quench). The initial state is the ground
state of the same model at other parameters (``initial_problem``, computed by the engine), a
product configuration (``initial_config``) or the final state of an archive. Gauge models
conserve their electric windings and stay in the winding sector they start in: a ground
state is taken in that of the reference configuration, a configuration in its own.

Engines: ``"exact"`` keeps amplitudes over that winding sector's configurations and applies
``exp(-i H dt)`` by ``scipy.sparse.linalg.expm_multiply`` on the sparse Hamiltonian of
:mod:`hamiltonians.exact`; ``"mps"`` runs TDVP (:mod:`tensornets.tdvp`) on the registry MPO in
snake order: two-site with a global subspace expansion while bonds grow to ``bond_dim``, then
one-site; ground states by DMRG (quimb backend) in the winding sector; ``"vmc"`` fits an
autoregressive model step by step to the implicit propagator on exact samples
(:mod:`tensornets.tdvmc`; also ``NAME_error``, energy error and drift, step infidelity), or
any other model by NetKet's TDVP driver on Metropolis samples (:mod:`tensornets.tdvp_netket`).
Open problems evolve a density matrix from a configuration: ``"exact"`` (Lindblad) and
``"povm"`` (POVM Transformer, trapezoid step; ``residual`` per step), :mod:`nqs.povm_dynamics`.

Step ``k`` is ``t = k dt`` (step 0: the initial state). The history records ``time``,
``energy`` (``<H>``), each observable's mean over its entries and, for ``mps``, the discarded
weight (``truncation_error``), the bond dimension and ``<P>`` (``sector_leak``). The full
observables, time axis first, go to ``/result/observables``. The checkpoint holds the state
itself: a resumed evolution repeats the uninterrupted one bit for bit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

import hamiltonians
from hamiltonians import Problem
from nqs.runs.config import ConfigError, suggest
from nqs.runs.methods import Method, NullRecorder, Recorder

ENGINES = ("exact", "mps", "vmc", "povm")
MAX_SUBSTEPS = 1024
"""Adaptive steps: the most substeps of one interval ``dt`` (then ``step_error`` may exceed ``tol``)."""
INITIAL_STATES = ("ground_state", "product", "archive")


@dataclass
class EvolveOptions:
    """``[method]`` keys of ``kind = "evolve"``."""

    engine: str
    """``"exact"`` (sector amplitudes, Krylov exponential; the density matrix of an open
    problem), ``"mps"`` (TDVP), ``"vmc"`` (time-dependent VMC, :mod:`tensornets.tdvmc`) or
    ``"povm"`` (open problems: the POVM Transformer, :mod:`nqs.povm_dynamics`)."""
    t_final: float
    """Final time, in units of 1/coupling (hbar = 1)."""
    dt: float
    """Time step; ``t_final`` must be a whole number of steps."""
    initial_state: str = "ground_state"
    """``"ground_state"`` of ``initial_problem``, ``"product"`` configuration ``initial_config``, or
    the final state of the archive ``initial_archive``."""
    initial_problem: dict = field(default_factory=dict)
    """The model whose ground state starts the evolution: parameters of ``[problem]`` to change
    (``{h = 0.0}``), or ``name`` and all parameters of another model with the same sites, local
    space and sector."""
    initial_config: list[int] | None = None
    """``initial_state = "product"``: local basis indices in snake order (default: the problem's
    reference configuration)."""
    initial_archive: str | None = None
    """``initial_state = "archive"``: an archive whose last checkpoint holds a state of the same
    sector: an MPS (``dmrg`` with the quimb backend, or ``evolve`` with ``engine = "mps"``) for
    ``"mps"``, an ``evolve`` archive of engine ``"exact"`` for ``"exact"``."""
    observables: list[str] = field(default_factory=list)
    """Observables of :mod:`nqs.observables` recorded at every step (the energy always is)."""
    max_states: int = 1_000_000
    """``"exact"``: largest winding sector (states) it accepts."""
    bond_dim: int = 64
    """``"mps"``: largest bond dimension; two-site TDVP until every bond reaches it, then one-site."""
    cutoff: float = 1e-12
    """``"mps"``: discarded weight allowed per SVD (relative) below ``bond_dim``."""
    krylov_tol: float = 1e-12
    """``"mps"``: tolerance of each local Krylov exponential."""
    expansion: int = 3
    """``"mps"``: Krylov vectors ``H^k |psi>`` (``k = 1 .. expansion``) whose bond bases widen the
    state's before every two-site step (global subspace expansion; 0: none)."""
    tol: float | None = None
    """``"mps"``: adaptive steps. Each interval ``dt`` (the recording interval) is covered by ``n``
    TDVP substeps and by ``2n``, ``n`` doubling until the two states are within ``tol`` in norm
    (``step_error``); the ``2n`` result is kept. ``None``: one step per interval. The exact
    engine needs none (``expm_multiply`` is accurate to round-off at any step)."""
    ground_bond_dims: list[int] = field(default_factory=lambda: [16, 32, 64])
    """``"mps"``: DMRG bond-dimension schedule for the initial ground state."""
    model: str | None = None
    """``"vmc"``: the ansatz (``nqs models``) with complex amplitudes; default the problem's
    Transformer (``gauge_transformer`` on links, else ``transformer``). ``"povm"``: the model of
    the outcome distribution, ``"transformer"`` (the default and only one)."""
    model_options: dict = field(default_factory=dict)
    """``"vmc"``: the model's hyperparameters (keys of ``[method]`` of a VMC run with that model,
    e.g. ``{ d_model = 16, n_layers = 1 }``); the phase is learned. ``"povm"``: the keys of
    :class:`nqs.models.povm.POVMTransformerOptions`."""
    povm: str = "tetrahedral"
    """``"povm"``: the informationally complete POVM, ``"tetrahedral"`` or ``"pauli4"``."""
    n_samples_measure: int | None = None
    """``"povm"``: samples of each step's measurement of the observables; default ``4 n_samples``."""
    scheme: str = "auto"
    """``"vmc"``: ``"projected"``, the implicit midpoint step fitted by Gauss-Newton
    (:mod:`tensornets.tdvmc`), or ``"tdvp"``, NetKet's TDVP driver with the Schmitt-Heyl
    signal-to-noise cut on Metropolis samples (:mod:`tensornets.tdvp_netket`); ``"auto"``:
    projected for the exactly sampled autoregressive models, tdvp for the others."""
    snr_atol: float = 1.0
    """``"vmc"``, scheme ``"tdvp"``: the signal-to-noise ratio below which a mode of the
    geometric tensor is cut (softly; ``epsilon_SNR`` of Schmitt and Heyl)."""
    rcond_smooth: float = 1e-8
    """``"vmc"``, scheme ``"tdvp"``: soft cut of the geometric tensor's eigenvalues relative to the
    largest (``epsilon_SVD``)."""
    substeps: int = 1
    """``"vmc"``, scheme ``"tdvp"``: fourth-order Runge-Kutta steps per interval ``dt``."""
    n_chains: int = 16
    """``"vmc"``, scheme ``"tdvp"``: Markov chains of the Metropolis sampler (divides ``n_samples``)."""
    order: int = 4
    """``"vmc"``: order of the implicit step: 2, the midpoint rule (one fit per step), or 4, the
    (2, 2) Pade approximant as two substeps with complex coefficients (two fits per step)."""
    n_samples: int = 1024
    """``"vmc"``: samples per fit (or per TDVP equation) and per measurement; ``"povm"``: per fit."""
    seed: int = 0
    """``"vmc"``, ``"povm"``: seeds the parameters (``seed``) and the samples (``seed + 1``)."""
    inner_iter: int = 40
    """``"vmc"``, ``"povm"``: most Gauss-Newton iterations of each step's fit (it stops earlier
    at ``fit_tol``)."""
    diag_shift: float = 1e-3
    """``"vmc"``: initial Levenberg-Marquardt damping of the Gauss-Newton steps, relative to the
    mean diagonal of the normal matrix (raised tenfold when a step does not lower the
    infidelity, lowered threefold when it does); ``"povm"``: the same, and its floor."""
    initial_fit: str = "auto"
    """``"vmc"``: how the model gets the initial state: ``"exact"`` fits it to the exact state over
    the whole sector, ``"vmc"`` runs a VMC ground-state optimisation; ``"auto"``: exact up to
    4096 states (:data:`tensornets.tdvmc.EXACT_FIT_MAX_STATES`), else VMC."""
    initial_iter: int = 300
    """``"vmc"``, ``"povm"``: iterations of the initial fit (Gauss-Newton) or VMC optimisation."""
    fit_tol: float = 1e-8
    """``"vmc"``: a fit (initial or of a step) stops once its infidelity on its samples is below;
    ``"povm"``: once its residual ``C`` is below."""

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r} is not available.{suggest(self.engine, ENGINES)} Engines: {', '.join(ENGINES)}")
        if self.initial_state not in INITIAL_STATES:
            raise ValueError(
                f"initial_state {self.initial_state!r} is not one of {', '.join(INITIAL_STATES)}.{suggest(self.initial_state, INITIAL_STATES)}"
            )
        if not (self.t_final > 0 and self.dt > 0):
            raise ValueError(f"need t_final > 0 and dt > 0, got t_final = {self.t_final}, dt = {self.dt}")
        if self.dt > self.t_final:
            raise ValueError(f"the step dt = {self.dt} is larger than the final time t_final = {self.t_final}")
        n = self.t_final / self.dt
        if abs(n - round(n)) > 1e-9 * n:
            raise ValueError(f"t_final = {self.t_final} is not a whole number of steps dt = {self.dt} ({n:.6g})")
        if self.initial_config is not None and self.initial_state != "product":
            raise ValueError('initial_config needs initial_state = "product"')
        if (self.initial_archive is not None) != (self.initial_state == "archive"):
            raise ValueError('initial_state = "archive" and initial_archive go together')
        if self.initial_problem and self.initial_state != "ground_state":
            raise ValueError('initial_problem needs initial_state = "ground_state"')
        if self.max_states < 1 or self.bond_dim < 1 or not self.ground_bond_dims or min(self.ground_bond_dims) < 1:
            raise ValueError("max_states, bond_dim and ground_bond_dims must be positive")
        if self.tol is not None and (self.engine != "mps" or not self.tol >= 1e-7):
            # the distance of two unit states, sqrt(2 - 2 Re <a|b>), resolves no less than ~1e-8
            raise ValueError(
                f"tol (adaptive steps) needs engine = \"mps\" and tol >= 1e-7, got engine {self.engine!r}, tol {self.tol}"
            )
        if self.expansion < 0:
            raise ValueError(f"expansion must be >= 0, got {self.expansion}")
        if self.cutoff < 0 or not self.krylov_tol > 0:
            raise ValueError("need cutoff >= 0 and krylov_tol > 0")
        from .tdvmc import SCHEMES

        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme {self.scheme!r} is not available.{suggest(self.scheme, SCHEMES)} Schemes: {', '.join(SCHEMES)}")
        if not (self.snr_atol >= 0 and self.rcond_smooth >= 0 and self.substeps >= 1 and self.n_chains >= 1):
            raise ValueError("need snr_atol >= 0, rcond_smooth >= 0, substeps >= 1 and n_chains >= 1")
        if self.order not in (2, 4):
            raise ValueError(f"order must be 2 or 4, got {self.order}")
        if self.initial_fit not in ("auto", "exact", "vmc"):
            raise ValueError(f"initial_fit must be 'auto', 'exact' or 'vmc', got {self.initial_fit!r}")
        if self.n_samples < 1 or self.inner_iter < 1 or self.initial_iter < 0 or not self.diag_shift > 0 or self.fit_tol < 0:
            raise ValueError("need n_samples >= 1, inner_iter >= 1, initial_iter >= 0, diag_shift > 0 and fit_tol >= 0")
        model_keys = {"model": (None, ("vmc", "povm")), "model_options": ({}, ("vmc", "povm")), "scheme": ("auto", ("vmc",))}
        for name, (default, engines) in model_keys.items():
            if self.engine not in engines and getattr(self, name) != default:
                raise ValueError(f"{name} needs engine = " + " or ".join(f'"{e}"' for e in engines))
        if self.engine != "povm" and (self.povm != "tetrahedral" or self.n_samples_measure is not None):
            raise ValueError('povm and n_samples_measure need engine = "povm"')
        if self.n_samples_measure is not None and self.n_samples_measure < 2:
            raise ValueError(f"n_samples_measure must be >= 2, got {self.n_samples_measure}")

    @property
    def n_steps(self) -> int:
        return int(round(self.t_final / self.dt))


def initial_problem(problem: Problem, options: EvolveOptions) -> Problem:
    """The problem whose ground state starts the evolution (``ValueError`` for bad parameters)."""
    over = dict(options.initial_problem)
    name = over.pop("name", problem.name)
    params = over if name != problem.name else {**problem.params, **over}
    return hamiltonians.get(name, **params)


def initial_config(problem: Problem, options: EvolveOptions) -> np.ndarray:
    """The product configuration of ``initial_state = "product"``."""
    if options.initial_config is not None:
        return np.asarray(options.initial_config, dtype=np.int64)
    if problem.constraint.reference is None:
        raise ValueError(f"{problem.label} has no reference configuration: give initial_config")
    return np.asarray(problem.constraint.reference, dtype=np.int64)


def archived_state(options: EvolveOptions) -> tuple[Problem, str, Any]:
    """``(problem, kind, state)`` of ``initial_archive``: kind ``"mps"`` (site tensors
    ``(left, physical, right)``) or ``"vector"`` (``(amplitudes, winding)`` of an exact
    evolution). ``ValueError`` when the file holds neither."""
    from nqs.runs.archive import ArchiveError, load

    from .tdvp import mps_to_arrays

    path = options.initial_archive
    try:
        archive = load(path, checkpoint=True)
    except (ArchiveError, FileNotFoundError) as err:
        raise ValueError(f"initial_archive: {err}") from None
    problem = hamiltonians.get(archive.problem["name"], **archive.problem["parameters"])
    ck = archive.checkpoint or {}
    if ck.get("prepared") and "vector" in ck.get("state", {}):
        st = ck["state"]
        return problem, "vector", (np.asarray(st["vector"]), tuple(np.atleast_1d(st.get("winding", ()))))
    if ck.get("prepared") and "mps" in ck.get("state", {}):
        mps = ck["state"]["mps"]
        return problem, "mps", [np.asarray(mps[str(i)]) for i in range(len(mps))]
    if "mps" in ck and "prepared" not in ck:  # a DMRG checkpoint: (left, right, physical)
        import quimb.tensor as qtn

        arrays = [np.asarray(ck["mps"][str(i)]) for i in range(len(ck["mps"]))]
        return problem, "mps", mps_to_arrays(qtn.MatrixProductState(arrays, shape="lrp"))
    raise ValueError(f"initial_archive: {path} holds no state this toolkit can evolve (an MPS or exact amplitudes)")


def _same_sector(a: Problem, b: Problem) -> bool:
    return (
        a.local_space.name == b.local_space.name
        and a.n_sites == b.n_sites
        and a.constraint.linear == b.constraint.linear
    )


def evolution_sector(problem: Problem, options: EvolveOptions):
    """The constraint the evolution stays in: the sector pinned to the winding of the initial
    state (the reference configuration for a ground state)."""
    if options.initial_state == "product":
        return problem.constraint.pinned(initial_config(problem, options))
    if options.initial_state == "archive" and problem.constraint.conserved:
        _, kind, state = archived_state(options)
        if kind == "vector":
            return problem.constraint.with_conserved(state[1])
    return problem.constraint.pinned()


def _entry_matrices(action, obs) -> list:
    """One sparse matrix per entry of an observable in the basis of ``action``. Images outside
    the basis are dropped: they are orthogonal to every state of the sector."""
    import scipy.sparse as sp

    n = action.n_states
    out = []
    for entry in obs.entries:
        rows, cols, vals = [], [], []
        for term in entry:
            c, r, a = action.act(term)
            keep = r >= 0
            rows.append(r[keep])
            cols.append(c[keep])
            vals.append(a[keep])
        out.append(sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)))
    return out


class Evolve(Method):
    """Real-time evolution under the ``[problem]`` Hamiltonian (module docstring)."""

    kind = "evolve"
    Options = EvolveOptions
    default_checkpoint_every = 10
    resumable_keys = frozenset({"t_final"})
    ground_state: ClassVar[bool] = False
    """Not a ground-state method: the runner compares its energy with no reference."""
    open_problems: ClassVar[bool] = True
    """Open problems evolve with engines ``"exact"`` and ``"povm"`` (:mod:`nqs.povm_dynamics`)."""

    @classmethod
    def check(cls, problem: Problem, options: EvolveOptions, where: str) -> None:
        from nqs.observables import available

        known = available(problem)
        for name in options.observables:
            if name not in known:
                raise ConfigError(
                    f"{where}: observable {name!r} is not defined for {problem.name}.{suggest(name, known)} "
                    f"Available: {', '.join(known)}"
                )
        if problem.is_open or options.engine == "povm":
            from nqs.povm_dynamics import check as check_open

            check_open(problem, options, where)
            if problem.is_open:
                return
        if options.engine == "vmc":  # its model and initial state first (no archive to open)
            from . import tdvmc

            tdvmc.check(problem, options, where)
        if options.initial_state == "ground_state":
            try:
                start = initial_problem(problem, options)
            except ValueError as err:
                raise ConfigError(f"{where}: initial_problem: {err}") from None
            if not _same_sector(start, problem):
                raise ConfigError(
                    f"{where}: the initial state, ground state of {start.label} (sector {start.constraint.describe()}, "
                    f"{start.n_sites} sites of {start.local_space.name}), lies outside the sector of the quench "
                    f"Hamiltonian {problem.label} ({problem.constraint.describe()}, {problem.n_sites} sites of "
                    f"{problem.local_space.name})"
                )
        elif options.initial_state == "archive":
            try:
                source, kind, _ = archived_state(options)
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
            if not _same_sector(source, problem):
                raise ConfigError(
                    f"{where}: the initial state, from {options.initial_archive} ({source.label}, sector "
                    f"{source.constraint.describe()}), lies outside the sector of the quench Hamiltonian {problem.label} "
                    f"({problem.constraint.describe()})"
                )
            wanted = "vector" if options.engine == "exact" else "mps"
            if kind != wanted:
                raise ConfigError(
                    f"{where}: {options.initial_archive} holds {'an MPS' if kind == 'mps' else 'exact amplitudes'}; "
                    f"engine {options.engine!r} starts from {'an MPS' if wanted == 'mps' else 'exact amplitudes'}"
                )
        else:
            try:
                x = initial_config(problem, options)
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
            d = problem.local_space.dim
            if x.shape != (problem.n_sites,) or x.min() < 0 or x.max() >= d:
                raise ConfigError(
                    f"{where}: initial_config must list {problem.n_sites} local states in 0..{d - 1}, got {x.tolist()}"
                )
            if not problem.constraint.check(x)[()]:
                raise ConfigError(
                    f"{where}: initial_config {x.tolist()} lies outside the sector of the quench Hamiltonian "
                    f"{problem.label} ({problem.constraint.describe()})"
                )
        if options.engine == "exact":
            from hamiltonians.automaton import build_automaton

            try:
                size = build_automaton(evolution_sector(problem, options), max_states=10 * options.max_states).n_configs
            except ValueError:  # the automaton alone is wider than ten times the limit
                size = float("inf")
            if size > options.max_states:
                raise ConfigError(
                    f"{where}: engine \"exact\" cannot hold {problem.label}: its sector (winding sector of the initial "
                    f"state) has {size:.0f} states, above max_states = {options.max_states}; use engine = \"mps\""
                )

    def __init__(self, problem: Problem, options: EvolveOptions):
        super().__init__(problem, options)
        self.names = list(options.observables)
        self.series: dict[str, list[np.ndarray]] = {name: [] for name in self.names}
        self.errors: dict[str, list[np.ndarray]] = {name: [] for name in self.names}
        """Monte Carlo errors of the observables (``"vmc"``; empty for the other engines)."""
        self.prepared = False
        if problem.is_open:
            from nqs.povm_dynamics import LindbladEngine, POVMEngine

            self.engine = POVMEngine(self) if options.engine == "povm" else LindbladEngine(self)
        elif options.engine == "vmc":
            from tensornets.tdvmc import engine

            self.engine = engine(self)
        else:
            self.engine = _ExactEngine(self) if options.engine == "exact" else _MPSEngine(self)

    @property
    def total_steps(self) -> int:
        return self.options.n_steps + 1

    @property
    def n_parameters(self) -> int:
        return self.engine.n_parameters()

    def run(self, start: int, recorder: Recorder) -> None:
        o = self.options
        if start == 0:
            info = self.engine.prepare()
            self.prepared = True
            self._record(0, info, recorder)
            start = 1
        for step in range(start, self.total_steps):
            info = self.engine.step(o.dt)
            self._record(step, info, recorder)

    def _record(self, step: int, info: dict[str, float], recorder: Recorder) -> None:
        values = {"time": step * self.options.dt, "energy": self.engine.energy(), **info}
        if hasattr(self.engine, "measure_with_errors"):
            measured, errors = self.engine.measure_with_errors(self.names)
        else:
            measured, errors = self.engine.measure(self.names), {}
        for name in self.names:
            self.series[name].append(np.asarray(measured[name]))
            values[name] = float(np.mean(np.real(measured[name])))
            if name in errors:
                # the mean of the entries' errors bounds the error of their mean
                self.errors[name].append(np.asarray(errors[name]))
                values[f"{name}_error"] = float(np.mean(errors[name]))
        recorder.record(step, values)
        if recorder.checkpoint_due(step) or step == self.total_steps - 1:
            recorder.checkpoint(step + 1, self.state_dict())

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"prepared": self.prepared}
        if self.prepared:
            state["state"] = self.engine.state_dict()
            state["series"] = {k: np.asarray(v) for k, v in self.series.items() if v}
            if any(self.errors.values()):
                state["errors"] = {k: np.asarray(v) for k, v in self.errors.items() if v}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prepared = bool(state.get("prepared", False))
        if self.prepared:
            self.engine.load_state_dict(state["state"])
            series = state.get("series", {})
            self.series = {k: list(np.asarray(series[k])) if k in series else [] for k in self.names}
            errors = state.get("errors", {})
            self.errors = {k: list(np.asarray(errors[k])) if k in errors else [] for k in self.names}

    def final_result(self) -> dict[str, Any]:
        return {"energy": self.engine.energy(), "time": self.options.t_final, "engine": self.options.engine,
                "observables": self._series_tree(), **self.engine.result()}

    def _series_tree(self) -> dict[str, Any]:
        times = self.options.dt * np.arange(len(next(iter(self.series.values()), [])))
        tree = {k: {"mean": np.asarray(v), "time": times} for k, v in self.series.items() if v}
        for k, v in self.errors.items():
            if v and k in tree:
                tree[k]["error"] = np.asarray(v)
        return tree

    def measure(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """The recorded time series (first axis: time) and, for names not recorded, the final
        state's values (``time`` the final time)."""
        tree = self._series_tree()
        rest = [n for n in names if n not in tree]
        if rest:
            final = self.engine.measure(rest)
            tree.update({n: {"mean": np.asarray(final[n]), "time": self.options.t_final} for n in rest})
        return tree


class _ExactEngine:
    """Amplitudes over the winding sector's configurations; ``exp(-i H dt)`` by
    ``scipy.sparse.linalg.expm_multiply``."""

    def __init__(self, method: Evolve):
        from hamiltonians.exact import BasisAction, sparse_hamiltonian

        self.method = method
        p, o = method.problem, method.options
        self.basis = evolution_sector(p, o).enumerate(max_states=o.max_states)
        self.action = BasisAction(self.basis, p.local_space)
        self.h = sparse_hamiltonian(p.terms, p.local_space, self.basis)
        self.generator = (-1j * o.dt) * self.h.astype(complex)
        self._obs: dict[str, tuple[Any, list]] = {}
        self.vector: np.ndarray | None = None

    def n_parameters(self) -> int:
        return 2 * len(self.basis)

    def prepare(self) -> dict[str, float]:
        from hamiltonians.exact import BasisIndex, ground_manifold, sparse_hamiltonian

        p, o = self.method.problem, self.method.options
        if o.initial_state == "ground_state":
            start = initial_problem(p, o)
            e0, vecs = ground_manifold(sparse_hamiltonian(start.terms, start.local_space, self.basis))
            if vecs.shape[1] > 1:
                raise ValueError(
                    f"the ground state of {start.label} is {vecs.shape[1]}-fold degenerate in its winding sector: "
                    "the initial state is not unique; start from a product configuration or break the degeneracy"
                )
            v = vecs[:, 0].astype(complex)
            k = int(np.argmax(np.abs(v)))
            v *= abs(v[k]) / v[k]  # a fixed global phase: runs are reproducible across solvers
        elif o.initial_state == "archive":
            v = archived_state(o)[2][0].astype(complex)
            if len(v) != len(self.basis):
                raise ValueError(f"{o.initial_archive}: {len(v)} amplitudes for a sector of {len(self.basis)} states")
        else:
            idx = BasisIndex(self.basis, p.local_space.dim)(initial_config(p, o)[None])[0]
            v = np.zeros(len(self.basis), dtype=complex)
            v[idx] = 1.0
        self.vector = v / np.linalg.norm(v)
        return {}

    def step(self, dt: float) -> dict[str, float]:
        from scipy.sparse.linalg import expm_multiply

        self.vector = expm_multiply(self.generator, self.vector)
        return {"norm_error": abs(float(np.linalg.norm(self.vector)) - 1.0)}

    def energy(self) -> float:
        return float(np.real(np.vdot(self.vector, self.h @ self.vector)))

    def measure(self, names: list[str]) -> dict[str, np.ndarray]:
        from nqs.observables import build

        out = {}
        for name in names:
            if name not in self._obs:
                obs = build(self.method.problem, name)
                self._obs[name] = (obs, _entry_matrices(self.action, obs))
            obs, mats = self._obs[name]
            vals = np.array([np.vdot(self.vector, m @ self.vector) for m in mats])
            out[name] = np.real_if_close(vals, tol=1e6).reshape(obs.shape)
        return out

    def state_dict(self) -> dict[str, Any]:
        con = self.method.problem.constraint
        winding = con.conserved_values(self.basis[0]) if con.conserved else ()
        return {"vector": self.vector, "winding": np.asarray(winding, dtype=float)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.vector = np.asarray(state["vector"], dtype=complex)

    def result(self) -> dict[str, Any]:
        return {"sector_states": len(self.basis)}


class _MPSEngine:
    """TDVP on the registry MPO (:class:`tensornets.tdvp.TDVP`)."""

    def __init__(self, method: Evolve):
        from .tdvp import mpo_arrays

        self.method = method
        p = method.problem
        self.quimb_mpo = p.to_mpo(penalty=0)
        self.mpo = mpo_arrays(self.quimb_mpo)
        self.penalty = mpo_arrays(p.penalty_mpo(1.0))
        self.tdvp = None
        self.substeps = 1
        """Adaptive steps (``tol``): the substeps the next interval starts from."""
        self.initial_variance = float("nan")
        """Energy variance of a DMRG initial ground state under its own Hamiltonian."""

    def n_parameters(self) -> int:
        return 0 if self.tdvp is None else int(2 * sum(a.size for a in self.tdvp.arrays))

    def prepare(self) -> dict[str, float]:
        """The initial MPS, compressed to ``bond_dim`` (its discarded weight is step 0's
        ``truncation_error``)."""
        import quimb.tensor as qtn

        from .dmrg import DMRG, DMRGOptions
        from .tdvp import TDVP, arrays_to_mps, mps_to_arrays

        p, o = self.method.problem, self.method.options
        if o.initial_state == "ground_state":
            # DMRG in the winding sector itself, its winding numbers in the sector penalty and
            # the penalty on from the start: where winding sectors are degenerate (the toric
            # code, h = 0) two-site updates on a small torus move whole non-contractible strings,
            # and DMRG's guarded penalty, switched on after the fact, did not bring them back
            base = initial_problem(p, o)
            sector = dataclasses.replace(evolution_sector(p, o), conserved=base.constraint.conserved)
            start = dataclasses.replace(base, constraint=sector, _cache={})
            dmrg = DMRG(start, DMRGOptions(bond_dims=list(o.ground_bond_dims), backend="quimb", winding="reference",
                                           penalty=start.penalty_scale(), tol=1e-12, truncation_tol=1e-12,
                                           max_sweeps=40))
            dmrg.run(0, NullRecorder())
            found = dmrg.final_result()
            if found["sector_penalty"] > 1e-8:
                raise ValueError(
                    f"the DMRG ground state of {start.label} left its winding sector (<P> = {found['sector_penalty']:.1e})"
                )
            # <H0^2> - <H0>^2 says whether DMRG reached an eigenstate (not whether the lowest)
            self.initial_variance = float(found.get("variance", float("nan")))
            arrays = mps_to_arrays(dmrg.mps)
        elif o.initial_state == "archive":
            arrays = archived_state(o)[2]
        else:
            x = initial_config(p, o)
            d = p.local_space.dim
            arrays = [np.eye(d, dtype=complex)[s].reshape(1, d, 1) for s in x]
        discarded = 0.0
        if max(a.shape[2] for a in arrays[:-1]) > o.bond_dim:
            full = arrays_to_mps(arrays)
            full.normalize()
            cut = full.copy()
            cut.compress(max_bond=o.bond_dim, cutoff=0.0)
            cut.normalize()
            discarded = max(0.0, 1.0 - abs(complex(qtn.expec_TN_1D(full.H, cut))) ** 2)
            arrays = mps_to_arrays(cut)
        self.tdvp = TDVP(arrays, self.mpo, krylov_tol=o.krylov_tol)
        self._fix_phase()
        return {"truncation_error": discarded, "bond_dim": float(max(self.tdvp.bond_dims()))}

    def _fix_phase(self) -> None:
        a = self.tdvp.arrays[0]
        k = np.unravel_index(np.argmax(np.abs(a)), a.shape)
        self.tdvp.arrays[0] = a * (abs(a[k]) / a[k])

    def step(self, dt: float) -> dict[str, float]:
        from .tdvp import overlap

        o = self.method.options
        info: dict[str, float] = {}
        if o.tol is None:
            eps, two_site = self._advance(self.tdvp, dt, 1)
        else:
            # step doubling: n and 2n substeps until they agree within tol; the 2n result is kept
            n = self.substeps
            while True:
                coarse, fine = self._copy(), self._copy()
                self._advance(coarse, dt, n)
                eps, two_site = self._advance(fine, dt, 2 * n)
                err = float(np.sqrt(max(0.0, 2.0 - 2.0 * overlap(coarse.arrays, fine.arrays).real)))
                if err <= o.tol or n >= MAX_SUBSTEPS:
                    break
                n *= 2
            self.tdvp = fine
            # the second-order error falls as 1/n^2: a next interval with half the substeps stays
            # within tol when this one was below tol / 8
            self.substeps = max(1, n // 2) if err < o.tol / 8 else n
            info = {"substeps": float(2 * n), "step_error": err}
        return {"truncation_error": eps, "bond_dim": float(max(self.tdvp.bond_dims())), "two_site": float(two_site),
                "sector_leak": self.tdvp.expectation(self.penalty), **info}

    def _copy(self):
        from .tdvp import TDVP

        return TDVP([a.copy() for a in self.tdvp.arrays], self.mpo, krylov_tol=self.method.options.krylov_tol, canonical=True)

    def _advance(self, tdvp, dt: float, n: int) -> tuple[float, bool]:
        """``n`` TDVP steps of ``dt / n`` on ``tdvp``; the discarded weight summed over them and
        whether any was two-site."""
        o = self.method.options
        eps, any_two = 0.0, False
        for _ in range(n):
            two_site = not tdvp.saturated(o.bond_dim)
            if two_site and o.expansion:
                tdvp.expand(self._krylov(tdvp, o.expansion))
            eps += tdvp.step(dt / n, o.bond_dim, o.cutoff, two_site=two_site)
            any_two |= two_site
        return eps, any_two

    def _krylov(self, tdvp, k: int) -> list[list[np.ndarray]]:
        """``H^j |psi>`` for ``j = 1 .. k``, each compressed to ``bond_dim`` and normalised."""
        from .tdvp import arrays_to_mps, mps_to_arrays

        o = self.method.options
        phi = arrays_to_mps(tdvp.arrays)
        out = []
        for _ in range(k):
            phi = self.quimb_mpo.apply(phi, compress=True, max_bond=o.bond_dim, cutoff=o.cutoff)
            phi.normalize()
            out.append(mps_to_arrays(phi))
        return out

    def energy(self) -> float:
        return self.tdvp.expectation()

    def measure(self, names: list[str]) -> dict[str, np.ndarray]:
        from nqs.observables import measure_mps

        from .tdvp import arrays_to_mps

        return measure_mps(self.method.problem, arrays_to_mps(self.tdvp.arrays), names) if names else {}

    def state_dict(self) -> dict[str, Any]:
        return {"mps": {str(i): a for i, a in enumerate(self.tdvp.arrays)}, "initial_variance": self.initial_variance,
                "substeps": self.substeps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from .tdvp import TDVP

        mps = state["mps"]
        arrays = [np.asarray(mps[str(i)], dtype=complex) for i in range(len(mps))]
        self.tdvp = TDVP(arrays, self.mpo, krylov_tol=self.method.options.krylov_tol, canonical=True)
        self.initial_variance = float(state.get("initial_variance", float("nan")))
        self.substeps = int(state.get("substeps", 1))

    def result(self) -> dict[str, Any]:
        out = {"bond_dim": int(max(self.tdvp.bond_dims())), "sector_leak": self.tdvp.expectation(self.penalty)}
        if np.isfinite(self.initial_variance):
            out["initial_energy_variance"] = self.initial_variance
        return out
