"""Protocol shared by the constrained autoregressive ansätze (Transformer, RNN, ANTN).

An autoregressive (AR) model writes the wavefunction of a configuration ``a = (a_0 .. a_{N-1})``
of *local basis indices* in snake order (:mod:`hamiltonians.lattice`) as

    log psi(a) = 1/2 sum_k log p_k(a_k | a_<k) + i sum_k phi_k(a_k | a_<k),

with conditionals ``p_k`` **masked by the problem's sector automaton**
(:meth:`hamiltonians.Problem.automaton`) and renormalised over the local states that keep the
prefix completable, ``p_k(s) ∝ exp(b_k(s) + f_k(s))``: network logits ``f_k`` over a fixed base
``b_k`` (:attr:`ConstrainedAR.base_log_p`) that makes zero logits the uniform superposition of
the sector. Guarantees: ``sum_a |psi(a)|^2 = 1`` exactly over the sector, ``psi = 0`` outside
it, exact independent samples site by site
(:class:`nqs.sampling.direct_sampler.ConstrainedDirectSampler`); the summed phases ``phi_k``
(plus an optional fixed ``phase_prior[k, a]`` such as the Marshall sign) can represent any sign
structure.

A subclass of :class:`ConstrainedAR` (a ``flax.linen`` module using ``setup``) implements
``raw_conditionals(a)`` (teacher forcing: ``(B, N)`` -> logits and phases ``(B, N, d)``, entry
``k`` depending on ``a[:, :k]`` only) and ``raw_step(a_prev, k, visible)`` (one site from the
``"cache"`` collection, equal to entry ``k`` of the former when called for ``k = 0, 1, ...``).
The base class provides ``__call__`` on NetKet configurations, ``log_psi_local``, the masked
``conditionals`` and ``conditional_step``. Build with ``Model(**ar_fields(problem), ...)``, register
with ``direct=True, make_sampler=make_direct_sampler``; the full contract: ``docs/adding-an-ansatz.md``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from netket.utils import HashableArray

from hamiltonians import Problem
from hamiltonians.lattice import LinkLattice, SquareLattice
from hamiltonians.local_spaces import SPIN_HALF, TJ_SITE, Z2_LINK

from .attention import cached
from .chunking import map_in_chunks

LOCAL_SPACES = {s.name: s for s in (SPIN_HALF, Z2_LINK, TJ_SITE)}
"""Local spaces the AR models convert from NetKet configurations."""


# --------------------------------------------------------------------------- conversions
def configs_to_local(space: str, x: jax.Array) -> jax.Array:
    """NetKet configurations ``(..., n_netket)`` -> local basis indices ``(..., N)`` (int32).

    Spins and links: the NetKet value ``netket_values[i]`` (+1 -> 0, -1 -> 1). t-J
    (``TJFermions``): ``N`` down occupations then ``N`` up occupations -> 0 hole, 1 up, 2 down.
    """
    if space == TJ_SITE.name:
        n = x.shape[-1] // 2
        return (x[..., n:] + 2 * x[..., :n]).astype(jnp.int32)
    values = LOCAL_SPACES[space].netket_values
    if values is None:
        raise ValueError(f"no NetKet representation for local space {space!r}")
    return jnp.argmax(x[..., None] == jnp.asarray(values, dtype=x.dtype), axis=-1).astype(jnp.int32)


def local_to_configs(space: str, a: jax.Array, dtype: Any = jnp.float64) -> jax.Array:
    """Local basis indices ``(..., N)`` -> NetKet configurations (inverse of
    :func:`configs_to_local`)."""
    if space == TJ_SITE.name:
        return jnp.concatenate([a == 2, a == 1], axis=-1).astype(dtype)
    values = LOCAL_SPACES[space].netket_values
    return jnp.asarray(values, dtype=dtype)[a]


def automaton_states(table: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Automaton states before each site, ``(B, N)`` int (0 once a prefix has left the sector),
    and whether each configuration lies in the sector, ``(B,)`` bool."""

    def advance(s, inputs):
        t_k, a_k = inputs
        nxt = jnp.take_along_axis(t_k[jnp.maximum(s, 0)], a_k[:, None], axis=-1)[:, 0]
        nxt = jnp.where(s < 0, -1, nxt)
        return nxt, s

    s0 = jnp.zeros_like(a[:, 0])  # derived from a: inherits its sharding inside shard_map
    final, before = jax.lax.scan(advance, s0, (table, a.T))
    return jnp.maximum(before.T, 0), final >= 0


