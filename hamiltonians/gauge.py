"""Lattice gauge theories on the links of a torus: Z2 gauge theory and the U(1) quantum link model.

Geometry and link/plaquette conventions: :class:`hamiltonians.lattice.LinkLattice`.
"""

from __future__ import annotations

from .constraints import Constraint, LinearConstraint, moves_from_terms
from .lattice import LinkLattice
from .local_spaces import SPIN_HALF, Z2_LINK
from .problem import Problem
from .registry import register
from .terms import Term, combine


def _check_torus(model: str, Lx: int, Ly: int) -> LinkLattice:
    for name, v in (("Lx", Lx), ("Ly", Ly)):
        if v < 1:
            raise ValueError(f"{model}: parameter {name!r} must be positive, got {v}")
        if v < 2:
            raise ValueError(f"{model}: lattice too small, parameter {name!r}={v}; need {name} >= 2 on the torus")
    return LinkLattice(Lx, Ly)


def _charge_map(model: str, lat: LinkLattice, charges: list, with_value: bool) -> dict[int, int]:
    out: dict[int, int] = {}
    form = "[x, y, q]" if with_value else "[x, y]"
    for entry in charges:
        if not isinstance(entry, (list, tuple)) or len(entry) != (3 if with_value else 2):
            raise ValueError(f"{model}: parameter 'charges' entries must be {form}, got {entry!r}")
        x, y = entry[0], entry[1]
        if not (isinstance(x, int) and isinstance(y, int) and 0 <= x < lat.Lx and 0 <= y < lat.Ly):
            raise ValueError(
                f"{model}: parameter 'charges': vertex ({x}, {y}) is not on the {lat.Lx}x{lat.Ly} torus"
            )
        v = lat.sites.index(x, y)
        if v in out:
            raise ValueError(f"{model}: parameter 'charges' lists vertex ({x}, {y}) twice")
        out[v] = int(entry[2]) if with_value else 1
    return out


