"""Lattice geometry shared by every model: sites in snake order, bonds, links, plaquettes.

Conventions (used by all backends, and therefore by every archive):

* A square lattice has ``Lx * Ly`` sites with coordinates ``(x, y)``, ``0 <= x < Lx``,
  ``0 <= y < Ly``.
* **Snake order** is the one 1D ordering of the toolkit (MPS/MPO site order, the
  autoregressive order, the order of configuration entries): rows of constant ``y`` in turn;
  within row ``y`` the coordinate ``x`` runs ``0 .. Lx-1`` for even ``y`` and backwards for odd
  ``y``. Consecutive sites are therefore always nearest neighbours.
* A chain is the ``Ly = 1`` case with sites ``0 .. L-1`` in order.
* Gauge models live on the links of a periodic ``Lx x Ly`` lattice. Vertex ``v`` is the snake
  index of ``(x, y)``; link ``2 v`` points from ``(x, y)`` to ``(x+1, y)`` and link ``2 v + 1``
  from ``(x, y)`` to ``(x, y+1)``.  The plaquette with lower-left corner ``(x, y)`` has links
  ``bottom, right, top, left`` = x-link at ``(x, y)``, y-link at ``(x+1, y)``, x-link at
  ``(x, y+1)``, y-link at ``(x, y)``; its counter-clockwise circulation runs along ``bottom``
  and ``right`` and against ``top`` and ``left``.
* A **cubic lattice** (:class:`CubicLattice`) has sites ``(x, y, z)`` in the layers of constant
  ``z`` in turn, each in the square snake order, reversed on odd ``z`` (consecutive sites stay
  neighbours): ``index = z Lx Ly + i``, ``i`` the square snake index, ``Lx Ly - 1 - i`` for odd ``z``.
* 3D links (``LinkLattice(Lx, Ly, Lz)``): link ``3 v + d`` points from vertex ``v`` along ``+x,
  +y, +z`` (``d = 0, 1, 2``); each vertex has the plaquettes in the planes ``(x, y), (y, z),
  (z, x)``, the one in plane ``(a, b)`` with links ``a`` at ``v``, ``b`` at ``v + a``, ``a`` at
  ``v + b``, ``b`` at ``v`` (counter-clockwise about the third axis).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class SquareLattice:
    """An ``Lx x Ly`` square lattice with boundaries ``pbc``: ``True`` (torus), ``False`` (open),
    or one flag per direction ``(x, y)``. ``(True, False)`` is the cylinder of DMRG studies:
    periodic around the circumference ``Lx``, which the snake order winds around row by row, and
    open along the length ``Ly`` (the MPS's long direction); equal flags collapse to one bool."""

    Lx: int
    Ly: int
    pbc: bool | tuple[bool, bool] = True

    def __post_init__(self):
        flags = (self.pbc, self.pbc) if isinstance(self.pbc, bool) else tuple(bool(f) for f in self.pbc)
        if len(flags) != 2:
            raise ValueError(f"pbc must be a bool or one flag per direction (x, y), got {self.pbc!r}")
        object.__setattr__(self, "pbc", flags[0] if flags[0] == flags[1] else flags)

    @property
    def periodic(self) -> tuple[bool, bool]:
        """Periodicity along ``x`` and ``y``."""
        return (self.pbc, self.pbc) if isinstance(self.pbc, bool) else self.pbc

    @property
    def torus(self) -> bool:
        """Periodic in both directions (the lattice translations are symmetries)."""
        return all(self.periodic)

    @property
    def n_sites(self) -> int:
        return self.Lx * self.Ly

    def index(self, x: int, y: int) -> int:
        """Snake index of site ``(x, y)``; coordinates are wrapped along periodic directions."""
        px, py = self.periodic
        x, y = (x % self.Lx if px else x), (y % self.Ly if py else y)
        if not (0 <= x < self.Lx and 0 <= y < self.Ly):
            raise IndexError(f"site ({x}, {y}) is outside the {self.Lx}x{self.Ly} lattice (pbc = {self.pbc})")
        return y * self.Lx + (x if y % 2 == 0 else self.Lx - 1 - x)

    @cached_property
    def coords(self) -> np.ndarray:
        """``(n_sites, 2)`` integer array: ``coords[i] = (x, y)`` of snake site ``i``."""
        out = np.empty((self.n_sites, 2), dtype=np.int64)
        for y in range(self.Ly):
            for x in range(self.Lx):
                out[self.index(x, y)] = (x, y)
        return out

    def _neighbour_pairs(self, shifts: list[tuple[int, int]]) -> list[tuple[int, int]]:
        pairs: set[tuple[int, int]] = set()
        px, py = self.periodic
        for x in range(self.Lx):
            for y in range(self.Ly):
                for dx, dy in shifts:
                    xx, yy = x + dx, y + dy
                    if not (px or 0 <= xx < self.Lx) or not (py or 0 <= yy < self.Ly):
                        continue
                    i, j = self.index(x, y), self.index(xx, yy)
                    if i != j:
                        pairs.add((min(i, j), max(i, j)))
        return sorted(pairs)

    @cached_property
    def bonds(self) -> list[tuple[int, int]]:
        """Nearest-neighbour bonds ``(i, j)``, ``i < j``, each once."""
        shifts = [(1, 0)] if self.Ly == 1 else [(1, 0), (0, 1)]
        return self._neighbour_pairs(shifts)

    @cached_property
    def diagonals(self) -> list[tuple[int, int]]:
        """Next-nearest-neighbour (diagonal) bonds ``(i, j)``, ``i < j``, each once."""
        if self.Ly == 1:
            return []
        return self._neighbour_pairs([(1, 1), (1, -1)])

    @cached_property
    def translations(self) -> np.ndarray:
        """``(n_sites, n_sites)`` permutation table: ``T[k, i]`` is the image of site ``i`` under
        the ``k``-th lattice translation (periodic lattices only)."""
        if not self.torus:
            raise ValueError("translations are only defined for a lattice periodic in both directions")
        out = np.empty((self.n_sites, self.n_sites), dtype=np.int64)
        for k, (tx, ty) in enumerate(self.coords):
            for i, (x, y) in enumerate(self.coords):
                out[k, i] = self.index(x + tx, y + ty)
        return out


@dataclass(frozen=True)
class CubicLattice:
    """An ``Lx x Ly x Lz`` cubic lattice in the 3D snake order (module docstring), with
    boundaries ``pbc``: one bool for all directions or one flag per direction ``(x, y, z)``."""

    Lx: int
    Ly: int
    Lz: int
    pbc: bool | tuple[bool, bool, bool] = True

    def __post_init__(self):
        flags = (self.pbc,) * 3 if isinstance(self.pbc, bool) else tuple(bool(f) for f in self.pbc)
        if len(flags) != 3:
            raise ValueError(f"pbc must be a bool or one flag per direction (x, y, z), got {self.pbc!r}")
        object.__setattr__(self, "pbc", flags[0] if len(set(flags)) == 1 else flags)

    @property
    def periodic(self) -> tuple[bool, bool, bool]:
        """Periodicity along ``x``, ``y`` and ``z``."""
        return (self.pbc,) * 3 if isinstance(self.pbc, bool) else self.pbc

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.Lx, self.Ly, self.Lz)

    @property
    def n_sites(self) -> int:
        return self.Lx * self.Ly * self.Lz

    def index(self, x: int, y: int, z: int) -> int:
        """Snake index of site ``(x, y, z)``; coordinates are wrapped along periodic directions."""
        c = [u % L if p else u for u, L, p in zip((x, y, z), self.shape, self.periodic)]
        if not all(0 <= u < L for u, L in zip(c, self.shape)):
            raise IndexError(f"site ({x}, {y}, {z}) is outside the {self.Lx}x{self.Ly}x{self.Lz} lattice (pbc = {self.pbc})")
        x, y, z = c
        layer = y * self.Lx + (x if y % 2 == 0 else self.Lx - 1 - x)
        area = self.Lx * self.Ly
        return z * area + (layer if z % 2 == 0 else area - 1 - layer)

    @cached_property
    def coords(self) -> np.ndarray:
        """``(n_sites, 3)`` integer array: ``coords[i] = (x, y, z)`` of snake site ``i``."""
        out = np.empty((self.n_sites, 3), dtype=np.int64)
        for z in range(self.Lz):
            for y in range(self.Ly):
                for x in range(self.Lx):
                    out[self.index(x, y, z)] = (x, y, z)
        return out

    @cached_property
    def bonds(self) -> list[tuple[int, int]]:
        """Nearest-neighbour bonds ``(i, j)``, ``i < j``, each once."""
        pairs: set[tuple[int, int]] = set()
        for x, y, z in self.coords:
            for shift in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
                c = (x + shift[0], y + shift[1], z + shift[2])
                if any(not p and not 0 <= u < L for u, L, p in zip(c, self.shape, self.periodic)):
                    continue
                i, j = self.index(x, y, z), self.index(*c)
                if i != j:
                    pairs.add((min(i, j), max(i, j)))
        return sorted(pairs)


