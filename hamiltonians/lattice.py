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
class LinkLattice:
    """Links, vertices and plaquettes of an ``Lx x Ly`` torus (gauge models)."""

    Lx: int
    Ly: int

    @cached_property
    def sites(self) -> SquareLattice:
        """The vertices, as a periodic square lattice (snake-ordered)."""
        return SquareLattice(self.Lx, self.Ly, pbc=True)

    @property
    def n_vertices(self) -> int:
        return self.Lx * self.Ly

    @property
    def n_links(self) -> int:
        return 2 * self.n_vertices

    def link(self, x: int, y: int, direction: int) -> int:
        """Index of the link leaving ``(x, y)`` along ``+x`` (direction 0) or ``+y`` (1)."""
        return 2 * self.sites.index(x, y) + direction

    @cached_property
    def link_coords(self) -> np.ndarray:
        """``(n_links, 2)`` float array: midpoints of the links."""
        out = np.empty((self.n_links, 2))
        for v, (x, y) in enumerate(self.sites.coords):
            out[2 * v] = (x + 0.5, y)
            out[2 * v + 1] = (x, y + 0.5)
        return out

    @cached_property
    def vertex_links(self) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
        """For each vertex: links ``(out_x, out_y, in_x, in_y)`` and orientation signs
        ``(+1, +1, -1, -1)`` (outgoing minus incoming)."""
        out = []
        for x, y in self.sites.coords:
            links = (
                self.link(x, y, 0),
                self.link(x, y, 1),
                self.link(x - 1, y, 0),
                self.link(x, y - 1, 1),
            )
            out.append((links, (1, 1, -1, -1)))
        return out

    @cached_property
    def plaquettes(self) -> list[tuple[int, int, int, int]]:
        """Links ``(bottom, right, top, left)`` of the plaquette at each vertex (snake order)."""
        out = []
        for x, y in self.sites.coords:
            out.append(
                (self.link(x, y, 0), self.link(x + 1, y, 1), self.link(x, y + 1, 0), self.link(x, y, 1))
            )
        return out
