"""Hidden-fermion determinant state (HFDS) for the t-J model.

Moreno, Carleo, Georges, Stokes, PNAS 119, e2122059119 (2022): hidden fermions whose orbitals
depend on the configuration through a neural network; projecting them out leaves the square
determinant ``psi(n) = det [[ Phi[occ(n), :] ], [ chi(n) ]] * exp(J(n))``, with ``Phi`` a trainable
``2N x (N_e + N_h)`` matrix of orbitals (one row per NetKet mode), ``occ(n)`` the occupied modes,
``chi(n)`` the ``N_h`` hidden rows from a multilayer perceptron of the occupations, and ``J(n)``
an optional two-body Jastrow exponent.

Conventions: configurations are NetKet :class:`~hamiltonians.netket_backend.TJFermions`
occupations (modes ``0 .. N-1`` the down orbitals of the snake-ordered sites, ``N .. 2N-1`` the
up orbitals). The rows of the occupied modes are stacked in **increasing mode index**, which is
the ordering of ``prod c^dag_m |0>`` behind the fermionic signs of the t-J operator
(:mod:`hamiltonians.projected_operator`), so the determinant carries the exact fermionic sign.

Pairing frame (``particle_hole_down``): the rows are the occupied up modes and the *empty* down
modes, ``M = N_up + N - N_dn`` of them, times ``(-1)^(sum of the empty down modes' indices)``;
a determinant there is a number-projected BCS state (singlet pairing in the ansatz).

Initialisation: the hidden rows start at ``[0 | 1]`` (plus small noise), so the determinant
starts as the mean-field determinant of the first ``M`` orbital columns: hopping ``-t`` plus a
staggered field (Néel order), with d-wave pairing in the pairing frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np

from hamiltonians import Problem
from hamiltonians.lattice import SquareLattice

from ..sampling.tj_rules import tj_sampler
from .autoregressive import AR_VMC_DEFAULTS
from .chunking import map_in_chunks
from .registry import ModelSpec, register_model


class HFDS(nn.Module):
    """Hidden-fermion determinant state on ``2 N`` spin-orbital modes with fixed ``N_e``."""

    n_orbitals: int
    """Lattice sites ``N``; configurations have ``2 N`` occupations (down block, up block)."""
    n_electrons: int
    """Determinant rows of the configuration: ``N_e`` electrons, or ``N_up + N - N_dn`` in the
    pairing frame."""
    n_hidden: int = 4
    """Hidden fermions ``N_h``: hidden rows produced by the network."""
    hidden_width: int = 32
    """Width of each hidden layer of the network producing the hidden rows."""
    hidden_layers: int = 1
    """Hidden layers of that network."""
    jastrow: bool = True
    """Multiply by ``exp(sum_ij n_i V_ij n_j + s_i W_ij s_j)`` (charge and spin Jastrow)."""
    particle_hole_down: bool = False
    """Pairing frame: rows are the occupied up and the empty down modes (module docstring)."""
    orbitals_init: Any = None
    """``(2N, n_electrons)`` initial orbitals (``HashableArray``); default random."""
    noise: float = 1e-2
    """Scale of the random part of the initial parameters."""
    param_dtype: Any = np.float64
    """``float64``: real amplitudes with sign (the t-J Hamiltonian is real); ``complex128``."""

    eval_chunk: int | None = 256
    """Configurations evaluated at once; larger batches are mapped in chunks
    (:mod:`nqs.models.chunking`): the local energies of 256 samples on the 8x8 t-J lattice in one
    batch asked for 40 GB. ``None``: all at once."""

    def __call__(self, x: jax.Array) -> jax.Array:
        """``log psi`` (complex) of NetKet occupations ``(..., 2 N)``."""
        flat = jnp.asarray(x).reshape(-1, x.shape[-1])
        return map_in_chunks(self, "log_psi", flat, self.eval_chunk).reshape(x.shape[:-1])

    @nn.compact
    def log_psi(self, x: jax.Array) -> jax.Array:
        """``log psi`` of a flat batch ``(B, 2 N)``."""
        n_modes, n_e, n_h = 2 * self.n_orbitals, self.n_electrons, self.n_hidden
        size = n_e + n_h
        occ = x > 0.5

        def init_orbitals(key, shape, dtype):
            phi = self.noise * jax.random.normal(key, shape, dtype=dtype)
            if self.orbitals_init is not None:
                phi = phi.at[:, :n_e].add(jnp.asarray(np.asarray(self.orbitals_init), dtype=dtype))
            return phi

        phi = self.param("orbitals", init_orbitals, (n_modes, size), self.param_dtype)
        occ = occ.reshape(-1, n_modes)
        n = self.n_orbitals
        if self.particle_hole_down:
            # |empty down E, up U> = (-1)^(N N_up + sum E) |n> for the vacuum with every down
            # mode filled; N N_up is fixed by the sector, sum E is the sign carried here
            occ = jnp.concatenate([~occ[:, :n], occ[:, n:]], axis=1)
            odd_holes = (occ[:, :n] @ np.arange(n)) % 2
        # occupied modes in increasing mode index: the operator's fermionic ordering
        idx = jax.vmap(lambda o: jnp.nonzero(o, size=n_e, fill_value=0)[0])(occ)
        rows = phi[idx]  # (batch, N_e, N_e + N_h)

        mats = [rows]
        if n_h > 0:
            h = 2.0 * x.reshape(-1, n_modes).astype(np.float64) - 1.0
            for layer in range(self.hidden_layers):
                h = jnp.tanh(nn.Dense(self.hidden_width, param_dtype=self.param_dtype, name=f"hidden_{layer}")(h))
            eye = np.concatenate([np.zeros((n_h, n_e)), np.eye(n_h)], axis=1).reshape(-1)

            def bias_init(key, shape, dtype):
                return jnp.asarray(eye, dtype=dtype) + self.noise * jax.random.normal(key, shape, dtype=dtype)

            chi = nn.Dense(
                n_h * size,
                param_dtype=self.param_dtype,
                kernel_init=nn.initializers.normal(self.noise),
                bias_init=bias_init,
                name="hidden_rows",
            )(h)
            mats.append(chi.reshape(-1, n_h, size))
        m = jnp.concatenate(mats, axis=1)
        sign, logabs = jnp.linalg.slogdet(m)
        if self.particle_hole_down:
            sign = jnp.where(odd_holes == 1, -sign, sign)
        log_psi = logabs.astype(jnp.complex128) + jnp.log(sign.astype(jnp.complex128))

        if self.jastrow:
            xs = x.reshape(-1, n_modes).astype(np.float64)
            charge = xs[:, :n] + xs[:, n:]
            spin = xs[:, n:] - xs[:, :n]
            v = self.param("jastrow_charge", nn.initializers.zeros, (n, n), self.param_dtype)
            w = self.param("jastrow_spin", nn.initializers.zeros, (n, n), self.param_dtype)
            log_psi = log_psi + jnp.einsum("bi,ij,bj->b", charge, v + v.T, charge) / 2
            log_psi = log_psi + jnp.einsum("bi,ij,bj->b", spin, w + w.T, spin) / 2
        return log_psi


def _mean_field_terms(problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hopping, d-wave bond signs, sublattice parity)`` on the sites; the hopping carries a
    tiny fixed site-dependent splitting so that degenerate shells choose a definite subspace
    (not random: reproducible orbitals)."""
    geo = problem.geometry
    n = problem.n_sites
    t = float(problem.params.get("t", 1.0))
    hop, dwave = np.zeros((n, n)), np.zeros((n, n))
    for i, j in geo.bonds:
        hop[i, j] -= t
        hop[j, i] -= t
        # d_{x^2 - y^2}: + on bonds along x, - along y (wrapping bonds included)
        along_x = geo.coords[i][0] != geo.coords[j][0]
        dwave[i, j] += 1.0 if along_x else -1.0
        dwave[j, i] = dwave[i, j]
    parity = np.where(geo.coords.sum(axis=1) % 2 == 0, 1.0, -1.0)
    return hop + np.diag(1e-3 * np.linspace(-1.0, 1.0, n)), dwave, parity