_PLANES = ((0, 1), (1, 2), (2, 0))  # plaquette planes (a, b) of a 3D vertex, in this order


@dataclass(frozen=True)
class LinkLattice:
    """Links, vertices and plaquettes of an ``Lx x Ly`` torus, or with ``Lz`` of an
    ``Lx x Ly x Lz`` 3-torus (gauge models; conventions in the module docstring)."""

    Lx: int
    Ly: int
    Lz: int | None = None

    @property
    def dim(self) -> int:
        """2 (square) or 3 (cubic)."""
        return 2 if self.Lz is None else 3

    @cached_property
    def sites(self) -> SquareLattice | CubicLattice:
        """The vertices, as a periodic square or cubic lattice (snake-ordered)."""
        if self.Lz is None:
            return SquareLattice(self.Lx, self.Ly, pbc=True)
        return CubicLattice(self.Lx, self.Ly, self.Lz, pbc=True)

    @property
    def n_vertices(self) -> int:
        return self.sites.n_sites

    @property
    def n_links(self) -> int:
        return self.dim * self.n_vertices

    def link(self, x: int, y: int, direction: int, z: int = 0) -> int:
        """Index of the link leaving ``(x, y)`` (``(x, y, z)`` in 3D) along ``+x`` (direction
        0), ``+y`` (1) or ``+z`` (2)."""
        if self.Lz is None:
            return 2 * self.sites.index(x, y) + direction
        return 3 * self.sites.index(x, y, z) + direction

    def _link_from(self, c, direction: int, shift=(0, 0, 0)) -> int:
        """The link leaving vertex coordinates ``c + shift`` along ``direction``."""
        c = [int(u) + s for u, s in zip(c, shift)]
        return self.link(c[0], c[1], direction, *c[2:])

    @cached_property
    def link_coords(self) -> np.ndarray:
        """``(n_links, dim)`` float array: midpoints of the links."""
        d = self.dim
        out = np.empty((self.n_links, d))
        for v, c in enumerate(self.sites.coords):
            for direction in range(d):
                out[d * v + direction] = c + 0.5 * np.eye(d)[direction]
        return out

    @cached_property
    def vertex_links(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """For each vertex: links ``(out_x, out_y, in_x, in_y)`` (3D: ``(out_x, out_y, out_z,
        in_x, in_y, in_z)``) and orientation signs ``+1`` out, ``-1`` in (outgoing minus
        incoming)."""
        d = self.dim
        out = []
        for c in self.sites.coords:
            outgoing = tuple(self._link_from(c, k) for k in range(d))
            incoming = tuple(self._link_from(c, k, tuple(-int(k == j) for j in range(3))) for k in range(d))
            out.append((outgoing + incoming, (1,) * d + (-1,) * d))
        return out

    @cached_property
    def plaquettes(self) -> list[tuple[int, int, int, int]]:
        """Links ``(bottom, right, top, left)`` of the plaquette at each vertex (snake order); in
        3D three per vertex, in the planes ``(x, y)``, ``(y, z)``, ``(z, x)``."""
        out = []
        planes = _PLANES if self.dim == 3 else _PLANES[:1]
        for c in self.sites.coords:
            for a, b in planes:
                ea, eb = tuple(int(k == a) for k in range(3)), tuple(int(k == b) for k in range(3))
                out.append(
                    (self._link_from(c, a), self._link_from(c, b, ea), self._link_from(c, a, eb), self._link_from(c, b))
                )
        return out

    @cached_property
    def cubes(self) -> list[tuple[int, ...]]:
        """3D only: the 12 edges of the elementary cube with lowest corner at each vertex (snake
        order): its 4 ``x``-links, 4 ``y``-links and 4 ``z``-links, each group sorted by the
        offsets of its starting vertex ``(0,0), (0,1), (1,0), (1,1)`` in the other two axes."""
        if self.dim != 3:
            raise ValueError("cubes exist on a 3D link lattice only (give Lz)")
        out = []
        for c in self.sites.coords:
            edges = []
            for a in range(3):
                p, q = [k for k in range(3) if k != a]
                for dp in (0, 1):
                    for dq in (0, 1):
                        edges.append(self._link_from(c, a, tuple(dp * (k == p) + dq * (k == q) for k in range(3))))
            out.append(tuple(edges))
        return out
