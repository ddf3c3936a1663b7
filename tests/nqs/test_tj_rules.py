"""The t-J Metropolis rule: stays in the sector, proposes reversibly with the right correction,
and its chain samples |psi|^2."""

import jax
import netket as nk
import numpy as np
import pytest

import hamiltonians
from hamiltonians.netket_backend import configs_from_netket
from nqs.sampling.tj_rules import TJHopExchangeRule, tj_sampler


def _problem():
    # 3x2 open cluster, 2 holes, 2 up + 2 down electrons: 90 configurations
    return hamiltonians.get("tj", Lx=3, Ly=2, n_holes=2, pbc=False)


def _sector(hi) -> np.ndarray:
    states = np.asarray(hi.all_states())
    assert len(states) == 90
    return states


def _proposal_table(rule: TJHopExchangeRule, x: np.ndarray) -> dict[bytes, float]:
    """Exact proposal probabilities ``T(x -> x')`` enumerated from the rule's definition."""
    n = rule.n_orbitals
    hop, exch = (np.asarray(m) for m in rule.open_bonds(x[None]))
    out: dict[bytes, float] = {}
    for p_type, mask in ((rule.hop_probability, hop[0]), (1 - rule.hop_probability, exch[0])):
        if not mask.any():
            out[x.tobytes()] = out.get(x.tobytes(), 0.0) + p_type
            continue
        for a, c in np.asarray(rule.bonds)[mask]:
            y = x.copy()
            y[[a, c, a + n, c + n]] = x[[c, a, c + n, a + n]]
            out[y.tobytes()] = out.get(y.tobytes(), 0.0) + p_type / mask.sum()
    return out


def test_rule_never_leaves_the_sector():
    p = hamiltonians.get("tj", Lx=4, Ly=4, n_holes=2)
    hi, _ = p.to_netket()
    rule = TJHopExchangeRule(p.geometry.bonds, p.n_sites, hop_probability=0.3)
    bonds = np.asarray(p.geometry.bonds)

    @jax.jit
    def chain(key, x):
        def step(x, k):
            xp, _ = rule.transition(None, None, None, None, k, x)
            return xp, xp
        return jax.lax.scan(step, x, jax.random.split(key, 300))[1]

    x0 = np.asarray(hi.random_state(jax.random.PRNGKey(0), 64))
    xs = np.concatenate([x0[None], np.asarray(chain(jax.random.PRNGKey(1), x0))])  # (301, 64, 32)
    assert np.all(xs[..., :16].sum(-1) == 7) and np.all(xs[..., 16:].sum(-1) == 7)
    assert not np.any(xs[..., :16] * xs[..., 16:]), "double occupancy"
    assert set(np.unique(xs)) <= {0, 1}
    # every change is the swap of the two sites of one bond
    sites = configs_from_netket(p.local_space, xs)  # (301, 64, 16) local states
    before, after = sites[:-1].reshape(-1, 16), sites[1:].reshape(-1, 16)
    changed = before != after
    n_changed = changed.sum(-1)
    assert set(np.unique(n_changed)) <= {0, 2}
    moved = np.flatnonzero(n_changed == 2)
    pairs = np.sort(np.nonzero(changed[moved])[1].reshape(-1, 2), axis=1)
    bond_set = {tuple(b) for b in bonds}
    assert all(tuple(q) in bond_set for q in pairs)
    assert np.all(before[moved, pairs[:, 0]] == after[moved, pairs[:, 1]])
    assert np.all(before[moved, pairs[:, 1]] == after[moved, pairs[:, 0]])
    # hops (a hole moves) and exchanges both occur, and the chain does move
    holes_moved = (before[moved, pairs[:, 0]] == 0) | (before[moved, pairs[:, 1]] == 0)
    assert 0.1 < holes_moved.mean() < 0.9
    assert len(moved) > 0.5 * len(before)


@pytest.fixture(scope="module")
def proposals():
    """400 proposals of the rule from each of the 90 states of the 2x3 cluster."""
    p = _problem()
    hi, _ = p.to_netket()
    rule = TJHopExchangeRule(p.geometry.bonds, p.n_sites, hop_probability=0.4)
    states = _sector(hi)
    reps = 400
    x = np.repeat(states, reps, axis=0)
    xp, corr = jax.jit(lambda k, s: rule.transition(None, None, None, None, k, s))(jax.random.PRNGKey(1), x)
    return rule, states, reps, np.asarray(xp).reshape(len(states), reps, -1), np.asarray(corr).reshape(len(states), reps)


