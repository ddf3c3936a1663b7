"""Translation of a registry problem into a constraint-aware NetKet Hilbert space and operator.

Generic over terms: bosonic local spaces become a :class:`netket.operator.LocalOperator` built
from the local matrices; fermionic ones (t-J) a
:class:`~hamiltonians.projected_operator.ProjectedFermionOperator` in NetKet's sign convention.
:func:`fermion_operator` builds the same Hamiltonian as NetKet's own
:class:`~netket.operator.FermionOperator2nd` from each local operator's mode expansion, so
NetKet's Jordan-Wigner machinery (mode order: all down orbitals, then all up) checks ours.

Constraints map to NetKet as follows: a fixed total ``S^z`` to ``Spin(total_sz=...)``; fixed
electron numbers to :class:`TJFermions` (``SpinOrbitalFermions`` without double occupancy);
Gauss's law to :class:`LinearConstraintNK`; table constraints (anyon fusion paths: labels
``0 .. d-1`` as ``Fock(n_max=d-1)`` values) to :class:`AutomatonConstraintNK`, the sector
automaton's acceptance. The latter three add methods to NetKet's
``random_state`` dispatch (same dispatcher, same name) so Metropolis chains start in the sector.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import scipy.sparse
from netket.utils import struct
from netket.utils.dispatch import dispatch

from .constraints import Constraint
from .local_spaces import LocalSpace
from .terms import site_factors


# --------------------------------------------------------------------------- Hilbert spaces
class LinearConstraintNK(nk.hilbert.constraint.DiscreteHilbertConstraint):
    """NetKet form of a :class:`hamiltonians.constraints.Constraint` on spin-like values.

    Configurations hold NetKet local values; ``values`` lists them in local-basis order.
    """

    matrix: np.ndarray = struct.field(pytree_node=False)
    qtable: np.ndarray = struct.field(pytree_node=False)
    targets: np.ndarray = struct.field(pytree_node=False)
    moduli: np.ndarray = struct.field(pytree_node=False)
    values: tuple = struct.field(pytree_node=False)
    _key: tuple = struct.field(pytree_node=False)
    _source: Constraint = struct.field(pytree_node=False)

    def __init__(self, constraint: Constraint):
        space = constraint.space
        quantities = sorted({c.quantity for c in constraint.linear})
        if len(quantities) != 1:
            raise ValueError("LinearConstraintNK supports one conserved quantity")
        q = np.asarray(space.quantum_numbers[quantities[0]], dtype=float)
        mat = np.zeros((len(constraint.linear), constraint.n_sites))
        for k, c in enumerate(constraint.linear):
            for s, w in zip(c.sites, c.weights):
                mat[k, s] += w
        self.matrix = mat
        self.qtable = q
        self.targets = np.array([c.value for c in constraint.linear])
        self.moduli = np.array([0 if c.modulus is None else c.modulus for c in constraint.linear])
        self.values = tuple(space.netket_values)
        self._source = constraint
        self._key = (self.matrix.tobytes(), self.qtable.tobytes(), self.targets.tobytes(), self.moduli.tobytes(), self.values)

    def local_index(self, x):
        vals = jnp.asarray(self.values, dtype=x.dtype)
        return jnp.argmax(x[..., None] == vals, axis=-1)

    def __call__(self, x):
        q = jnp.asarray(self.qtable)[self.local_index(x)]
        s = q @ jnp.asarray(self.matrix.T)
        dev = s - jnp.asarray(self.targets)
        mod = jnp.asarray(self.moduli)
        dev = jnp.where(mod > 0, jnp.mod(dev, jnp.where(mod > 0, mod, 1)), dev)
        return jnp.all(jnp.abs(dev) < 1e-6, axis=-1)

    def __hash__(self):
        return hash(("LinearConstraintNK", self._key))

    def __eq__(self, other):
        return isinstance(other, LinearConstraintNK) and self._key == other._key


def _host_random_states(constraint: Constraint, values: tuple, seed, batches: int, dtype):
    rng = np.random.default_rng(np.asarray(seed, dtype=np.uint32).tolist())
    idx = constraint.random_configs(rng, batches)
    return np.asarray(values, dtype=dtype)[idx]


@dispatch
def random_state(hilb: nk.hilbert.HomogeneousHilbert, constraint: LinearConstraintNK, key, batches: int, *, dtype=None):  # noqa: F811
    dtype = dtype or hilb._local_states.dtype
    seed = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    out = jax.ShapeDtypeStruct((batches, hilb.size), dtype)
    fn = partial(_host_random_states, constraint._source, constraint.values, batches=batches, dtype=dtype)
    return jax.pure_callback(fn, out, seed)


class NoDoubleOccupancy(nk.hilbert.constraint.DiscreteHilbertConstraint):
    """No orbital holds both an up and a down electron (NetKet layout: down block, up block)."""

    n_orbitals: int = struct.field(pytree_node=False)

    def __init__(self, n_orbitals: int):
        self.n_orbitals = n_orbitals

    def __call__(self, x):
        n = self.n_orbitals
        return jnp.all(x[..., :n] * x[..., n:] == 0, axis=-1)

    def __hash__(self):
        return hash(("NoDoubleOccupancy", self.n_orbitals))

    def __eq__(self, other):
        return isinstance(other, NoDoubleOccupancy) and other.n_orbitals == self.n_orbitals


class TJFermions(nk.hilbert.SpinOrbitalFermions):
    """Spin-1/2 fermions with fixed ``(n_up, n_dn)`` and no double occupancy.

    Configuration layout is NetKet's: occupations of the ``n_orbitals`` down modes, then of the
    up modes. Random states are drawn uniformly from the sector directly (not by rejection).
    """

    def __init__(self, n_orbitals: int, n_up: int, n_dn: int):
        super().__init__(
            n_orbitals, s=0.5, n_fermions_per_spin=(n_dn, n_up), constraint=NoDoubleOccupancy(n_orbitals)
        )

    @property
    def n_up(self) -> int:
        return self.n_fermions_per_spin[1]

    @property
    def n_dn(self) -> int:
        return self.n_fermions_per_spin[0]

    def __repr__(self):
        return f"TJFermions(n_orbitals={self.n_orbitals}, n_up={self.n_up}, n_dn={self.n_dn})"


@dispatch
def random_state(hilb: TJFermions, key, batches: int, *, dtype=None):  # noqa: F811
    dtype = dtype or hilb._local_states.dtype
    n = hilb.n_orbitals
    base = jnp.concatenate(
        [jnp.full(hilb.n_up, 1), jnp.full(hilb.n_dn, 2), jnp.zeros(n - hilb.n_up - hilb.n_dn, dtype=int)]
    )
    keys = jax.random.split(key, batches)
    site_states = jax.vmap(lambda k: jax.random.permutation(k, base))(keys)
    dn = (site_states == 2).astype(dtype)
    up = (site_states == 1).astype(dtype)
    return jnp.concatenate([dn, up], axis=-1)



class AutomatonConstraintNK(nk.hilbert.constraint.DiscreteHilbertConstraint):
    """NetKet form of any :class:`hamiltonians.constraints.Constraint`, read off its sector
    automaton (:mod:`hamiltonians.automaton`): a configuration is allowed when the automaton
    accepts its local indices. Generic over linear sums and table constraints
    (:class:`~hamiltonians.constraints.AllowedTuples`, anyon fusion paths); configurations hold
    NetKet local values, ``values`` lists them in local-basis order."""

    table: np.ndarray = struct.field(pytree_node=False)
    values: tuple = struct.field(pytree_node=False)
    _key: tuple = struct.field(pytree_node=False)
    _source: Constraint = struct.field(pytree_node=False)

    def __init__(self, constraint: Constraint):
        from .automaton import build_automaton

        self.table = build_automaton(constraint).padded()[0]
        self.values = tuple(float(v) for v in constraint.space.netket_values)
        self._source = constraint
        self._key = (self.table.shape, self.table.tobytes(), self.values)

    def __call__(self, x):
        vals = jnp.asarray(self.values, dtype=x.dtype)
        a = jnp.argmax(x[..., None] == vals, axis=-1).astype(jnp.int32)
        lead = a.shape[:-1]
        a = a.reshape(-1, a.shape[-1])
        table = jnp.asarray(self.table)

        def advance(s, inputs):
            t_k, a_k = inputs
            nxt = jnp.take_along_axis(t_k[jnp.maximum(s, 0)], a_k[:, None], axis=-1)[:, 0]
            return jnp.where(s < 0, -1, nxt), None

        final, _ = jax.lax.scan(advance, jnp.zeros(a.shape[0], dtype=jnp.int32), (table, a.T))
        return (final >= 0).reshape(lead)

    def __hash__(self):
        return hash(("AutomatonConstraintNK", self._key))

    def __eq__(self, other):
        return isinstance(other, AutomatonConstraintNK) and self._key == other._key


@dispatch
def random_state(hilb: nk.hilbert.HomogeneousHilbert, constraint: AutomatonConstraintNK, key, batches: int, *, dtype=None):  # noqa: F811
    # uniform over the sector (the automaton's completion counts), drawn on the host
    dtype = dtype or hilb._local_states.dtype
    seed = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    out = jax.ShapeDtypeStruct((batches, hilb.size), dtype)
    fn = partial(_host_random_states, constraint._source, constraint.values, batches=batches, dtype=dtype)
    return jax.pure_callback(fn, out, seed)


# --------------------------------------------------------------------------- conversions
def configs_to_netket(space: LocalSpace, configs: np.ndarray) -> np.ndarray:
    """Local basis indices (snake order) -> NetKet configurations."""
    x = np.asarray(configs)
    if space.netket_values is not None:
        return np.asarray(space.netket_values)[x]
    if space.name == "tj_site":
        return np.concatenate([(x == 2), (x == 1)], axis=-1).astype(np.int8)
    raise ValueError(f"no NetKet representation for local space {space.name!r}")


def configs_from_netket(space: LocalSpace, configs: np.ndarray) -> np.ndarray:
    """NetKet configurations -> local basis indices."""
    x = np.asarray(configs)
    if space.netket_values is not None:
        vals = np.asarray(space.netket_values)
        return np.argmax(x[..., None] == vals, axis=-1).astype(np.int8)
    if space.name == "tj_site":
        n = x.shape[-1] // 2
        return (x[..., n:] * 1 + x[..., :n] * 2).astype(np.int8)
    raise ValueError(f"no NetKet representation for local space {space.name!r}")


# --------------------------------------------------------------------------- translation
def build_hilbert(constraint: Constraint, n_sites: int):
    space = constraint.space
    if space.name == "tj_site":
        sector = constraint.sector
        return TJFermions(n_sites, int(sector["n_up"]), int(sector["n_dn"]))
    if space.netket_values is None:
        raise ValueError(f"no NetKet Hilbert space for local space {space.name!r}")
    if constraint.tables:
        # table constraints (anyon fusion paths): labels 0 .. d-1 as Fock occupations, the
        # sector through its automaton
        values = tuple(float(v) for v in space.netket_values)
        nk_constraint = AutomatonConstraintNK(constraint)
        if values == tuple(float(n) for n in range(space.dim)):
            return nk.hilbert.Fock(n_max=space.dim - 1, N=n_sites, constraint=nk_constraint)
        if values == (1.0, -1.0):
            return nk.hilbert.Spin(0.5, n_sites, constraint=nk_constraint)
        raise ValueError(f"no NetKet Hilbert space for the values {values} of local space {space.name!r}")
    if constraint.kind == "global_sums" and set(constraint.sector) == {"Sz"} and space.name == "spin_half":
        return nk.hilbert.Spin(0.5, n_sites, total_sz=constraint.sector["Sz"])
    return nk.hilbert.Spin(0.5, n_sites, constraint=LinearConstraintNK(constraint))


def _local_operator(hilbert, terms, space: LocalSpace):
    # Matrices in NetKet's local ordering: position k holds value hilbert.local_states[k].
    values = list(space.netket_values)
    perm = np.array([values.index(v) for v in np.asarray(hilbert.local_states)])
    # One matrix per support, handed to NetKet at once, sparse where the support is large: a
    # dense (17^3)^2 block per bond of a 32-spin su2_chain would take gigabytes and minutes.
    sparse = space.dim**2 > 64
    blocks: dict[tuple[int, ...], Any] = {}
    constant = 0.0
    for coeff, ops in terms:
        factors = site_factors(ops, space)
        if not factors:
            constant += coeff
            continue
        sites = tuple(sorted(factors))
        m = scipy.sparse.identity(1, format="csr") if sparse else np.ones((1, 1))
        for s in sites:
            f = factors[s][np.ix_(perm, perm)]
            m = scipy.sparse.kron(m, f, format="csr") if sparse else np.kron(m, f)
        blocks[sites] = blocks[sites] + coeff * m if sites in blocks else coeff * m
    if not blocks:
        op = nk.operator.LocalOperator(hilbert, dtype=np.float64)
    else:
        op = nk.operator.LocalOperator(hilbert, list(blocks.values()), [list(k) for k in blocks], dtype=np.float64)
    return op + constant if constant else op


def _site_fock_matrices() -> dict[tuple[bool, int], np.ndarray]:
    """Mode operators on one site's Fock space ``|0>, |up>, |dn>, |up dn>`` (up before down)."""
    def a(mode: int) -> np.ndarray:
        m = np.zeros((4, 4))
        occ = [(0, 0), (1, 0), (0, 1), (1, 1)]
        for j, n in enumerate(occ):
            if n[mode]:
                new = list(n)
                new[mode] = 0
                sign = -1.0 if (mode == 1 and n[0]) else 1.0
                m[occ.index(tuple(new)), j] = sign
        return m

    up, dn = a(0), a(1)
    return {(False, +1): up, (True, +1): up.T, (False, -1): dn, (True, -1): dn.T}


