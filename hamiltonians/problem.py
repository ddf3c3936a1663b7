"""A registry problem: a Hamiltonian as symbolic terms on a lattice, in a symmetry sector.

The problem is backend-agnostic; :meth:`Problem.to_netket`, :meth:`Problem.to_mpo` and
:meth:`Problem.exact` translate the same terms for VMC, DMRG and exact diagonalisation.
An *open* problem also carries jump operators (Lindblad dynamics); its exact references are
in :mod:`hamiltonians.lindblad`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .constraints import Constraint
from .local_spaces import LocalSpace
from .references import Reference, find_reference
from .terms import Op, Term, identity_trace_fraction, monomial, site_factors

Jump = tuple[tuple[complex, tuple[Op, ...]], ...]
"""A jump operator: a sum of operator products ``((coefficient, ((op, site), ...)), ...)``,
like a Hamiltonian's terms (coefficients may be complex)."""

# Exact diagonalisation is attempted up to this many states in the sector.
DEFAULT_MAX_ED_STATES = 3_000_000

_EXACT_CACHE: dict[str, float] = {}


@dataclass(frozen=True, eq=False)
class Problem:
    """A lattice Hamiltonian defined once for every backend.

    Attributes:
        terms: ``(coefficient, ((op, site), ...))``, sites in snake order.
        local_space: basis and operators of one site (or link).
        constraint: the symmetry sector.
        geometry: the lattice (sites or links), see :mod:`hamiltonians.lattice`.
        formula: the Hamiltonian as written in the model's docstring.
        name: registry name (``"j1j2"``, ...), set by :func:`hamiltonians.get`.
        params: validated parameters with defaults filled in (TOML-compatible).
        shown_params: the parameters named in :attr:`label` (required or non-default ones).
        jumps: Lindblad jump operators ``L_k`` (empty: a closed problem), with
            ``d rho/dt = -i [H, rho] + sum_k (L_k rho L_k^dag - {L_k^dag L_k, rho} / 2)``.
            Each must conserve the declared constraint (checked at construction).
    """

    terms: tuple[Term, ...]
    local_space: LocalSpace
    constraint: Constraint
    geometry: Any
    formula: str = ""
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    shown_params: tuple[str, ...] = ()
    jumps: tuple[Jump, ...] = ()
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.jumps:
            _check_jumps(self)

    @property
    def is_open(self) -> bool:
        """Whether the problem carries jump operators (Lindblad dynamics)."""
        return bool(self.jumps)

    def _refuse_open(self, what: str, instead: str) -> None:
        # a Hamiltonian backend would silently drop the jump operators
        if self.jumps:
            raise ValueError(f"{self.label} is an open problem (jump operators): {what} gives a Hamiltonian only; use {instead}")

    # ----------------------------------------------------------------- basics
    @property
    def n_sites(self) -> int:
        """Number of degrees of freedom: sites, or links for gauge models."""
        return self.constraint.n_sites

    @property
    def sector(self) -> dict:
        return dict(self.constraint.sector)

    @property
    def label(self) -> str:
        """``name(param=value, ...)`` with the parameters that differ from their defaults."""
        keys = self.shown_params or tuple(self.params)
        args = ", ".join(f"{k}={self.params[k]}" for k in keys)
        return f"{self.name}({args})"

    def __repr__(self) -> str:
        return f"Problem({self.label}, n_sites={self.n_sites}, sector: {self.constraint.describe()})"

    @cached_property
    def reference(self) -> Reference | None:
        """Published reference energy (total) with its citation, where one is known."""
        return find_reference(self)

    @cached_property
    def e_infinite_temperature(self) -> float:
        """``Tr H / dim`` over the product space (the ``E_inf`` of the V-score)."""
        return identity_trace_fraction(self.terms, self.local_space)

    @cached_property
    def coordinates(self) -> np.ndarray:
        """Real-space position of every degree of freedom (sites, or link midpoints)."""
        if hasattr(self.geometry, "link_coords"):
            return self.geometry.link_coords
        return self.geometry.coords.astype(float)

    # --------------------------------------------------------------- backends
    def to_netket(self):
        """``(hilbert, operator)``: constraint-aware NetKet Hilbert space and Hamiltonian."""
        self._refuse_open("to_netket()", "hamiltonians.lindblad.to_netket(problem) (a LocalLiouvillian)")
        if "netket" not in self._cache:
            from .netket_backend import to_netket

            self._cache["netket"] = to_netket(self)
        return self._cache["netket"]

    def penalty_scale(self) -> float:
        """A penalty strength that keeps the ground state of ``H + mu P`` in the sector.

        ``P >= 1`` off the sector, so ``mu`` larger than the energy gained by leaving it is
        enough; twice the largest summed coupling strength touching one site bounds the energy
        change of any local move and is used as a safe default.
        """
        # every local operator of the toolkit has matrix entries of modulus <= 1
        weight = np.zeros(self.n_sites)
        for c, ops in self.terms:
            for s in {s for _, s in ops}:
                weight[s] += abs(c)
        return float(2.0 * weight.max())

    def to_mpo(self, penalty: float | str | None = "auto"):
        """quimb MPO of ``H + penalty * P`` in snake order, ``P`` the sector penalty.

        Args:
            penalty: ``"auto"`` (:meth:`penalty_scale`), a number, or ``None``/``0`` for the bare
                Hamiltonian (then DMRG is free to leave the sector).
        """
        from .mpo import build_mpo

        self._refuse_open("to_mpo()", "hamiltonians.mpo.build_mpo(problem.terms, ...) for H alone")
        mu = self.penalty_scale() if penalty == "auto" else float(penalty or 0.0)
        mpo = build_mpo(self.terms, self.local_space, self.n_sites)
        return mpo if mu == 0.0 else mpo.add_MPO(self.penalty_mpo(mu))

    def penalty_mpo(self, mu: float = 1.0):
        """quimb MPO of ``mu P`` alone, in snake order: ``P = sum_c (Q_c - v_c)^2`` for global
        sums (bond dimension 4 per constraint), the constraint's local penalty terms otherwise.
        ``<P>`` of a state measures how far it has left the sector at a fraction of the cost of
        ``<H>``."""
        from .mpo import build_mpo, sum_mpo

        if self.constraint.kind == "global_sums":
            # (Q - v)^2 as a product of two bond-dimension-2 MPOs keeps the bond dimension small
            pen = None
            for c in self.constraint.linear:
                a = sum_mpo(self.local_space, self.n_sites, c.quantity, c.weights, -c.value)
                sq = a.apply(a)
                pen = sq if pen is None else pen.add_MPO(sq)
        else:
            pen = build_mpo(self.constraint.penalty_terms(), self.local_space, self.n_sites)
        pen.multiply(mu, inplace=True, spread_over="all")
        return pen

    def automaton(self):
        """The sector as a :class:`~hamiltonians.automaton.SectorAutomaton` (exact masks for
        autoregressive sampling in snake order); built once per problem."""
        if "automaton" not in self._cache:
            from .automaton import build_automaton

            self._cache["automaton"] = build_automaton(self.constraint)
        return self._cache["automaton"]

    def stoquastic(self, phases: np.ndarray | None = None) -> bool:
        """Whether every off-diagonal matrix element of ``H`` in the configuration basis, times
        ``exp(i (phase(x') - phase(x)))`` with ``phase(x) = sum_s phases[s, x_s]``, is real and
        ``<= 0``. Then a ground state with amplitudes ``exp(i phase(x)) |psi(x)|`` exists
        (Perron-Frobenius), so a sign prior carrying ``phases`` leaves only amplitudes to learn.

        Examples: the unfrustrated Heisenberg antiferromagnet with the Marshall phases (``pi``
        for a down spin on one sublattice), the Z2 gauge and U(1) link models (``J > 0``) with
        none. Each term is checked alone, a sufficient condition; fermionic hopping terms count
        as non-stoquastic (their Jordan-Wigner signs depend on the configuration).

        Args:
            phases: ``(n_sites, local_dim)`` phase of each local state (default zero).
        """
        from itertools import product

        from .terms import is_diagonal, site_factors

        space = self.local_space
        ph = np.zeros((self.n_sites, space.dim)) if phases is None else np.asarray(phases, dtype=float)
        for c, ops in self.terms:
            factors = site_factors(ops, space)
            if is_diagonal(factors):
                continue
            if space.fermionic and any(space.is_odd(op) for op, _ in ops):
                return False
            per_site = []
            for s, m in factors.items():
                rows, cols = np.nonzero(m)
                per_site.append(
                    [(bool(r != q), m[r, q] * np.exp(1j * (ph[s, r] - ph[s, q]))) for r, q in zip(rows, cols)]
                )
            for combo in product(*per_site):
                if any(off for off, _ in combo):
                    value = c * np.prod([v for _, v in combo])
                    if abs(value.imag) > 1e-12 or value.real > 1e-12:
                        return False
        return True

    def to_local_ham_2d(self):
        """Local terms for 2D tensor networks (PEPS); see :mod:`hamiltonians.local_ham`."""
        from .local_ham import to_local_ham_2d

        return to_local_ham_2d(self)

    # --------------------------------------------------- exact diagonalisation
    def basis(self, max_states: int | None = DEFAULT_MAX_ED_STATES) -> np.ndarray | None:
        """The sector's configurations (local indices, sorted), or ``None`` if too many."""
        key = ("basis", max_states)
        if key not in self._cache:
            self._cache[key] = self.constraint.enumerate(max_states=max_states)
        return self._cache[key]

    def sparse_matrix(self, max_states: int | None = DEFAULT_MAX_ED_STATES):
        """Sparse Hamiltonian in :meth:`basis`."""
        from .exact import sparse_hamiltonian

        basis = self.basis(max_states)
        if basis is None:
            raise ValueError(f"{self.label}: sector larger than {max_states} states")
        return sparse_hamiltonian(self.terms, self.local_space, basis)

    def exact(self, max_states: int = DEFAULT_MAX_ED_STATES) -> float | None:
        """Exact ground-state energy (total) in the sector, or ``None`` if the sector has more
        than ``max_states`` states, or for an open problem (its reference is the steady state,
        :meth:`exact_steady_state`). Cached per problem for the process."""
        if self.jumps:
            return None
        # keyed by the label across instances; a problem built outside the registry has no
        # parameters in its label, so it caches on itself
        cache, key = (_EXACT_CACHE, self.label) if self.params else (self._cache, "exact")
        if key in cache:
            return cache[key]
        size = self.constraint.size()
        if size is not None and size > max_states:
            return None
        if self.basis(max_states) is None:
            return None
        from .exact import lowest_eigenvalues

        e0 = float(lowest_eigenvalues(self.sparse_matrix(max_states), k=1)[0])
        cache[key] = e0
        return e0

    def exact_ground_state(self, max_states: int = DEFAULT_MAX_ED_STATES) -> tuple[float, np.ndarray, np.ndarray]:
        """``(energy, amplitudes, basis)`` of the exact ground state (small sizes).

        One eigenvector: where the ground state is degenerate it is an arbitrary vector of the
        manifold; :meth:`exact_ground_manifold` gives all of it.
        """
        from .exact import ground_state

        h = self.sparse_matrix(max_states)
        e0, v = ground_state(h)
        return e0, v, self.basis(max_states)

    def exact_ground_manifold(self, max_states: int = DEFAULT_MAX_ED_STATES) -> tuple[float, np.ndarray, np.ndarray]:
        """``(energy, vectors, basis)``: an orthonormal basis of the whole lowest eigenspace as the
        columns of ``vectors`` (``vectors.shape[1]`` is the degeneracy; see
        :func:`hamiltonians.exact.ground_manifold` for the tolerance)."""
        from .exact import ground_manifold

        e0, v = ground_manifold(self.sparse_matrix(max_states))
        return e0, v, self.basis(max_states)

    def reference_energy(self) -> tuple[float, str] | None:
        """The best known ground energy (total) and where it comes from: ED when feasible,
        else a published reference."""
        e = self.exact()
        if e is not None:
            return e, "exact diagonalisation"
        if self.reference is not None:
            return self.reference.energy, f"{self.reference.method} ({self.reference.source})"
        return None

    # ------------------------------------------------------------ open problems
    def liouvillian(self, max_states: int = 1 << 10):
        """Sparse Liouvillian on row-major ``vec(rho)`` (see :func:`hamiltonians.lindblad.liouvillian`)."""
        from .lindblad import liouvillian

        return liouvillian(self, max_states)

    def exact_steady_state(self, max_states: int = 1 << 10) -> np.ndarray:
        """The steady-state density matrix in :meth:`basis` (see
        :func:`hamiltonians.lindblad.steady_state`)."""
        from .lindblad import steady_state

        return steady_state(self, max_states)


