"""Autoregressive Transformer with exact constrained direct sampling.

A decoder-only Transformer over the sites (or links) in snake order: the input at position
``k`` is the embedding of the local state at site ``k - 1`` (a start token at ``k = 0``) plus an
embedding of where site ``k`` is; causal self-attention lets position ``k`` see the states of
sites ``< k`` only, and two heads give the conditional logits and phases of site ``k``. The
conditionals are masked by the problem's sector automaton (:mod:`nqs.models.autoregressive`), so
``psi`` is normalised over the sector and sampled exactly, one cached step per site
(:mod:`nqs.sampling.direct_sampler`).

Two registry names:

* ``transformer`` for spin models on sites (``heisenberg_chain``, ``j1j2``) and the t-J model:
  a learned embedding per site; for antiferromagnets on bipartite lattices the Marshall sign is
  a fixed phase prior by default (``sign_prior``), the network's phase head learns the rest;
* ``gauge_transformer`` for ``z2_gauge``, ``u1_qlm`` and ``x_cube``: links are embedded by their
  geometry, one-hot ``x``, ``y`` (``z``) and direction of the link to predict and of the link whose state is read,
  so weights are shared between links of the same kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from netket.utils import HashableArray

from hamiltonians import Problem
from hamiltonians.lattice import LinkLattice, SquareLattice

from ..sampling.direct_sampler import make_direct_sampler
from ..sampling.projected_sampler import make_projected_sampler
from .attention import TransformerBlock, cached
from .autoregressive import (
    AR_VMC_DEFAULTS, ARAutoOptions, ConstrainedAR, ar_fields, ar_large_lattice, check_phase, check_sign_prior, check_symmetrize,
    marshall_characters, phase_is_fixed, Symmetrize, sign_prior, site_symmetries, validate_phase, validate_sign_prior, validate_symmetrize,
)
from .registry import ModelSpec, register_model

# Output heads start small: the initial state is close to the uniform superposition over the
# sector (times the sign prior), a good start for VMC, but not exactly it.
_HEAD_INIT_SCALE = 1e-2


class ARTransformer(ConstrainedAR):
    """Decoder-only Transformer giving masked conditionals (see :class:`ConstrainedAR`)."""

    site_features: HashableArray | None = None
    """``(N, F)`` description of each site: the input at position ``k`` adds a learned linear
    map of ``site_features[k]`` (one-hot site index: a learned embedding per site)."""
    d_model: int = 32
    """Width of the residual stream."""
    n_heads: int = 4
    """Attention heads."""
    n_layers: int = 2
    """Transformer blocks."""
    mlp_ratio: int = 2
    """MLP hidden width as a multiple of ``d_model``."""
    kv_heads: int | None = None
    """Key/value heads shared by the query heads (:attr:`~nqs.models.attention.CausalSelfAttention.kv_heads`);
    ``None``: one per query head."""
    param_dtype: Any = np.float64
    """Dtype of all weights (real; the phase is a real output)."""
    tabulate_first_block: bool = True
    """Sampling steps: the first block's attention reads a table of keys and values by
    position and token instead of a key/value cache
    (:meth:`~nqs.models.attention.CausalSelfAttention.step_tabulated`), the same function;
    ``False`` caches it like the later blocks (for benchmarks)."""

    def setup(self):
        d = self.local_dim
        # local states 0..d-1, and d = the start token read at k = 0
        self.value_embed = nn.Embed(d + 1, self.d_model, param_dtype=self.param_dtype, name="value_embed")
        self.site_embed = nn.Dense(self.d_model, use_bias=False, param_dtype=self.param_dtype, name="site_embed")
        self.blocks = [
            TransformerBlock(
                self.d_model, self.n_heads, self.n_sites, self.mlp_ratio, self.param_dtype, self.kv_heads, name=f"block_{i}"
            )
            for i in range(self.n_layers)
        ]
        self.norm = nn.LayerNorm(param_dtype=self.param_dtype, dtype=self.param_dtype, name="norm")
        init = nn.initializers.variance_scaling(_HEAD_INIT_SCALE, "fan_in", "truncated_normal")
        self.logit_head = nn.Dense(d, param_dtype=self.param_dtype, kernel_init=init, name="logit_head")
        if self.learn_phase:
            self.phase_head = nn.Dense(d, param_dtype=self.param_dtype, kernel_init=init, name="phase_head")

    def _features(self) -> jax.Array:
        return jnp.asarray(np.asarray(self.site_features), dtype=self.param_dtype)

    def _heads(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = self.norm(h)
        logits = self.logit_head(h)
        return logits, self.phase_head(h) if self.learn_phase else jnp.zeros_like(logits)

    def raw_conditionals(self, a: jax.Array) -> tuple[jax.Array, jax.Array]:
        start = jnp.full(a.shape[:1] + (1,), self.local_dim, dtype=a.dtype)
        tokens = jnp.concatenate([start, a[:, :-1]], axis=1)
        h = self.value_embed(tokens) + self.site_embed(self._features())[None]
        for block in self.blocks:
            h = block(h)
        return self._heads(h)

    def raw_step(
        self, a_prev: jax.Array, k: jax.Array | int, visible: int | None = None
    ) -> tuple[jax.Array, jax.Array]:
        token = jnp.where(k == 0, self.local_dim, a_prev).astype(jnp.int32)
        h = self.value_embed(token) + self.site_embed(self._features()[k])[None]
        # The first block's input at position j depends on j and on the token there only: its
        # attention reads a (positions x tokens) table and the tokens so far, not a key/value
        # cache (CausalSelfAttention.step_tabulated); the later blocks cache keys and values.
        blocks = self.blocks
        if self.tabulate_first_block:
            h = self._first_block_tabulated(h, token, k, visible)
            blocks = blocks[1:]
        for block in blocks:
            h = block.step(h, k, visible)
        return self._heads(h)

    def _first_block_tabulated(self, h: jax.Array, token: jax.Array, k: jax.Array | int, visible: int | None) -> jax.Array:
        """The first block's step from the table of its inputs (position x token) and the
        tokens read so far (kept in the cache, ``(batch, n_sites)``)."""
        n = self.n_sites if visible is None else visible
        # position 0 reads the start token only: it is stored as token 0 there, and the table's row
        # 0 holds the start token's input for every token, so the table has local_dim tokens, not
        # local_dim + 1 (each token is one more masked product in the step)
        tokens = cached(self, "tokens", (token.shape[0], self.n_sites), jnp.int32)
        tokens = jax.lax.dynamic_update_slice_in_dim(tokens, jnp.where(k == 0, 0, token)[:, None], k, axis=1)
        self.put_variable("cache", "tokens", tokens)
        embedded = self.value_embed(jnp.arange(self.local_dim + 1))  # (local_dim + 1, d_model), start token last
        inputs = jnp.broadcast_to(embedded[: self.local_dim], (n, self.local_dim, self.d_model)).at[0].set(embedded[-1])
        table = inputs + self.site_embed(self._features()[:n])[:, None]
        return self.blocks[0].step_tabulated(h, k, tokens[:, :n] if n < self.n_sites else tokens, table)


# --------------------------------------------------------------------------- options
def _check_sizes(o) -> None:
    for name in ("d_model", "n_heads", "n_layers", "mlp_ratio"):
        if getattr(o, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(o, name)}")
    if o.d_model % o.n_heads:
        raise ValueError(f"d_model ({o.d_model}) must be a multiple of n_heads ({o.n_heads})")


@dataclass
class GaugeTransformerOptions(ARAutoOptions):
    """``[method]`` keys of ``model = "gauge_transformer"`` (also the sizes of ``transformer``).

    VMC defaults: :data:`~nqs.models.autoregressive.AR_VMC_DEFAULTS` (shared with
    ``transformer``, ``ar_rnn`` and ANTN) with twice the SR step, ``0.1 -> 0.02``.
    """

    vmc_defaults: ClassVar[dict[str, Any]] = {
        **AR_VMC_DEFAULTS, "learning_rate": 0.1, "learning_rate_final": 0.02, "sr_step_cap": 0.17, "tempering": 0.5,
        "raise_step": "amplitude",
    }
    """Twice the shared step (under the shared schedule the gauge models' energy still falls
    steadily at step 300), bounded by the energy scale of the problem (``sr_step_cap``: the
    doubled step times the local-energy spread of the initial state at ``h = 0.3``, where it was
    tuned; the confined Z2 phase gets a proportionally smaller step), tempered draws
    (``tempering``) and rare configurations raised by the amplitude step (``raise_step``): with
    exact draws and the fixed step the first steps excluded loop configurations the confined
    ground state needs, and training oscillated (issue 28; ``docs/benchmarks/defaults.md``,
    "the confined Z2 phase")."""

    d_model: int = 32
    """Width of the residual stream (embedding dimension)."""
    n_heads: int = 4
    """Attention heads (``d_model`` must be a multiple)."""
    n_layers: int = 2
    """Transformer blocks."""
    mlp_ratio: int = 2
    """MLP hidden width as a multiple of ``d_model``."""
    phase: Literal["auto", "learned", "fixed"] = "auto"
    """``learned``: a phase head adds a learned phase to each conditional; ``fixed``: the phase
    is the sign prior alone (real amplitudes, SR in real mode at half the cost), exact for
    stoquastic Hamiltonians; ``auto``: fixed where the Hamiltonian is stoquastic after the sign
    prior (unfrustrated antiferromagnets with the Marshall prior, Z2 gauge and U(1) link models
    with ``J > 0``), else learned."""

    def __post_init__(self):
        _check_sizes(self)
        validate_phase(self.phase)


@dataclass
class TransformerOptions(GaugeTransformerOptions):
    """``[method]`` keys of ``model = "transformer"``: the sizes above, a sign prior, and
    ``phase = "vit"`` besides the phases of the gauge Transformer: the phase is the argument of
    a ViT (:mod:`nqs.models.vit`, default sizes) symmetrised over the space group (spin models
    on periodic lattices), the amplitude the Transformer's, so sampling stays exact."""

    vmc_defaults: ClassVar[dict[str, Any]] = AR_VMC_DEFAULTS
    """The shared autoregressive defaults: the gauge models' doubled step does worse on
    the 4x4 Heisenberg model (``docs/benchmarks/defaults.md``). From 32 sites on the schedules of
    :data:`~nqs.models.autoregressive.AR_VMC_LARGE_LATTICE` (:meth:`vmc_defaults_for`)."""

    @classmethod
    def vmc_defaults_for(cls, problem: Problem) -> dict[str, Any]:
        """The VMC defaults on ``problem``: :attr:`vmc_defaults`, with the large-lattice schedules
        (:func:`~nqs.models.autoregressive.ar_large_lattice`) from 32 sites on."""
        return {**cls.vmc_defaults, **ar_large_lattice(problem)}

    predates: ClassVar[dict[str, Any]] = {"project_amplitude": False, "real_sign": False, "attention": "multi_head"}
    """The behaviour of archives written before an option existed
    (:func:`nqs.runs.runner.archived_config`)."""

    phase: Literal["auto", "learned", "fixed", "vit"] = "auto"

    attention: Literal["multi_query", "multi_head"] = "multi_query"
    """``multi_query``: the query heads share one key and one value head
    (:attr:`~nqs.models.attention.CausalSelfAttention.kv_heads` = 1), so the key/value cache that
    every sampling step reads is ``n_heads`` times smaller (what bounds a step on a CPU; sampling
    rates in ``docs/benchmarks/ar_sampling.md``); ``multi_head``: one key and value head per
    query head (archives written before this option)."""

    sign_prior: Literal["auto", "marshall", "none"] = "auto"
    """Fixed phase added to the learned one: ``marshall`` is ``(-1)^{N_down(A)}`` on a bipartite
    lattice (exact sign of the unfrustrated antiferromagnet); ``auto`` uses it for
    antiferromagnetic spin models on bipartite lattices (not with ``marshall = true``, which
    already rotates it away), else none."""

    symmetrize: Symmetrize = "auto"
    """Average ``|psi|^2`` over site symmetries (:attr:`~nqs.models.autoregressive.ConstrainedAR.symmetries`,
    :func:`~nqs.models.autoregressive.site_symmetries`): ``|psi(a)|^2 = mean_g p(g a)``, still
    normalised and still sampled exactly (a draw of ``p`` moved by a random ``g``); each
    amplitude costs one network pass per element. ``point_group``: the 8 rotations and
    reflections of an ``L x L`` lattice (4 on a rectangle, 2 on a chain); ``translations``,
    ``space_group``: periodic lattices, ``N`` and ``8 N`` passes; ``auto``: ``point_group`` for
    spin-1/2 models, ``none`` for t-J. Measurements: ``docs/benchmarks/defaults.md``."""

    symmetric_phase: bool = False
    """With ``symmetrize``: the phase is the argument of the amplitudes summed over the images
    (:attr:`~nqs.models.autoregressive.ConstrainedAR.symmetric_phase`), so that the state is
    exactly symmetric, not its modulus alone; ``false``: the network's phase of the sampled
    configuration itself. Off by default: a probe found no gain (``docs/benchmarks/defaults.md``)."""

    project_amplitude: bool | Literal["auto"] = "auto"
    """With ``symmetrize``: average the amplitude, not its square, over the images,
    ``psi(a) = mean_g psi_AR(g a)`` (:attr:`~nqs.models.autoregressive.ConstrainedAR.project_amplitude`):
    the projection onto the group's trivial irrep, as a space-group ViT sums its images. The
    state is then no longer normalised, and the sampler becomes a Metropolis chain whose
    proposals are exact autoregressive draws (:mod:`nqs.sampling.projected_sampler`;
    ``n_chains`` chains, NetKet's ``n_discard_per_chain``); its acceptance rate is the mean of
    ``min(1, w'/w)``, ``w = |psi|^2 / mean_g p(g a)``. Runs under NetKet's sharding (the
    chains split over devices; ``tests/nqs/test_sharding.py``). The images are summed with the
    characters of the ground state's irrep where they are known
    (:func:`~nqs.models.autoregressive.marshall_characters`: those of the Marshall sign, e.g.
    the reflection of a chain of 6 sites is odd, and the trivial projection would be orthogonal
    to the ground state), else in the trivial irrep. ``auto`` (:func:`resolve_projection`): on
    where ``symmetrize`` gives images, the characters are known (bipartite antiferromagnets)
    and the phase is learned (frustrated: J1-J2 at ``J2 > 0``); off where the phase is fixed
    (the unfrustrated Heisenberg model keeps its exact sampling), for
    ``phase = "vit"``, on lattices that are not bipartite (odd tori), and without images (t-J:
    ``symmetrize = "auto"`` is ``none`` there). A level crossing into another irrep (at large
    ``J2`` on other clusters) would be missed: set ``project_amplitude = false`` there."""

    real_sign: bool | Literal["auto"] = "auto"
    """With ``project_amplitude``: each image's learned phase ``exp(i u)`` becomes a real factor
    ``tanh(1 + u)`` (the sign prior kept), so that the sign of the projected amplitude can change
    continuously (:attr:`~nqs.models.autoregressive.ConstrainedAR.real_sign`); ``auto``: with
    ``project_amplitude`` (:func:`resolve_projection`). Why, and how it was measured:
    ``docs/benchmarks/sign_structure.md``. A real factor cannot represent a complex sign structure (a state in a nontrivial momentum or
    chiral sector); set ``real_sign = false`` there."""

    def explain_auto(self, problem: Problem) -> dict[str, tuple[Any, str]]:
        """The shared autoregressive rules (:func:`~nqs.models.autoregressive.explain_ar_autos`)
        and the projection flags (:func:`resolve_projection`), ``{key: (value, reason)}``."""
        out = super().explain_auto(problem)
        project, real = resolve_projection(problem, self)
        if self.project_amplitude == "auto":
            out["project_amplitude"] = (project, (
                "symmetry images with a known ground-state irrep (bipartite antiferromagnet) and a learned phase"
                if project else
                "no images with a known irrep, or a phase that is not learned: the sampled amplitude is used as is"
            ))
        if self.real_sign == "auto":
            out["real_sign"] = (real, "follows project_amplitude")
        return out

    def __post_init__(self):
        _check_sizes(self)
        validate_symmetrize(self.symmetrize)
        if self.phase != "vit":
            validate_phase(self.phase)
        validate_sign_prior(self.sign_prior)
        if self.attention not in ("multi_query", "multi_head"):
            raise ValueError(f"attention must be 'multi_query' or 'multi_head', got {self.attention!r}")