def mean_field_orbitals(problem: Problem, staggered_field: float) -> np.ndarray:
    """``(2N, N_e)`` occupied orbitals of ``-t`` hopping on the bonds plus a staggered field.

    The field ``-h (-1)^(x+y) s`` (``s = +-1`` for up/down) favours up electrons on the even
    sublattice and down ones on the odd one. Columns ``0 .. N_dn-1`` hold the lowest down
    orbitals (non-zero in the down block only), the next ``N_up`` the lowest up orbitals.
    """
    n = problem.n_sites
    hop, _, parity = _mean_field_terms(problem)
    n_up, n_dn = int(problem.sector["n_up"]), int(problem.sector["n_dn"])
    out = np.zeros((2 * n, n_up + n_dn))
    for block, (s, count, col) in enumerate(((-1.0, n_dn, 0), (1.0, n_up, n_dn))):
        e, v = np.linalg.eigh(hop + np.diag(-staggered_field * s * parity))
        out[block * n : (block + 1) * n, col : col + count] = v[:, :count]
    return out


def paired_mean_field_orbitals(problem: Problem, staggered_field: float, pairing: float) -> np.ndarray:
    """``(2N, N_up + N - N_dn)`` orbitals of the pairing frame (down modes particle-hole
    transformed): the lowest eigenvectors of the Bogoliubov-de Gennes matrix of ``-t`` hopping,
    the staggered field of :func:`mean_field_orbitals`, d-wave singlet pairing ``pairing``
    (``+`` on x bonds, ``-`` on y bonds) and a chemical potential set by bisection so that the
    mean-field electron number is the sector's ``N_e``. Projected on the sector's
    configurations this is the Gutzwiller-projected d-wave BCS state with Néel order.
    """
    n = problem.n_sites
    hop, dwave, parity = _mean_field_terms(problem)
    n_up, n_dn = int(problem.sector["n_up"]), int(problem.sector["n_dn"])
    m = n_up + n - n_dn

    def orbitals(mu: float) -> np.ndarray:
        h_up = hop + np.diag(-staggered_field * parity - mu)
        h_dn = hop + np.diag(staggered_field * parity - mu)
        # c^dag_up c^dag_dn pairs become up-to-transformed-down hopping; down hopping flips sign
        bdg = np.block([[-h_dn.T, pairing * dwave.T], [pairing * dwave, h_up]])
        return np.linalg.eigh(bdg)[1][:, :m]

    def electrons(mu: float) -> float:
        v = orbitals(mu)
        return float(np.sum(v[n:] ** 2) + n - np.sum(v[:n] ** 2))

    bound = np.abs(hop).sum(axis=1).max() + staggered_field + abs(pairing) * np.abs(dwave).sum(axis=1).max() + 1.0
    lo, hi = -bound, bound
    for _ in range(60):  # the electron number grows with mu
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if electrons(mid) > n_up + n_dn else (mid, hi)
    return orbitals(0.5 * (lo + hi))


