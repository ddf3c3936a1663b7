"""Observables, defined once as symbolic terms and measured the same way on every kind of state.

An observable is a list of *entries*, each a sum of registry terms ``(coeff, ((op, site), ...))``
on the problem's local space (Jordan-Wigner strings and all). The same entries are evaluated on

* an exact state (amplitudes over ``problem.basis()``): :func:`measure_exact`;
* a matrix product state (quimb): :func:`measure_mps`;
* Monte Carlo samples of a neural state (any NetKet-compatible log-amplitude):
  :func:`measure_samples` / :func:`measure_vstate`, with statistical errors.

Catalogue (``available(problem)`` lists what applies; ``S = sigma/2``, totals not per site):
``energy``; ``sz`` (<S^z_i>); ``sz_correlation`` (<S^z_i S^z_j>); ``spin_correlation``
(<S_i.S_j>, N x N); ``hole_density`` (t-J, <1 - n_i>); ``hole_spin_correlation`` (t-J,
<n^h_0 S_i.S_j> on every bond, the spin texture around a hole at site 0); ``plaquette``
(Z2: <prod_p sigma^z>, U(1): <U_p + U_p^dag>, per plaquette); ``electric_field`` (Z2 <sigma^x_l>,
U(1) <E_l>, per link); ``flippability`` (U(1): <(U_p + U_p^dag)^2>, per plaquette); ``wilson_loop`` (Z2: <prod sigma^z> around R x R loops, averaged over
positions, R = 1 .. min(Lx, Ly) - 1). :func:`structure_factor` derives S(q) from
``spin_correlation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from hamiltonians import Problem
from hamiltonians.terms import Term, monomial, site_factors


@dataclass(frozen=True)
class Observable:
    """An observable as symbolic terms: ``entries`` (one sum of terms per entry) reshaped to
    ``shape``, evaluated the same way on ED states, MPS and samples."""

    name: str
    description: str
    entries: tuple[tuple[Term, ...], ...]
    shape: tuple[int, ...]
    meta: dict | None = None


# ----------------------------------------------------------------------------- catalogue
def _dot(i: int, j: int, weight: float = 1.0) -> tuple[Term, ...]:
    """``weight * S_i.S_j`` on spin-1/2 or t-J sites (``i == j`` gives ``3/4 n_i``)."""
    return (
        (weight, (("Sz", i), ("Sz", j))),
        (0.5 * weight, (("Sp", i), ("Sm", j))),
        (0.5 * weight, (("Sm", i), ("Sp", j))),
    )


def _spin_like(problem: Problem) -> bool:
    return problem.local_space.name in ("spin_half", "tj_site") and not hasattr(problem.geometry, "plaquettes")


def _energy(p: Problem) -> Observable:
    return Observable("energy", "<H> (total)", (tuple(p.terms),), ())


def _sz(p: Problem) -> Observable:
    n = p.n_sites
    return Observable("sz", "<S^z_i>", tuple(((1.0, (("Sz", i),)),) for i in range(n)), (n,))


def _sz_corr(p: Problem) -> Observable:
    n = p.n_sites
    entries = tuple(((1.0, (("Sz", i), ("Sz", j))),) for i in range(n) for j in range(n))
    return Observable("sz_correlation", "<S^z_i S^z_j>", entries, (n, n))


def _spin_corr(p: Problem) -> Observable:
    n = p.n_sites
    entries = tuple(_dot(i, j) for i in range(n) for j in range(n))
    return Observable("spin_correlation", "<S_i . S_j>", entries, (n, n))


def _hole_density(p: Problem) -> Observable:
    n = p.n_sites
    return Observable("hole_density", "<1 - n_i>", tuple(((1.0, (("nh", i),)),) for i in range(n)), (n,))


def _hole_spin(p: Problem) -> Observable:
    bonds = p.geometry.bonds
    entries = tuple(tuple((c, (("nh", 0),) + ops) for c, ops in _dot(i, j)) for i, j in bonds if 0 not in (i, j))
    kept = [b for b in bonds if 0 not in b]
    return Observable(
        "hole_spin_correlation", "<n^h_0 S_i.S_j> on the bonds not touching site 0", entries, (len(kept),),
        meta={"bonds": [list(b) for b in kept]},
    )


def _plaquette(p: Problem) -> Observable:
    plaqs = p.geometry.plaquettes
    if p.name == "z2_gauge":
        entries = tuple(((1.0, tuple(("Z", l) for l in pl)),) for pl in plaqs)
        return Observable("plaquette", "<prod_{l in p} sigma^z_l>", entries, (len(plaqs),))
    entries = []
    for b, r, t, l in plaqs:
        up = (("Sp", b), ("Sp", r), ("Sm", t), ("Sm", l))
        dn = (("Sm", b), ("Sm", r), ("Sp", t), ("Sp", l))
        entries.append(((1.0, up), (1.0, dn)))
    return Observable("plaquette", "<U_p + U_p^dag>", tuple(entries), (len(plaqs),))


def _electric(p: Problem) -> Observable:
    op = "X" if p.name == "z2_gauge" else "Sz"
    desc = "<sigma^x_l>" if p.name == "z2_gauge" else "<E_l> = <S^z_l>"
    return Observable("electric_field", desc, tuple(((1.0, ((op, l),)),) for l in range(p.n_sites)), (p.n_sites,))


def _flippability(p: Problem) -> Observable:
    entries = []
    for b, r, t, l in p.geometry.plaquettes:
        up = (("Sp", b), ("Sp", r), ("Sm", t), ("Sm", l))
        dn = (("Sm", b), ("Sm", r), ("Sp", t), ("Sp", l))
        entries.append(((1.0, up + dn), (1.0, dn + up)))
    return Observable("flippability", "<(U_p + U_p^dag)^2> (1 on a flippable plaquette)", tuple(entries), (len(entries),))


def _wilson(p: Problem) -> Observable:
    lat = p.geometry
    sizes = list(range(1, min(lat.Lx, lat.Ly)))
    entries = []
    for r in sizes:
        terms = []
        for x0, y0, *z in lat.sites.coords:  # 3D: loops in the (x, y) planes
            links = [lat.link(x0 + k, y0, 0, *z) for k in range(r)] + [lat.link(x0 + r, y0 + k, 1, *z) for k in range(r)]
            links += [lat.link(x0 + k, y0 + r, 0, *z) for k in range(r)] + [lat.link(x0, y0 + k, 1, *z) for k in range(r)]
            terms.append((1.0 / lat.n_vertices, tuple(("Z", l) for l in links)))
        entries.append(tuple(terms))
    return Observable("wilson_loop", "<prod sigma^z around R x R loops>, mean over positions", tuple(entries), (len(sizes),), meta={"R": sizes})


def _catalogue(p: Problem) -> dict[str, Callable[[Problem], Observable]]:
    out: dict[str, Callable[[Problem], Observable]] = {"energy": _energy}
    if _spin_like(p):
        out.update(sz=_sz, sz_correlation=_sz_corr, spin_correlation=_spin_corr)
    if p.name == "tj":
        out.update(hole_density=_hole_density, hole_spin_correlation=_hole_spin)
    if p.name in ("z2_gauge", "u1_qlm"):
        out.update(plaquette=_plaquette, electric_field=_electric)
    if p.name == "z2_gauge":
        out.update(wilson_loop=_wilson)
    if p.name == "u1_qlm":
        out.update(flippability=_flippability)
    return out


def available(problem: Problem) -> list[str]:
    """Observables defined for this problem."""
    return sorted(_catalogue(problem))


def build(problem: Problem, name: str) -> Observable:
    """The observable ``name`` on ``problem``; ``ValueError`` listing those defined for it."""
    cat = _catalogue(problem)
    if name not in cat:
        raise ValueError(f"observable {name!r} is not defined for {problem.name}; available: {', '.join(sorted(cat))}")
    return cat[name](problem)


def _flatten(obs: Observable) -> tuple[list[Term], np.ndarray]:
    terms, owner = [], []
    for e, entry in enumerate(obs.entries):
        for t in entry:
            terms.append(t)
            owner.append(e)
    return terms, np.asarray(owner)


def _collect(obs: Observable, values: np.ndarray) -> np.ndarray:
    _, owner = _flatten(obs)
    out = np.zeros(len(obs.entries), dtype=values.dtype)
    np.add.at(out, owner, values)
    return out.reshape(obs.shape)


# ----------------------------------------------------------------------------- exact states
def measure_exact(problem: Problem, names: Sequence[str], vector: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Observables of an exact state: amplitudes over ``problem.basis()`` (one vector), or the
    average over an orthonormal set given as the columns of a 2D array, ``Tr(P O) / g``.

    Default: the ED ground state, averaged over its whole manifold when it is degenerate
    (:meth:`Problem.exact_ground_manifold`), so the answer does not depend on which eigenvector a
    solver happened to return; on a torus it keeps every symmetry of the Hamiltonian.
    """
    from hamiltonians.exact import BasisAction

    if vector is None:
        _, vector, _ = problem.exact_ground_manifold()
    vectors = np.asarray(vector)
    vectors = vectors[:, None] if vectors.ndim == 1 else vectors
    vectors = vectors / np.linalg.norm(vectors, axis=0)
    action = BasisAction(problem.basis(), problem.local_space)
    out = {}
    for name in names:
        obs = build(problem, name)
        terms, _ = _flatten(obs)
        vals = np.array([action.expectation(t, vectors) for t in terms])
        out[name] = np.real_if_close(_collect(obs, vals))
    return out