_FOCK = _site_fock_matrices()
_PHYSICAL = np.diag([1.0, 1.0, 1.0, 0.0])  # no double occupancy


def _acts_only_between_unphysical(seq_by_site: dict[int, list[tuple[bool, int]]]) -> bool:
    """True when the mode product ``T`` has ``P T = 0`` and ``T P = 0`` (``P`` = physical
    projector): such products never contribute to ``P H P`` nor connect it to anything, and
    dropping them (with their adjoints) keeps the operator Hermitian and its physical block."""
    out_dead = in_dead = False
    for ops in seq_by_site.values():
        m = np.eye(4)
        for dag, sz in ops:
            m = m @ _FOCK[(dag, sz)]
        out_dead |= not np.any(_PHYSICAL @ m)
        in_dead |= not np.any(m @ _PHYSICAL)
    return out_dead and in_dead


def _fermion_operator(hilbert, terms, space: LocalSpace):
    mode_terms: list[tuple] = []
    weights: list[float] = []
    constant = 0.0
    for coeff, ops in terms:
        # expand the product of local operators into products of mode operators
        expansion = [(coeff, ())]
        for op, s in ops:
            expansion = [
                (c0 * c1, seq0 + tuple((s, dag, sz) for dag, sz in seq1))
                for c0, seq0 in expansion
                for c1, seq1 in space.modes[op]
            ]
        for c, raw in expansion:
            by_site: dict[int, list] = {}
            for s, dag, sz in raw:
                by_site.setdefault(s, []).append((dag, sz))
            if raw and _acts_only_between_unphysical(by_site):
                continue
            seq = tuple((hilbert._get_index(s, sz), int(dag)) for s, dag, sz in raw)
            if not seq:
                constant += c
            else:
                mode_terms.append(seq)
                weights.append(c)
    op = nk.operator.FermionOperator2nd(hilbert, terms=mode_terms, weights=weights, constant=constant, dtype=np.float64)
    return op.reduce()


def fermion_operator(problem):
    """The problem as NetKet's own :class:`~netket.operator.FermionOperator2nd` (fermionic
    spaces only). Its padded connections include doubly occupied configurations whose matrix
    elements cancel only after summation, so it serves as an independent check of the signs
    (see :class:`~hamiltonians.projected_operator.ProjectedFermionOperator`), not for VMC."""
    hilbert = build_hilbert(problem.constraint, problem.n_sites)
    return _fermion_operator(hilbert, problem.terms, problem.local_space)


def to_netket(problem):
    """``(hilbert, operator)`` for a registry problem (see module docstring)."""
    hilbert = build_hilbert(problem.constraint, problem.n_sites)
    if problem.local_space.fermionic:
        from .projected_operator import ProjectedFermionOperator

        operator = ProjectedFermionOperator(hilbert, problem.terms, problem.local_space)
    else:
        operator = _local_operator(hilbert, problem.terms, problem.local_space)
    return hilbert, operator