# --------------------------------------------------------------------------- building
def link_features(lattice: LinkLattice) -> np.ndarray:
    """``(n_links, 2 (Lx + Ly + 2))``: one-hot ``x``, ``y``, direction of link ``k`` and of link
    ``k - 1`` (zeros for ``k = 0``), links in the problem's order (``2 v`` along +x, ``2 v + 1``
    along +y from vertex ``v``). On a cubic link lattice ``(n_links, 2 (Lx + Ly + Lz + 3))``:
    one-hot ``x``, ``y``, ``z`` and the direction (``3 v + d``)."""
    sides = (lattice.Lx, lattice.Ly) + (() if lattice.Lz is None else (lattice.Lz,))
    d = lattice.dim
    offsets = np.concatenate([[0], np.cumsum(sides)])
    geo = np.zeros((lattice.n_links, int(offsets[-1]) + d))
    for v, c in enumerate(lattice.sites.coords):
        for direction in range(d):
            link = d * v + direction
            geo[link, offsets[:-1] + c] = 1.0
            geo[link, offsets[-1] + direction] = 1.0
    previous = np.zeros_like(geo)
    previous[1:] = geo[:-1]
    return np.concatenate([geo, previous], axis=1)


def resolve_projection(problem: Problem, o: TransformerOptions) -> tuple[bool, bool]:
    """``(project_amplitude, real_sign)`` of the options on ``problem``, ``"auto"`` resolved:
    the amplitude is projected where ``symmetrize`` gives images, the irrep of the ground state
    is known (:func:`~nqs.models.autoregressive.marshall_characters`: bipartite
    antiferromagnets) and the Transformer learns the phase (not ``phase = "vit"``, not a phase
    fixed by a stoquastic Hamiltonian), and ``real_sign`` follows ``project_amplitude``. Call on options that pass
    :func:`check_transformer`'s symmetry check."""
    project = o.project_amplitude
    if project == "auto":
        symmetries = site_symmetries(problem, o.symmetrize)
        project = (
            o.phase != "vit"
            and marshall_characters(problem, symmetries) is not None
            and not phase_is_fixed(problem, o.phase, sign_prior(problem, o.sign_prior))
        )
    real = project if o.real_sign == "auto" else o.real_sign
    return bool(project), bool(real)