def test_proposals_are_reversible_with_the_metropolis_hastings_correction(proposals):
    rule, states, reps, xp, corr = proposals
    tables = {s.tobytes(): _proposal_table(rule, s) for s in states}
    for s, block, c in zip(states, xp, corr):
        t_fwd = tables[s.tobytes()]
        keys = [y.tobytes() for y in block]
        # every proposal is one the definition allows, and the reverse move is allowed too
        assert set(keys) <= set(t_fwd)
        expected = np.array([np.log(tables[k][s.tobytes()] / t_fwd[k]) for k in keys])
        np.testing.assert_allclose(c, expected, atol=1e-12)
        # frequencies follow T(x -> x'): binomial error, 5 sigma with 400 draws
        for key, prob in t_fwd.items():
            freq = keys.count(key) / reps
            assert abs(freq - prob) < 5 * np.sqrt(prob * (1 - prob) / reps) + 1e-9


def test_kernel_with_the_rules_corrections_satisfies_detailed_balance(proposals):
    """The Metropolis-Hastings kernel built from the proposal probabilities and the
    corrections *returned by the rule* leaves a random, non-uniform |psi|^2 invariant
    (detailed balance) and is ergodic on the sector."""
    rule, states, reps, xp, corr = proposals
    index = {s.tobytes(): k for k, s in enumerate(states)}
    rng = np.random.default_rng(0)
    prob = rng.uniform(0.1, 1.0, len(states))
    prob /= prob.sum()
    kernel = np.zeros((len(states), len(states)))
    for k, s in enumerate(states):
        returned = {y.tobytes(): c for y, c in zip(xp[k], corr[k])}
        for key, t in _proposal_table(rule, s).items():
            j = index[key]
            if j != k:
                assert key in returned  # 400 draws cover every proposal (smallest T is 0.4/7)
                kernel[k, j] = t * min(1.0, prob[j] / prob[k] * np.exp(returned[key]))
        kernel[k, k] = 1.0 - kernel[k].sum()
    flow = prob[:, None] * kernel
    np.testing.assert_allclose(flow, flow.T, atol=1e-15)
    eig = np.sort(np.abs(np.linalg.eigvals(kernel)))
    assert eig[-1] == pytest.approx(1.0) and eig[-2] < 1 - 1e-6


def test_chain_samples_psi_squared():
    p = _problem()
    hi, _ = p.to_netket()
    states = _sector(hi)
    model = nk.models.Jastrow(param_dtype=np.float64)
    params = model.init(jax.random.PRNGKey(0), states[:1])
    # a peaked but everywhere non-zero distribution over the 90 configurations
    params = jax.tree_util.tree_map(lambda w: 0.8 * w / np.abs(w).max(), params)
    logp = 2 * np.real(np.asarray(model.apply(params, states)))
    exact = np.exp(logp - logp.max())
    exact /= exact.sum()
    assert exact.max() / exact.min() > 5
    sampler = tj_sampler(p, hi, n_chains=256, hop_probability=0.5)
    state = sampler.init_state(model, params, seed=3)
    state = sampler.reset(model, params, state)
    samples, state = sampler.sample(model, params, state=state, chain_length=30)  # thermalise
    samples, state = sampler.sample(model, params, state=state, chain_length=150)
    samples = np.asarray(samples).reshape(-1, states.shape[1])
    index = {s.tobytes(): k for k, s in enumerate(states)}
    counts = np.bincount([index[s.astype(states.dtype).tobytes()] for s in samples], minlength=len(states))
    freq = counts / counts.sum()
    # 38400 samples (256 chains), one sweep (6 proposals) apart, hence nearly independent: with binomial
    # errors inflated 2x for residual autocorrelation, every frequency is within 5 sigma,
    # and the total variation distance is below 0.03 (its noise level is ~0.01 here)
    sigma = 2 * np.sqrt(exact * (1 - exact) / counts.sum())
    assert np.all(np.abs(freq - exact) < 5 * sigma + 1e-4)
    assert 0.5 * np.abs(freq - exact).sum() < 0.03


def test_rule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="hop_probability"):
        TJHopExchangeRule([(0, 1)], 2, hop_probability=1.0)
    with pytest.raises(ValueError, match="bonds"):
        TJHopExchangeRule([(0, 2)], 2)
