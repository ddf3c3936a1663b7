"""Metropolis sampling of a symmetry-projected autoregressive amplitude, with exact proposals.

An autoregressive model whose *amplitude* is averaged over a symmetry group
(:attr:`~nqs.models.autoregressive.ConstrainedAR.project_amplitude`),
``psi(a) = mean_g sqrt(p(g a)) exp(i phi(g a))``, is no longer normalised, so it cannot be drawn
site by site. Its direct sampler still draws ``q(a) = mean_g p(g a)`` exactly, and ``q`` bounds
the target: ``w(a) = |psi(a)|^2 / q(a) <= 1`` (Cauchy-Schwarz over the images). So the chains of
NetKet's :class:`~netket.sampler.MetropolisSampler` here propose *independent* exact draws of
``q`` (:class:`ARProposalRule`) and accept them with probability ``min(1, w(a') / w(a))``
(independence Metropolis-Hastings: the correction ``log q(a) - log q(a')`` of a non-symmetric
proposal). Where the images add in phase ``w`` is 1 and every proposal is accepted; the
acceptance rate measures how much the projection moves the state away from ``q``. The chains
start from exact draws of ``q``, and each step is a global move, so one proposal per recorded
sample (``sweep_size = 1``) suffices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import netket as nk
from netket.sampler import MetropolisRule
from netket.utils import struct

from hamiltonians import Problem

from .direct_sampler import ConstrainedDirectSampler, ConstrainedDirectSamplerState


class ARProposalRule(MetropolisRule):
    """Proposes, for every chain, an independent exact draw of the model's ``q``
    (:meth:`~nqs.models.autoregressive.ConstrainedAR.log_proposal`), with the Metropolis-Hastings
    correction ``log q(sigma) - log q(sigma')``."""

    local_space: str = struct.field(pytree_node=False)
    """Local space of the model (how its local indices become NetKet configurations)."""

    def __init__(self, local_space: str):
        self.local_space = local_space

    def _draws(self, sampler, machine, params, key) -> jax.Array:
        # one scan over the sites: each transition of the chain's loop traces the site loop
        # again, and the blocks of large lattices would multiply that compilation (the draws do
        # not depend on the blocks)
        direct = ConstrainedDirectSampler(
            sampler.hilbert, self.local_space, dtype=sampler.dtype, site_blocks=1
        )
        # one draw per chain (the direct sampler's batch is its n_batches times the chain length)
        sigma, _ = direct._sample_chain(
            machine, params, ConstrainedDirectSamplerState(key), sampler.n_batches // direct.n_batches
        )
        return sigma.reshape(sampler.n_batches, -1)

    def transition(self, sampler, machine, params, sampler_state, key, sigma):
        proposal = self._draws(sampler, machine, params, key)
        log_q = machine.apply(params, jnp.concatenate([sigma, proposal]), method="log_proposal")
        n = sigma.shape[0]
        return proposal, log_q[:n] - log_q[n:]

    def random_state(self, sampler, machine, params, sampler_state, key):
        return self._draws(sampler, machine, params, key)

    def __repr__(self) -> str:
        return "ARProposalRule()"


def make_projected_sampler(problem: Problem, hilbert, vmc_options) -> nk.sampler.MetropolisSampler:
    """Independence Metropolis over exact autoregressive draws: ``n_chains`` chains of the
    options (NetKet's default without options), one proposal per recorded sample."""
    n_chains = getattr(vmc_options, "n_chains", None)
    chains = {} if n_chains is None else {"n_chains": n_chains}
    return nk.sampler.MetropolisSampler(hilbert, ARProposalRule(problem.local_space.name), sweep_size=1, **chains)
