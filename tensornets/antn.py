"""ANTN: an MPS times an autoregressive Transformer, exactly normalised on the symmetry sector;
the ``kind = "antn"`` method of ``nqs run`` (Chen et al., "ANTN: Bridging autoregressive neural
networks and tensor networks for quantum many-body simulation", NeurIPS 2023).

Conventions: ``N`` sites in snake order, local basis indices ``a_k in 0..d-1``, the sector
automaton ``t_k(sigma, s)`` of :meth:`hamiltonians.Problem.automaton`. A real MPS
``Phi(a) = l^T A_0[a_0] ... A_{N-1}[a_{N-1}] r`` (bond dimension ``D = bond_dim``) gives exact
sector-projected conditionals ``q_k(s | a_<k)`` from its right environments summed over the
sector completions (one right-to-left pass per parameter update) and a normalised prefix
vector (the cached state of a sampling step). A decoder-only Transformer
(:class:`nqs.models.transformer.ARTransformer`) gives logits ``f_k`` and phases ``phi_k``; the
ANTN conditional is the product of the two experts, ``p_k ∝ q_k exp f_k`` over the allowed
``s``, masked and normalised by :class:`~nqs.models.autoregressive.ConstrainedAR`. The phase of
site ``k`` is ``phi_k``, plus ``pi`` at the last site where ``Phi < 0``, plus the optional fixed
sign prior (Marshall by default on bipartite antiferromagnets).

Guarantees: ``psi`` is normalised over the sector for any parameters, zero outside it, and
sampled exactly one site at a time (one ``D x D`` product per local state plus one cached
Transformer step); with ``network = false``, or the Transformer's heads at zero, it is exactly
the sector-projected MPS. With ``symmetrize`` (the point group on spins by default) ``|psi|^2``
is averaged over the group as for ``model = "transformer"``, and the MPS sign leaves the phase.

The method is :class:`nqs.vmc.VMC` (same loop, archive, checkpoints, resume) with this model and
the exact sampler; importing this module registers ``antn`` for VMC too. In full: ``docs/methods/antn.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from netket.utils import HashableArray

from hamiltonians import Problem
from hamiltonians.lattice import SquareLattice
from nqs.runs.config import ConfigError, parse_options
from nqs.models import ModelSpec, model_names, register_model
from nqs.models.attention import cached
from nqs.models.autoregressive import (
    AR_VMC_DEFAULTS, ARAutoOptions, Symmetrize, ar_fields, ar_large_lattice, automaton_states, check_symmetrize, sign_prior, site_symmetries,
    validate_sign_prior, validate_symmetrize,
)
from nqs.models.transformer import ARTransformer
from nqs.sampling.direct_sampler import make_direct_sampler
from nqs.vmc import VMC, VMCOptions

# Initial MPS tensors: identity plus this much noise (relative to the identity's entries). At
# zero noise Phi is uniform and every bond carries one channel; the noise breaks that symmetry
# while keeping the starting state close to the uniform superposition over the sector.
_MPS_INIT_NOISE = 0.1
# Floor of the MPS conditional before its log: an allowed state with q = 0 exactly (measure
# zero for generic tensors) gets a large negative but finite logit instead of -inf.
_Q_FLOOR = 1e-300


class ANTNModel(ARTransformer):
    """MPS x Transformer conditionals (construction in the module docstring)."""

    bond_dim: int = 8
    """Bond dimension ``D`` of the MPS (all bonds)."""
    network: bool = True
    """``False``: no Transformer, the state is the sector-projected MPS alone."""
    sample_dtype: Any = None
    """Sampling runs in the parameters' precision: the MPS conditional is a ratio of
    contractions floored at 1e-300 before its log, which single precision would not hold."""

    def setup(self):
        if self.network:
            super().setup()
        n, d, D = self.n_sites, self.local_dim, self.bond_dim

        def tensors_init(key, shape, dtype=self.param_dtype):
            return jnp.eye(D, dtype=dtype) + _MPS_INIT_NOISE * jax.random.normal(key, shape, dtype)

        def boundary_init(key, shape, dtype=self.param_dtype):
            return jnp.zeros(shape, dtype).at[0].set(1.0) + _MPS_INIT_NOISE * jax.random.normal(key, shape, dtype)

        self.tensors = self.param("mps_tensors", tensors_init, (n, d, D, D))
        self.left = self.param("mps_left", boundary_init, (D,))
        self.right = self.param("mps_right", boundary_init, (D,))

    # ----------------------------------------------------------- MPS pieces
    @property
    def _mps_signed(self) -> bool:
        """Whether ``sign Phi(a)`` enters the phase: not under a symmetry average, where the
        modulus no longer vanishes with ``Phi(a)``, so the sign would make ``psi`` jump where
        ``Phi(a)`` changes sign (gradients blind to the jumps)."""
        return self.symmetries is None

    def _table(self) -> jax.Array:
        return jnp.asarray(np.asarray(self.automaton))

    def _right_environments(self) -> jax.Array:
        """``R_{k}[sigma]`` for ``k = 1 .. N``: ``(N, S, D, D)``, entry ``k - 1`` is ``R_k``."""
        table = self._table()
        n, s_max = table.shape[:2]
        r_last = jnp.broadcast_to(jnp.outer(self.right, self.right), (s_max,) + (self.bond_dim,) * 2)

        def site(r_next, inputs):
            a_k, t_k = inputs  # (d, D, D), (S, d)
            # environment after each allowed transition; forbidden ones contribute nothing
            r_after = jnp.where((t_k >= 0)[..., None, None], r_next[jnp.maximum(t_k, 0)], 0.0)
            r_k = jnp.einsum("sij,qsjl,slm->qim", a_k, r_after, jnp.swapaxes(a_k, -1, -2))
            return r_k / jnp.max(jnp.abs(r_k)), r_next

        _, envs = jax.lax.scan(site, r_last, (self.tensors, table), reverse=True)
        return envs  # envs[k] = R_{k+1} (the carry before processing site k)

    def _mps_logits(self, ell: jax.Array, sigma: jax.Array, k: jax.Array, envs_k: jax.Array):
        """``log q_k`` ``(B, d)`` (unnormalised) and the MPS phase ``(B, d)`` at site ``k`` from the
        prefix vector ``ell`` ``(B, D)`` and automaton state ``sigma`` ``(B,)``; ``envs_k`` is
        ``R_{k+1}`` ``(S, D, D)``."""
        last = jnp.logical_and(k == self.n_sites - 1, self._mps_signed)
        return _mps_conditional(self.tensors[k], self.right, self._table()[k], ell, sigma, last, envs_k)

    @staticmethod
    def _normalised(v: jax.Array) -> jax.Array:
        return v / jnp.linalg.norm(v, axis=-1, keepdims=True)

    # ----------------------------------------------------------- protocol
    def raw_conditionals(self, a: jax.Array) -> tuple[jax.Array, jax.Array]:
        envs = self._right_environments()
        states, _ = automaton_states(self._table(), a)
        # built on a slice of ``a``, not broadcast: inside NetKet's shard_map (on-the-fly SR) the
        # scan carry must have the same varying-axis type as the scanned configurations
        ell0 = jnp.zeros_like(a[:, :1], dtype=self.left.dtype) + self._normalised(self.left)

        def advance(ell, inputs):
            a_k, t_k = inputs  # (B,), (d, D, D)
            return self._normalised(jnp.einsum("bi,bij->bj", ell, t_k[a_k])), ell

        _, ells = jax.lax.scan(advance, ell0, (a.T, self.tensors))  # ells[k] = ell_k
        last = jnp.logical_and(jnp.arange(self.n_sites) == self.n_sites - 1, self._mps_signed)
        logits, phases = jax.vmap(_mps_conditional, in_axes=(0, None, 0, 0, 1, 0, 0), out_axes=1)(
            self.tensors, self.right, self._table(), ells, states, last, envs
        )
        if self.network:
            net_logits, net_phases = super().raw_conditionals(a)
            logits, phases = logits + net_logits, phases + net_phases
        return logits, phases

    def raw_step(
        self, a_prev: jax.Array, k: jax.Array | int, visible: int | None = None
    ) -> tuple[jax.Array, jax.Array]:
        table = self._table()
        batch = a_prev.shape[0]
        km1 = jnp.maximum(k - 1, 0)
        ell = cached(self, "mps_prefix", (batch, self.bond_dim), self.param_dtype)
        sigma = cached(self, "mps_automaton_state", (batch,), jnp.int32)
        ell_new = self._normalised(jnp.einsum("bi,bij->bj", ell, self.tensors[km1][a_prev]))
        ell = jnp.where(k == 0, self._normalised(self.left)[None], ell_new)
        sigma = jnp.where(k == 0, 0, jnp.maximum(jnp.take_along_axis(table[km1][sigma], a_prev[:, None], axis=-1)[:, 0], 0))
        self.put_variable("cache", "mps_prefix", ell)
        self.put_variable("cache", "mps_automaton_state", sigma)
        logits, phases = self._mps_logits(ell, sigma, k, self._right_environments()[k])
        if self.network:
            net_logits, net_phases = super().raw_step(a_prev, k, visible)
            logits, phases = logits + net_logits, phases + net_phases
        return logits, phases


def _mps_conditional(a_k, right, t_k, ell, sigma, last, r_next):
    """``log q_k(s)`` (unnormalised, ``(B, d)``) and the MPS phase ``(B, d)`` of one site: tensors
    ``a_k`` ``(d, D, D)``, automaton table ``t_k`` ``(S, d)``, prefix vectors ``ell`` ``(B, D)``
    and automaton states ``sigma`` ``(B,)``, right environments ``r_next = R_{k+1}`` ``(S, D,
    D)``; the sign of ``Phi`` goes into the phase when ``last``."""
    u = jnp.einsum("bi,sij->bsj", ell, a_k)
    nxt = jnp.maximum(t_k[sigma], 0)  # (B, d); forbidden states are masked by the base class
    q = jnp.einsum("bsi,bsij,bsj->bs", u, r_next[nxt], u)
    negative = jnp.logical_and(last, u @ right < 0)
    return jnp.log(jnp.maximum(q, _Q_FLOOR)), jnp.pi * negative.astype(u.dtype)


# --------------------------------------------------------------------------- options
@dataclass
class ANTNModelOptions(ARAutoOptions):
    """Hyperparameters of the ANTN ansatz (``[method]`` keys of ``kind = "antn"``)."""

    bond_dim: int = 8
    """MPS bond dimension ``D``."""
    network: bool = True
    """Multiply the MPS conditionals by the Transformer's (``false``: the plain sector-projected
    MPS, trained by the same VMC loop)."""
    d_model: int = 32
    """Transformer width (embedding dimension)."""
    n_heads: int = 4
    """Attention heads (``d_model`` must be a multiple)."""
    n_layers: int = 2
    """Transformer blocks."""
    mlp_ratio: int = 2
    """MLP hidden width as a multiple of ``d_model``."""
    sign_prior: Literal["auto", "marshall", "none"] = "auto"
    """Fixed phase added to the learned ones (see ``model = "transformer"``): ``auto`` is the
    Marshall sign for antiferromagnets on bipartite lattices, else none."""
    symmetrize: Symmetrize = "auto"
    """Average ``|psi|^2`` over site symmetries, as for ``model = "transformer"``
    (:func:`~nqs.models.autoregressive.site_symmetries`; ``auto``: the point group for spin-1/2
    models, none for t-J): ``|psi(a)|^2 = mean_g p(g a)``, still normalised and sampled
    exactly, one pass of MPS and network per element for every amplitude. The sign of ``Phi`` then leaves the phase (see
    the module docstring). Measurements: ``docs/benchmarks/defaults.md``."""

    def __post_init__(self):
        for name in ("bond_dim", "d_model", "n_heads", "n_layers", "mlp_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        validate_sign_prior(self.sign_prior)
        validate_symmetrize(self.symmetrize)


def build_antn(problem: Problem, o: ANTNModelOptions) -> ANTNModel:
    """The ANTN of a problem (sites in the problem's snake order)."""
    return ANTNModel(
        # the MPS factor is the ANTN's own base distribution (uniform over the sector for
        # identity tensors), so no second uniform base
        **ar_fields(problem, uniform_base=False),
        phase_prior=sign_prior(problem, o.sign_prior),
        symmetries=site_symmetries(problem, o.symmetrize),
        site_features=HashableArray(np.eye(problem.n_sites)),
        d_model=o.d_model, n_heads=o.n_heads, n_layers=o.n_layers, mlp_ratio=o.mlp_ratio,
        bond_dim=o.bond_dim, network=o.network,
    )


def fits(problem: Problem) -> str | None:
    if not isinstance(problem.geometry, SquareLattice) or problem.local_space.name not in ("spin_half", "tj_site"):
        return "antn handles spin-1/2 and t-J models on square lattices and chains"
    return None


def check(problem: Problem, o: ANTNModelOptions) -> str | None:
    reason = check_symmetrize(problem, o.symmetrize)
    if reason:
        return reason
    if o.sign_prior == "marshall":
        try:
            sign_prior(problem, "marshall")
        except ValueError as err:
            return str(err)
    return None


MODEL = "antn"
if MODEL not in model_names():
    register_model(
        ModelSpec(
            MODEL, ANTNModelOptions, build_antn, fits,
            "MPS x autoregressive Transformer (ANTN), exact constrained sampling (spins, t-J)",
            direct=True, make_sampler=make_direct_sampler, check=check,
        )
    )


# --------------------------------------------------------------------------- the method
_VMC_KEYS = (
    "n_iter", "seed", "n_samples", "optimizer", "learning_rate", "learning_rate_final",
    "diag_shift", "diag_shift_final", "momentum", "on_the_fly", "chunk_size", "n_samples_final",
    "local_energies",
)
"""VMC options that apply to the ANTN (no Markov-chain keys: sampling is exact)."""


def _options_class() -> type:
    """``ANTNOptions``: the model's fields, then the VMC keys above with the defaults of the
    autoregressive models (:data:`~nqs.models.autoregressive.AR_VMC_DEFAULTS`), else VMC's:
    the same budget as a ``transformer`` run with the same keys."""
    vmc = {f.name: f for f in dataclasses.fields(VMCOptions)}
    hints = VMCOptions.__annotations__
    fields = [
        (name, hints[name], dataclasses.field(default=AR_VMC_DEFAULTS.get(name, vmc[name].default)))
        for name in _VMC_KEYS
    ]
    return dataclasses.make_dataclass(
        "ANTNOptions", fields, bases=(ANTNModelOptions,), namespace={"__module__": __name__}
    )


ANTNOptions = _options_class()
ANTNOptions.__doc__ = """``[method]`` keys of ``kind = "antn"``: the model's (:class:`ANTNModelOptions`)
and the VMC keys ``n_iter``, ``seed``, ``n_samples``, ``optimizer``, ``learning_rate[_final]``,
``diag_shift[_final]``, ``momentum``, ``on_the_fly``, ``chunk_size``, ``n_samples_final``,
``local_energies`` (see :class:`nqs.vmc.VMCOptions`). From 32 sites on the schedules default to those of
:data:`~nqs.models.autoregressive.AR_VMC_LARGE_LATTICE`."""


def vmc_options(o: Any) -> VMCOptions:
    """The :class:`~nqs.vmc.VMCOptions` of an ``ANTNOptions``; raises ``ValueError`` on bad
    values (VMC's own checks)."""
    out = VMCOptions(model=MODEL, n_chains=1, **{name: getattr(o, name) for name in _VMC_KEYS})
    out.model_options = ANTNModelOptions(**{f.name: getattr(o, f.name) for f in dataclasses.fields(ANTNModelOptions)})
    return out


class ANTN(VMC):
    """Variational Monte Carlo of the ANTN with exact sampling (see module docstring)."""

    kind = "antn"
    Options = ANTNOptions

    @classmethod
    def parse_options(cls, table: dict[str, Any], problem: Problem, where: str) -> Any:
        # from 32 sites on the large-lattice schedules replace the defaults; keys written win
        table = {**ar_large_lattice(problem), **table}
        options = parse_options(ANTNOptions, table, where, ignore={"kind"})
        try:
            vmc = vmc_options(options)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
        VMC.check(problem, vmc, where)
        return options

    @classmethod
    def check(cls, problem: Problem, options: Any, where: str) -> None:
        VMC.check(problem, vmc_options(options), where)

    def __init__(self, problem: Problem, options: Any):
        super().__init__(problem, vmc_options(options))
        self.antn_options = options
