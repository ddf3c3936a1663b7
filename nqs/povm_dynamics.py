"""Dissipative dynamics of open problems: the engines of ``kind = "evolve"`` for jump operators.

``"exact"`` (:class:`LindbladEngine`): ``rho(t + dt) = exp(L dt) rho(t)`` on the row-major
``vec(rho)`` by ``expm_multiply`` of the sparse Liouvillian (:mod:`hamiltonians.lindblad`).
``"povm"`` (:class:`POVMEngine`): the state is the POVM outcome distribution ``P(a)`` of the
autoregressive Transformer (:mod:`nqs.models.povm`), ``dP/dt = A P`` (:mod:`hamiltonians.povm`).
Each step is the implicit trapezoid (Crank-Nicolson) rule, the "forward-backward trapezoid" of
Luo et al. (PRL 128, 090501, 2022): the new parameters minimise the residual
``C = sum_b [((1 - dt A/2) P')(b) - ((1 + dt A/2) P)(b)]^2 / P(b)
= E_{b~P} [R'(b) - T(b)]^2`` with ``R'(b) = ((1 - dt A/2) P')(b) / P(b)`` and
``T(b) = ((1 + dt A/2) P)(b) / P(b)`` over the strings connected to ``b`` by ``A``: the
weighted squares of Luo's L1 cost, a least-squares problem, minimised by Levenberg-Marquardt
Gauss-Newton steps. Each step fits on exact samples of ``P``, then refits with as many samples
of the fitted ``P'`` added (weights of the mixture: the estimator stays unbiased), and records
the residual on an independent batch (``residual``) and on its own samples (``fit_residual``).
The initial product state is fitted the same way (``C = E_{b~P_0} (P'(b)/P_0(b) - 1)^2``);
``step(dt, implicit=1)`` is backward Euler instead (the steady-state relaxation of
:mod:`nqs.steady_state`). The Jacobian takes one gradient per distinct string of the rows.
Observables: ``<O> = E_{a~P'} tr(N^a O)`` with Monte Carlo errors on ``n_samples_measure`` fresh
samples. The checkpoint holds the parameters, the last step's change and the random key.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hamiltonians import Problem
from hamiltonians import povm as pv

FIT_ROUNDS = 2
"""Fits per step: on samples of ``P``, then on those plus as many of the first fit's ``P'``."""
STALL = 0.05
"""A fit stops when a Gauss-Newton iteration lowers its loss by less than this fraction."""
GRAD_CHUNK = 256
"""Strings per compiled call of the per-string gradients of ``log P``: fixed shapes, bounded memory."""
LP_CHUNK = 2048
"""Strings per compiled ``log P`` call."""
LINDBLAD_MAX_STATES = 1 << 10
"""``engine = "exact"`` on open problems: the most basis states (``D``; ``D^2`` unknowns)."""


def check(problem: Problem, options, where: str) -> None:
    """Configuration-time checks of an evolution of an open problem, or of ``engine = "povm"``
    (``ConfigError`` naming the fix)."""
    from .models.povm import POVM_MODELS
    from .runs.config import ConfigError, parse_options, suggest

    o = options
    if not problem.is_open:
        if o.engine == "povm":
            raise ConfigError(
                f"{where}: engine \"povm\" evolves the mixed state of an open problem (jump operators); "
                f"{problem.label} is closed: use engine = \"exact\", \"mps\" or \"vmc\" for its pure state, or an open "
                "model (dissipative_ising, dissipative_xyz)"
            )
        return
    if o.engine not in ("exact", "povm"):
        raise ConfigError(
            f"{where}: engine {o.engine!r} evolves a pure state, but {problem.label} is an open problem whose state is "
            "mixed: use engine = \"povm\" (POVM Transformer) or \"exact\" (Lindblad equation)"
        )
    if o.initial_state != "product":
        raise ConfigError(
            f"{where}: an open problem evolves from a product configuration: set initial_state = \"product\" "
            f"(and initial_config), not {o.initial_state!r}"
        )
    if o.initial_config is None:
        raise ConfigError(f"{where}: give initial_config (local indices, 0 = up) for the open problem {problem.label}")
    space = problem.local_space
    if space.dim != 2 or space.fermionic:
        raise ConfigError(f"{where}: the POVMs are for qubits; {problem.label} has the local space {space.name!r}")
    if o.engine == "exact":
        d = 2**problem.n_sites
        if d > LINDBLAD_MAX_STATES:
            raise ConfigError(
                f"{where}: engine \"exact\" of an open problem holds the {d} x {d} density matrix; at most "
                f"{LINDBLAD_MAX_STATES} states (10 spins): use engine = \"povm\""
            )
        return
    model = o.model or "transformer"
    if model not in POVM_MODELS:
        from .models import model_names

        what = (
            f"model {model!r} represents a pure state (a wavefunction) and cannot represent a mixed state"
            if model in model_names() else f"unknown model {model!r}.{suggest(model, POVM_MODELS)}"
        )
        raise ConfigError(f"{where}: {what}; engine \"povm\" learns the POVM distribution: use model = \"transformer\"")
    parse_options(POVM_MODELS[model][0], dict(o.model_options), f"{where} model_options (model {model!r})")
    if o.povm not in pv.POVMS:
        raise ConfigError(f"{where}: unknown povm {o.povm!r}.{suggest(o.povm, pv.POVMS)} Known: {', '.join(pv.POVMS)}")


def _entry_terms(problem: Problem, names: list[str]) -> dict[str, tuple[Any, list]]:
    """``{name: (observable, [terms of each entry])}`` from :mod:`nqs.observables`."""
    from .observables import build

    out = {}
    for name in names:
        obs = build(problem, name)
        out[name] = (obs, [list(entry) for entry in obs.entries])
    return out


def _product_rho(problem: Problem, config: np.ndarray) -> np.ndarray:
    from hamiltonians import lindblad

    return lindblad.product_state(problem, config, max_states=2**problem.n_sites)


class LindbladEngine:
    """``engine = "exact"`` on an open problem: the density matrix, ``exp(L dt)`` by Krylov."""

    def __init__(self, method):
        from hamiltonians import lindblad

        self.method = method
        p = method.problem
        self.d = 2**p.n_sites
        self.generator = lindblad.liouvillian(p, self.d) * method.options.dt
        basis = p.basis(self.d)
        self.h = lindblad.operator_matrix(p.terms, p.local_space, basis)
        self._obs = {
            name: (obs, [lindblad.operator_matrix(t, p.local_space, basis) for t in entries])
            for name, (obs, entries) in _entry_terms(p, method.names).items()
        }
        self.rho: np.ndarray | None = None

    def n_parameters(self) -> int:
        return self.d * self.d

    def prepare(self) -> dict[str, float]:
        config = np.asarray(self.method.options.initial_config, dtype=np.int64)
        self.rho = _product_rho(self.method.problem, config)
        return {}

    def step(self, dt: float) -> dict[str, float]:
        from scipy.sparse.linalg import expm_multiply

        v = expm_multiply(self.generator, self.rho.reshape(-1))
        self.rho = v.reshape(self.d, self.d)
        return {"trace_error": abs(complex(np.trace(self.rho)) - 1.0)}

    def _tr(self, op) -> complex:
        # tr(rho O) = sum_ij rho_ij O_ji
        return complex(op.T.multiply(self.rho).sum())

    def energy(self) -> float:
        return float(self._tr(self.h).real)

    def measure(self, names: list[str]) -> dict[str, np.ndarray]:
        out = {}
        for name in names:
            obs, mats = self._obs[name]
            vals = np.array([self._tr(m) for m in mats])
            out[name] = np.real_if_close(vals, tol=1e6).reshape(obs.shape)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"rho": self.rho}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rho = np.asarray(state["rho"], dtype=complex)

    def result(self) -> dict[str, Any]:
        return {"hilbert_dim": self.d}


@functools.lru_cache(maxsize=8)
def _kernels(model) -> dict[str, Any]:
    """Jitted ``log P`` of strings and its per-string gradients for one model (cached, so that
    engines of the same model, e.g. a run and its resumption, share the compiled code)."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from .models.povm import log_prob

    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, model.n_sites), jnp.int32))["params"]
    _, unravel = ravel_pytree(jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))

    def lp(theta, a):
        return log_prob(model, unravel(theta), a)

    def lp_one(theta, a):
        return lp(theta, a[None])[0]

    return {"lp": jax.jit(lp), "grad": jax.jit(jax.vmap(jax.grad(lp_one), in_axes=(None, 0)))}


