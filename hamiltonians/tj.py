"""The t-J model on the square lattice (fermions without double occupancy)."""

from __future__ import annotations

from .constraints import global_sums
from .local_spaces import TJ_SITE
from .problem import Problem
from .registry import register
from .spins import _lattice
from .terms import Term, combine


def tj(
    Lx: int,
    Ly: int,
    n_holes: int,
    t: float = 1.0,
    J: float = 0.4,
    pbc: bool | list[bool] = True,
    Sz: float | None = None,
) -> Problem:
    """The t-J model on the square lattice.

    ``H = -t sum_<ij>,s (c~^dag_is c~_js + h.c.) + J sum_<ij> (S_i.S_j - n_i n_j / 4)`` with
    projected fermions ``c~^dag_is = c^dag_is (1 - n_i,-s)`` (no double occupancy),
    ``S = sigma/2``, nearest-neighbour bonds each once; boundaries ``pbc`` as for ``j1j2`` (``true``,
    ``false``, or per direction: ``[true, false]`` is a cylinder of circumference ``Lx``). Sector: ``n_holes``
    empty sites, fixed numbers of up and down electrons with total ``Sz`` (default 0 for an even
    electron number, 1/2 for odd). Fermionic signs: Jordan-Wigner in snake order
    (:mod:`hamiltonians.lattice`); at ``Sz = n_e/2`` (fully polarised) the model is free
    spinless fermions with hopping ``-t``.
    """
    lat = _lattice("tj", Lx, Ly, pbc)
    n_sites = Lx * Ly
    if not 0 <= n_holes <= n_sites:
        raise ValueError(f"tj: parameter 'n_holes'={n_holes} must be between 0 and the number of sites {n_sites}")
    n_e = n_sites - n_holes
    if Sz is None:
        Sz = 0.0 if n_e % 2 == 0 else 0.5
    if abs(Sz) > n_e / 2 or not float(n_e / 2 - Sz).is_integer():
        allowed = "0, +-1, ..." if n_e % 2 == 0 else "+-1/2, +-3/2, ..."
        raise ValueError(
            f"tj: parameter 'Sz'={Sz} is impossible with {n_e} electrons "
            f"({'even' if n_e % 2 == 0 else 'odd'}); allowed: {allowed} up to +-{n_e / 2}"
        )
    n_up, n_dn = round(n_e / 2 + Sz), round(n_e / 2 - Sz)

    terms: list[Term] = []
    for i, j in lat.bonds:
        for s in ("up", "dn"):
            terms.append((-t, ((f"cdag_{s}", i), (f"c_{s}", j))))
            terms.append((-t, ((f"cdag_{s}", j), (f"c_{s}", i))))
        terms += [
            (J, (("Sz", i), ("Sz", j))),
            (0.5 * J, (("Sp", i), ("Sm", j))),
            (0.5 * J, (("Sm", i), ("Sp", j))),
            (-0.25 * J, (("n", i), ("n", j))),
        ]
    constraint = global_sums(TJ_SITE, n_sites, {"n_up": n_up, "n_dn": n_dn})
    return Problem(
        terms=combine(terms),
        local_space=TJ_SITE,
        constraint=constraint,
        geometry=lat,
        formula="H = -t sum_<ij>,s (c~+_is c~_js + h.c.) + J sum_<ij> (S_i.S_j - n_i n_j/4)",
    )


register("tj", tj)