def build_transformer(problem: Problem, o: TransformerOptions) -> ARTransformer:
    prior = sign_prior(problem, o.sign_prior)
    project, real = resolve_projection(problem, o)
    if o.phase == "vit":
        from . import vit

        phase_net = vit.build(problem, vit.ViTOptions(symmetrize="space_group", sign_prior="none", precision="double"))
        learn = False
    else:
        phase_net, learn = None, not phase_is_fixed(problem, o.phase, prior)
    symmetries = site_symmetries(problem, o.symmetrize)
    return ARTransformer(
        **ar_fields(problem),
        phase_prior=prior,
        phase_net=phase_net,
        learn_phase=learn,
        symmetries=symmetries,
        # the irrep of the summed images; the trivial one where no argument fixes it
        image_characters=marshall_characters(problem, symmetries) if project or o.symmetric_phase else None,
        symmetric_phase=o.symmetric_phase,
        project_amplitude=project,
        real_sign=real,
        site_features=HashableArray(np.eye(problem.n_sites)),
        d_model=o.d_model, n_heads=o.n_heads, n_layers=o.n_layers, mlp_ratio=o.mlp_ratio,
        kv_heads=1 if o.attention == "multi_query" else None,
    )


def build_gauge_transformer(problem: Problem, o: GaugeTransformerOptions) -> ARTransformer:
    return ARTransformer(
        **ar_fields(problem),
        learn_phase=not phase_is_fixed(problem, o.phase, None),
        site_features=HashableArray(link_features(problem.geometry)),
        d_model=o.d_model, n_heads=o.n_heads, n_layers=o.n_layers, mlp_ratio=o.mlp_ratio,
    )


