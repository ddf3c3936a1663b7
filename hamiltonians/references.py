"""Published reference energies (``data/reference_energies.json``) matched to problems."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .problem import Problem


@dataclass(frozen=True)
class Reference:
    """A ground-state energy from the literature for one finite problem."""

    energy: float
    """Total energy (not per site)."""
    method: str
    source: str

    def per_site(self, n_sites: int) -> float:
        """The reference energy divided by ``n_sites``."""
        return self.energy / n_sites


@lru_cache(maxsize=1)
def table() -> list[dict[str, Any]]:
    """The rows of the reference table, each with its source."""
    text = resources.files("hamiltonians").joinpath("data/reference_energies.json").read_text()
    return json.loads(text)["rows"]


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) < 1e-12


def find_reference(problem: "Problem") -> Reference | None:
    p = problem.params
    n = problem.n_sites
    for row in table():
        if row.get("model") != problem.name:
            continue
        if problem.name == "j1j2":
            if (
                row["Lx"] == p["Lx"]
                and row["Ly"] == p["Ly"]
                and row["pbc"] == p["pbc"]
                and _close(row["J2"], p["J2"])
                and _close(p["J1"], 1.0)
                and _close(problem.sector.get("Sz", 0.0), 0.0)
            ):
                return Reference(row["e_per_site"] * n, row["method"], row["source"])
        elif problem.name == "heisenberg_chain":
            # Majumdar-Ghosh point: E = -3/8 J L exactly for even periodic chains
            if (
                row.get("J2") == 0.5
                and isinstance(row.get("L"), str)
                and _close(p["J2"], 0.5 * p["J"])
                and p["pbc"]
                and p["L"] % 2 == 0
                and _close(problem.sector.get("Sz", 0.0), 0.0)
            ):
                return Reference(row["e_per_site"] * n * p["J"], row["method"], row["source"])
        elif problem.name == "z2_gauge":
            if "e_total" in row and _close(p["h"], row["h"]) and not p["charges"]:
                n_plaquettes = p["Lx"] * p["Ly"]
                return Reference(-float(n_plaquettes), row["method"], row["source"])
    return None
