"""Spin-1/2 Heisenberg models: the chain and the J1-J2 square lattice."""

from __future__ import annotations

from .constraints import global_sums
from .lattice import SquareLattice
from .local_spaces import SPIN_HALF
from .problem import Problem
from .registry import register
from .terms import Term, combine


def exchange(J: float, i: int, j: int, transverse_sign: float = 1.0) -> list[Term]:
    """``J S_i.S_j = J [S^z_i S^z_j + s (S^+_i S^-_j + S^-_i S^+_j) / 2]`` with ``s`` the
    transverse sign (``-1`` is the Marshall rotation of the bond)."""
    return [
        (J, (("Sz", i), ("Sz", j))),
        (0.5 * J * transverse_sign, (("Sp", i), ("Sm", j))),
        (0.5 * J * transverse_sign, (("Sm", i), ("Sp", j))),
    ]


def spin_sector(n_sites: int, Sz: float | None, model: str) -> float:
    """Validated total ``S^z``: ``None`` picks 0 (even ``n_sites``) or 1/2 (odd)."""
    if Sz is None:
        return 0.0 if n_sites % 2 == 0 else 0.5
    if abs(Sz) > n_sites / 2 or not float(n_sites / 2 - Sz).is_integer():
        allowed = "0, +-1, ..." if n_sites % 2 == 0 else "+-1/2, +-3/2, ..."
        raise ValueError(
            f"{model}: parameter 'Sz'={Sz} is impossible for {n_sites} spins 1/2; "
            f"allowed: {allowed} up to +-{n_sites / 2}"
        )
    return float(Sz)


def _check_size(model: str, name: str, value: int, pbc: bool, minimum_open: int = 2) -> None:
    if value < 1:
        raise ValueError(f"{model}: parameter {name!r} must be positive, got {value}")
    need = 3 if pbc else minimum_open
    if value < need:
        why = " (a periodic direction shorter than 3 would count bonds twice)" if pbc else ""
        raise ValueError(f"{model}: lattice too small, parameter {name!r}={value}; need {name} >= {need}{why}")


def _lattice(model: str, Lx: int, Ly: int, pbc: bool | list[bool]) -> SquareLattice:
    """The model's square lattice, each side long enough for its boundary condition."""
    lat = SquareLattice(Lx, Ly, pbc if isinstance(pbc, bool) else tuple(pbc))
    _check_size(model, "Lx", Lx, lat.periodic[0])
    _check_size(model, "Ly", Ly, lat.periodic[1])
    return lat


def heisenberg_chain(L: int, J: float = 1.0, J2: float = 0.0, pbc: bool = True, Sz: float | None = None) -> Problem:
    """Spin-1/2 Heisenberg chain with next-nearest-neighbour coupling.

    ``H = J sum_i S_i.S_{i+1} + J2 sum_i S_i.S_{i+2}`` with ``S = sigma/2`` (units of ``J``),
    each bond once; periodic when ``pbc``. Sector: fixed total ``S^z`` (``Sz``; default 0 for even
    ``L``, 1/2 for odd). Exact results: Bethe ansatz ``E/L -> 1/4 - ln 2`` for ``J2 = 0``;
    ``E = -3/8 J L`` at the Majumdar-Ghosh point ``J2 = J/2`` (even periodic ``L``).
    """
    _check_size("heisenberg_chain", "L", L, pbc)
    if J2 != 0.0 and L < (5 if pbc else 3):
        raise ValueError(
            f"heisenberg_chain: lattice too small for J2 != 0, parameter 'L'={L}; need L >= {5 if pbc else 3}"
        )
    lat = SquareLattice(L, 1, pbc)
    terms: list[Term] = []
    for i, j in lat.bonds:
        terms += exchange(J, i, j)
    if J2 != 0.0:
        for i in range(L if pbc else L - 2):
            terms += exchange(J2, i, (i + 2) % L)
    sz = spin_sector(L, Sz, "heisenberg_chain")
    return Problem(
        terms=combine(terms),
        local_space=SPIN_HALF,
        constraint=global_sums(SPIN_HALF, L, {"Sz": sz}),
        geometry=lat,
        formula="H = J sum_i S_i.S_{i+1} + J2 sum_i S_i.S_{i+2},  S = sigma/2",
    )


def j1j2(
    Lx: int,
    Ly: int,
    J1: float = 1.0,
    J2: float = 0.0,
    pbc: bool | list[bool] = True,
    marshall: bool = False,
    Sz: float | None = None,
) -> Problem:
    """Spin-1/2 J1-J2 Heisenberg model on the square lattice.

    ``H = J1 sum_<ij> S_i.S_j + J2 sum_<<ij>> S_i.S_j`` with ``S = sigma/2``, nearest (``<ij>``) and
    diagonal (``<<ij>>``) bonds each counted once. Boundaries ``pbc``: ``true`` (torus), ``false``
    (open) or ``[x, y]`` per direction; ``[true, false]`` is the cylinder of circumference ``Lx``
    (:class:`~hamiltonians.lattice.SquareLattice`).
    ``marshall=True`` flips the sign of the transverse J1 exchange (a rotation by pi about z on
    one sublattice: same spectrum, sign-free ground state at ``J2 = 0``). Sector: fixed total
    ``S^z`` (``Sz``; default 0, or 1/2 for odd site numbers). Sites in snake order
    (:mod:`hamiltonians.lattice`).
    """
    lat = _lattice("j1j2", Lx, Ly, pbc)
    px, py = lat.periodic
    if marshall and ((px and Lx % 2) or (py and Ly % 2)):
        raise ValueError(
            f"j1j2: parameter 'marshall'=true needs a bipartite lattice; a periodic direction must have "
            f"an even length (got Lx={Lx}, Ly={Ly}, pbc={pbc})"
        )
    sign = -1.0 if marshall else 1.0
    terms: list[Term] = []
    for i, j in lat.bonds:
        terms += exchange(J1, i, j, sign)
    if J2 != 0.0:
        for i, j in lat.diagonals:
            terms += exchange(J2, i, j)
    sz = spin_sector(lat.n_sites, Sz, "j1j2")
    return Problem(
        terms=combine(terms),
        local_space=SPIN_HALF,
        constraint=global_sums(SPIN_HALF, lat.n_sites, {"Sz": sz}),
        geometry=lat,
        formula="H = J1 sum_<ij> S_i.S_j + J2 sum_<<ij>> S_i.S_j,  S = sigma/2",
    )


register("heisenberg_chain", heisenberg_chain)
register("j1j2", j1j2)
