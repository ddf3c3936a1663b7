"""Time-dependent VMC: the ``engine = "vmc"`` of ``kind = "evolve"`` (:mod:`tensornets.evolution`).

Scheme ``"tdvp"`` (any other model, NetKet's driver) lives in :mod:`tensornets.tdvp_netket`;
:func:`engine` picks the scheme from the model (``scheme = "auto"``). What follows is scheme
``"projected"``.

The state is a registered autoregressive ansatz (normalised, sampled exactly:
``gauge_transformer`` on links, ``transformer`` on sites, ``ar_rnn``) on the winding sector the
evolution stays in, with a learned phase. Scheme ``"projected"`` (p-tVMC, Sinibaldi et al.,
Quantum 7, 1131 (2023)): the parameters of ``psi(t + dt)`` minimise the infidelity between
``(1 + i (H - E) dt/2) psi'`` and ``(1 - i (H - E) dt/2) psi`` (Crank-Nicolson; ``E`` the
energy estimate, so that the phase error does not grow with the total energy); ``order = 4``
(default) takes two such substeps with coefficients ``(3 +- i sqrt 3) / 12``, the (2, 2) Pade
approximant of ``exp(-i H dt)``. Both sides are importance-sampled on exact samples of ``psi``
(unbiased, as ``psi`` is normalised); the infidelity is minimised by Levenberg-Marquardt
Gauss-Newton steps solved in the smaller of sample and parameter space, so no geometric tensor
is inverted and no parameter ODE integrated. Each substep is refitted :data:`FIT_ROUNDS`
times with samples of the latest result added; the step's ``infidelity`` is estimated on an
independent batch.

Initial state: the model fitted to the exact initial state over the sector (``initial_fit =
"exact"``) or a VMC ground-state optimisation (``"vmc"``). Every step measures the energy and
observables with their Monte Carlo errors on fresh samples. The checkpoint holds the parameters,
the previous step's change and the random key: a resumed evolution repeats the uninterrupted
one bit for bit. Conventions and measurements: ``docs/dynamics.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hamiltonians import Problem

SCHEMES = ("auto", "projected", "tdvp")
"""Values of ``scheme``: the projected (implicit) step, NetKet's TDVP
(:mod:`tensornets.tdvp_netket`), or ``auto``: projected for exactly sampled models, else tdvp."""
TDVP_KEYS = {"snr_atol": 1.0, "rcond_smooth": 1e-8, "substeps": 1, "n_chains": 16}
"""Keys (and defaults) of scheme ``"tdvp"`` alone."""
PADE_STEPS = {2: (0.5,), 4: ((3 + 1j * np.sqrt(3)) / 12, (3 - 1j * np.sqrt(3)) / 12)}
"""Substeps ``(1 + i c H dt) psi_{k+1} = (1 - i c H dt) psi_k`` of one step by order: the
midpoint rule (Crank-Nicolson, ``c = 1/2``), and the diagonal (2, 2) Pade approximant of
``exp(-i H dt)`` factorised into two such substeps with complex ``c = (3 +- i sqrt 3) / 12``
(the roots of its numerator; Gauss-Legendre collocation, fourth order)."""
INITIAL_FITS = ("auto", "exact", "vmc")
"""Values of ``initial_fit``."""
FIT_ROUNDS = 3
"""Fits per substep, each on the samples of the previous ones and of the last result."""
EXACT_FIT_MAX_STATES = 4096
"""``initial_fit = "auto"``: the exact fit (a full sum over the sector at every iteration) up to
this many states, else VMC."""


def default_model(problem: Problem) -> str:
    """The problem's autoregressive Transformer."""
    from hamiltonians.lattice import LinkLattice

    return "gauge_transformer" if isinstance(problem.geometry, LinkLattice) else "transformer"


