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


def _check_torus(model: str, Lx: int, Ly: int, Lz: int | None = None) -> LinkLattice:
    sides = (("Lx", Lx), ("Ly", Ly)) + ((("Lz", Lz),) if Lz is not None else ())
    for name, v in sides:
        if v < 1:
            raise ValueError(f"{model}: parameter {name!r} must be positive, got {v}")
        if v < 2:
            raise ValueError(f"{model}: lattice too small, parameter {name!r}={v}; need {name} >= 2 on the torus")
    return LinkLattice(Lx, Ly, Lz)


def _charge_map(model: str, lat: LinkLattice, charges: list, with_value: bool) -> dict[int, int]:
    out: dict[int, int] = {}
    axes = "x, y" if lat.dim == 2 else "x, y, z"
    form = f"[{axes}, q]" if with_value else f"[{axes}]"
    shape = "x".join(str(L) for L in (lat.Lx, lat.Ly, lat.Lz)[: lat.dim])
    for entry in charges:
        if not isinstance(entry, (list, tuple)) or len(entry) != lat.dim + with_value:
            raise ValueError(f"{model}: parameter 'charges' entries must be {form}, got {entry!r}")
        c = tuple(entry[: lat.dim])
        if not all(isinstance(u, int) and 0 <= u < L for u, L in zip(c, (lat.Lx, lat.Ly, lat.Lz))):
            raise ValueError(f"{model}: parameter 'charges': vertex {c} is not on the {shape} torus")
        v = lat.sites.index(*c)
        if v in out:
            raise ValueError(f"{model}: parameter 'charges' lists vertex {c} twice")
        out[v] = int(entry[-1]) if with_value else 1
    return out


def _winding_cuts(lat: LinkLattice) -> tuple[tuple[int, ...], ...]:
    """Links crossing the non-contractible cuts of the torus: the ``+x`` links leaving the
    column (3D: plane) ``x = 0``, the ``+y`` links leaving ``y = 0`` (and in 3D the ``+z`` links
    leaving ``z = 0``). A plaquette touches each cut in zero or two links of opposite
    circulation, so the electric flux through a cut is conserved."""
    coords = lat.sites.coords
    return tuple(
        tuple(lat.link(*c[:2], a, *c[2:]) for c in coords if c[a] == 0) for a in range(lat.dim)
    )


def z2_gauge(Lx: int, Ly: int, h: float, charges: list = (), Lz: int | None = None) -> Problem:
    """Z2 lattice gauge theory (toric code in a field) on the links of an ``Lx x Ly`` torus,
    or with ``Lz`` of an ``Lx x Ly x Lz`` 3-torus (the 3D toric code in a field).

    ``H = - sum_p prod_{l in p} sigma^z_l - h sum_l sigma^x_l`` on ``2 Lx Ly`` links
    (``3 Lx Ly Lz`` links and plaquettes in 3D). Sector: Gauss's law
    ``prod_{l at v} sigma^x_l = +1`` at every vertex (4 links, 6 in 3D), ``-1`` at the static
    charges ``charges = [[x, y], ...]`` (``[[x, y, z], ...]`` in 3D; an even number of them on a
    torus). Configurations are in the electric basis (``sigma^x`` diagonal, local state 1 =
    electric string), where Gauss's law is a parity constraint; all winding sectors are
    included (2 winding parities, 3 in 3D). Link order and plaquettes:
    :class:`~hamiltonians.lattice.LinkLattice`. At ``h = 0`` the ground energy is minus the
    number of plaquettes (toric code); in 2D confinement sets in near ``h = 0.33``.
    """
    lat = _check_torus("z2_gauge", Lx, Ly, Lz)
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
        LinearConstraint(links, (1.0,) * len(links), "e", float(q.get(v, 0)), modulus=2)
        for v, (links, _) in enumerate(lat.vertex_links)
    )
    # Reference: strings along x, then y (then z) joining consecutive pairs of charges.
    ref = [0] * lat.n_links
    charged = [tuple(int(u) for u in lat.sites.coords[v]) for v in sorted(q)]
    for c0, c1 in zip(charged[::2], charged[1::2]):
        here = list(c0)
        for a in range(lat.dim):
            for u in range(min(c0[a], c1[a]), max(c0[a], c1[a])):
                here[a] = u
                ref[lat.link(*here[:2], a, *here[2:])] ^= 1
            here[a] = c1[a]
    plaquette_terms = [t for t in terms if len(t[1]) == 4]
    constraint = Constraint(
        "gauss_law",
        linear,
        Z2_LINK,
        lat.n_links,
        sector={"gauss_law": "prod sigma^x = +1", "charges": [lat.sites.coords[v].tolist() for v in sorted(q)]},
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