@dataclass
class HFDSOptions:
    """``[method]`` keys of ``model = "hfds"`` (t-J only).

    The defaults, with the VMC defaults of :attr:`vmc_defaults`, are chosen for the 4x4
    periodic t-J model with 2 holes (``J = 0.4``), 300 steps, whose slow accuracy test
    (``tests/nqs/test_accuracy.py``) asks for 2e-2 relative to ED. Measurements:
    ``docs/benchmarks/defaults.md``.
    """

    vmc_defaults: ClassVar[dict[str, Any]] = {**AR_VMC_DEFAULTS, "n_chains": 64}
    """VMC defaults for this model (a key written in ``[method]`` wins): 1024 samples from 64
    Metropolis chains, SR (minSR kernel from the stored Jacobian) with SPRING momentum 0.9, steps
    and regularisation decaying geometrically (large early to leave the mean-field start fast,
    small late to resolve the last percent), as for the autoregressive models."""

    n_hidden: int = 16
    """Hidden fermions: extra rows of the determinant produced by the network."""
    hidden_width: int = 64
    """Neurons per hidden layer of the network producing the hidden rows."""
    hidden_layers: int = 1
    """Hidden layers of that network (tanh activations)."""
    jastrow: bool = True
    """Multiply by a two-body charge and spin Jastrow factor."""
    staggered_field: float | None = None
    """Staggered field (units of t) of the mean-field Hamiltonian whose occupied orbitals start
    the orbitals; 0 starts without Néel order. ``None``: 1.0 without pairing, 0.2 with it."""
    pairing: float | None = None
    """d-wave pairing amplitude (units of t) of that mean field; above 0 the determinant works
    in the pairing frame (:class:`HFDS`'s ``particle_hole_down``) and starts as the projected
    d-wave BCS state with Néel order; 0 keeps the electron frame and starts as the Néel Slater
    determinant. ``None``: 0.2 where every electron can pair (``N_up = N_dn``), else 0 (a
    single hole is a spin polaron in the Néel background, not a pair)."""

    param_dtype: Literal["real", "complex"] = "real"
    """Real parameters give a real wavefunction with exact sign (the t-J Hamiltonian is real)."""
    hop_probability: float = 0.5
    """Metropolis rule: probability that a proposal is an electron hop (else a spin exchange)."""

    def __post_init__(self):
        if self.n_hidden < 0:
            raise ValueError(f"n_hidden must be >= 0, got {self.n_hidden}")
        if self.hidden_width < 1:
            raise ValueError(f"hidden_width must be >= 1, got {self.hidden_width}")
        if self.hidden_layers < 1:
            raise ValueError(f"hidden_layers must be >= 1, got {self.hidden_layers}")
        if self.staggered_field is not None and self.staggered_field < 0:
            raise ValueError(f"staggered_field must be >= 0, got {self.staggered_field}")
        if self.pairing is not None and self.pairing < 0:
            raise ValueError(f"pairing must be >= 0 (0: no pairing, the electron frame), got {self.pairing}")
        if not 0.0 < self.hop_probability < 1.0:
            raise ValueError(f"hop_probability must be in (0, 1) (exclusive), got {self.hop_probability}")

    def mean_field(self, problem: Problem) -> tuple[float, float]:
        """``(staggered_field, pairing)`` of ``problem``'s start, the ``None`` defaults resolved."""
        pairing = self.pairing
        if pairing is None:
            pairing = 0.2 if int(problem.sector["n_up"]) == int(problem.sector["n_dn"]) else 0.0
        field = self.staggered_field
        if field is None:
            field = 0.2 if pairing > 0 else 1.0
        return field, pairing