def check_transformer(problem: Problem, o: TransformerOptions) -> str | None:
    """``ModelSpec.check``: the sign prior and phase options suit the problem."""
    if o.phase == "vit":
        from . import vit

        reason = vit._fits(problem) or vit.check(problem, vit.ViTOptions(symmetrize="space_group", sign_prior="none", precision="double"))
        if reason:
            return f"phase 'vit' uses a ViT of the configuration: {reason}; use phase = 'learned'"
    reason = check_symmetrize(problem, o.symmetrize)
    # explicit ``true`` only: ``auto`` resolves to false where these do not apply
    for name in ("symmetric_phase", "project_amplitude"):
        if reason is None and getattr(o, name) is True and site_symmetries(problem, o.symmetrize) is None:
            reason = (
                f"{name} sums over the images of symmetrize, which is {o.symmetrize!r} (no images) "
                f"here; set symmetrize = 'point_group' or {name} = false"
            )
    if reason is None and o.project_amplitude is True and o.phase == "vit":
        reason = "project_amplitude sums the Transformer's own phases over the images; use phase = 'auto' with it"
    reason = reason or check_sign_prior(problem, o)
    if reason is None and o.real_sign is True and not resolve_projection(problem, o)[0]:
        reason = (
            "real_sign sets the sign factors of the images that project_amplitude sums, which is off here "
            "(no images, or a phase that is not learned); set project_amplitude = true with it, or real_sign = false"
        )
    return reason


