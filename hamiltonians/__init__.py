"""One registry of lattice Hamiltonians for every backend (NetKet, quimb, exact diagonalisation).

>>> import hamiltonians
>>> problem = hamiltonians.get("j1j2", Lx=4, Ly=4, J2=0.5)
>>> hilbert, H = problem.to_netket()
>>> mpo = problem.to_mpo()
>>> problem.exact() / problem.n_sites   # doctest: +ELLIPSIS
-0.52862...
"""

from .automaton import SectorAutomaton, build_automaton
from .constraints import AllowedTuples, Constraint, LinearConstraint, Move
from .lattice import CubicLattice, LinkLattice, SquareLattice
from .local_spaces import SPIN_HALF, TJ_SITE, Z2_LINK, LocalSpace
from .problem import Problem
from .references import Reference
from .registry import available, get, register, spec

# Model modules register themselves on import.
from . import spins, tj, gauge, open_systems, anyons, xcube  # noqa: E402,F401  isort: skip

__all__ = [
    "AllowedTuples",
    "Constraint",
    "CubicLattice",
    "LinearConstraint",
    "LinkLattice",
    "LocalSpace",
    "Move",
    "Problem",
    "Reference",
    "SPIN_HALF",
    "SectorAutomaton",
    "SquareLattice",
    "TJ_SITE",
    "Z2_LINK",
    "available",
    "build_automaton",
    "get",
    "register",
    "spec",
]
