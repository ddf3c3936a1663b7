"""Steady states of open problems: the ``kind = "steady_state"`` method of ``nqs run``.

The state is a POVM outcome distribution ``P(a)`` (:mod:`hamiltonians.povm`) represented by an
autoregressive model with exact direct sampling (:mod:`nqs.models.povm`). The Lindblad equation
is linear in ``P``, ``dP/dt = A P`` with ``A_ba = tr(M^b L[N^a])``, and the steady state is the
normalised ``P`` with ``A P = 0``. ``solver = "relax"`` (default) relaxes to it by backward-Euler
steps ``(1 - dt A) P' = P`` from the maximally mixed state, each fitted by Gauss-Newton on exact
samples (:meth:`nqs.povm_dynamics.POVMEngine.step` with ``implicit = 1``; ``dt`` grows
geometrically from ``dt_initial``): a proximal-point iteration on ``||A P||``.
``solver = "adam"`` minimises ``cost = "l1"``, ``||A P||_1 = E_{b~P} |R(b)|`` (Luo et al., PRL
128, 090501 (2022)), or ``"l2"``, ``E_{b~P} R(b)^2``, with ``R(b) = sum_a A_ba P(a) / P(b)``;
the gradient of ``C = E_{b~P} f_theta(b)`` is ``E_P[grad f(b) + (f(b) - c) grad log P(b)]``
(batch mean ``c`` as baseline; tested against the exactly summed cost).

History per step: ``cost``, ``energy`` (``tr(rho H)``), ``sx``, ``sz`` (site averages),
``szsz`` (nearest-neighbour average), each with ``*_error`` (``relax`` adds ``dt``,
``residual``, ``fit_residual``, ``iterations``). The result adds the same from ``n_samples_final`` samples, the
exact steady state's values up to ``exact_max_sites`` sites and the model's full-sum values up to
:data:`FULL_SUM_MAX_SITES`. A resumed run repeats an uninterrupted one (checkpointed keys).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from hamiltonians import Problem
from hamiltonians import povm as pv

from .models.povm import POVM_MODELS, build_povm_transformer, log_prob, outcome_hilbert
from .runs.config import ConfigError, parse_options, suggest
from .runs.methods import Method, Recorder
from .sampling.direct_sampler import ConstrainedDirectSampler, ConstrainedDirectSamplerState

FULL_SUM_MAX_SITES = 6
"""Up to this many sites the result also sums the model over all ``4^n`` outcome strings."""

OBSERVABLES = ("sx", "sz", "szsz")
RELAX_STEPS = 30
"""Default ``n_iter`` of ``solver = "relax"``."""
DT_GROWTH = 1.5
"""``relax``: the step grows by this factor per step up to ``dt``."""
ADAM_KEYS = frozenset({"learning_rate", "learning_rate_final"})
RELAX_KEYS = frozenset({"dt", "dt_initial", "inner_iter", "diag_shift"})


@dataclass
class SteadyStateOptions:
    """``[method]`` keys of ``kind = "steady_state"`` (the model's sizes go in the same table,
    :class:`~nqs.models.povm.POVMTransformerOptions`)."""

    model: str = "transformer"
    """The model of the POVM distribution: ``transformer`` (autoregressive, exact sampling)."""
    povm: Literal["tetrahedral", "pauli4"] = "tetrahedral"
    """The informationally complete single-qubit POVM (:mod:`hamiltonians.povm`)."""
    solver: Literal["relax", "adam"] = "relax"
    """``relax``: backward-Euler relaxation fitted by Gauss-Newton; ``adam``: minimise ``cost``
    with Adam (module docstring)."""
    cost: Literal["l1", "l2"] = "l1"
    """``l1``: ``||A P||_1``; ``l2``: ``sum_b (A P)(b)^2 / P(b)`` (module docstring); ``relax``
    only records it."""
    n_iter: int | None = None
    """Steps: default 30 (``relax``) or 1000 (``adam``)."""
    n_samples: int = 512
    """Exact samples per step (``relax``: per fit round, two rounds per step)."""
    learning_rate: float = 1e-3
    """``adam``: step size."""
    learning_rate_final: float | None = None
    """``adam``: final step size of a geometric decay; default: constant."""
    dt: float = 5.0
    """``relax``: the largest backward-Euler step (units of ``1/gamma``)."""
    dt_initial: float = 0.25
    """``relax``: the first step; step ``t`` takes ``min(dt, dt_initial * 1.5^t)`` (a large first
    step from the mixed state lets the fit move its weight off the samples it is fitted on)."""
    inner_iter: int = 5
    """``relax``: Gauss-Newton iterations per fit round, at most."""
    diag_shift: float = 1e-3
    """``relax``: Levenberg-Marquardt damping floor (times the normal matrix's mean diagonal)."""
    seed: int = 0
    """Seeds the parameters (``seed``) and the samples (``seed + 1``)."""
    n_samples_final: int | None = None
    """Samples of the final estimates of the observables; default ``8 * n_samples``. The final
    cost uses the first ``4 * n_samples`` of them at most (each costs ``K`` network passes)."""
    exact_max_sites: int = 8
    """Compare with the exact steady state (:func:`hamiltonians.lindblad.steady_state`) up to
    this many sites (its cost grows as ``4^n``: 8 sites take about 15 s)."""
    model_options: Any = dataclasses.field(default=None, init=False)
    """The model's sizes (filled from the model's own keys in the same table)."""

    def __post_init__(self):
        if self.n_iter is None:
            self.n_iter = RELAX_STEPS if self.solver == "relax" else 1000
        for name in ("n_iter", "n_samples", "inner_iter"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.dt > 0 and self.dt_initial > 0 and self.diag_shift > 0):
            raise ValueError("dt, dt_initial and diag_shift must be > 0")
        if self.n_samples_final is not None and self.n_samples_final < 2:
            raise ValueError(f"n_samples_final must be >= 2, got {self.n_samples_final}")
        if not self.learning_rate > 0 or (self.learning_rate_final is not None and not self.learning_rate_final > 0):
            raise ValueError("learning_rate and learning_rate_final must be > 0")


@dataclass(frozen=True)
class _EngineOptions:
    """The keys :class:`~nqs.povm_dynamics.POVMEngine` reads, for ``solver = "relax"``."""

    povm: str
    model_options: dict
    seed: int
    n_samples: int
    inner_iter: int
    diag_shift: float
    fit_tol: float = 0.0
    initial_iter: int = 20
    n_samples_measure: int | None = None
    initial_config: None = None


@dataclass(frozen=True)
class _EngineSpec:
    problem: Problem
    options: _EngineOptions
    names: tuple = ()


def observable_terms(problem: Problem) -> dict[str, list]:
    """The recorded observables as terms: ``energy`` (``H``), the site averages ``sx``, ``sz`` of
    ``sigma^x``, ``sigma^z`` and the bond average ``szsz`` of ``sigma^z sigma^z``."""
    n, bonds = problem.n_sites, list(problem.geometry.bonds)
    return {
        "energy": list(problem.terms),
        "sx": [(1.0 / n, (("X", i),)) for i in range(n)],
        "sz": [(1.0 / n, (("Z", i),)) for i in range(n)],
        "szsz": [(1.0 / len(bonds), (("Z", i), ("Z", j))) for i, j in bonds],
    }


def outcome_observables(problem: Problem, povm: pv.POVM) -> dict[str, pv.OutcomeObservable]:
    """``Q_O`` of each of :func:`observable_terms`."""
    return {k: pv.observable(t, problem.local_space, povm) for k, t in observable_terms(problem).items() if t}


def exact_observables(problem: Problem, max_states: int = 1 << 10, method: str = "auto") -> dict[str, float]:
    """The exact steady state's ``sx``, ``sz``, ``szsz`` and energy
    (:func:`hamiltonians.lindblad.steady_state` with ``method``)."""
    from hamiltonians import lindblad

    rho = lindblad.steady_state(problem, max_states, method)
    return {k: float(np.real(lindblad.expectation(problem, rho, t))) for k, t in observable_terms(problem).items() if t}


def all_outcomes(n_sites: int) -> np.ndarray:
    """Every outcome string, ``(4^n, n)``, site 0 most significant."""
    return np.array(list(itertools.product(range(4), repeat=n_sites)), dtype=np.int32)


def cost_terms(model, params, b: jax.Array, conns: jax.Array, mels: jax.Array, cost: str) -> tuple[jax.Array, jax.Array]:
    """``(f(b), log P(b))`` for samples ``b`` ``(B, n)`` and their connections ``(B, K, n)``,
    ``(B, K)``: ``f = |R|`` (``l1``) or ``R^2`` (``l2``), ``R(b) = sum_a A_ba P(a) / P(b)``."""
    n_b, k, n = conns.shape
    lp_b = log_prob(model, params, b)
    lp_a = log_prob(model, params, conns.reshape(n_b * k, n)).reshape(n_b, k)
    r = jnp.sum(mels * jnp.exp(lp_a - lp_b[:, None]), axis=1)
    return (jnp.abs(r) if cost == "l1" else r**2), lp_b


def surrogate(model, params, b, conns, mels, weights, cost: str) -> tuple[jax.Array, jax.Array]:
    """The loss whose gradient is the estimator of ``grad C`` (module docstring), and ``f``.
    ``weights`` (``(B,)``, summing to 1) are ``1/B`` for samples, or ``P(b)`` when ``b`` runs over
    every outcome string (the exact gradient)."""
    f, lp_b = cost_terms(model, params, b, conns, mels, cost)
    fs = jax.lax.stop_gradient(f)
    baseline = jnp.sum(weights * fs)
    return jnp.sum(weights * (f + (fs - baseline) * lp_b)), fs


def exact_cost(model, params, lindblad: pv.OutcomeOperator, cost: str) -> jax.Array:
    """``C`` summed over every outcome string (small ``n``), differentiable."""
    a = jnp.asarray(all_outcomes(lindblad.n_sites))
    p = jnp.exp(log_prob(model, params, a))
    ap = _apply(lindblad, p)
    return jnp.sum(jnp.abs(ap)) if cost == "l1" else jnp.sum(ap**2 / p)


def _apply(op: pv.OutcomeOperator, p: jax.Array) -> jax.Array:
    """``A p`` in jax (mirror of :meth:`~hamiltonians.povm.OutcomeOperator.apply`)."""
    n = op.n_sites
    pt = p.reshape((4,) * n)
    out = jnp.zeros_like(pt)
    for sites, a in op.terms:
        k = len(sites)
        res = jnp.tensordot(jnp.asarray(a).reshape((4,) * 2 * k), pt, axes=(list(range(k, 2 * k)), list(sites)))
        out = out + jnp.moveaxis(res, list(range(k)), list(sites))
    return out.reshape(-1)


@functools.lru_cache(maxsize=16)
def _adam(lr: float, lr_final: float | None, n_iter: int) -> optax.GradientTransformation:
    """Adam with a constant or geometrically decaying step; cached, so that runs with the same
    schedule share the compiled training step."""
    if lr_final is None:
        return optax.adam(lr)
    return optax.adam(optax.exponential_decay(lr, max(n_iter - 1, 1), lr_final / lr))


@functools.partial(jax.jit, static_argnames=("model", "optimizer", "cost"))
def _train_step(params, opt_state, b, conns, mels, *, model, optimizer, cost):
    """One Adam step on the surrogate of the sampled cost; returns ``f`` of the samples too."""
    w = jnp.full(b.shape[0], 1.0 / b.shape[0])
    (_, f), grad = jax.value_and_grad(lambda p: surrogate(model, p, b, conns, mels, w, cost), has_aux=True)(params)
    updates, opt_state = optimizer.update(grad, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, f


@functools.partial(jax.jit, static_argnames=("model", "cost"))
def _cost_values(params, b, conns, mels, *, model, cost):
    return cost_terms(model, params, b, conns, mels, cost)[0]


_log_prob = jax.jit(log_prob, static_argnums=0)


def _stats(values: np.ndarray) -> tuple[float, float]:
    v = np.real(np.asarray(values))
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


class SteadyState(Method):
    """Steady state of an open problem as a POVM distribution (module docstring)."""

    kind = "steady_state"
    Options = SteadyStateOptions
    default_checkpoint_every = 100
    ground_state: ClassVar[bool] = False
    open_problems: ClassVar[bool] = True
    resumable_keys = frozenset({"n_iter", "n_samples_final", "exact_max_sites"})

    # ------------------------------------------------------------- options
    @classmethod
    def parse_options(cls, table: dict[str, Any], problem: Problem, where: str):
        from .models import model_names

        model = table.get("model", SteadyStateOptions.model)
        if model not in POVM_MODELS:
            what = (
                f"model {model!r} represents a pure state (a wavefunction) and cannot represent a mixed state"
                if model in model_names() else f"unknown model {model!r}.{suggest(model, POVM_MODELS)}"
            )
            raise ConfigError(
                f"{where}: {what}; steady_state learns the POVM distribution of the density matrix: "
                f"use model = {' or '.join(map(repr, POVM_MODELS))}"
            )
        model_cls = POVM_MODELS[model][0]
        keys = {f.name for f in dataclasses.fields(SteadyStateOptions) if f.init}
        model_keys = {f.name for f in dataclasses.fields(model_cls)}
        for key in table:
            if key not in keys | model_keys | {"kind"}:
                raise ConfigError(
                    f"{where}: unknown key {key!r}.{suggest(key, keys | model_keys)} steady_state keys: "
                    f"{', '.join(sorted(keys))}; model {model!r} keys: {', '.join(sorted(model_keys))}"
                )
        solver = table.get("solver", SteadyStateOptions.solver)
        foreign = sorted(set(table) & (ADAM_KEYS if solver == "relax" else RELAX_KEYS if solver == "adam" else set()))
        if foreign:
            other = "adam" if solver == "relax" else "relax"
            raise ConfigError(f"{where}: {', '.join(foreign)} set the {other} solver: add solver = {other!r} or drop them")
        options = parse_options(SteadyStateOptions, table, where, ignore={"kind"} | model_keys)
        options.model_options = parse_options(
            model_cls, {k: v for k, v in table.items() if k in model_keys}, f"{where} model {model!r}"
        )
        cls.check(problem, options, where)
        return options

    @classmethod
    def check(cls, problem: Problem, options, where: str) -> None:
        if not problem.is_open:
            raise ConfigError(
                f"{where}: {problem.label} is a closed problem (no jump operators); its steady states are not "
                "unique. Use kind = \"vmc\" or \"dmrg\" for its ground state, or an open model "
                "(dissipative_ising, dissipative_xyz)"
            )
        space = problem.local_space
        if space.dim != 2 or space.fermionic:
            raise ConfigError(
                f"{where}: the POVMs are for qubits; {problem.label} has the local space {space.name!r}"
            )

    # ------------------------------------------------------------- set-up
    def __init__(self, problem: Problem, options: SteadyStateOptions):
        super().__init__(problem, options)
        o = options
        self.povm = pv.get_povm(o.povm)
        self.lindblad = pv.liouvillian(problem, self.povm)
        self.observables = outcome_observables(problem, self.povm)
        self.model = build_povm_transformer(problem.n_sites, o.model_options)
        self.sampler = ConstrainedDirectSampler(outcome_hilbert(problem.n_sites), self.model.local_space)
        variables = self.model.init(jax.random.PRNGKey(o.seed), jnp.zeros((1, problem.n_sites)))
        self.params = variables["params"]
        self.engine = None
        if o.solver == "relax":
            from .povm_dynamics import POVMEngine

            self.engine = POVMEngine(_EngineSpec(problem, _EngineOptions(
                povm=o.povm, model_options=dataclasses.asdict(o.model_options), seed=o.seed,
                n_samples=o.n_samples, inner_iter=o.inner_iter, diag_shift=o.diag_shift,
            )))
            self.model = self.engine.model
        decays = o.learning_rate_final is not None and o.learning_rate_final != o.learning_rate
        self.optimizer = _adam(o.learning_rate, o.learning_rate_final if decays else None, o.n_iter if decays else 0)
        self.opt_state = self.optimizer.init(self.params)
        self._key = jax.random.PRNGKey(o.seed + 1)
        self._final: dict[str, Any] = {}

    def sample(self, n: int, key: jax.Array) -> np.ndarray:
        """``n`` exact draws of ``P``: outcome strings ``(n, n_sites)`` (int)."""
        x, _ = self.sampler.sample(
            self.model, {"params": self.params}, state=ConstrainedDirectSamplerState(key), chain_length=n
        )
        return np.asarray(x).reshape(n, -1).astype(np.int32)

    def _measure(self, b: np.ndarray) -> dict[str, float]:
        out = {}
        for name, obs in self.observables.items():
            out[name], out[f"{name}_error"] = _stats(obs.local_values(b))
        return out

    # ------------------------------------------------------------- protocol
    @property
    def total_steps(self) -> int:
        return self.options.n_iter

    @property
    def n_parameters(self) -> int:
        return int(sum(x.size for x in jax.tree_util.tree_leaves(self.params)))

    def run(self, start: int, recorder: Recorder) -> None:
        if self.engine is not None:
            return self._relax(start, recorder)
        o = self.options
        for step in range(start, o.n_iter):
            b = self.sample(o.n_samples, jax.random.fold_in(self._key, step))
            conns, mels = self.lindblad.connections(b)
            values = self._measure(b)  # of the distribution the step's samples come from
            self.params, self.opt_state, f = _train_step(
                self.params, self.opt_state, b, conns, mels, model=self.model, optimizer=self.optimizer, cost=o.cost
            )
            values["cost"], values["cost_error"] = _stats(np.asarray(f))
            if not np.isfinite(values["cost"]):
                values["energy"] = float("nan")  # the recorder stops the run with its message
            recorder.record(step, values)
            if recorder.checkpoint_due(step) or step == o.n_iter - 1:
                recorder.checkpoint(step + 1, self.state_dict())

    def _relax(self, start: int, recorder: Recorder) -> None:
        o, eng = self.options, self.engine
        if start == 0:
            # the maximally mixed state, rho = 1/2 per site: q(a) = tr(M^a) / 2
            q = np.tile(np.trace(eng.povm.elements, axis1=1, axis2=2).real / 2, (self.problem.n_sites, 1))
            eng.prepare(q)
        for step in range(start, o.n_iter):
            dt = min(o.dt, o.dt_initial * DT_GROWTH**step)
            info = eng.step(dt, implicit=1.0)
            r = eng.step_r
            values = self._measure(eng.measured_samples)
            values["cost"], values["cost_error"] = _stats(np.abs(r) if o.cost == "l1" else r**2)
            values.update(dt=dt, residual=info["residual"], fit_residual=info["fit_residual"], iterations=info["iterations"])
            if not (np.isfinite(values["cost"]) and np.isfinite(info["residual"])):
                values["energy"] = float("nan")  # the recorder stops the run with its message
            recorder.record(step, values)
            if recorder.checkpoint_due(step) or step == o.n_iter - 1:
                recorder.checkpoint(step + 1, self.state_dict())
        self.params = eng.unravel(eng.theta)

    def state_dict(self) -> dict[str, Any]:
        if self.engine is not None:
            return dict(self.engine.state_dict())
        tree = {
            "params": flax.serialization.to_state_dict(self.params),
            "opt_state": flax.serialization.to_state_dict(self.opt_state),
        }
        return jax.tree_util.tree_map(np.asarray, tree)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.engine is not None:
            self.engine.load_state_dict(state)
            self.params = self.engine.unravel(self.engine.theta)
            return
        self.params = jax.tree_util.tree_map(
            jnp.asarray, flax.serialization.from_state_dict(self.params, state["params"])
        )
        self.opt_state = jax.tree_util.tree_map(
            jnp.asarray, flax.serialization.from_state_dict(self.opt_state, state["opt_state"])
        )

    def final_result(self) -> dict[str, Any]:
        o, problem = self.options, self.problem
        n = o.n_samples_final or 8 * o.n_samples
        b = self.sample(n, jax.random.PRNGKey(o.seed + 7919))
        out: dict[str, Any] = self._measure(b)
        # the cost costs K network passes per sample: on the first (at most) 4 n_samples draws
        # only, n_samples at a time
        f = []
        for lo in range(0, min(n, 4 * o.n_samples) - o.n_samples + 1, o.n_samples):
            conns, mels = self.lindblad.connections(b[lo : lo + o.n_samples])
            f.append(np.asarray(_cost_values(self.params, b[lo : lo + o.n_samples], conns, mels, model=self.model, cost=o.cost)))
        if f:
            out["cost"], out["cost_error"] = _stats(np.concatenate(f))
        out["n_samples_final"] = n
        if problem.n_sites <= FULL_SUM_MAX_SITES:
            a = all_outcomes(problem.n_sites)
            p = np.exp(np.asarray(_log_prob(self.model, self.params, jnp.asarray(a))))
            out["normalisation"] = float(p.sum())
            ap = self.lindblad.apply(p)
            out["cost_exact"] = float(np.abs(ap).sum() if o.cost == "l1" else (ap**2 / p).sum())
            for name, obs in self.observables.items():
                out[f"{name}_model"] = float(np.real(np.sum(p * obs.local_values(a))))
        if problem.n_sites <= o.exact_max_sites:
            try:
                exact = exact_observables(problem, max_states=1 << problem.n_sites)
            except ValueError as err:
                out["exact_error"] = str(err)
            else:
                for name, value in exact.items():
                    out[f"{name}_exact"] = value
                    out[f"{name}_deviation"] = out[name] - value
        tree = {}
        for name in self.observables:
            entry = {"mean": np.asarray(out[name]), "error": np.asarray(out[f"{name}_error"])}
            if f"{name}_exact" in out:
                entry["exact"] = np.asarray(out[f"{name}_exact"])
            tree[name] = entry
        out["observables"] = tree
        self._final = out
        return out

    def measure(self, names: list[str]) -> dict[str, dict[str, Any]]:
        known = self._final.get("observables", {})
        missing = [n for n in names if n not in known]
        if missing:
            raise NotImplementedError(
                f"steady_state measures {', '.join(OBSERVABLES)} and the energy (in the result); not {missing}"
            )
        return {n: known[n] for n in names}
