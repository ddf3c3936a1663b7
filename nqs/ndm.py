"""NetKet's neural density matrix (NDM) on an open registry problem: the peer of the POVM Transformer.

:func:`ndm_steady_state` runs NetKet's own steady-state machinery (``nk.models.NDM``,
``nk.vqs.MCMixedState`` with Metropolis sampling on the doubled space, ``nk.SteadyState``
minimising ``||L rho||^2`` with SR) on the ``LocalLiouvillian`` of
:func:`hamiltonians.lindblad.to_netket`, built from the same terms as every other engine. The
defaults are those of NetKet's dissipative Ising example (``NDM(beta=1)``, ``Sgd(0.01)``,
``SR(diag_shift=0.01)``, 2000 samples, 300 iterations, parameters from ``normal(0.01)``). It is a
comparison engine, used by ``bench/open_systems.py`` and ``notebooks/open_systems.ipynb``, not a
run kind.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from hamiltonians import Problem


def ndm_steady_state(
    problem: Problem,
    observables: dict[str, Sequence[tuple[complex, tuple]]],
    n_iter: int = 300,
    n_samples: int = 2000,
    n_samples_final: int = 8192,
    learning_rate: float = 0.01,
    diag_shift: float = 0.01,
    seed: int = 0,
) -> dict[str, float]:
    """Train the NDM towards the steady state of ``problem`` and measure ``observables`` (name ->
    terms, Hermitian) on ``n_samples_final`` samples of its diagonal.

    Returns ``{name: mean, name_error: Monte Carlo error, "parameters", "samples" (every draw:
    training and final), "wall_s", "ldagl" (the final ``<L^dag L>`` estimate)}``.
    """
    import jax
    import netket as nk

    from hamiltonians import lindblad
    from hamiltonians.netket_backend import _local_operator

    if n_iter < 1 or n_samples < 1 or n_samples_final < 2:
        raise ValueError("need n_iter >= 1, n_samples >= 1 and n_samples_final >= 2")
    lind = lindblad.to_netket(problem)
    hilbert = nk.hilbert.Spin(0.5, problem.n_sites)
    ops = {name: _local_operator(hilbert, list(terms), problem.local_space) for name, terms in observables.items()}
    vs = nk.vqs.MCMixedState(
        nk.sampler.MetropolisLocal(lind.hilbert), nk.models.NDM(beta=1), n_samples=n_samples,
        n_samples_diag=512, seed=seed, sampler_seed=seed + 1,
    )
    vs.init_parameters(jax.nn.initializers.normal(stddev=0.01), seed=seed)
    driver = nk.SteadyState(
        lind, nk.optimizer.Sgd(learning_rate), variational_state=vs, preconditioner=nk.optimizer.SR(diag_shift=diag_shift)
    )
    t0 = time.perf_counter()
    log = nk.logging.RuntimeLog()
    driver.run(n_iter=n_iter, out=log, show_progress=False)
    vs.n_samples_diag = n_samples_final
    vs.reset()
    out: dict[str, float] = {}
    for name, op in ops.items():
        s = vs.expect(op)
        out[name], out[f"{name}_error"] = float(np.real(s.mean)), float(s.error_of_mean)
    ldagl = np.asarray(log.data["LdagL"]["Mean"]).real
    out.update(parameters=int(vs.n_parameters), samples=int(n_iter * n_samples + n_samples_final),
               wall_s=time.perf_counter() - t0, ldagl=float(ldagl[-1]))
    return out