def _split(key, n: int):
    import jax

    return jax.random.split(key, n)


def usable_rows(rows: tuple, w: np.ndarray) -> tuple[tuple, np.ndarray]:
    """The rows ``(b, conns, mels, log P(b), T(b))`` and weights ``w`` that enter a weighted fit.
    A string drawn from another model of the sample mixture can be impossible under ``P`` to
    double precision: its weight ``P / P_mix`` underflows to 0 while its target ``T = 1 + c R``
    overflows, and ``0 * inf`` would make the loss NaN and every step rejected. Such rows add
    nothing to the loss; they are dropped."""
    keep = np.isfinite(w) & (w > 0) & np.isfinite(rows[3]) & np.isfinite(rows[4])
    return tuple(np.asarray(x)[keep] for x in rows), w[keep]


def product_distribution(config: np.ndarray, povm: pv.POVM) -> np.ndarray:
    """``q[k, a] = tr(|x_k><x_k| M^a)`` of a product configuration (``(n_sites, 4)``, rows sum to 1)."""
    x = np.asarray(config)
    m = povm.elements
    return np.stack([m[:, s, s].real for s in x])


class POVMEngine:
    """``engine = "povm"``: the trapezoid step of a POVM Transformer (module docstring)."""

    def __init__(self, method):
        import jax
        from jax.flatten_util import ravel_pytree

        from .models.povm import POVM_MODELS, build_povm_transformer, outcome_hilbert
        from .runs.config import parse_options
        from .sampling.direct_sampler import ConstrainedDirectSampler

        self.method = method
        p, o = method.problem, method.options
        self.n = p.n_sites
        self.povm = pv.get_povm(o.povm)
        self.lindblad = pv.liouvillian(p, self.povm)
        self.h_obs = pv.observable(list(p.terms), p.local_space, self.povm)
        self.obs = {
            name: (ob, [pv.observable(t, p.local_space, self.povm) for t in entries])
            for name, (ob, entries) in _entry_terms(p, method.names).items()
        }
        mo = parse_options(POVM_MODELS["transformer"][0], dict(o.model_options), "model_options")
        self.model = build_povm_transformer(self.n, mo)
        self.sampler = ConstrainedDirectSampler(outcome_hilbert(self.n), self.model.local_space)
        params = self.model.init(jax.random.PRNGKey(o.seed), np.zeros((1, self.n), dtype=np.int32))["params"]
        flat, self.unravel = ravel_pytree(params)
        self.theta = np.asarray(flat)
        self.delta: np.ndarray | None = None
        """The last step's parameter change: the next step's first guess."""
        self.key = np.asarray(jax.random.PRNGKey(o.seed + 1))
        self._measured: dict[str, Any] | None = None
        self._fns = _kernels(self.model)

    def n_parameters(self) -> int:
        return int(self.theta.size)

    # ------------------------------------------------------------------ kernels
    def _design(self, rows: tuple, c: float) -> tuple:
        """The rows' residuals ``r_b = sum_j coef_bj P'(a_bj) / P(b) - T(b)`` over the distinct
        strings ``a`` of all rows (each string's network pass and gradient taken once, not once
        per row it appears in): ``(strings, index (B, K+1), coef (B, K+1))``, ``coef = (1, -c A_ba)``."""
        b, conns, mels = rows[:3]
        strings = np.concatenate([b[:, None], conns], axis=1)
        uniq, idx = np.unique(strings.reshape(-1, self.n), axis=0, return_inverse=True)
        coef = np.concatenate([np.ones((len(b), 1)), -c * np.asarray(mels)], axis=1)
        return uniq, idx.reshape(strings.shape[:2]), coef

    def _residuals(self, theta, rows: tuple, design: tuple) -> tuple[np.ndarray, np.ndarray]:
        """``(r_b, m_bj)`` with ``m_bj = coef_bj P'(a_bj) / P(b)``."""
        uniq, idx, coef = design
        m = coef * np.exp(self.log_prob(theta, uniq)[idx] - rows[3][:, None])
        return m.sum(axis=1) - rows[4], m

    def _jacobian(self, theta, m: np.ndarray, design: tuple) -> np.ndarray:
        """``d r_b / d theta = sum_j m_bj grad log P'(a_bj)``, ``(B, P)``: a sparse ``(B, U)``
        matrix times the per-string gradients, chunk by chunk of :data:`GRAD_CHUNK` strings."""
        import scipy.sparse as sp

        uniq, idx, _ = design
        n_b, n_u = m.shape[0], len(uniq)
        s = sp.csc_matrix((m.ravel(), (np.repeat(np.arange(n_b), m.shape[1]), idx.ravel())), shape=(n_b, n_u))
        jac = np.zeros((n_b, self.theta.size))
        for i in range(0, n_u, GRAD_CHUNK):
            chunk = uniq[i : i + GRAD_CHUNK]
            k = len(chunk)
            if k < GRAD_CHUNK:  # one compiled shape: pad the last chunk
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], GRAD_CHUNK - k, axis=0)])
            g = np.asarray(self._fns["grad"](theta, chunk))[:k]
            jac += s[:, i : i + k] @ g
        return jac

    def log_prob(self, theta, a: np.ndarray) -> np.ndarray:
        """``log P(a)`` of outcome strings ``(B, n)`` under parameters ``theta``."""
        a = np.asarray(a, dtype=np.int32)
        n = len(a)
        # one compiled shape: chunks of LP_CHUNK strings, the last one padded
        m = -(-n // LP_CHUNK) * LP_CHUNK
        x = np.concatenate([a, np.repeat(a[:1], m - n, axis=0)]) if m > n else a
        out = [np.asarray(self._fns["lp"](theta, x[i : i + LP_CHUNK])) for i in range(0, m, LP_CHUNK)]
        return np.concatenate(out)[:n]

    def sample(self, theta, key, n: int) -> np.ndarray:
        """``n`` exact draws of ``P_theta``: outcome strings ``(n, n_sites)``."""
        from .sampling.direct_sampler import ConstrainedDirectSamplerState

        x, _ = self.sampler.sample(
            self.model, {"params": self.unravel(theta)}, state=ConstrainedDirectSamplerState(key), chain_length=n
        )
        return np.asarray(x).reshape(n, -1).astype(np.int32)

    # ------------------------------------------------------------------ fit
    def _rows(self, theta, b: np.ndarray, c_old: float) -> tuple:
        """``(b, conns, mels, log P(b), T(b))`` of unique strings ``b`` under ``P_theta``, with
        ``T(b) = 1 + c_old R(b)``; also sets :attr:`last_r` to ``R(b) = (A P)(b) / P(b)``."""
        conns, mels = self.lindblad.connections(b)
        lp_b = self.log_prob(theta, b)
        k = conns.shape[1]
        lp_a = self.log_prob(theta, conns.reshape(-1, self.n)).reshape(-1, k)
        with np.errstate(over="ignore", invalid="ignore"):  # strings impossible under P: usable_rows
            self.last_r = np.sum(mels * np.exp(lp_a - lp_b[:, None]), axis=1)
        return b, conns.astype(np.int32), mels, lp_b, 1.0 + c_old * self.last_r

    def _fit(self, guess, rows: tuple, w: np.ndarray, c: float, iters: int) -> tuple[np.ndarray, float, int]:
        """Levenberg-Marquardt Gauss-Newton on ``sum_b w_b r_b(theta)^2``; returns
        ``(theta, loss, iterations)``."""
        o = self.method.options
        sw = np.sqrt(w)
        design = self._design(rows, c)

        def loss_of(theta):
            with np.errstate(over="ignore", invalid="ignore"):  # a wild trial step: rejected below
                r, m = self._residuals(theta, rows, design)
            r = r * sw
            return r, float(r @ r), m

        cur = np.asarray(guess)
        r, loss, m = loss_of(cur)
        lam = o.diag_shift
        done, last = 0, np.inf
        for done in range(1, iters + 1):
            if loss <= o.fit_tol or loss > (1.0 - STALL) * last:
                done -= 1
                break
            last = loss
            jac = self._jacobian(cur, m, design) * sw[:, None]  # (B, P)
            small = jac.shape[0] <= jac.shape[1]
            k = jac @ jac.T if small else jac.T @ jac
            scale = max(np.trace(k) / len(k), 1e-300)
            improved = False
            for _ in range(6):
                reg = k + lam * scale * np.eye(len(k))
                delta = -(jac.T @ np.linalg.solve(reg, r) if small else np.linalg.solve(reg, jac.T @ r))
                r_t, l_t, m_t = loss_of(cur + delta)
                if np.isfinite(l_t) and l_t < loss:
                    cur, r, loss, m = cur + delta, r_t, l_t, m_t
                    # the damping stays >= diag_shift: with fewer samples than parameters the
                    # undamped step interpolates the samples and the residual off them grows
                    lam = max(lam / 3.0, o.diag_shift)
                    improved = True
                    break
                lam *= 10.0
            if not improved:
                break
        return cur, loss, done

    def _fit_step(self, theta, guess, x: np.ndarray, others: list, c: float, c_old: float, iters: int):
        uniq, inv = np.unique(x, axis=0, return_inverse=True)
        rows = self._rows(theta, uniq, c_old)
        self.fit_r = self.last_r[inv.reshape(-1)]
        w = np.bincount(inv.reshape(-1), minlength=len(uniq)) / len(x)
        if others:
            p_ref = np.exp(rows[3])
            p_mix = (p_ref + sum(np.exp(self.log_prob(t, uniq)) for t in others)) / (1 + len(others))
            with np.errstate(divide="ignore", invalid="ignore"):
                w = w * p_ref / p_mix
        rows, w = usable_rows(rows, w)
        if not len(w):
            raise FloatingPointError(
                "POVM fit: no sample has a finite residual target (the probability ratios of connected "
                "outcome strings overflow): the model has run away; the run cannot continue from this state"
            )
        return self._fit(guess, rows, w, c, iters)

    def _residual(self, theta, new, key, c: float, c_old: float) -> float:
        """The step's residual ``C`` at ``new`` on an independent batch of ``P_theta``."""
        x = self.sample(theta, key, self.method.options.n_samples)
        uniq, inv = np.unique(x, axis=0, return_inverse=True)
        rows = self._rows(theta, uniq, c_old)
        w = np.bincount(inv.reshape(-1), minlength=len(uniq)) / len(x)
        r = self._residuals(new, rows, self._design(rows, c))[0]
        return float(np.sum(w * r**2))

    # ------------------------------------------------------------------ protocol
    def prepare(self, q: np.ndarray | None = None) -> dict[str, float]:
        """Fit the model to the product distribution ``q`` (``(n_sites, 4)``; default: the
        product state of ``initial_config``) on exact draws of it."""
        import jax

        o = self.method.options
        if q is None:
            q = product_distribution(np.asarray(o.initial_config), self.povm)
        key, k_init, k_meas = _split(jax.numpy.asarray(self.key), 3)
        self.key = np.asarray(key)
        u = np.asarray(jax.random.uniform(k_init, (o.n_samples, self.n)))
        x = np.minimum((u[..., None] > np.cumsum(q, axis=1)[None]).sum(axis=-1), 3).astype(np.int32)
        uniq, inv = np.unique(x, axis=0, return_inverse=True)
        lp_ref = np.log(q[np.arange(self.n), uniq]).sum(axis=1)
        # no connections: r_b = P'(b) / P_0(b) - 1
        rows = (uniq, np.zeros((len(uniq), 0, self.n), np.int32), np.zeros((len(uniq), 0)), lp_ref, np.ones(len(uniq)))
        w = np.bincount(inv.reshape(-1), minlength=len(uniq)) / len(x)
        self.theta, loss, its = self._fit(self.theta, rows, w, 0.0, o.initial_iter)
        self.delta = None
        self._measure(k_meas)
        return {"residual": loss, "iterations": float(its), **self._errors()}

    def step(self, dt: float, implicit: float = 0.5) -> dict[str, float]:
        """One step ``(1 - w dt A) P' = (1 + (1 - w) dt A) P`` with ``w = implicit``: ``0.5``
        the trapezoid rule (second order), ``1`` backward Euler (damps every mode, for relaxation
        to a steady state). Also sets :attr:`step_r`, ``R(b)`` of ``P`` on the step's first
        samples, and :attr:`measured_samples`, the draws of ``P'`` the observables come from."""
        import jax

        o = self.method.options
        key, k_fit, k_val, k_meas = _split(jax.numpy.asarray(self.key), 4)
        self.key = np.asarray(key)
        c, c_old = implicit * dt, (1.0 - implicit) * dt
        theta = self.theta
        guess = theta if self.delta is None else theta + self.delta
        x = self.sample(theta, k_fit, o.n_samples)
        new, others, its = guess, [], 0
        for r in range(FIT_ROUNDS):
            if r:
                k_fit, k_more = _split(k_fit, 2)
                others.append(new)
                x = np.concatenate([x, self.sample(new, k_more, o.n_samples)])
            new, loss, n_it = self._fit_step(theta, new, x, others, c, c_old, o.inner_iter)
            its += n_it
            if not r:
                self.step_r = self.fit_r
        residual = self._residual(theta, new, k_val, c, c_old)
        self.delta = new - theta
        self.theta = new
        self._measure(k_meas)
        return {"residual": residual, "fit_residual": loss, "iterations": float(its), **self._errors()}

    def _measure(self, key) -> None:
        """Energy and observables (means, errors) on fresh samples of the current ``P``."""
        o = self.method.options
        x = self.sample(self.theta, key, o.n_samples_measure or 4 * o.n_samples)
        self.measured_samples = x

        def stats(v):
            v = np.real(v)
            return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v)))

        out = {"energy": stats(self.h_obs.local_values(x))}
        for name, (ob, entries) in self.obs.items():
            vals = np.array([stats(e.local_values(x)) for e in entries])
            out[name] = (vals[:, 0].reshape(ob.shape), vals[:, 1].reshape(ob.shape))
        self._measured = out

    def _errors(self) -> dict[str, float]:
        return {"energy_error": self._measured["energy"][1]}

    def _current(self) -> dict[str, Any]:
        if self._measured is None:  # resumed at the end of a run: measure once more, off the step keys
            import jax

            self._measure(jax.random.fold_in(jax.numpy.asarray(self.key), 7))
        return self._measured

    def energy(self) -> float:
        return self._current()["energy"][0]

    def measure_with_errors(self, names: list[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Means and Monte Carlo errors of the observables measured after the last step."""
        m = self._current()
        return {n: m[n][0] for n in names}, {n: m[n][1] for n in names}

    def measure(self, names: list[str]) -> dict[str, np.ndarray]:
        return self.measure_with_errors(names)[0]

    def probabilities(self, a: np.ndarray) -> np.ndarray:
        """``P(a)`` of the current parameters on outcome strings ``a`` ``(B, n)``: a diagnostic
        (the full distribution on small systems)."""
        return np.exp(self.log_prob(self.theta, a))

    def state_dict(self) -> dict[str, Any]:
        out = {"theta": self.theta, "key": np.asarray(self.key)}
        if self.delta is not None:
            out["delta"] = self.delta
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.theta = np.asarray(state["theta"])
        self.delta = np.asarray(state["delta"]) if "delta" in state else None
        self.key = np.asarray(state["key"]).astype(np.uint32)
        self._measured = None

    def result(self) -> dict[str, Any]:
        o = self.method.options
        return {"model": "transformer", "povm": self.povm.name, "n_samples": o.n_samples,
                "n_parameters": self.n_parameters()}
