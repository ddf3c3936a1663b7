"""A registry problem as a block2 Hamiltonian with the sector's abelian charges in the tensors.

block2's general-symmetry mode (``SymmetryTypes.SAny``) takes a custom local basis graded by
quantum numbers and named local matrices; :func:`block2_system` feeds it the registry's own
terms, so no model needs code of its own here.

Charges: every linear constraint of a ``global_sums`` sector (total ``S^z``; ``(N_up, N_dn)``
for t-J) becomes one ``U1`` group (``Z_n`` where the constraint is taken modulo ``n``), with
the site charge ``weight * q`` scaled to integers (``2 S^z`` for spins). The MPS then lies in
the sector by construction: no penalty, and no state outside it can be reached. Gauss-law
sectors (one constraint per vertex) are not global charges and are refused
(:func:`charges_of`); the quimb backend keeps them by the sector automaton.

Fermions: the registry writes parity-odd operators with Jordan-Wigner strings in snake order
(:mod:`hamiltonians.terms`), so each term is a product of bosonic local matrices, string
included, and is handed over as such; block2 treats every group as bosonic and the signs are
those of the registry's own convention (ED, VMC and the quimb MPO use the same).
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from hamiltonians import Problem
from hamiltonians.terms import Term, site_factors


def block2_available() -> bool:
    """Whether the optional ``block2`` engine is installed (``pip install '.[block2]'``)."""
    try:
        import pyblock2.driver.core  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Charges:
    """Integer charges of every local state of every site, and the sector's target.

    ``site_charges[s][a]`` is the tuple of charges of local state ``a`` on site ``s``;
    ``groups`` names block2's symmetry group of each component (``"U1"`` or ``"Z<n>"``);
    ``target`` the total of the sector (modulo ``n`` for ``Z<n>``); ``names`` what each counts.
    """

    groups: tuple[str, ...]
    names: tuple[str, ...]
    scales: tuple[int, ...]
    site_charges: tuple[tuple[tuple[int, ...], ...], ...]
    target: tuple[int, ...]


def _integer_scale(values: list[float]) -> int:
    """Smallest positive integer ``k`` with ``k * v`` integral for every ``v`` (halves -> 2)."""
    den = 1
    for v in values:
        f = Fraction(v).limit_denominator(64)
        if abs(float(f) - v) > 1e-12:
            raise ValueError(f"charge {v} is not a small rational number")
        den = np.lcm(den, f.denominator)
    return int(den)


def charges_of(problem: Problem) -> Charges:
    """The problem's sector as abelian charges (module docstring).

    Raises:
        ValueError: the sector is not a set of global sums (Gauss law), naming what to use.
    """
    con = problem.constraint
    if con.kind != "global_sums":
        raise ValueError(
            f"{problem.label}: the sector ({con.describe()}) is a local constraint at every vertex, "
            "not a set of global abelian charges; block2 cannot hold it in its tensors. "
            'Use backend = "quimb" (the sector automaton start keeps it exactly).'
        )
    space = problem.local_space
    n = problem.n_sites
    groups, names, scales, targets = [], [], [], []
    per_site = [[[] for _ in range(space.dim)] for _ in range(n)]
    for c in con.linear:
        q = np.asarray(space.quantum_numbers[c.quantity], dtype=float)
        weights = dict(zip(c.sites, c.weights))
        values = [w * v for w in weights.values() for v in q] + [c.value]
        k = _integer_scale(values)
        for s in range(n):
            w = weights.get(s, 0.0)
            for a in range(space.dim):
                per_site[s][a].append(int(round(k * w * q[a])))
        target = int(round(k * c.value))
        if c.modulus is None:
            groups.append("U1")
        else:
            groups.append(f"Z{int(round(k * c.modulus))}")
            target %= int(round(k * c.modulus))
        names.append(c.quantity if k == 1 else f"{k}*{c.quantity}")
        scales.append(k)
        targets.append(target)
    return Charges(
        groups=tuple(groups),
        names=tuple(names),
        scales=tuple(scales),
        site_charges=tuple(tuple(tuple(a) for a in site) for site in per_site),
        target=tuple(targets),
    )


# single-letter operator names for block2's expressions (it reads one character per operator)
_LETTERS = string.ascii_uppercase + string.ascii_lowercase


class _OpNames:
    """Names of distinct local matrices: one letter each, ``X_{k}`` beyond 52."""

    def __init__(self):
        self.by_key: dict[bytes, str] = {}
        self.matrices: dict[str, np.ndarray] = {}

    def name(self, m: np.ndarray) -> str:
        key = np.ascontiguousarray(m, dtype=float).tobytes()
        if key not in self.by_key:
            k = len(self.by_key)
            name = _LETTERS[k] if k < len(_LETTERS) else f"X_{{{k}}}"
            self.by_key[key] = name
            self.matrices[name] = np.array(m, dtype=float)
        return self.by_key[key]


@dataclass
class Block2System:
    """A block2 driver set up for a problem: the Hamiltonian, the MPO and the target sector.

    ``perm[s]`` maps block2's local basis order on site ``s`` (grouped by charge) to the
    registry's local index: block2 state ``b`` is registry state ``perm[s][b]``.
    """

    driver: Any
    mpo: Any
    charges: Charges
    perm: list[np.ndarray]
    op_names: _OpNames

    def quantum(self, values: tuple[int, ...]):
        return self.driver.bw.SX(*values)


def _group_by_charge(charges: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, list[tuple[tuple[int, ...], int]]]:
    order: list[tuple[int, ...]] = []
    for c in charges:
        if c not in order:
            order.append(c)
    perm = np.array([a for c in order for a in range(len(charges)) if charges[a] == c], dtype=np.int64)
    blocks = [(c, sum(1 for x in charges if x == c)) for c in order]
    return perm, blocks


def operator_terms(terms: tuple[Term, ...], problem: Problem, names: _OpNames) -> list[tuple[str, list[int], float]]:
    """Each registry term as ``(operator string, sites, coefficient)`` in block2's expression
    form: one named local matrix per site of the term's support, in snake order, strings
    included (:func:`hamiltonians.terms.site_factors`). Identity terms give ``("", [], c)``."""
    out = []
    for c, ops in terms:
        factors = site_factors(ops, problem.local_space)
        sites = sorted(factors)
        out.append(("".join(names.name(factors[s]) for s in sites), sites, float(c)))
    return out


def block2_system(
    problem: Problem, scratch: str, n_threads: int | None = None, extra_terms: tuple[Term, ...] = (),
    stack_mem: int = 2 << 30,
) -> Block2System:
    """A block2 ``DMRGDriver`` holding ``problem``'s Hamiltonian in its charged sector, with its
    MPO. ``scratch`` is block2's work directory (MPS and environments); the local operators of
    ``extra_terms`` (observables) are registered too, so they can be measured later."""
    from pyblock2.driver.core import DMRGDriver, MPOAlgorithmTypes, SymmetryTypes

    charges = charges_of(problem)
    n = problem.n_sites
    n_threads = n_threads or len(os.sched_getaffinity(0))
    driver = DMRGDriver(
        scratch=scratch, symm_type=SymmetryTypes.SAny, n_threads=n_threads, stack_mem=stack_mem,
        clean_scratch=True,
    )
    driver.set_symmetry_groups(*charges.groups)
    Q = driver.bw.SX
    driver.initialize_system(
        n_sites=n, vacuum=Q(*([0] * len(charges.groups))), target=Q(*charges.target), hamil_init=False
    )
    names = _OpNames()
    ops = operator_terms(problem.terms, problem, names)
    operator_terms(tuple(extra_terms), problem, names)
    perms, bases = [], []
    for s in range(n):
        perm, blocks = _group_by_charge(charges.site_charges[s])
        perms.append(perm)
        bases.append([(Q(*c), k) for c, k in blocks])
    site_ops = []
    for s in range(n):
        p = perms[s]
        d = {"": np.eye(len(p))}
        d.update({k: m[np.ix_(p, p)] for k, m in names.matrices.items()})
        site_ops.append(d)
    driver.ghamil = driver.get_custom_hamiltonian(bases, site_ops)
    b = driver.expr_builder()
    for op, sites, c in ops:
        if op:
            b.add_term(op, sites, c)
        else:
            b.add_const(c)
    mpo = driver.get_mpo(b.finalize(adjust_order=False), algo_type=MPOAlgorithmTypes.FastBipartite, iprint=0)
    return Block2System(driver=driver, mpo=mpo, charges=charges, perm=perms, op_names=names)


def su2_couplings(problem: Problem) -> tuple[list[tuple[float, int, int]], float] | None:
    """``([(J, i, j), ...], constant)`` when ``problem`` is spin-1/2 with only Heisenberg
    couplings ``J S_i.S_j`` (each written as ``J Sz Sz + J/2 (S+ S- + S- S+)``) and constants,
    in the ``S^z = 0`` sector: then the Hamiltonian commutes with total spin and the
    ground state can be sought among spin singlets; else ``None``."""
    con = problem.constraint
    if problem.local_space.name != "spin_half" or con.kind != "global_sums":
        return None
    if [(c.quantity, c.value, set(c.weights)) for c in con.linear] != [("Sz", 0.0, {1.0})]:
        return None
    constant = 0.0
    pairs: dict[tuple[int, int], dict[str, float]] = {}
    for c, ops in problem.terms:
        if not ops:
            constant += c
            continue
        if len(ops) != 2 or ops[0][1] == ops[1][1]:
            return None
        (a, i), (b, j) = sorted(ops, key=lambda o: o[1])
        if (a, b) not in (("Sz", "Sz"), ("Sp", "Sm"), ("Sm", "Sp")):
            return None
        slot = pairs.setdefault((i, j), {})
        slot[a + b] = slot.get(a + b, 0.0) + c
    couplings = []
    for (i, j), slot in pairs.items():
        J = slot.get("SzSz", 0.0)
        if not np.allclose([slot.get("SpSm", 0.0), slot.get("SmSp", 0.0)], [J / 2, J / 2], rtol=1e-12, atol=1e-14):
            return None
        couplings.append((J, i, j))
    return couplings, constant


def block2_su2_system(problem: Problem, scratch: str, n_threads: int | None = None, stack_mem: int = 2 << 30) -> Block2System:
    """A block2 driver in its SU(2) mode for a spin-rotation-invariant spin-1/2 problem
    (:func:`su2_couplings`), targeting total spin 0: bond dimensions count SU(2) multiplets.
    ``J S_i.S_j = -J sqrt(3)/2 (T_i x T_j)^[0]`` with block2's rank-1 tensor operator ``T``."""
    from pyblock2.driver.core import DMRGDriver, MPOAlgorithmTypes, SymmetryTypes

    found = su2_couplings(problem)
    if found is None:
        raise ValueError(f"{problem.label}: not a Heisenberg spin-1/2 problem in S^z = 0; use symmetry = \"abelian\"")
    couplings, constant = found
    n_threads = n_threads or len(os.sched_getaffinity(0))
    driver = DMRGDriver(scratch=scratch, symm_type=SymmetryTypes.SU2, n_threads=n_threads, stack_mem=stack_mem,
                        clean_scratch=True)
    driver.initialize_system(n_sites=problem.n_sites, heis_twos=1, spin=0)
    b = driver.expr_builder()
    for J, i, j in couplings:
        b.add_term("(T+T)0", [i, j], -np.sqrt(3) / 2 * J)
    if constant:
        b.add_const(constant)
    mpo = driver.get_mpo(b.finalize(adjust_order=False), algo_type=MPOAlgorithmTypes.FastBipartite, iprint=0)
    charges = Charges(groups=("SU2",), names=("S",), scales=(2,), site_charges=(), target=(0,))
    return Block2System(driver=driver, mpo=mpo, charges=charges, perm=[], op_names=_OpNames())