def model_options(problem: Problem, options, where: str):
    """The model's options dataclass from ``model_options``, the phase learned unless set
    (``ConfigError`` for unknown keys, a fixed phase, or options that do not suit the problem)."""
    from nqs.models import model_names, model_spec
    from nqs.runs.config import ConfigError, parse_options, suggest

    name = options.model or default_model(problem)
    if name not in model_names():
        raise ConfigError(f"{where}: unknown model {name!r}.{suggest(name, model_names())} Available: {', '.join(model_names())}")
    spec = model_spec(name)
    if resolve_scheme(spec, options) == "projected" and not spec.direct:
        raise ConfigError(
            f"{where}: engine \"vmc\" (scheme \"projected\") needs a normalised autoregressive model with exact "
            f"sampling (gauge_transformer, transformer, ar_rnn); model {name!r} is not one: use scheme = \"tdvp\""
        )
    reason = spec.fits(problem)
    if reason:
        raise ConfigError(f"{where}: model {name!r} does not fit problem {problem.name!r}: {reason}")
    table = dict(options.model_options)
    fields = {f.name for f in dataclasses.fields(spec.options)}
    if "phase" in fields:
        if table.get("phase", "learned") not in ("learned", "auto"):
            raise ConfigError(
                f"{where}: model_options phase = {table['phase']!r}: a real-time state is complex, the phase must be learned"
            )
        table["phase"] = "learned"
    mo = parse_options(spec.options, table, f"{where} model_options (model {name!r})")
    if spec.check is not None:
        reason = spec.check(problem, mo)
        if reason:
            raise ConfigError(f"{where}: model {name!r}: {reason}")
    if getattr(mo, "project_amplitude", False) is True or (
        hasattr(mo, "resolve_auto") and mo.resolve_auto(problem).get("project_amplitude")
    ):
        raise ConfigError(f"{where}: engine \"vmc\" needs a normalised state: set project_amplitude = false")
    return name, spec, mo


def resolve_scheme(spec, options) -> str:
    """The scheme ``options.scheme`` stands for with the model ``spec``."""
    if options.scheme != "auto":
        return options.scheme
    return "projected" if spec.direct else "tdvp"


def engine(method):
    """The engine of the method's resolved scheme."""
    from nqs.models import model_spec

    o = method.options
    if resolve_scheme(model_spec(o.model or default_model(method.problem)), o) == "tdvp":
        from .tdvp_netket import TDVPEngine

        return TDVPEngine(method)
    return VMCEngine(method)


def evolution_vmc_options(engine, **over):
    """The ``VMCOptions`` that an evolution engine's sampler and ground-state preparation use: the
    model's own VMC defaults, the run's model, samples and seed, then ``over``."""
    from nqs.vmc import VMCOptions

    o = engine.method.options
    defaults = getattr(engine.spec.options, "vmc_defaults", {})
    keep = {k: v for k, v in defaults.items() if k in {f.name for f in dataclasses.fields(VMCOptions) if f.init}}
    vo = VMCOptions(**{**keep, "model": engine.model_name, "n_samples": o.n_samples, "seed": o.seed, **over})
    vo.model_options = engine.model_options
    return vo


def sector_problem(problem: Problem, constraint) -> Problem:
    """``problem`` restricted to one winding sector (the model's automaton is built on it)."""
    return dataclasses.replace(problem, constraint=constraint, _cache={})


def check(problem: Problem, options, where: str) -> None:
    """Configuration-time checks of ``engine = "vmc"`` (``ConfigError``)."""
    from .evolution import evolution_sector

    from nqs.runs.config import ConfigError

    if options.initial_state == "archive":
        raise ConfigError(f"{where}: engine \"vmc\" starts from a ground state or a product configuration, not an archive")
    sector = evolution_sector(problem, options)
    _, spec, _ = model_options(sector_problem(problem, sector), options, where)
    if resolve_scheme(spec, options) == "tdvp":
        from .tdvp_netket import check as check_tdvp

        check_tdvp(sector_problem(problem, sector), options, where)
    else:
        for key, default in TDVP_KEYS.items():
            if getattr(options, key) != default:
                raise ConfigError(f"{where}: {key} belongs to scheme \"tdvp\"; model {spec.name!r} runs scheme \"projected\"")
    fit = resolve_fit(problem, options, sector)
    if fit == "vmc" and options.initial_state != "ground_state":
        raise ConfigError(f"{where}: initial_fit = \"vmc\" prepares a ground state; a product state takes initial_fit = \"exact\"")


