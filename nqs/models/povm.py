"""Autoregressive models of POVM outcome distributions (mixed states of open problems).

A density matrix of ``n`` qubits is a probability distribution ``P(a)`` over outcome strings
``a = (a_0 .. a_{n-1})``, ``a_k in 0..3`` (:mod:`hamiltonians.povm`). The autoregressive
Transformer of :mod:`nqs.models.transformer` represents it with the 4-letter alphabet
:data:`hamiltonians.povm.OUTCOMES` as local space, no constraint (an automaton with one state
that allows every letter) and no phase: ``P(a) = prod_k p_k(a_k | a_<k) = |psi(a)|^2``, a
normalised softmax product, drawn exactly by the cached direct sampler
(:class:`nqs.sampling.direct_sampler.ConstrainedDirectSampler` on NetKet's ``Fock(n_max=3)``).

These models are for ``kind = "steady_state"`` (:mod:`nqs.steady_state`) and ``kind = "evolve"``
with ``engine = "povm"`` (:mod:`nqs.povm_dynamics`); they are not VMC
ansätze (a pure-state model cannot represent a mixed state), so they are not in the VMC model
registry. :data:`POVM_MODELS` lists them.

Importing this module adds the outcome alphabet to
:data:`nqs.models.autoregressive.LOCAL_SPACES` (the conversions of NetKet configurations).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import netket as nk
import numpy as np
from netket.utils import HashableArray

from hamiltonians.povm import OUTCOMES

from .autoregressive import LOCAL_SPACES
from .transformer import ARTransformer

LOCAL_SPACES.setdefault(OUTCOMES.name, OUTCOMES)

N_OUTCOMES = 4


@dataclass
class POVMTransformerOptions:
    """Sizes of the Transformer over outcome strings (``[method]`` keys of ``kind =
    "steady_state"``, ``model = "transformer"``). Defaults: small, as in Luo et al. (PRL 128,
    090501, 2022), who use ``d_model = 16``, 2 layers."""

    d_model: int = 16
    """Width of the residual stream."""
    n_heads: int = 2
    """Attention heads (``d_model`` must be a multiple)."""
    n_layers: int = 2
    """Transformer blocks."""
    mlp_ratio: int = 2
    """MLP hidden width as a multiple of ``d_model``."""

    def __post_init__(self):
        for name in ("d_model", "n_heads", "n_layers", "mlp_ratio"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")


def outcome_automaton(n_sites: int) -> HashableArray:
    """The trivial automaton ``(n_sites, 1, 4)``: one state, every outcome allowed."""
    return HashableArray(np.zeros((n_sites, 1, N_OUTCOMES), dtype=np.int32))


def build_povm_transformer(n_sites: int, o: POVMTransformerOptions | None = None) -> ARTransformer:
    """The Transformer of ``P(a)`` over outcome strings of ``n_sites`` letters (no phase head)."""
    o = o or POVMTransformerOptions()
    return ARTransformer(
        local_space=OUTCOMES.name,
        automaton=outcome_automaton(n_sites),
        learn_phase=False,
        site_features=HashableArray(np.eye(n_sites)),
        d_model=o.d_model, n_heads=o.n_heads, n_layers=o.n_layers, mlp_ratio=o.mlp_ratio,
    )


def outcome_hilbert(n_sites: int) -> nk.hilbert.Fock:
    """NetKet's space of outcome strings: ``Fock(n_max=3)``, value = outcome index."""
    return nk.hilbert.Fock(n_max=N_OUTCOMES - 1, N=n_sites)


def log_prob(model: ARTransformer, params, a: jnp.ndarray) -> jnp.ndarray:
    """``log P(a)`` of outcome strings ``a`` ``(B, n)`` (int)."""
    return model.apply({"params": params}, a, method="log_proposal_local")


POVM_MODELS = {"transformer": (POVMTransformerOptions, build_povm_transformer)}
"""Models that represent a mixed state as a POVM distribution: name -> (options, builder)."""
