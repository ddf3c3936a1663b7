"""Local terms of a 2D problem for PEPS: the problem's terms as a quimb ``LocalHam2D``.

The translation is generic over :attr:`Problem.terms`: every term acting on two sites becomes
(part of) the two-site operator of that pair, every term on one site a one-site operator, and a
term on no site (a constant) is added to one site as a multiple of the identity.

Coordinates: quimb addresses PEPS sites by ``(i, j)`` with ``0 <= i < Lx`` (quimb's "rows") and
``0 <= j < Ly``; the site with snake index ``s`` sits at ``(i, j) = problem.geometry.coords[s]``,
i.e. ``i = x`` and ``j = y`` of :mod:`hamiltonians.lattice`. A pair key is
``((x_a, y_a), (x_b, y_b))`` with the smaller coordinate first, and its operator is the
``(d*d, d*d)`` matrix ``sum c kron(A, B)`` with ``A`` acting on the first site. Nearest-neighbour
pairs, diagonal (next-nearest) pairs and, on periodic lattices, wrapped pairs are all kept as
they are; whether a PEPS algorithm can apply them is the algorithm's business.

Only bosonic problems on a square lattice of sites qualify: gauge models live on links (no
one-tensor-per-site PEPS layout), and fermionic models carry Jordan-Wigner strings along the
snake, which are non-local on the 2D lattice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .lattice import SquareLattice
from .terms import site_factors

if TYPE_CHECKING:  # pragma: no cover
    import quimb.tensor as qtn

    from .problem import Problem


def local_ham_2d_obstacle(problem: "Problem") -> str | None:
    """Why ``problem`` has no 2D local-term form (``None`` when it has one)."""
    geometry = problem.geometry
    name = problem.label or problem.name or "problem"
    if not isinstance(geometry, SquareLattice):
        return (
            f"{name}: degrees of freedom on the links of a lattice ({type(geometry).__name__}), "
            f"not one per site of a square lattice; there is no 2D site layout for a PEPS"
        )
    if geometry.Lx < 2 or geometry.Ly < 2:
        return f"{name}: a {geometry.Lx}x{geometry.Ly} lattice is one-dimensional; use an MPS (kind = \"dmrg\")"
    if problem.local_space.fermionic:
        return (
            f"{name}: fermionic local space {problem.local_space.name!r}; its Jordan-Wigner strings run "
            f"along the snake order and are non-local on the 2D lattice"
        )
    return None


def to_local_ham_2d(problem: "Problem") -> "qtn.LocalHam2D":
    """The Hamiltonian of a 2D site problem as a quimb ``LocalHam2D``.

    Args:
        problem: a bosonic problem on a :class:`~hamiltonians.lattice.SquareLattice` with
            ``Lx, Ly >= 2`` whose terms act on at most two sites.

    Returns:
        ``LocalHam2D(Lx, Ly, H2, H1)`` with ``H2[((x_a, y_a), (x_b, y_b))]`` the summed two-site
        operator of each coupled pair (``(d*d, d*d)`` real matrix, first site first) and ``H1``
        the one-site operators; the total energy of any state equals that of ``problem.terms``.

    Raises:
        ValueError: link (gauge) or fermionic problems, chains, terms on more than two sites, or
            one-site terms on a site that no two-site term touches (quimb spreads one-site terms
            over the pairs that cover the site).
    """
    import quimb.tensor as qtn

    why = local_ham_2d_obstacle(problem)
    if why is not None:
        raise ValueError(why)
    space = problem.local_space
    d = space.dim
    coords = [tuple(int(c) for c in xy) for xy in problem.geometry.coords]
    h2: dict[tuple[tuple[int, int], tuple[int, int]], np.ndarray] = {}
    h1: dict[tuple[int, int], np.ndarray] = {}
    constant = 0.0
    for coeff, ops in problem.terms:
        factors = site_factors(ops, space)
        sites = sorted(factors)
        if len(sites) > 2:
            raise ValueError(
                f"{problem.label}: the term {coeff} * {ops} acts on {len(sites)} sites; "
                f"2D local Hamiltonians hold one- and two-site terms only"
            )
        if not sites:
            constant += coeff
        elif len(sites) == 1:
            (s,) = sites
            h1[coords[s]] = h1.get(coords[s], 0.0) + coeff * factors[s]
        else:
            a, b = sorted(sites, key=lambda s: coords[s])
            key = (coords[a], coords[b])
            h2[key] = h2.get(key, 0.0) + coeff * np.kron(factors[a], factors[b])
    if not h2:
        raise ValueError(f"{problem.label}: no two-site terms; nothing couples the sites of the PEPS")
    if constant != 0.0:
        # a constant adds to the energy of every state; one site's operator carries it
        site = min(coords)
        h1[site] = h1.get(site, 0.0) + constant * np.eye(d)
    covered = {c for pair in h2 for c in pair}
    lonely = sorted(set(h1) - covered)
    if lonely:
        raise ValueError(
            f"{problem.label}: one-site terms on {lonely}, which no two-site term touches; quimb's "
            f"LocalHam2D absorbs one-site terms into the pairs covering the site"
        )
    g = problem.geometry
    return qtn.LocalHam2D(g.Lx, g.Ly, H2=h2, H1=h1 or None)
