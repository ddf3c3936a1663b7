"""Open (Lindblad) spin-1/2 models: the dissipative Ising and XYZ models.

Conventions shared by both families: Pauli matrices ``sigma`` (not ``S = sigma/2``) in the
``S^z`` basis of :data:`~hamiltonians.local_spaces.SPIN_HALF`, local index 0 = up =
``sigma^z = +1``; ``sigma^- = (sigma^x - i sigma^y)/2 = |down><up|`` (operator ``"Sm"``), so
decay drives every spin towards ``sigma^z = -1``. The state obeys
``d rho/dt = -i [H, rho] + sum_i (L_i rho L_i^dag - {L_i^dag L_i, rho}/2)`` with
``L_i = sqrt(gamma) sigma^-_i`` on every site. No sector: decay changes the magnetisation, so
these problems live in the full product space (``2^n_sites`` states).
"""

from __future__ import annotations

import math

from .constraints import global_sums
from .local_spaces import SPIN_HALF
from .problem import Jump, Problem
from .registry import register
from .lattice import SquareLattice
from .spins import _check_size, _lattice
from .terms import Term, combine


def _decay(model: str, gamma: float, n_sites: int) -> tuple[Jump, ...]:
    if not gamma > 0:
        raise ValueError(
            f"{model}: parameter 'gamma'={gamma} must be a positive decay rate "
            "(gamma = 0 is the closed system: use a closed model)"
        )
    return tuple(((math.sqrt(gamma), (("Sm", i),)),) for i in range(n_sites))


def _geometry(model: str, Lx: int, Ly: int, pbc: bool | list[bool], xname: str = "Lx") -> SquareLattice:
    """The square lattice, or the chain ``Ly = 1`` (periodic along x only)."""
    if Ly == 1:
        px = pbc if isinstance(pbc, bool) else pbc[0]
        _check_size(model, xname, Lx, px)
        return SquareLattice(Lx, 1, px)
    return _lattice(model, Lx, Ly, pbc)


def _open_problem(model, terms, lat, jumps, formula) -> Problem:
    return Problem(
        terms=combine(terms),
        local_space=SPIN_HALF,
        constraint=global_sums(SPIN_HALF, lat.n_sites, {}),
        geometry=lat,
        formula=formula,
        jumps=jumps,
    )


def dissipative_ising(
    L: int | None = None,
    Lx: int | None = None,
    Ly: int | None = None,
    V: float = 2.0,
    g: float = 1.0,
    gamma: float = 1.0,
    pbc: bool | list[bool] = True,
) -> Problem:
    """Dissipative transverse-field Ising model on a chain (``L``) or square lattice (``Lx, Ly``).

    ``H = V/4 sum_<ij> sigma^z_i sigma^z_j + g/2 sum_i sigma^x_i`` (Pauli matrices, each
    nearest-neighbour bond once), jump operators ``L_i = sqrt(gamma) sigma^-_i`` with
    ``sigma^- = |down><up|`` (index 0 = up = ``sigma^z = +1``). Give either ``L`` (a chain) or
    both ``Lx`` and ``Ly``; ``gamma > 0``. Sector: none (the full product space).
    """
    model = "dissipative_ising"
    chain = L is not None and Lx is None and Ly is None
    if not chain and (L is not None or Lx is None or Ly is None):
        raise ValueError(
            f"{model}: give either 'L' (a chain) or both 'Lx' and 'Ly' (a square lattice), "
            f"got L={L}, Lx={Lx}, Ly={Ly}"
        )
    lat = _geometry(model, L, 1, pbc, "L") if chain else _geometry(model, Lx, Ly, pbc)
    jumps = _decay(model, gamma, lat.n_sites)
    terms: list[Term] = [(0.25 * V, (("Z", i), ("Z", j))) for i, j in lat.bonds]
    terms += [(0.5 * g, (("X", i),)) for i in range(lat.n_sites)]
    return _open_problem(
        model, terms, lat, jumps,
        "H = V/4 sum_<ij> sigma^z_i sigma^z_j + g/2 sum_i sigma^x_i,  L_i = sqrt(gamma) sigma^-_i",
    )


def dissipative_xyz(
    Lx: int,
    Ly: int,
    Jx: float = 0.9,
    Jy: float = 1.6,
    Jz: float = 1.0,
    gamma: float = 1.0,
    pbc: bool | list[bool] = True,
) -> Problem:
    """Dissipative XYZ model on the square lattice (a chain for ``Ly = 1``).

    ``H = sum_<ij> (Jx sigma^x_i sigma^x_j + Jy sigma^y_i sigma^y_j + Jz sigma^z_i sigma^z_j)``
    with Pauli matrices, each nearest-neighbour bond once, jump operators
    ``L_i = sqrt(gamma) sigma^-_i``, ``sigma^- = |down><up|`` (index 0 = up = ``sigma^z = +1``):
    the conventions of Nagy and Savona, PRL 122, 250501 (2019), also used by the POVM
    Transformer of Luo et al., PRL 128, 090501 (2022); defaults are their parameters. The
    ``sigma^y sigma^y`` coupling is written with ``sigma^+- = |up><down|, |down><up|`` as
    ``-(s+ s+ + s- s-) + (s+ s- + s- s+)``, which keeps every coefficient real.
    Sector: none (the full product space).
    """
    model = "dissipative_xyz"
    lat = _geometry(model, Lx, Ly, pbc)
    jumps = _decay(model, gamma, lat.n_sites)
    terms: list[Term] = []
    for i, j in lat.bonds:
        terms += [
            (Jx - Jy, (("Sp", i), ("Sp", j))),
            (Jx - Jy, (("Sm", i), ("Sm", j))),
            (Jx + Jy, (("Sp", i), ("Sm", j))),
            (Jx + Jy, (("Sm", i), ("Sp", j))),
            (Jz, (("Z", i), ("Z", j))),
        ]
    return _open_problem(
        model, terms, lat, jumps,
        "H = sum_<ij> (Jx sx_i sx_j + Jy sy_i sy_j + Jz sz_i sz_j) (Pauli),  L_i = sqrt(gamma) sigma^-_i",
    )


register("dissipative_ising", dissipative_ising)
register("dissipative_xyz", dissipative_xyz)
