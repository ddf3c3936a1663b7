"""The direct sampler under NetKet's JAX sharding (``NETKET_EXPERIMENTAL_SHARDING=1``).

Two fake CPU devices (``--xla_force_host_platform_device_count=2``) stand in for GPUs: the
sample batch must be split over both, and the energy statistics of the Transformer at fixed
parameters must agree with a one-device run and with the exact full-sum expectation; the same
for the amplitude projected over symmetries, sampled by Metropolis chains with exact proposals. JAX reads
these flags once, at import, so each run is a fresh subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json
import sys
from types import SimpleNamespace
import jax
import netket as nk
import numpy as np
import hamiltonians
from hamiltonians.netket_backend import configs_from_netket
from nqs.models import model_spec

problem = hamiltonians.get("heisenberg_chain", L=8)
hilbert, hamiltonian = problem.to_netket()
spec = model_spec("transformer")
if sys.argv[1] == "projected":
    # psi averaged over the chain's reflection, sampled by Metropolis chains (16, so 8 per
    # device) whose proposals are exact draws of the direct sampler
    options = spec.options(d_model=16, n_heads=2, n_layers=1, symmetrize="point_group", project_amplitude=True)
    sampler = spec.make_sampler(problem, hilbert, hamiltonian, SimpleNamespace(model_options=options, n_chains=16))
    extra = {"n_discard_per_chain": 20}
else:
    # no symmetry images: the 16 images of the chain's point group multiply the compile time
    # and are not what this case checks (the projected one samples the images)
    options = spec.options(d_model=16, n_heads=2, n_layers=1, symmetrize="none")
    sampler = spec.make_sampler(problem, hilbert, hamiltonian, None)
    extra = {}
model = spec.build(problem, options)
state = nk.vqs.MCState(sampler, model, n_samples=2048, seed=0, sampler_seed=1, **extra)
# move away from the near-uniform initialisation (same parameters in every run: seeded)
leaves, tree = jax.tree_util.tree_flatten(state.parameters)
keys = jax.random.split(jax.random.key(5), len(leaves))
state.parameters = jax.tree_util.tree_unflatten(
    tree, [p + 0.3 * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)]
)
samples = state.sample()
stats = state.expect(hamiltonian)
exact = nk.vqs.FullSumState(hilbert, model, variables=state.variables).expect(hamiltonian)
in_sector = problem.constraint.check(
    configs_from_netket(problem.local_space, np.asarray(samples).reshape(-1, hilbert.size))
).all()
import hashlib
print("RESULT", json.dumps({
    "sampling": sys.argv[1],
    "samples_digest": hashlib.sha1(np.asarray(samples).reshape(-1, hilbert.size).astype(np.int8).tobytes()).hexdigest(),
    "devices": jax.device_count(),
    "sample_devices": len(samples.sharding.device_set),
    "n_samples": int(np.prod(samples.shape[:-1])),
    "mean": float(stats.mean.real), "error": float(stats.error_of_mean),
    "exact": float(exact.mean.real), "in_sector": bool(in_sector),
}))
"""


def start(n_devices: int, sampling: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    env["JAX_PLATFORMS"] = "cpu"
    if n_devices > 1:
        env["NETKET_EXPERIMENTAL_SHARDING"] = "1"
    else:
        env.pop("NETKET_EXPERIMENTAL_SHARDING", None)
    return subprocess.Popen([sys.executable, "-c", SCRIPT, sampling], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    line = next(l for l in stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


# the projected (Metropolis) case is slow: multi-process runs cover sharded chains (test_distributed)
@pytest.fixture(scope="module", params=["direct", pytest.param("projected", marks=pytest.mark.slow)])
def runs(request) -> tuple[dict, dict]:
    """One device and two: exact direct sampling, and Metropolis chains with exact proposals
    for the amplitude projected over symmetries (``project_amplitude``)."""
    # both runs at once: each is mostly import and compilation, single-threaded
    one, two = start(1, request.param), start(2, request.param)
    return result(one), result(two)


def test_samples_are_split_over_devices(runs):
    one, two = runs
    assert one["devices"] == 1 and one["sample_devices"] == 1
    assert two["devices"] == 2 and two["sample_devices"] == 2
    assert one["n_samples"] == two["n_samples"] == 2048
    assert one["in_sector"] and two["in_sector"]


def test_direct_draws_do_not_depend_on_the_devices(runs):
    # each device runs the site loop on its rows of the batch with that batch's noise, so two
    # devices draw exactly the samples of one (Metropolis chains are split, not reproduced)
    one, two = runs
    if one["sampling"] != "direct":
        pytest.skip("Metropolis chains over devices are not the chains of one device")
    assert one["samples_digest"] == two["samples_digest"]
    assert one["mean"] == pytest.approx(two["mean"], rel=1e-9)


def test_energy_statistics_agree(runs):
    one, two = runs
    # same parameters, so the same exact expectation; independent samples: the two means agree
    # within 4 combined standard errors, and each is within 4 errors of the exact value
    assert one["exact"] == pytest.approx(two["exact"], abs=1e-10)
    combined = (one["error"] ** 2 + two["error"] ** 2) ** 0.5
    assert abs(one["mean"] - two["mean"]) < 4 * combined
    for r in (one, two):
        assert abs(r["mean"] - r["exact"]) < 4 * r["error"]
        # the errors must be small enough for the comparison to mean something
        assert r["error"] < 0.05  # units of J; the energy spread of this state is O(1)
