"""The X-cube fracton model on the links of a 3-torus.

Geometry, link order (3D snake order) and cube edges: :class:`hamiltonians.lattice.LinkLattice`
with ``Lz``.
"""

from __future__ import annotations

from .constraints import Constraint, LinearConstraint, moves_from_terms
from .gauge import _check_torus
from .local_spaces import Z2_LINK
from .problem import Problem
from .registry import register
from .terms import Term, combine


def x_cube(Lx: int, Ly: int, Lz: int, h: float) -> Problem:
    """X-cube fracton model in a field on the ``3 Lx Ly Lz`` links of an ``Lx x Ly x Lz`` torus.

    ``H = - sum_c prod_{l in c} sigma^z_l - h sum_l sigma^x_l``, ``c`` the ``Lx Ly Lz``
    elementary cubes (12 edges each). Sector: the vertex terms
    ``A_v^mu = prod sigma^x`` over the 4 links at vertex ``v`` in the plane normal to ``mu``
    (``mu = x, y, z``: three per vertex) are ``+1`` at every vertex. This is the X-cube model of
    Vijay, Haah and Fu (2016) with ``sigma^x`` and ``sigma^z`` exchanged on every link (same
    spectrum): configurations are in the basis where ``sigma^x`` is diagonal (local state 1 =
    ``sigma^x = -1``, :data:`~hamiltonians.local_spaces.Z2_LINK`), where each vertex term is the
    parity of its 4 links, and a cube term flips its 12 links. The sector holds every
    topological sector (their number grows as ``2^(6L - 3)``: none is declared as conserved).
    At ``h = 0`` the ground energy is minus the number of cubes, ``-Lx Ly Lz``.
    """
    lat = _check_torus("x_cube", Lx, Ly, Lz)
    terms: list[Term] = [(-1.0, tuple(("Z", link) for link in cube)) for cube in lat.cubes]
    if h != 0.0:
        terms += [(-h, (("X", link),)) for link in range(lat.n_links)]
    linear = []
    for links, _ in lat.vertex_links:
        # links = (out_x, out_y, out_z, in_x, in_y, in_z); the plane normal to mu omits axis mu
        for mu in range(3):
            plane = tuple(links[a] for a in range(6) if a % 3 != mu)
            linear.append(LinearConstraint(plane, (1.0,) * 4, "e", 0.0, modulus=2))
    cube_terms = [t for t in terms if len(t[1]) == 12]
    constraint = Constraint(
        "gauss_law",
        tuple(linear),
        Z2_LINK,
        lat.n_links,
        sector={"vertex_terms": "prod sigma^x = +1 on the 4 links of each vertex in each plane"},
        moves=moves_from_terms(cube_terms, Z2_LINK),
        reference=(0,) * lat.n_links,
    )
    return Problem(
        terms=combine(terms),
        local_space=Z2_LINK,
        constraint=constraint,
        geometry=lat,
        formula="H = - sum_c prod_{l in c} sigma^z_l - h sum_l sigma^x_l,  prod_{l in plane(v, mu)} sigma^x_l = +1",
    )


register("x_cube", x_cube)