def masked_log_softmax(logits: jax.Array, mask: jax.Array) -> jax.Array:
    """``log p`` over the last axis restricted to ``mask`` (``-inf`` elsewhere); at least one
    entry of every row must be allowed."""
    return jax.nn.log_softmax(jnp.where(mask, logits, -jnp.inf), axis=-1)


# --------------------------------------------------------------------------- the base module
class ConstrainedAR(nn.Module):
    """Base of the constrained autoregressive models (protocol in the module docstring).

    Subclasses define their layers in ``setup`` and implement :meth:`raw_conditionals` and
    :meth:`raw_step`.
    """

    local_space: str = "spin_half"
    """Name of the local space (``spin_half``, ``z2_link``, ``tj_site``): fixes the conversion
    of NetKet configurations."""
    automaton: HashableArray | None = None
    """Padded sector automaton table ``(N, S_max, d)`` int32, ``problem.automaton().padded()[0]``."""
    phase_prior: HashableArray | None = None
    """Fixed phase ``(N, d)`` added to the network's ``phi_k(a)`` (``None``: none)."""
    base_log_p: HashableArray | None = None
    """``(N, S_max, d)`` log-conditionals of the uniform distribution over the sector (the
    fraction of sector completions that go through local state ``a`` at site ``k`` from
    automaton state ``s``), added to the network's logits: with zero logits the model *is* the
    uniform superposition of the sector (times the sign prior), not merely uniform site by
    site. ``None``: no base (plain masked softmax)."""
    phase_net: Any = None
    """A flax module of whole NetKet configurations returning complex log-amplitudes whose
    *argument* is the phase of the state (the prior is still added; the conditional phases are
    then unused, ``learn_phase = False``). Sampling depends on the moduli alone, so it stays
    exact. E.g. a space-group-symmetrised ViT, whose sum over symmetry images builds sign
    structure that a sum of per-site phases does not find (``transformer``, ``phase = "vit"``)."""
    learn_phase: bool = True
    """Whether the network outputs phases; ``False``: the phase is the prior alone (exact for
    stoquastic problems, :func:`phase_is_fixed`), the amplitudes are real and SR runs in real
    mode at half the cost."""
    sample_dtype: Any = np.float32
    """Floating dtype in which the direct sampler runs the cached steps (``None``: the
    parameters' own). Drawing a local state needs its conditional probabilities to about 1e-7
    only, far below any statistical resolution, and single precision halves the memory traffic
    of the key/value cache: the Transformer samples 1.5x faster on 6x6 and 2.2x on 10x10
    (``bench/ar_sampling.py``). The masks stay exact (forbidden states get ``-inf``), and
    ``log psi`` for local energies and gradients keeps the parameters' precision."""
    symmetries: HashableArray | None = None
    """``(G, N)`` site permutations forming a group, identity first (:func:`site_symmetries`):
    the probability is averaged over their images, ``|psi(a)|^2 = mean_g p(a[perm_g])``, the
    phase is the network's (and the prior's) on ``a`` itself. The average is still normalised
    and still sampled exactly: the direct sampler draws ``a`` from ``p`` and returns
    ``a[perm_g]`` for a uniformly random ``g``. Each amplitude costs ``G`` passes of the
    network (sampling itself does not). ``None``: no averaging."""
    symmetric_phase: bool = False
    """With ``symmetries``: the phase is the argument of ``sum_g sqrt(p(g a)) exp(i phi(g a))``
    (``phi`` the network's phase plus the prior) instead of ``phi(a)``. The sum runs over the
    orbit of ``a``, so ``psi(g a) = psi(a)`` exactly: the state lies in the group's trivial
    irrep, modulus and phase alike, as projecting the amplitude would make it, while the
    modulus (and so the normalisation and the exact sampling) stays the averaged one."""
    project_amplitude: bool = False
    """With ``symmetries``: the amplitude itself is averaged, ``psi(a) = mean_g sqrt(p(g a))
    exp(i phi(g a))`` -- the projection of the autoregressive state onto the group's trivial
    irrep, whose images interfere (they can cancel, which an averaged modulus cannot). It is no
    longer normalised (``sum_a |psi(a)|^2 <= 1``) nor sampled exactly: the sampler is
    :class:`~nqs.sampling.projected_sampler.ARProposalRule`'s Metropolis chain, whose proposals
    are exact draws of ``q(a) = mean_g p(g a)`` (:meth:`log_proposal`), accepted with
    probability ``min(1, w(a') / w(a))``, ``w = |psi|^2 / q <= 1``. Overrides
    ``symmetric_phase`` (the phase is then the argument of the same sum)."""
    image_characters: HashableArray | None = None
    """``(G,)`` characters ``chi(g) = +-1`` of the one-dimensional irrep onto which
    :attr:`project_amplitude` (and :attr:`symmetric_phase`) project: the images are summed as
    ``sum_g chi(g) psi_AR(g a)``, so that ``psi(g a) = chi(g) psi(a)``. ``None``: the trivial
    irrep. The ground state of an antiferromagnet transforms like its Marshall sign
    (:func:`marshall_characters`): odd under the reflection of a chain of ``4n + 2`` sites,
    where the trivial irrep would miss it."""
    real_sign: bool = False
    """With :attr:`project_amplitude`: each image contributes ``sqrt(p(g a)) exp(i prior(g a))
    tanh(1 + u(g a))`` instead of ``sqrt(p(g a)) exp(i phi(g a))``, ``u`` the network's phase
    output without the prior (the sum of its per-site phases): a real factor in ``[-1, 1]``
    that changes sign continuously through zero. A learned *phase* cannot leave a real sign
    structure: at real amplitudes (a sign prior, phases near zero) and a real Hamiltonian the
    local energies are real, so the energy gradient along any pure phase direction vanishes,
    and flipping a sign means turning through complex amplitudes, which costs energy on the way
    (``bench/sign_structure.py``: every Transformer trained with phases kept the Marshall sign
    exactly). ``|factor| <= 1`` keeps ``|psi|^2 <= q``, the bound of the Metropolis sampler."""
    eval_chunk: int | None = 256
    """``__call__`` evaluates batches larger than this in chunks of this many configurations,
    one after the other (same result): on CPU the cost is memory traffic, and small chunks
    keep the activations in cache (about 2x faster local energies). ``None``: all at once."""

    # ----------------------------------------------------------- sizes
    @property
    def n_sites(self) -> int:
        return int(np.asarray(self.automaton).shape[0])

    @property
    def local_dim(self) -> int:
        return int(np.asarray(self.automaton).shape[2])

    # ----------------------------------------------------------- to implement
    def raw_conditionals(self, a: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Unmasked ``(logits, phases)`` ``(B, N, d)`` of all sites, causal in ``a`` ``(B, N)``."""
        raise NotImplementedError

    def raw_step(
        self, a_prev: jax.Array, k: jax.Array | int, visible: int | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """Unmasked ``(logits, phases)`` ``(B, d)`` of site ``k`` from the cache and ``a_prev``;
        cached positions ``>= visible`` (static, ``> k``) need not be read."""
        raise NotImplementedError

    # ----------------------------------------------------------- provided
    def _phases(self, phases: jax.Array, k: jax.Array | None = None) -> jax.Array:
        if self.phase_prior is None:
            return phases
        prior = jnp.asarray(np.asarray(self.phase_prior), dtype=phases.dtype)
        return phases + (prior if k is None else prior[k])

    def conditionals(self, a: jax.Array, with_prior: bool = True) -> tuple[jax.Array, jax.Array]:
        """Masked, normalised ``(log_p, phases)`` ``(B, N, d)`` for local indices ``a`` ``(B, N)``
        (teacher forcing); the phases without the prior if not ``with_prior``."""
        table = jnp.asarray(np.asarray(self.automaton))
        logits, phases = self.raw_conditionals(a)
        states, _ = automaton_states(table, a)
        sites = jnp.arange(self.n_sites)[None, :]
        mask = table[sites, states] >= 0
        if self.base_log_p is not None:
            logits = logits + jnp.asarray(np.asarray(self.base_log_p), logits.dtype)[sites, states]
        return masked_log_softmax(logits, mask), self._phases(phases) if with_prior else phases

    def conditional_step(
        self, a_prev: jax.Array, k: jax.Array | int, visible: int | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """Masked, normalised ``(log_p, phases)`` ``(B, d)`` of site ``k`` given the local state
        ``a_prev`` ``(B,)`` drawn at site ``k - 1``; call in order ``k = 0, 1, ...`` with
        ``mutable=["cache"]``. ``visible``: a static bound ``> k`` on the cached positions the
        model reads (``None``: all of them; same result, less work for attention)."""
        table = jnp.asarray(np.asarray(self.automaton))
        a_prev = jnp.asarray(a_prev, dtype=jnp.int32)
        state = cached(self, "automaton_state", a_prev.shape, jnp.int32)
        km1 = jnp.maximum(k - 1, 0)
        advanced = jnp.take_along_axis(table[km1][state], a_prev[:, None], axis=-1)[:, 0]
        # a_prev is always allowed when drawn from the masked conditionals; clip for safety
        s = jnp.where(k == 0, 0, jnp.maximum(advanced, 0))
        self.put_variable("cache", "automaton_state", s)
        logits, phases = self.raw_step(a_prev, k, visible)
        mask = table[k][s] >= 0
        if self.base_log_p is not None:
            logits = logits + jnp.asarray(np.asarray(self.base_log_p), logits.dtype)[k][s]
        return masked_log_softmax(logits, mask), self._phases(phases, k)

    def _image_terms(self, a: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``log p``, the network's phase and the prior's phase, each ``(B, G)``, of the images
        ``a[perm_g]`` of local configurations ``a`` ``(B, N)`` (``G = 1``, ``a`` itself, without
        ``symmetries``); the phase of an image is the sum of the two."""
        images = a
        if self.symmetries is not None:
            perms = jnp.asarray(np.asarray(self.symmetries))
            images = a[:, perms].reshape(-1, a.shape[-1])  # (B G, N), image g of sample b at b G + g
        log_p, phases = self.conditionals(images, with_prior=False)
        idx = images[..., None]
        log_prob = jnp.take_along_axis(log_p, idx, axis=-1)[..., 0].sum(axis=-1)
        phase = jnp.take_along_axis(phases, idx, axis=-1)[..., 0].sum(axis=-1)
        if self.phase_prior is None:
            prior = jnp.zeros_like(phase)
        else:
            table = jnp.asarray(np.asarray(self.phase_prior), dtype=phase.dtype)  # (N, d)
            prior = table[jnp.arange(a.shape[-1]), images].sum(axis=-1)
        return tuple(x.reshape(a.shape[0], -1) for x in (log_prob, phase, prior))

    def log_psi_local(self, a: jax.Array) -> jax.Array:
        """``log psi`` (complex ``(B,)``) of local-index configurations ``(B, N)``; ``-inf`` real
        part outside the sector."""
        log_p_images, net_images, prior_images = self._image_terms(a)
        phase_images = net_images + prior_images
        n_images = log_p_images.shape[-1]
        if self.symmetries is not None and (self.symmetric_phase or self.project_amplitude):
            top = jnp.max(log_p_images, axis=-1, keepdims=True)
            top = jnp.where(jnp.isfinite(top), top, 0.0)  # outside the sector every image is -inf
            chi = 1.0 if self.image_characters is None else jnp.asarray(np.asarray(self.image_characters))
            if self.real_sign and self.project_amplitude:
                factor = jnp.tanh(1.0 + net_images) * jnp.exp(1j * prior_images)
                amplitude = jnp.sum(chi * jnp.exp(0.5 * (log_p_images - top)) * factor, axis=-1)
            else:
                amplitude = jnp.sum(chi * jnp.exp(0.5 * (log_p_images - top) + 1j * phase_images), axis=-1)
            phase = jnp.angle(amplitude)
        if self.symmetries is not None and self.project_amplitude:
            log_psi = 0.5 * top[:, 0] + jnp.log(jnp.abs(amplitude)) - np.log(n_images) + 1j * phase
        else:
            log_psi = 0.5 * (jax.nn.logsumexp(log_p_images, axis=-1) - np.log(n_images))
            if self.symmetries is None or not self.symmetric_phase:
                phase = phase_images[:, 0]  # the identity image: a itself
            log_psi = log_psi + 1j * phase
        if self.phase_net is not None:
            # phases holds the prior alone here (no phase head)
            log_psi = log_psi + 1j * jnp.imag(self.phase_net(local_to_configs(self.local_space, a)))
        return log_psi

    def log_proposal_local(self, a: jax.Array) -> jax.Array:
        """``log q(a) = log mean_g p(g a)`` (real ``(B,)``): the distribution the direct sampler
        draws exactly (``|psi|^2`` itself unless :attr:`project_amplitude`)."""
        log_p_images = self._image_terms(a)[0]
        return jax.nn.logsumexp(log_p_images, axis=-1) - np.log(log_p_images.shape[-1])

    def log_proposal(self, x: jax.Array) -> jax.Array:
        """:meth:`log_proposal_local` of NetKet configurations ``(..., n_netket)`` -> ``(...)``."""
        return self._in_chunks("log_proposal_local", x)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``log psi`` of NetKet configurations ``(..., n_netket)`` -> complex ``(...)``."""
        return self._in_chunks("log_psi_local", x)

    def _in_chunks(self, method: str, x: jax.Array) -> jax.Array:
        """``method`` of local configurations applied to NetKet configurations ``(..., n)``, in
        chunks of :attr:`eval_chunk` (images included)."""
        x = jnp.asarray(x)
        lead = x.shape[:-1]
        a = configs_to_local(self.local_space, x.reshape(-1, x.shape[-1]))
        chunk = self.eval_chunk
        if chunk is not None and self.symmetries is not None:
            chunk = max(1, chunk // len(np.asarray(self.symmetries)))  # the images count towards it
        return map_in_chunks(self, method, a, chunk).reshape(lead)


# --------------------------------------------------------------------------- VMC defaults
AR_VMC_DEFAULTS: dict[str, Any] = {
    "n_samples": 1024,
    "learning_rate": 0.05,
    "learning_rate_final": 0.01,
    "diag_shift": 1e-2,
    "diag_shift_final": 1e-4,
    "momentum": 0.9,
    "on_the_fly": False,
}
"""VMC defaults of the exactly sampled autoregressive models (``transformer``,
``gauge_transformer``, ``ar_rnn``, ``kind = "antn"``): 1024 independent samples per step, SR
(minSR kernel from the stored Jacobian) with SPRING momentum 0.9, the step decaying 0.05 ->
0.01 and the diagonal shift 1e-2 -> 1e-4 geometrically over ``n_iter``. Measurements: ``docs/benchmarks/defaults.md``.

The step is tuned on 16 sites and is too large for 36: from :data:`AR_LARGE_LATTICE_SITES` sites
on, :data:`AR_VMC_LARGE_LATTICE` replaces the schedules."""


AR_LARGE_LATTICE_SITES = 32
"""Sites from which the autoregressive site models (``transformer``, ``ar_rnn``, ``kind = "antn"``)
take the schedules of :data:`AR_VMC_LARGE_LATTICE` by default. The gauge Transformer keeps its
own (these were not measured on links)."""

AR_VMC_LARGE_LATTICE: dict[str, Any] = {"learning_rate": 0.02, "learning_rate_final": 0.004, "diag_shift_final": 1e-3}
"""Default schedules of the autoregressive site models on :data:`AR_LARGE_LATTICE_SITES` sites or
more (keys written in ``[method]`` win). With 1024 samples for 18k parameters the minSR kernel needs the
larger final shift. Measurements: ``docs/benchmarks/defaults.md``."""


def ar_large_lattice(problem: Problem) -> dict[str, Any]:
    """The schedules that replace :data:`AR_VMC_DEFAULTS`'s on ``problem``: those of
    :data:`AR_VMC_LARGE_LATTICE` from :data:`AR_LARGE_LATTICE_SITES` sites on, else none (and
    none for gauge models on links, where they were not measured)."""
    if isinstance(problem.geometry, LinkLattice) or problem.n_sites < AR_LARGE_LATTICE_SITES:
        return {}
    return dict(AR_VMC_LARGE_LATTICE)


# --------------------------------------------------------------------------- building
def ar_fields(problem: Problem, uniform_base: bool = True) -> dict[str, Any]:
    """The :class:`ConstrainedAR` fields of a problem: local space, sector automaton and (with
    ``uniform_base``) the log-conditionals of the uniform distribution over the sector."""
    name = problem.local_space.name
    if name not in LOCAL_SPACES and problem.local_space.netket_values is not None and not problem.local_space.fermionic:
        # any site-valued local space with NetKet values (anyon fusion-path labels, one space per
        # level k) converts like the spins: register it by name
        LOCAL_SPACES[name] = problem.local_space
    if name not in LOCAL_SPACES:
        raise ValueError(f"autoregressive models do not handle the local space {name!r}")
    table, log_counts = problem.automaton().padded()
    out = {"local_space": name, "automaton": HashableArray(table.astype(np.int32))}
    if uniform_base:
        base = np.zeros(table.shape)
        for k in range(table.shape[0]):
            ok = table[k] >= 0
            # completions through a_k from state s, over completions from s (finite where ok)
            nxt = log_counts[k + 1][np.maximum(table[k], 0)]
            base[k] = np.where(ok, nxt - np.where(np.isfinite(log_counts[k]), log_counts[k], 0.0)[:, None], 0.0)
        out["base_log_p"] = HashableArray(base)
    return out


Symmetrize = Literal["auto", "none", "point_group", "translations", "space_group"]
"""Type of the ``symmetrize`` option of the autoregressive models and ANTN."""
SITE_SYMMETRIES = get_args(Symmetrize)
"""Kinds of :func:`site_symmetries`."""


def validate_symmetrize(kind: str) -> None:
    """``ValueError`` unless ``kind`` names a kind of :func:`site_symmetries`."""
    if kind not in SITE_SYMMETRIES:
        raise ValueError(f"symmetrize must be one of {', '.join(map(repr, SITE_SYMMETRIES))}, got {kind!r}")


def check_symmetrize(problem: Problem, kind: str) -> str | None:
    """``ModelSpec.check`` part: why ``kind`` does not apply to ``problem`` (naming the way out),
    or ``None``."""
    try:
        site_symmetries(problem, kind)
    except ValueError as err:
        return f"{err}; or symmetrize = 'none'"
    return None


def _auto_symmetrize(problem: Problem) -> str:
    spins = problem.local_space.name == SPIN_HALF.name and isinstance(problem.geometry, SquareLattice)
    return "point_group" if spins else "none"


def explain_ar_autos(problem: Problem, options: Any) -> dict[str, tuple[Any, str]]:
    """The ``"auto"`` rules shared by the autoregressive models, in one place: for each of
    ``symmetrize``, ``sign_prior`` and ``phase`` that ``options`` sets to ``"auto"``, the value
    the builders use on ``problem`` and why, as ``{key: (value, reason)}``."""
    out: dict[str, tuple[Any, str]] = {}
    if getattr(options, "symmetrize", None) == "auto":
        value = _auto_symmetrize(problem)
        out["symmetrize"] = (value, (
            "spin-1/2 sites of a square lattice or chain: |psi|^2 averaged over the point group"
            if value == "point_group" else
            f"local space {problem.local_space.name!r} (not spin-1/2 on lattice sites): no symmetry average"
        ))
    prior_kind = getattr(options, "sign_prior", "none")
    if prior_kind == "auto":
        if marshall_sublattice(problem) is not None:
            out["sign_prior"] = ("marshall", "antiferromagnetic spin-1/2 model on a bipartite lattice: Marshall sign "
                                 "(-1)^N_down(A)")
        elif sign_prior(problem, "auto") is not None:
            out["sign_prior"] = ("marshall", "no Marshall sublattice, but a local sign rule makes the Hamiltonian "
                                 "stoquastic (hamiltonians.sign_gauge), e.g. the antiferromagnetic golden chain")
        else:
            out["sign_prior"] = ("none", "no sign rule applies (no bipartite antiferromagnet, no local stoquastic "
                                 "sign rule, or marshall = true)")
    if getattr(options, "phase", None) == "auto":
        fixed = phase_is_fixed(problem, "auto", sign_prior(problem, prior_kind))
        out["phase"] = ("fixed", "the Hamiltonian is stoquastic after the sign prior: the sign is known exactly") if fixed else (
            "learned", "not stoquastic after the sign prior (frustration or fermionic signs): the phase is learned")
    return out


class ARAutoOptions:
    """Mixin of the options dataclasses of autoregressive models: ``explain_auto(problem)``
    answers what their ``"auto"`` options resolve to (:func:`explain_ar_autos`)."""

    def explain_auto(self, problem: Problem) -> dict[str, tuple[Any, str]]:
        """``{key: (value, reason)}`` of the ``"auto"`` options on ``problem``; building with
        these values gives the same model."""
        return explain_ar_autos(problem, self)


def site_symmetries(problem: Problem, kind: str) -> HashableArray | None:
    """Site permutations ``(G, N)`` for :attr:`ConstrainedAR.symmetries`, identity first.

    ``"point_group"``: the reflections and rotations about the lattice's centre that map it onto
    itself (8 on an ``L x L`` lattice, 4 on a rectangle or a cylinder, 2 on a chain; open or periodic);
    ``"translations"``: the ``N`` lattice translations (periodic lattices);
    ``"space_group"``: both (``8 N`` on a periodic ``L x L`` lattice); ``"none"``: ``None``;
    ``"auto"``: ``"point_group"`` for spin-1/2 models on square lattices and chains, else
    ``"none"`` (a degenerate ground state, as t-J clusters with holes can have, need not have
    symmetric moduli). ``ValueError`` if another kind does not apply: a model not on the sites
    of a square lattice or chain, translations on an open lattice.
    """
    validate_symmetrize(kind)
    geo = problem.geometry
    if kind == "auto":
        kind = _auto_symmetrize(problem)
    if kind == "none":
        return None
    if not isinstance(geo, SquareLattice):
        raise ValueError(f"symmetrize = {kind!r} needs a model on the sites of a square lattice or chain")
    if kind in ("translations", "space_group") and not geo.torus:
        raise ValueError(f"symmetrize = {kind!r} needs a lattice periodic in both directions; use 'point_group'")
    X, Y = geo.Lx - 1, geo.Ly - 1
    maps = [lambda x, y: (x, y), lambda x, y: (X - x, y), lambda x, y: (x, Y - y), lambda x, y: (X - x, Y - y)]
    if geo.Lx == geo.Ly and geo.periodic[0] == geo.periodic[1]:  # a cylinder has no 90-degree rotation
        maps += [lambda x, y: (y, x), lambda x, y: (Y - y, x), lambda x, y: (y, X - x), lambda x, y: (Y - y, X - x)]
    if geo.Ly == 1:
        maps = maps[:2]
    point = np.array([[geo.index(*m(x, y)) for x, y in geo.coords] for m in maps])
    if kind == "point_group":
        return HashableArray(point)
    shifts = geo.translations  # shifts[0] is the identity (the site (0, 0) is snake site 0)
    if kind == "translations":
        return HashableArray(shifts)
    return HashableArray(np.concatenate([p[shifts] for p in point]))


def marshall_sublattice(problem: Problem) -> np.ndarray | None:
    """Sublattice ``A`` (bool per site) of the Marshall sign of an antiferromagnetic spin model
    on a bipartite square lattice or chain, or ``None`` when it does not apply (not a spin model
    on sites, not bipartite, ferromagnetic or already rotated with ``marshall=true``)."""
    geo = problem.geometry
    if problem.local_space.name != SPIN_HALF.name or not isinstance(geo, SquareLattice):
        return None
    params = problem.params
    if params.get("marshall", False):
        return None
    if params.get("J1", params.get("J", 1.0)) <= 0:
        return None
    px, py = geo.periodic
    if (px and geo.Lx % 2) or (py and geo.Ly > 1 and geo.Ly % 2):
        return None
    x, y = geo.coords[:, 0], geo.coords[:, 1]
    return (x + y) % 2 == 0


def marshall_characters(problem: Problem, symmetries: HashableArray | None) -> HashableArray | None:
    """``(G,)`` characters ``chi(g) = +-1`` under which the ground state of an antiferromagnetic
    spin-1/2 model is expected to transform, ``psi(a[perm_g]) = chi(g) psi(a)``
    (:attr:`ConstrainedAR.image_characters`), or ``None`` where no argument fixes them.

    At ``J2 = 0`` the ground state is ``M f`` with ``f > 0`` (Marshall, Perron-Frobenius), so it
    transforms like the Marshall sign ``M = (-1)^{N_down(A)}``: ``chi(g) = 1`` if ``g`` maps the
    sublattice ``A`` onto itself, ``(-1)^{N_down}`` if onto ``B``; the irrep holds through the
    frustrated regime until a level crossing (on the 4x4 torus ED finds the trivial irrep for
    every ``J2`` up to 1, on chains of ``4n + 2`` sites the reflection odd). On a
    Marshall-rotated problem (``marshall = true``) the ground state is positive at ``J2 = 0``: all
    ones. ``None``: no Marshall sign (not a bipartite antiferromagnet), no fixed ``S^z``, or an
    element that mixes the sublattices.
    """
    if symmetries is None or problem.local_space.name != SPIN_HALF.name:
        return None
    perms = np.asarray(symmetries)
    if problem.params.get("marshall", False):
        return HashableArray(np.ones(len(perms)))
    a_sites = marshall_sublattice(problem)
    sz = problem.sector.get("Sz")
    if a_sites is None or sz is None:
        return None
    n_down = int(round(problem.n_sites / 2 - sz))
    characters = []
    for perm in perms:
        image = np.zeros_like(a_sites)
        image[perm] = a_sites  # a[perm] counts on A the spins of a on the sites perm[A]
        if np.array_equal(image, a_sites):
            characters.append(1.0)
        elif np.array_equal(image, ~a_sites):
            characters.append((-1.0) ** n_down)
        else:
            return None
    return HashableArray(np.array(characters))


def validate_phase(kind: str) -> None:
    """``ValueError`` unless ``kind`` names a phase option (``__post_init__`` of the options)."""
    if kind not in ("auto", "learned", "fixed"):
        raise ValueError(f"phase must be 'auto', 'learned' or 'fixed', got {kind!r}")


def phase_is_fixed(problem: Problem, kind: str, prior: HashableArray | None) -> bool:
    """Whether an autoregressive model's phase is the sign prior alone.

    ``"fixed"``/``"learned"`` say so; ``"auto"`` fixes it where the Hamiltonian is stoquastic
    after the prior (:meth:`hamiltonians.Problem.stoquastic`): the ground state's sign is then
    known exactly (the Marshall sign of the unfrustrated Heisenberg antiferromagnet, a positive
    state for the Z2 gauge and U(1) link models), and a learned phase only adds noise and cost.
    """
    if kind != "auto":
        return kind == "fixed"
    return problem.stoquastic(None if prior is None else np.asarray(prior))


def check_phase(problem: Problem, options: Any) -> str | None:
    """``ModelSpec.check`` part for the ``phase`` option: ``"fixed"`` must be exact."""
    if getattr(options, "phase", "auto") != "fixed":
        return None
    prior = sign_prior(problem, getattr(options, "sign_prior", "none"))
    if not problem.stoquastic(None if prior is None else np.asarray(prior)):
        return (
            "phase 'fixed' keeps the sign prior as the whole phase, exact only when the Hamiltonian "
            "is stoquastic after it (no frustration, no fermionic signs); use phase = 'auto' or 'learned'"
        )
    return None


def validate_sign_prior(kind: str) -> None:
    """``ValueError`` unless ``kind`` names a sign prior (options dataclasses' ``__post_init__``)."""
    if kind not in ("auto", "marshall", "none"):
        raise ValueError(f"sign_prior must be 'auto', 'marshall' or 'none', got {kind!r}")


def check_sign_prior(problem: Problem, options: Any) -> str | None:
    """``ModelSpec.check`` of models with ``sign_prior`` and ``phase`` options:
    ``"marshall"`` must apply, ``phase = "fixed"`` must be exact."""
    if options.sign_prior == "marshall" and marshall_sublattice(problem) is None and sign_prior(problem, "auto") is None:
        return (
            "sign_prior 'marshall' needs an antiferromagnetic spin model on a bipartite lattice "
            "without marshall=true; use sign_prior = 'auto' or 'none'"
        )
    return check_phase(problem, options)


def sign_prior(problem: Problem, kind: str) -> HashableArray | None:
    """Fixed phase table ``(N, d)`` for :attr:`ConstrainedAR.phase_prior`.

    ``kind``: ``"none"``; ``"marshall"``: ``pi`` for a down spin on sublattice ``A`` (the
    Marshall sign ``(-1)^{N_down(A)}``, exact for the unfrustrated Heisenberg antiferromagnet,
    the usual starting point at ``J2 > 0``), raising ``ValueError`` if it does not apply; where
    no Marshall sign applies, the local sign rule that makes the Hamiltonian stoquastic if one
    exists (:func:`hamiltonians.sign_gauge.stoquastic_gauge`: the antiferromagnetic golden chain);
    ``"auto"``: Marshall where it applies, else that sign rule where one exists, else none.
    """
    if kind == "none":
        return None
    sub = marshall_sublattice(problem)
    if sub is None:
        from hamiltonians.sign_gauge import stoquastic_gauge

        gauge = stoquastic_gauge(problem)  # a local sign rule where no Marshall sign applies (anyon chains)
        if gauge is not None:
            return HashableArray(gauge)
        if kind == "marshall":
            raise ValueError(
                "sign_prior 'marshall' needs an antiferromagnetic spin model on a bipartite lattice "
                "without marshall=true"
            )
        return None
    table = np.zeros((problem.n_sites, 2))
    table[sub, 1] = np.pi  # local index 1 = spin down
    return HashableArray(table)