def _winding_cuts(lat: LinkLattice) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Links crossing the two non-contractible cuts of the torus: the ``+x`` links leaving
    column ``x = 0`` and the ``+y`` links leaving row ``y = 0``. A plaquette touches each cut in
    zero or two links of opposite circulation, so the electric flux through a cut is conserved."""
    return (
        tuple(lat.link(0, y, 0) for y in range(lat.Ly)),
        tuple(lat.link(x, 0, 1) for x in range(lat.Lx)),
    )


def z2_gauge(Lx: int, Ly: int, h: float, charges: list = ()) -> Problem:
    """Z2 lattice gauge theory (toric code in a field) on the links of an ``Lx x Ly`` torus.

    ``H = - sum_p prod_{l in p} sigma^z_l - h sum_l sigma^x_l`` on ``2 Lx Ly`` links. Sector:
    Gauss's law ``prod_{l at v} sigma^x_l = +1`` at every vertex, ``-1`` at the static charges
    ``charges = [[x, y], ...]`` (an even number of them on a torus). Configurations are in the
    electric basis (``sigma^x`` diagonal, local state 1 = electric string), where Gauss's law is
    a parity constraint; all winding sectors are included. At ``h = 0`` the ground energy is
    minus the number of plaquettes (toric code); confinement sets in near ``h = 0.33``.
    """
    lat = _check_torus("z2_gauge", Lx, Ly)
    q = _charge_map("z2_gauge", lat, list(charges), with_value=False)
    if len(q) % 2:
        raise ValueError(
            f"z2_gauge: parameter 'charges': a Gauss-law sector with an odd number of charges "
            f"({len(q)}) cannot exist on a torus (the product of all Gauss operators is 1)"
        )
    terms: list[Term] = [(-1.0, tuple(("Z", link) for link in p)) for p in lat.plaquettes]
    if h != 0.0:
        terms += [(-h, (("X", link),)) for link in range(lat.n_links)]
    linear = tuple(
        LinearConstraint(links, (1.0,) * 4, "e", float(q.get(v, 0)), modulus=2)
        for v, (links, _) in enumerate(lat.vertex_links)
    )
    # Reference: strings along x then y joining consecutive pairs of charges.
    ref = [0] * lat.n_links
    charged = [tuple(lat.sites.coords[v]) for v in sorted(q)]
    for (x0, y0), (x1, y1) in zip(charged[::2], charged[1::2]):
        for x in range(x0, x1) if x1 >= x0 else range(x1, x0):
            ref[lat.link(x, y0, 0)] ^= 1
        for y in range(y0, y1) if y1 >= y0 else range(y1, y0):
            ref[lat.link(x1, y, 1)] ^= 1
    plaquette_terms = [t for t in terms if len(t[1]) == 4]
    constraint = Constraint(
        "gauss_law",
        linear,
        Z2_LINK,
        lat.n_links,
        sector={"gauss_law": "prod sigma^x = +1", "charges": [list(lat.sites.coords[v].tolist()) for v in sorted(q)]},
        moves=moves_from_terms(plaquette_terms, Z2_LINK),
        reference=tuple(ref),
        # electric flux parity through each cut (plaquettes flip two of its links)
        conserved=tuple(LinearConstraint(cut, (1.0,) * len(cut), "e", 0.0, modulus=2) for cut in _winding_cuts(lat)),
    )
    if not constraint.check(ref)[()]:
        raise AssertionError("z2_gauge: reference configuration violates Gauss's law")
    return Problem(
        terms=combine(terms),
        local_space=Z2_LINK,
        constraint=constraint,
        geometry=lat,
        formula="H = - sum_p prod_{l in p} sigma^z_l - h sum_l sigma^x_l",
    )


def u1_qlm(Lx: int, Ly: int, J: float = 1.0, lam: float = 0.0, charges: list = ()) -> Problem:
    """U(1) quantum link model with spin-1/2 links on an ``Lx x Ly`` torus.

    ``H = -J sum_p (U_p + U_p^dag) + lam sum_p (U_p + U_p^dag)^2`` with
    ``U_p = S^+_bottom S^+_right S^-_top S^-_left`` (counter-clockwise circulation,
    :class:`hamiltonians.lattice.LinkLattice`), electric field ``E_l = S^z_l`` along ``+x``/``+y``.
    ``(U_p + U_p^dag)^2`` is the projector on flippable plaquettes (``U_p^2 = 0``). Sector: Gauss's
    law ``G_v = sum_out E - sum_in E = q_v`` with static charges ``charges = [[x, y, q], ...]``
    (default none; ``|q| <= 2``, total 0); all winding sectors are included.
    """
    lat = _check_torus("u1_qlm", Lx, Ly)
    q = _charge_map("u1_qlm", lat, list(charges), with_value=True)
    if any(abs(v) > 2 for v in q.values()):
        raise ValueError("u1_qlm: parameter 'charges': |q| <= 2 (four spin-1/2 links meet at a vertex)")
    if sum(q.values()) != 0:
        raise ValueError(
            f"u1_qlm: parameter 'charges': a Gauss-law sector with total charge {sum(q.values())} cannot exist "
            "on a torus (charges must sum to 0)"
        )
    terms: list[Term] = []
    for b, r, t, l in lat.plaquettes:
        up = (("Sp", b), ("Sp", r), ("Sm", t), ("Sm", l))
        dn = (("Sm", b), ("Sm", r), ("Sp", t), ("Sp", l))
        terms += [(-J, up), (-J, dn)]
        if lam != 0.0:
            terms += [(lam, up + dn), (lam, dn + up)]
    linear = tuple(
        LinearConstraint(links, tuple(float(s) for s in signs), "Sz", float(q.get(v, 0)))
        for v, (links, signs) in enumerate(lat.vertex_links)
    )
    flips = [t for t in terms if len(t[1]) == 4]
    constraint = Constraint(
        "gauss_law",
        linear,
        SPIN_HALF,
        lat.n_links,
        sector={"gauss_law": "sum_out E - sum_in E = q", "charges": [list(lat.sites.coords[v].tolist()) + [c] for v, c in sorted(q.items())]},
        moves=moves_from_terms(flips, SPIN_HALF),
    )
    if q:
        ref = constraint.find_one()
        if ref is None:
            raise ValueError(f"u1_qlm: parameter 'charges': no link configuration realises the charges {charges}")
    else:
        # staggered, divergence-free, minimal winding: E_x(x, y) = (-1)^y / 2, E_y(x, y) = (-1)^x / 2
        ref = [0] * lat.n_links
        for x, y in lat.sites.coords:
            ref[lat.link(x, y, 0)] = int(y % 2)
            ref[lat.link(x, y, 1)] = int(x % 2)
    constraint = Constraint(
        constraint.kind, constraint.linear, constraint.space, constraint.n_sites,
        sector=constraint.sector, moves=constraint.moves, reference=tuple(int(v) for v in ref),
        # electric flux sum E through each cut (U_p raises one cut link and lowers the other)
        conserved=tuple(LinearConstraint(cut, (1.0,) * len(cut), "Sz", 0.0) for cut in _winding_cuts(lat)),
    )
    if not constraint.check(constraint.reference)[()]:
        raise AssertionError("u1_qlm: reference configuration violates Gauss's law")
    return Problem(
        terms=combine(terms),
        local_space=SPIN_HALF,
        constraint=constraint,
        geometry=lat,
        formula="H = -J sum_p (U_p + U_p^dag) + lam sum_p (U_p + U_p^dag)^2,  U_p = S+_b S+_r S-_t S-_l",
    )


register("z2_gauge", z2_gauge)
register("u1_qlm", u1_qlm)
