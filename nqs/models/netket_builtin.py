"""NetKet's own ansätze, exposed under registry names (no code of ours beyond the wiring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import netket as nk
import numpy as np

from hamiltonians import Problem

from .registry import ModelSpec, any_problem, register_model


def _dtype(name: str):
    return {"complex": np.complex128, "real": np.float64}[name]


@dataclass
class RBMOptions:
    """``[method]`` keys of ``model = "rbm"`` and ``"rbm_symm"``."""

    alpha: int = 2
    """Hidden-unit density: ``alpha * n_inputs`` hidden units."""
    param_dtype: Literal["complex", "real"] = "complex"
    """Complex weights can represent the sign structure of frustrated models."""

    def __post_init__(self):
        if self.alpha < 1:
            raise ValueError(f"alpha must be >= 1, got {self.alpha}")


def _rbm(problem: Problem, o: RBMOptions):
    return nk.models.RBM(alpha=o.alpha, param_dtype=_dtype(o.param_dtype))


def _rbm_symm(problem: Problem, o: RBMOptions):
    perms = problem.geometry.translations
    return nk.models.RBMSymm(symmetries=nk.utils.HashableArray(perms), alpha=o.alpha, param_dtype=_dtype(o.param_dtype))


def _periodic_sites(problem: Problem) -> str | None:
    geo = problem.geometry
    if not getattr(geo, "torus", False):
        return "rbm_symm needs a periodic site lattice (j1j2 or heisenberg_chain with pbc = true)"
    if problem.local_space.fermionic:
        return "rbm_symm acts on site configurations; t-J configurations hold two modes per site"
    return None


@dataclass
class JastrowOptions:
    """``[method]`` keys of ``model = "jastrow"``."""

    param_dtype: Literal["complex", "real"] = "complex"
    """Complex weights can represent the sign structure of frustrated models."""


register_model(
    ModelSpec("rbm", RBMOptions, _rbm, any_problem, "NetKet restricted Boltzmann machine")
)
register_model(
    ModelSpec(
        "rbm_symm", RBMOptions, _rbm_symm, _periodic_sites,
        "NetKet translation-symmetric RBM on periodic lattices",
    )
)
register_model(
    ModelSpec(
        "jastrow", JastrowOptions,
        lambda p, o: nk.models.Jastrow(param_dtype=_dtype(o.param_dtype)),
        any_problem, "NetKet two-body Jastrow",
    )
)