def _fits(problem: Problem) -> str | None:
    if problem.local_space.name != "tj_site":
        return (
            "hfds is a fermionic determinant for the t-J model (problem 'tj'); for spin models use "
            "'vit', 'rbm_symm' or 'rbm', for gauge models 'gauge_transformer'"
        )
    if not isinstance(problem.geometry, SquareLattice):
        return "hfds needs a square-lattice t-J problem"
    if problem.n_sites - int(problem.params.get("n_holes", 0)) < 1:
        return "hfds needs at least one electron (n_holes < Lx * Ly)"
    return None


def build(problem: Problem, o: HFDSOptions) -> HFDS:
    reason = _fits(problem)
    if reason:
        raise ValueError(reason)
    field, pairing = o.mean_field(problem)
    if pairing > 0:
        orbitals = paired_mean_field_orbitals(problem, field, pairing)
    else:
        orbitals = mean_field_orbitals(problem, field)
    return HFDS(
        n_orbitals=problem.n_sites,
        n_electrons=orbitals.shape[1],
        n_hidden=o.n_hidden,
        hidden_width=o.hidden_width,
        hidden_layers=o.hidden_layers,
        jastrow=o.jastrow,
        particle_hole_down=pairing > 0,
        orbitals_init=nk.utils.HashableArray(orbitals),
        param_dtype={"real": np.float64, "complex": np.complex128}[o.param_dtype],
    )


def make_sampler(problem: Problem, hilbert, hamiltonian, vmc_options):
    o = vmc_options.model_options or HFDSOptions()
    return tj_sampler(problem, hilbert, vmc_options.n_chains, vmc_options.sweep_size, o.hop_probability)


register_model(
    ModelSpec(
        "hfds", HFDSOptions, build, _fits,
        "hidden-fermion determinant state for t-J (Metropolis hops and spin exchanges)",
        make_sampler=make_sampler,
    )
)
