"""NetKet's own ansätze, exposed under registry names (no code of ours beyond the wiring).

Like our own models, they carry the problem's fixed sign (``sign_prior``, on by default): the
Marshall sign on bipartite antiferromagnets, which NetKet's examples build into the operator
instead (:class:`SignPrior`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import flax.linen as nn
import jax.numpy as jnp
import netket as nk
import numpy as np

from hamiltonians import Problem

from .registry import ModelSpec, any_problem, register_model


def _dtype(name: str):
    return {"complex": np.complex128, "real": np.float64}[name]


class SignPrior(nn.Module):
    """``log psi(x) = log psi_net(x) + i sum_k table[k, a_k]``: a fixed phase per site and local
    state (``a_k`` the index of ``x_k`` in ``values``, NetKet's local values) added to a network."""

    net: nn.Module
    table: Any  # HashableArray (N, d)
    values: tuple[float, ...]

    @nn.compact
    def __call__(self, x):
        a = jnp.argmax(x[..., None] == jnp.asarray(self.values, dtype=x.dtype), axis=-1)
        phase = jnp.take_along_axis(jnp.asarray(np.asarray(self.table)), a.T, axis=1).T.sum(axis=-1)
        return self.net(x) + 1j * phase


def _sign_table(problem: Problem, kind: str):
    """The phase table of :func:`nqs.models.autoregressive.sign_prior` for ``kind``, or ``None``
    where none applies (also where the local space has no NetKet values to index it by)."""
    from .autoregressive import sign_prior

    if kind == "none" or problem.local_space.netket_values is None:
        return None
    return sign_prior(problem, "auto")


def with_sign_prior(net: nn.Module, problem: Problem, kind: str) -> nn.Module:
    """``net`` with the problem's fixed sign (``kind``: ``auto``, ``marshall`` or ``none``)."""
    table = _sign_table(problem, kind)
    return net if table is None else SignPrior(net, table, tuple(problem.local_space.netket_values))


class _SignPriorOption:
    """The ``sign_prior`` key's validation and ``explain_auto``, shared by the options below
    (which declare the field)."""

    def _validate_sign_prior(self) -> None:
        from .autoregressive import validate_sign_prior

        validate_sign_prior(self.sign_prior)

    def explain_auto(self, problem: Problem) -> dict[str, tuple[Any, str]]:
        """What ``sign_prior = "auto"`` resolves to on ``problem``: ``{key: (value, reason)}``."""
        if self.sign_prior != "auto":
            return {}
        if _sign_table(problem, "auto") is None:
            return {"sign_prior": ("none", "no Marshall sign or stoquastic sign rule applies")}
        return {"sign_prior": ("marshall", "antiferromagnet on a bipartite lattice (or a stoquastic sign rule)")}


def _check_sign_prior(problem: Problem, options) -> str | None:
    if options.sign_prior == "marshall" and _sign_table(problem, "auto") is None:
        return "sign_prior 'marshall' needs an antiferromagnetic spin model on a bipartite lattice; use 'auto' or 'none'"
    return None


@dataclass
class RBMOptions(_SignPriorOption):
    """``[method]`` keys of ``model = "rbm"`` and ``"rbm_symm"``."""

    alpha: int = 2
    """Hidden-unit density: ``alpha * n_inputs`` hidden units."""
    param_dtype: Literal["complex", "real"] = "complex"
    """Complex weights can represent the sign structure of frustrated models."""
    sign_prior: Literal["auto", "marshall", "none"] = "auto"
    """Fixed sign multiplying the network: ``auto`` is the Marshall sign
    ``(-1)^(down spins on sublattice A)`` on bipartite antiferromagnets (not on
    ``j1j2(marshall = true)``, already rotated), the stoquastic sign rule where one exists, else
    none; ``marshall`` insists; ``none`` leaves the sign to the weights."""

    def __post_init__(self):
        if self.alpha < 1:
            raise ValueError(f"alpha must be >= 1, got {self.alpha}")
        self._validate_sign_prior()


def _rbm(problem: Problem, o: RBMOptions):
    return with_sign_prior(nk.models.RBM(alpha=o.alpha, param_dtype=_dtype(o.param_dtype)), problem, o.sign_prior)


def _rbm_symm(problem: Problem, o: RBMOptions):
    perms = problem.geometry.translations
    net = nk.models.RBMSymm(symmetries=nk.utils.HashableArray(perms), alpha=o.alpha, param_dtype=_dtype(o.param_dtype))
    return with_sign_prior(net, problem, o.sign_prior)


def _periodic_sites(problem: Problem, name: str = "rbm_symm") -> str | None:
    geo = problem.geometry
    if not getattr(geo, "torus", False):
        return f"{name} needs a periodic site lattice (j1j2 or heisenberg_chain with pbc = true)"
    if problem.local_space.fermionic:
        return f"{name} acts on site configurations; t-J configurations hold two modes per site"
    return None


@dataclass
class JastrowOptions(_SignPriorOption):
    """``[method]`` keys of ``model = "jastrow"``."""

    param_dtype: Literal["complex", "real"] = "complex"
    """Complex weights can represent the sign structure of frustrated models."""
    sign_prior: Literal["auto", "marshall", "none"] = "auto"
    """As for ``model = "rbm"``."""

    def __post_init__(self):
        self._validate_sign_prior()


@dataclass
class GCNNOptions(_SignPriorOption):
    """``[method]`` keys of ``model = "gcnn"``: NetKet's group-convolutional network over the
    lattice's space group (Roth, Szabo and MacDonald, PRB 108, 054410 (2023)), the trivial
    representation (its amplitude is invariant under every translation, rotation and reflection),
    times the problem's fixed sign."""

    layers: int = 4
    """Group-convolution layers (the first a symmetrised dense layer)."""
    features: int = 4
    """Feature channels per group element in every layer (4 x 4: about 14k parameters on 6x6, the
    size of our default Transformer)."""
    param_dtype: Literal["complex", "real"] = "complex"
    """Complex weights can represent the sign structure of frustrated models."""
    sign_prior: Literal["auto", "marshall", "none"] = "auto"
    """As for ``model = "rbm"``."""

    def __post_init__(self):
        if self.layers < 1 or self.features < 1:
            raise ValueError(f"layers and features must be >= 1, got {self.layers} and {self.features}")
        self._validate_sign_prior()


class Relabelled(nn.Module):
    """``net`` applied to the configuration with its sites reordered: ``x[..., order]``."""

    net: nn.Module
    order: Any  # HashableArray (N,)

    @nn.compact
    def __call__(self, x):
        return self.net(x[..., np.asarray(self.order)])


def netket_lattice(problem: Problem):
    """NetKet's periodic lattice of the problem's sites and ``order``: NetKet site ``n`` is our
    (snake-order) site ``order[n]``."""
    geo = problem.geometry
    g = (nk.graph.Chain(geo.Lx, pbc=True) if geo.Ly == 1 else
         nk.graph.Square(geo.Lx, pbc=True) if geo.Lx == geo.Ly else nk.graph.Grid([geo.Lx, geo.Ly], pbc=True))
    ours = {tuple(round(c) for c in xy): i for i, xy in enumerate(np.asarray(geo.coords)[:, : (1 if geo.Ly == 1 else 2)])}
    order = np.array([ours[tuple(round(c) for c in pos)] for pos in np.asarray(g.positions)])
    return g, order


def _gcnn(problem: Problem, o: GCNNOptions):
    # NetKet's own lattice, so that its space group takes the fast Fourier mode over translations
    graph, order = netket_lattice(problem)
    net = nk.models.GCNN(symmetries=graph, mode="fft", layers=o.layers, features=o.features,
                         param_dtype=_dtype(o.param_dtype))
    return with_sign_prior(Relabelled(net, nk.utils.HashableArray(order)), problem, o.sign_prior)


def _periodic_square(problem: Problem) -> str | None:
    from hamiltonians.lattice import SquareLattice

    reason = _periodic_sites(problem, "gcnn")
    if reason:
        return reason
    if not isinstance(problem.geometry, SquareLattice):
        return "gcnn takes the space group of a square lattice or chain"
    return None


register_model(
    ModelSpec(
        "gcnn", GCNNOptions, _gcnn, _periodic_square,
        "NetKet group-convolutional network over the space group (periodic lattices)", check=_check_sign_prior,
    )
)
register_model(
    ModelSpec("rbm", RBMOptions, _rbm, any_problem, "NetKet restricted Boltzmann machine", check=_check_sign_prior)
)
register_model(
    ModelSpec(
        "rbm_symm", RBMOptions, _rbm_symm, _periodic_sites,
        "NetKet translation-symmetric RBM on periodic lattices", check=_check_sign_prior,
    )
)
register_model(
    ModelSpec(
        "jastrow", JastrowOptions,
        lambda p, o: with_sign_prior(nk.models.Jastrow(param_dtype=_dtype(o.param_dtype)), p, o.sign_prior),
        any_problem, "NetKet two-body Jastrow", check=_check_sign_prior,
    )
)