def resolve_fit(problem: Problem, options, sector) -> str:
    if options.initial_fit != "auto":
        return options.initial_fit
    if options.initial_state != "ground_state":
        return "exact"
    from hamiltonians.automaton import build_automaton

    try:
        size = build_automaton(sector, max_states=10 * EXACT_FIT_MAX_STATES).n_configs
    except ValueError:
        return "vmc"
    return "exact" if size <= EXACT_FIT_MAX_STATES else "vmc"


def exact_initial_state(method, sector) -> tuple[np.ndarray, np.ndarray]:
    """NetKet configurations of the whole ``sector`` and the exact initial amplitudes of the
    evolution ``method`` on them (ED ground state of ``initial_problem``, or the product state)."""
    from hamiltonians.exact import BasisIndex, ground_manifold, sparse_hamiltonian
    from hamiltonians.netket_backend import configs_to_netket
    from .evolution import initial_config, initial_problem

    p, o = method.problem, method.options
    basis = sector.enumerate(max_states=max(o.max_states, EXACT_FIT_MAX_STATES))
    if o.initial_state == "ground_state":
        start = initial_problem(p, o)
        _, vecs = ground_manifold(sparse_hamiltonian(start.terms, start.local_space, basis))
        if vecs.shape[1] > 1:
            raise ValueError(f"the ground state of {start.label} is {vecs.shape[1]}-fold degenerate in its winding sector")
        v = vecs[:, 0].astype(complex)
    else:
        v = np.zeros(len(basis), dtype=complex)
        v[BasisIndex(basis, p.local_space.dim)(initial_config(p, o)[None])[0]] = 1.0
    return configs_to_netket(p.local_space, basis), v / np.linalg.norm(v)


def _split(key, n):
    import jax

    return jax.random.split(key, n)