def _check_jumps(problem: Problem) -> None:
    """``ValueError`` for a jump operator with unknown operators, sites outside the lattice, or
    a term that changes a quantity the constraint fixes (it would lead out of the sector)."""
    from .terms import check_terms

    n = problem.constraint.n_sites
    for k, jump in enumerate(problem.jumps):
        if not jump:
            raise ValueError(f"jump operator {k} has no terms")
        check_terms(jump, problem.local_space, n)
        for coeff, ops in jump:
            for c in problem.constraint.linear:
                q = np.asarray(problem.local_space.quantum_numbers[c.quantity], dtype=float)
                weight = dict(zip(c.sites, c.weights))
                # A product of monomial factors shifts the quantity by one fixed amount only if
                # every factor does; any non-zero (or, with a modulus, non-multiple) shift leaves.
                total = 0.0
                for s, m in site_factors(ops, problem.local_space).items():
                    target, amp = monomial(m)
                    shifts = {round(float(q[target[a]] - q[a]), 9) for a in range(len(amp)) if amp[a] != 0}
                    if len(shifts) > 1 and weight.get(s, 0.0) != 0.0:
                        total = np.nan
                        break
                    total += weight.get(s, 0.0) * (shifts.pop() if shifts else 0.0)
                off = not np.isfinite(total) or (
                    abs(total) > 1e-9 if c.modulus is None else abs(np.mod(total + 1e-9, c.modulus)) > 2e-9
                )
                if off:
                    raise ValueError(
                        f"jump operator {k}: term {coeff} * {ops} changes {c.quantity!r}, which the sector "
                        f"({problem.constraint.describe()}) fixes; an open problem's jump operators must "
                        "conserve its constraint: declare the problem without that constraint (the full "
                        "product space) or use conserving jump operators"
                    )