def make_transformer_sampler(problem: Problem, hilbert, hamiltonian, vmc_options) -> Any:
    """``ModelSpec.make_sampler``: the exact direct sampler, or, where the amplitude is projected
    over symmetries (:func:`resolve_projection`), Metropolis chains with exact draws as
    proposals (:mod:`nqs.sampling.projected_sampler`)."""
    o = getattr(vmc_options, "model_options", None) or TransformerOptions()
    if resolve_projection(problem, o)[0]:
        return make_projected_sampler(problem, hilbert, vmc_options)
    return make_direct_sampler(problem, hilbert, hamiltonian, vmc_options)


def fits_sites(problem: Problem) -> str | None:
    if isinstance(problem.geometry, LinkLattice):
        return "gauge models live on links: use model 'gauge_transformer'"
    space = problem.local_space
    labels = space.netket_values is not None and not space.fermionic  # e.g. anyon fusion-path labels
    if not isinstance(problem.geometry, SquareLattice) or not (space.name in ("spin_half", "tj_site") or labels):
        return "transformer handles spin-1/2, t-J and label (anyon chain) models on square lattices and chains"
    return None


def fits_links(problem: Problem) -> str | None:
    if not isinstance(problem.geometry, LinkLattice):
        return "gauge_transformer handles gauge models on links (z2_gauge, u1_qlm, x_cube); use 'transformer'"
    if problem.local_space.name not in ("spin_half", "z2_link"):
        return f"no conversion for the local space {problem.local_space.name!r}"
    return None


register_model(
    ModelSpec(
        "transformer", TransformerOptions, build_transformer, fits_sites,
        "autoregressive Transformer, exact constrained draws (spins, t-J)",
        direct=True, make_sampler=make_transformer_sampler, check=check_transformer,
    )
)
register_model(
    ModelSpec(
        "gauge_transformer", GaugeTransformerOptions, build_gauge_transformer, fits_links,
        "autoregressive Transformer on links, Gauss's law by masking (z2_gauge, u1_qlm, x_cube)",
        direct=True, make_sampler=make_direct_sampler, check=check_phase,
    )
)