class SampledEvolution:
    """The energy and observables of a sampled evolution engine's current state, measured once
    after each step: ``_measured`` holds ``energy``, ``energy_error`` and ``obs`` (name ->
    ``{"mean", "error"}``), or ``None`` until measured. Subclasses provide ``_measure_now()``
    (fills ``_measured`` with the energy and the run's observables) and ``_observables(names)``."""

    _measured: dict[str, Any] | None
    e0: float

    def _energy_info(self) -> dict[str, float]:
        m = self._measured
        return {"energy_error": m["energy_error"], "energy_drift": m["energy"] - self.e0}

    def energy(self) -> float:
        if self._measured is None:
            self._measure_now()
        return self._measured["energy"]

    def measure_with_errors(self, names: list[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Means and Monte Carlo errors of the observables of the current state."""
        self.energy()
        missing = [n for n in names if n not in self._measured["obs"]]
        if missing:
            self._measured["obs"].update(self._observables(missing))
        obs = self._measured["obs"]
        return {n: obs[n]["mean"] for n in names}, {n: obs[n]["error"] for n in names}

    def measure(self, names: list[str]) -> dict[str, np.ndarray]:
        return self.measure_with_errors(names)[0]


class VMCEngine(SampledEvolution):
    """Projected time-dependent VMC of an exactly sampled autoregressive model (module docstring)."""

    def __init__(self, method):
        import jax
        from jax.flatten_util import ravel_pytree

        from .evolution import evolution_sector

        self.method = method
        p, o = method.problem, method.options
        self.sector = evolution_sector(p, o)
        self.problem = sector_problem(p, self.sector)
        self.model_name, self.spec, self.model_options = model_options(self.problem, o, "[method]")
        self.hilbert, self.hamiltonian = self.problem.to_netket()
        self.model = self.spec.build(self.problem, self.model_options)
        # exact draws of |psi|^2 (no tempering): the fits' estimators carry no weights
        self.sampler = self.spec.make_sampler(self.problem, self.hilbert, self.hamiltonian, self._vmc_options(tempering=1.0))
        from hamiltonians.netket_backend import configs_to_netket

        ref = self.sector.reference if self.sector.reference is not None else (0,) * p.n_sites
        x0 = configs_to_netket(p.local_space, np.asarray(ref, dtype=np.int64)[None])
        variables = self.model.init(jax.random.PRNGKey(o.seed), x0)
        params = variables["params"]
        self.model_state = {k: v for k, v in variables.items() if k != "params"}
        flat, self.unravel = ravel_pytree(params)
        self.theta = np.asarray(flat)
        self.deltas: np.ndarray | None = None
        """The previous step's parameter change of each substep: the next one's first guess."""
        self.key = np.asarray(jax.random.PRNGKey(o.seed + 1))
        self.e0 = float("nan")
        self._measured: dict[str, Any] | None = None
        self._compiled: dict[str, Any] = {}

    def _vmc_options(self, **over):
        return evolution_vmc_options(self, n_chains=1, **over)

    def n_parameters(self) -> int:
        return int(self.theta.size)

    # ------------------------------------------------------------------ jax kernels
    def _log_psi(self, theta, x):
        return self.model.apply({"params": self.unravel(theta), **self.model_state}, x)

    def _fns(self):
        """Jitted ``a`` and its Jacobian over rows ``(x, xp, mels, lp_ref, hdt)``."""
        if self._compiled:
            return self._compiled
        import jax
        import jax.numpy as jnp

        def a_row(theta, x, xp, mels, lp_ref, hdt, shift):
            lp = self._log_psi(theta, jnp.concatenate([x[None], xp]))
            eloc = jnp.sum(mels * jnp.exp(lp[1:] - lp[0]))
            return jnp.exp(lp[0] - lp_ref) * (1.0 + 1j * hdt * (eloc - shift))

        def ri(theta, *row):
            v = a_row(theta, *row)
            return jnp.stack([v.real, v.imag])

        a_all = jax.jit(jax.vmap(a_row, in_axes=(None, 0, 0, 0, 0, None, None)))
        jac = jax.jit(jax.vmap(jax.jacrev(ri), in_axes=(None, 0, 0, 0, 0, None, None)))
        log_psi = jax.jit(self._log_psi)
        self._compiled = {"a": a_all, "jac": jac, "log_psi": log_psi}
        return self._compiled

    def _sample(self, theta, key, n: int) -> np.ndarray:
        from nqs.sampling.direct_sampler import ConstrainedDirectSamplerState

        variables = {"params": self.unravel(theta), **self.model_state}
        samples, _ = self.sampler.sample(self.model, variables, state=ConstrainedDirectSamplerState(key), chain_length=n)
        samples = np.asarray(samples).reshape(-1, self.hilbert.size)
        return samples[:n]

    def _conn(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xp, mels = self.hamiltonian.get_conn_padded(x)
        xp, mels = np.asarray(xp), np.asarray(mels)
        # padding rows (zero elements) repeat the sample itself: finite log-amplitudes
        xp = np.where((mels == 0)[..., None], x[:, None, :], xp)
        return xp, mels

    def _log_values(self, theta, x: np.ndarray) -> np.ndarray:
        """``log psi`` of rows ``x``, padded to a power of two (few compiled shapes)."""
        x = np.asarray(x)
        n = len(x)
        pad = self._bucket(n) - n
        if pad:
            x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
        return np.asarray(self._fns()["log_psi"](theta, x))[:n]

    def _eloc(self, theta, x: np.ndarray) -> np.ndarray:
        xp, mels = self._conn(x)
        lp_x = self._log_values(theta, x)
        lp = self._log_values(theta, xp.reshape(-1, x.shape[1])).reshape(mels.shape)
        return np.sum(mels * np.exp(lp - lp_x[:, None]), axis=1)

    # ------------------------------------------------------------------ fit
    @staticmethod
    def _bucket(n: int) -> int:
        return 1 << max(3, int(np.ceil(np.log2(max(n, 1)))))

    def _rows(self, x: np.ndarray, weights: np.ndarray, lp_ref: np.ndarray, conn: bool):
        """Rows padded to a power of two (zero weight) so the kernels compile for few shapes."""
        n = len(x)
        m = self._bucket(n)
        pad = m - n
        if conn:
            xp, mels = self._conn(x)
        else:
            xp, mels = x[:, None, :], np.zeros((n, 1))
        rep = lambda v: np.concatenate([v, np.repeat(v[:1], pad, axis=0)]) if pad else v
        return (rep(x), rep(xp), rep(mels), rep(lp_ref)), np.concatenate([weights, np.zeros(pad)])

    @staticmethod
    def _infidelity(a: np.ndarray, b: np.ndarray) -> float:
        ab = np.vdot(a, b)
        return float(max(0.0, 1.0 - abs(ab) ** 2 / (np.vdot(a, a).real * np.vdot(b, b).real)))

    def _fit(self, theta, guess, rows, w, b, hdt: complex, iters: int, tol: float = 0.0, shift: float = 0.0):
        """Levenberg-Marquardt Gauss-Newton minimisation of the infidelity of ``a(theta')``
        (weighted rows) to ``b``; returns ``(theta', infidelity on the rows, iterations)``."""
        f = self._fns()
        sw = np.sqrt(w)
        b = b * sw

        def a_of(t):
            return np.asarray(f["a"](t, *rows, hdt, shift)) * sw

        cur = np.asarray(guess)
        a = a_of(cur)
        loss = self._infidelity(a, b)
        if theta is not None and guess is not theta:
            a0 = a_of(theta)
            l0 = self._infidelity(a0, b)
            if l0 < loss:
                cur, a, loss = np.asarray(theta), a0, l0
        lam = self.method.options.diag_shift
        xi = b / np.linalg.norm(b)
        done = 0
        for done in range(1, iters + 1):
            if loss <= tol:
                done -= 1
                break
            jr = np.asarray(f["jac"](cur, *rows, hdt, shift))  # (n, 2, P)
            jmat = (jr[:, 0] + 1j * jr[:, 1]) * sw[:, None]
            na = np.linalg.norm(a)
            ah = a / na
            jh = (jmat - np.outer(ah, ah.conj() @ jmat)) / na
            pj = jh - np.outer(xi, xi.conj() @ jh)
            r = ah - xi * np.vdot(xi, ah)
            keep = sw > 0
            A = np.concatenate([pj[keep].real, pj[keep].imag])
            t = -np.concatenate([r[keep].real, r[keep].imag])
            if A.shape[0] <= A.shape[1]:
                K = A @ A.T
                scale = max(np.trace(K) / len(K), 1e-300)
            else:
                K = A.T @ A
                scale = max(np.trace(K) / len(K), 1e-300)
            improved = False
            for _ in range(6):
                reg = K + lam * scale * np.eye(len(K))
                if A.shape[0] <= A.shape[1]:
                    delta = A.T @ np.linalg.solve(reg, t)
                else:
                    delta = np.linalg.solve(reg, A.T @ t)
                trial = cur + delta
                a_t = a_of(trial)
                l_t = self._infidelity(a_t, b)
                if np.isfinite(l_t) and l_t < loss:
                    cur, a, loss = trial, a_t, l_t
                    lam = max(lam / 3.0, 1e-12)
                    improved = True
                    break
                lam *= 10.0
            if not improved:
                break
        return cur, loss, done

    def _fit_on(self, theta, guess, x, others, hdt: complex, shift: float, iters: int):
        """The step's fit on samples ``x`` drawn in equal parts from ``|psi_theta|^2`` and the
        ``|psi|^2`` of each parameter vector of ``others`` (importance weights of the mixture;
        the models are normalised, so the weights are exact)."""
        uniq, counts = np.unique(x, axis=0, return_counts=True)
        lp_ref = self._log_values(theta, uniq)
        w = counts / counts.sum()
        if others:
            p_ref = np.exp(2 * lp_ref.real)
            p_mix = (p_ref + sum(np.exp(2 * self._log_values(t, uniq).real) for t in others)) / (1 + len(others))
            w = w * p_ref / p_mix
        b = 1.0 - 1j * hdt * (self._eloc(theta, uniq) - shift)
        rows, w = self._rows(uniq, w, lp_ref, conn=True)
        b = np.concatenate([b, np.zeros(len(w) - len(b))])
        return self._fit(theta, guess, rows, w, b, hdt, iters, tol=self.method.options.fit_tol, shift=shift)

    # ------------------------------------------------------------------ protocol
    def prepare(self) -> dict[str, float]:
        import jax

        o = self.method.options
        fit = resolve_fit(self.method.problem, o, self.sector)
        info: dict[str, float] = {}
        if fit == "vmc":
            self.theta = self._vmc_ground_state()
        else:
            x, target = self._exact_initial_state()
            rows, w = self._rows(x, np.ones(len(x)), np.zeros(len(x)), conn=False)
            b = np.concatenate([target, np.zeros(len(w) - len(target))])
            theta, loss, its = self._fit(None, self.theta, rows, w, b, 0j, o.initial_iter, tol=o.fit_tol)
            self.theta = theta
            info["initial_fit_iterations"] = float(its)
            info["infidelity"] = loss
        self.deltas = None
        key, k_meas = _split(jax.numpy.asarray(self.key), 2)
        self.key = np.asarray(key)
        self._measure(k_meas)
        self.e0 = self._measured["energy"]
        return {**info, **self._energy_info()}

    def _exact_initial_state(self) -> tuple[np.ndarray, np.ndarray]:
        return exact_initial_state(self.method, self.sector)

    def _vmc_ground_state(self) -> np.ndarray:
        """A VMC ground-state optimisation of the same model on ``initial_problem`` (its sector)."""
        from jax.flatten_util import ravel_pytree

        from nqs.runs.methods import NullRecorder

        from .evolution import initial_problem

        from nqs.vmc import VMC

        o = self.method.options
        start = sector_problem(initial_problem(self.method.problem, o), self.sector)
        vo = self._vmc_options(n_iter=o.initial_iter)
        vmc = VMC(start, vo)
        vmc.run(0, NullRecorder())
        return np.asarray(ravel_pytree(vmc.state.parameters)[0])

    def step(self, dt: float) -> dict[str, float]:
        import jax

        o = self.method.options
        key, k_step, k_meas = _split(jax.numpy.asarray(self.key), 3)
        self.key = np.asarray(key)
        theta = self.theta
        shift = None
        infid, fit_loss, its = 0.0, 0.0, 0
        deltas = []
        for k, c in enumerate(PADE_STEPS[o.order]):
            k_step, k_fit, k_val = _split(k_step, 3)
            x = self._sample(theta, k_fit, o.n_samples)
            if shift is None:
                # H - E in the step: the midpoint rule's phase error grows with (E dt)^3, so the
                # energy of the state (conserved) is taken out; it only changes the global phase
                shift = float(np.real(np.mean(self._eloc(theta, x))))
            hdt = complex(c * dt)
            guess = theta if self.deltas is None else theta + self.deltas[k]
            # a fit on samples of psi_theta, then FIT_ROUNDS - 1 more, each adding as many samples
            # of the last result, weighted by the mixture of the sampled states: configurations
            # the new state gains are covered, where a fit on psi_theta's samples alone may
            # move weight unseen
            new, others = guess, []
            for r in range(FIT_ROUNDS):
                if r:
                    k_fit, k_more = _split(k_fit, 2)
                    others.append(new)
                    x = np.concatenate([x, self._sample(new, k_more, o.n_samples)])
                new, loss, n = self._fit_on(theta, new, x, others, hdt, shift, o.inner_iter)
                its += n
            infid += self._validate(theta, new, k_val, hdt, shift)
            fit_loss += loss
            deltas.append(new - theta)
            theta = new
        self.deltas = np.stack(deltas)
        self.theta = theta
        self._measure(k_meas)
        return {"infidelity": infid, "fit_infidelity": fit_loss, "iterations": float(its), **self._energy_info()}

    def _validate(self, theta, new, key, hdt: complex, shift: float) -> float:
        """The fit's infidelity on an independent batch of the old state."""
        x = self._sample(theta, key, self.method.options.n_samples)
        uniq, counts = np.unique(x, axis=0, return_counts=True)
        rows, w = self._rows(uniq, counts / counts.sum(), self._log_values(theta, uniq), conn=True)
        b = np.concatenate([1.0 - 1j * hdt * (self._eloc(theta, uniq) - shift), np.zeros(len(w) - len(uniq))])
        a = np.asarray(self._fns()["a"](new, *rows, hdt, shift))
        return self._infidelity(a * np.sqrt(w), b * np.sqrt(w))

    def _measure(self, key) -> None:
        """Energy and the recorded observables on fresh samples of the current state."""
        import netket as nk

        from nqs.observables import measure_samples

        names = self.method.names
        x = self._sample(self.theta, key, self.method.options.n_samples)
        st = nk.stats.statistics(self._eloc(self.theta, x))
        theta = self.theta
        obs = measure_samples(self.method.problem, lambda c: self._log_values(theta, np.asarray(c)), x, names) if names else {}
        self._measured = {"energy": float(np.real(st.mean)), "energy_error": float(st.error_of_mean), "obs": obs}

    def _measure_now(self) -> None:
        import jax

        self._measure(jax.random.fold_in(jax.numpy.asarray(self.key), 7))

    def _observables(self, names: list[str]) -> dict[str, dict[str, Any]]:
        import jax

        from nqs.observables import measure_samples

        x = self._sample(self.theta, jax.random.fold_in(jax.numpy.asarray(self.key), 11), self.method.options.n_samples)
        theta = self.theta
        return measure_samples(self.method.problem, lambda c: self._log_values(theta, np.asarray(c)), x, names)

    def amplitudes(self, basis: np.ndarray) -> np.ndarray:
        """``psi`` of the current parameters on configurations ``basis`` (local indices, e.g.
        the sector's enumeration): a diagnostic that separates the dynamics' error from the
        sampling noise of the measurements on small sectors."""
        from hamiltonians.netket_backend import configs_to_netket

        x = configs_to_netket(self.method.problem.local_space, np.asarray(basis))
        return np.exp(self._log_values(self.theta, x))

    def state_dict(self) -> dict[str, Any]:
        out = {"theta": self.theta, "key": np.asarray(self.key), "e0": self.e0}
        if self.deltas is not None:
            out["deltas"] = self.deltas
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.theta = np.asarray(state["theta"])
        self.deltas = np.asarray(state["deltas"]) if "deltas" in state else None
        self.key = np.asarray(state["key"]).astype(np.uint32)
        self.e0 = float(state.get("e0", float("nan")))
        self._measured = None

    def result(self) -> dict[str, Any]:
        return {"model": self.model_name, "scheme": "projected", "n_samples": self.method.options.n_samples,
                "n_parameters": self.n_parameters()}