# ----------------------------------------------------------------------------- MPS
def _mps_site_arrays(mps) -> list[np.ndarray]:
    """Site tensors as ``(left, right, phys)`` with unit boundary bonds."""
    out = []
    n = mps.L
    for i in range(n):
        inds = ([mps.bond(i - 1, i)] if i > 0 else []) + ([mps.bond(i, i + 1)] if i < n - 1 else []) + [mps.site_ind(i)]
        a = np.asarray(mps[i].transpose(*inds).data)
        if i == 0:
            a = a[None]
        if i == n - 1:
            a = a[:, None] if a.ndim == 2 else a
        out.append(a)
    return out


def measure_mps(problem: Problem, mps, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Observables of a quimb MPS in snake order (normalised here).

    The MPS is swept once from the left with a moving orthogonality centre; every term is
    contracted from its first site with a running environment (terms that share their first
    site and operator share the environment), so an N x N correlation matrix costs
    ``O(N^2 chi^3 d)``.
    """
    space = problem.local_space
    arrays = _mps_site_arrays(mps)
    n = len(arrays)
    # right-canonical form: B_s with sum_p B B^dag = 1, the norm sits in arrays[0]
    for i in range(n - 1, 0, -1):
        a = arrays[i]
        l, r, d = a.shape
        q, rr = np.linalg.qr(a.transpose(1, 2, 0).reshape(r * d, l))
        k = q.shape[1]
        arrays[i] = q.reshape(r, d, k).transpose(2, 0, 1)
        arrays[i - 1] = np.einsum("lrp,rk->lkp", arrays[i - 1], rr.T)
    norm2 = np.einsum("lrp,lrp->", arrays[0], arrays[0].conj()).real

    per_obs = []
    all_terms: list[tuple[int, int, Term]] = []
    for oi, name in enumerate(names):
        obs = build(problem, name)
        terms, _ = _flatten(obs)
        per_obs.append((name, obs, len(terms)))
        all_terms += [(oi, ti, t) for ti, t in enumerate(terms)]
    values = [np.zeros(m, dtype=complex) for _, _, m in per_obs]
    identity_terms = []
    by_start: dict[int, list] = {}
    for oi, ti, (c, ops) in all_terms:
        f = site_factors(ops, space)
        if not f:
            identity_terms.append((oi, ti, c))
            continue
        by_start.setdefault(min(f), []).append((oi, ti, c, f))
    for oi, ti, c in identity_terms:
        values[oi][ti] = c

    eye = np.eye(space.dim)
    string = space.matrix("F")

    def transfer(env, b, op):
        # env[bra, ket] through one site with operator op[out, in], O(chi^3 d)
        t = np.tensordot(env, b.conj(), axes=(0, 0))  # (ket, r, p)
        t = np.tensordot(t, op, axes=(2, 0))  # (ket, r, q)
        return np.tensordot(t, b, axes=([0, 2], [0, 2]))  # (r, s)

    center = arrays[0]
    for lo in range(n):
        # Terms starting here whose middle sites carry only identities (or only Jordan-Wigner
        # strings) share one running environment per operator on site lo.
        shared: dict[tuple, list] = {}
        single = []
        for item in by_start.get(lo, []):
            f = item[3]
            hi = max(f)
            middle = [f.get(s, eye) for s in range(lo + 1, hi)]
            if all(np.array_equal(m, eye) for m in middle):
                shared.setdefault((f[lo].tobytes(), "I"), []).append(item)
            elif all(np.array_equal(m, string) for m in middle):
                shared.setdefault((f[lo].tobytes(), "F"), []).append(item)
            else:
                single.append(item)
        for (_, kind), items in shared.items():
            env = transfer(np.eye(center.shape[0]), center, items[0][3][lo])
            mid = eye if kind == "I" else string
            closing: dict[int, list] = {}
            for it in items:
                closing.setdefault(max(it[3]), []).append(it)
            for oi, ti, c, f in closing.pop(lo, []):
                values[oi][ti] = c * np.trace(env)
            e = env
            for s in range(lo + 1, max(closing, default=lo) + 1):
                for oi, ti, c, f in closing.get(s, []):
                    values[oi][ti] = c * np.trace(transfer(e, arrays[s], f[s]))
                e = transfer(e, arrays[s], mid)
        for oi, ti, c, f in single:
            e = transfer(np.eye(center.shape[0]), center, f[lo])
            for s in range(lo + 1, max(f) + 1):
                e = transfer(e, arrays[s], f.get(s, eye))
            values[oi][ti] = c * np.trace(e)
        if lo < n - 1:
            # move the orthogonality centre one site right
            l, r, d = center.shape
            _, rr = np.linalg.qr(center.transpose(0, 2, 1).reshape(l * d, r))
            center = np.einsum("kr,rsp->ksp", rr, arrays[lo + 1])
    out = {}
    for (name, obs, _), vals in zip(per_obs, values):
        out[name] = np.real_if_close(_collect(obs, vals / norm2))
    return out


# ----------------------------------------------------------------------------- samples
def _transposed_action(term: Term, space) -> tuple[list[int], list[tuple[np.ndarray, np.ndarray]]]:
    """Row action of a term: for a configuration ``x``, the ``x'`` with ``<x|T|x'> != 0``."""
    factors = site_factors(term[1], space)
    sites = sorted(factors)
    return sites, [monomial(factors[s].T) for s in sites]


def _log_values_in_chunks(log_value: Callable[[np.ndarray], np.ndarray], x: np.ndarray, chunk: int) -> np.ndarray:
    """``log_value`` over ``x`` in batches of ``min(chunk, len(x))`` rows, the last one padded
    with copies of the first row, so a jitted ``log_value`` is traced and compiled once."""
    size = min(chunk, len(x))
    pad = -len(x) % size
    padded = np.concatenate([x, np.repeat(x[:1], pad, axis=0)]) if pad else x
    out = np.concatenate([np.asarray(log_value(padded[i : i + size])) for i in range(0, len(padded), size)])
    return out[: len(x)]


def measure_samples(
    problem: Problem,
    log_value: Callable[[np.ndarray], np.ndarray],
    samples: np.ndarray,
    names: Sequence[str],
    chunk: int = 16384,
) -> dict[str, dict[str, np.ndarray]]:
    """Monte Carlo estimates ``{name: {"mean", "error"}}`` from NetKet configurations.

    ``samples`` has shape ``(n_chains, n_per_chain, N)`` (Markov chains; the error accounts for
    autocorrelation through NetKet's statistics) or ``(n_samples, N)`` (independent samples).
    The local value of a term is ``sum_x' <x|T|x'> psi(x')/psi(x)``.
    """
    import netket as nk

    from hamiltonians.netket_backend import configs_from_netket, configs_to_netket

    space = problem.local_space
    shape = samples.shape[:-1]
    x_nk = np.asarray(samples).reshape(-1, samples.shape[-1])
    x = configs_from_netket(space, x_nk).astype(np.int64)
    logpsi = np.asarray(log_value(x_nk))
    fermionic = space.name == "tj_site"

    def nk_sign(idx):
        if not fermionic:
            return np.ones(idx.shape[:-1])
        up = (idx == 1).astype(np.int64)
        dn = (idx == 2).astype(np.int64)
        return 1 - 2 * ((dn * (np.cumsum(up, axis=-1) - up)).sum(axis=-1) % 2)

    sign_x = nk_sign(x)
    out = {}
    for name in names:
        obs = build(problem, name)
        terms, owner = _flatten(obs)
        local = np.zeros((len(x), len(obs.entries)), dtype=complex)
        pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        for ti, term in enumerate(terms):
            if not term[1]:
                local[:, owner[ti]] += term[0]
                continue
            sites, maps = _transposed_action(term, space)
            amp = np.full(len(x), term[0], dtype=float)
            new = x.copy()
            for s, (tgt, a) in zip(sites, maps):
                amp *= a[x[:, s]]
                new[:, s] = tgt[x[:, s]]
            diagonal = all(np.array_equal(t, np.arange(space.dim)) for t, _ in maps)
            if diagonal:
                local[:, owner[ti]] += amp
                continue
            alive = np.flatnonzero(amp)
            if len(alive):
                pending.append((owner[ti], alive, new[alive], amp[alive] * sign_x[alive] * nk_sign(new[alive])))
        if pending:
            configs = np.concatenate([p[2] for p in pending])
            lp = _log_values_in_chunks(log_value, configs_to_netket(space, configs), chunk)
            start = 0
            for e, alive, _, amp in pending:
                ratio = np.exp(lp[start : start + len(alive)] - logpsi[alive])
                np.add.at(local[:, e], alive, amp * ratio)
                start += len(alive)
        means, errors = [], []
        for e in range(local.shape[1]):
            st = nk.stats.statistics(local[:, e].reshape(shape) if len(shape) == 2 else local[:, e])
            means.append(complex(st.mean))
            err = float(st.error_of_mean)
            # a constant local value (e.g. S^z_i S^z_i = 1/4) has zero error, not NaN
            errors.append(0.0 if not np.isfinite(err) and float(st.variance) < 1e-28 else err)
        out[name] = {
            "mean": np.real_if_close(np.asarray(means)).reshape(obs.shape),
            "error": np.asarray(errors).reshape(obs.shape),
        }
    return out


def measure_vstate(problem: Problem, vstate, names: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """:func:`measure_samples` with the samples and log-amplitude of a NetKet ``MCState``
    (over several JAX processes, each process gathers all samples and measures them all)."""
    from .runs.distributed import to_host

    samples = np.asarray(to_host(vstate.samples))
    return measure_samples(problem, lambda c: np.asarray(to_host(vstate.log_value(c))), samples, names)


# ----------------------------------------------------------------------------- derived
def structure_factor(problem: Problem, correlation: np.ndarray) -> dict[str, Any]:
    """``S(q) = (1/N) sum_ij exp(i q.(r_i - r_j)) <S_i.S_j>`` on the lattice momenta
    ``q = 2 pi (m/Lx, n/Ly)``; returns ``{"qx", "qy", "S"}`` with ``S[m, n]``."""
    lat = problem.geometry
    r = lat.coords.astype(float)
    qx = 2 * np.pi * np.arange(lat.Lx) / lat.Lx
    qy = 2 * np.pi * np.arange(lat.Ly) / lat.Ly
    s = np.zeros((lat.Lx, lat.Ly))
    for a, kx in enumerate(qx):
        for b, ky in enumerate(qy):
            phase = np.exp(1j * (kx * r[:, 0] + ky * r[:, 1]))
            s[a, b] = np.real(phase @ np.asarray(correlation) @ phase.conj()) / len(r)
    return {"qx": qx, "qy": qy, "S": s}
