"""Vision Transformer with factored attention for spin-1/2 models on periodic square lattices.

Viteritti, Rende, Becca, PRL 130, 236401 (2023); Rende, Viteritti, Bardone, Becca, Goldt,
Commun. Phys. 7, 260 (2024). The spins, read on the ``Lx x Ly`` grid, are cut into
``px x py`` patches; each patch is embedded linearly into ``d_model`` features and the sequence
of patches goes through ``n_layers`` pre-norm encoder blocks. Their attention is *factored*: the
weight of patch ``j`` seen from patch ``i`` is a learned number ``alpha_h(r_j - r_i)`` of the
periodic displacement between the patches only (per head ``h``), not a softmax of queries and
keys, so every block commutes with translations by whole patches. The patch features are summed
(translation invariant pooling) into ``z`` and mapped to the log-amplitude
``log psi = sum_a log cosh(b_a + w_a . z)`` with complex ``w, b``, so the phase can represent
sign structures beyond the Marshall prior (``sign_prior``, on by default).

With ``symmetrize = "translations"`` the amplitude is averaged over the ``px * py``
translations inside a patch, ``psi(x) = mean_s psi_ViT(T_s x)``, invariant under every lattice
translation (zero total momentum). ``"space_group"`` (the default) averages over the point group
as well (``C4v`` on square ``L x L`` lattices, the reflections otherwise): the projection onto
the trivial irrep ``A1``, ``k = 0``, the sector of the ground states of the even periodic J1-J2
lattices. Summing amplitudes, not moduli, the projection also builds sign structure, at
``8 px py`` evaluations per amplitude (measurements: ``docs/benchmarks/accuracy.md``).

Conventions: configurations are NetKet spin values ``+1`` (up) / ``-1`` (down) in snake order
(:mod:`hamiltonians.lattice`); the model gathers them onto the grid ``(y, x)`` through the
lattice's coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np

from hamiltonians import Problem
from hamiltonians.lattice import SquareLattice

from .chunking import map_in_chunks
from .registry import ModelSpec, register_model


def point_group_images(cells: jax.Array) -> list[jax.Array]:
    """``cells`` ``(batch, Ly, Lx)`` under every point-group element of the periodic lattice:
    the 8 of ``C4v`` when ``Lx = Ly``, else the 4 reflections of ``C2v`` (a chain: its 2). On a
    torus a rotation about the array's centre is one about a site followed by a translation,
    which the translation average absorbs."""
    ly, lx = cells.shape[-2:]
    flips = [cells, cells[:, :, ::-1]] + ([cells[:, ::-1, :], cells[:, ::-1, ::-1]] if ly > 1 else [])
    if ly != lx:
        return flips
    return [jnp.rot90(c, k, axes=(1, 2)) for c in (cells, cells[:, :, ::-1]) for k in range(4)]


class FactoredAttention(nn.Module):
    """Multi-head attention whose weights depend on the displacement between patches only.

    ``y_i = W_O concat_h sum_j alpha_h[rel[i, j]] V_h x_j``; ``rel[i, j]`` indexes the periodic
    displacement from patch ``i`` to patch ``j`` (``n_rel`` values).
    """

    d_model: int
    n_heads: int
    rel: Any
    """``(n_patches, n_patches)`` displacement index (``HashableArray``)."""
    n_rel: int
    param_dtype: Any = np.float64
    dtype: Any = np.float64
    """Dtype of the computation (the weights are cast to it)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        rel = np.asarray(self.rel)
        d_head = self.d_model // self.n_heads
        v = nn.Dense(self.d_model, param_dtype=self.param_dtype, dtype=self.dtype, name="value")(x)
        v = v.reshape(*x.shape[:-1], self.n_heads, d_head)
        # start close to uniform mixing (a mean over patches), which is well conditioned
        alpha = self.param(
            "alpha",
            lambda k, s, d: 1.0 / rel.shape[0] + 0.1 / rel.shape[0] * jax.random.normal(k, s, d),
            (self.n_heads, self.n_rel),
            self.param_dtype,
        )
        weights = alpha[:, rel].astype(self.dtype)  # (heads, patches, patches)
        y = jnp.einsum("hij,...jhk->...ihk", weights, v).reshape(*x.shape[:-1], self.d_model)
        return nn.Dense(self.d_model, param_dtype=self.param_dtype, dtype=self.dtype, name="out")(y)


class EncoderBlock(nn.Module):
    """Pre-norm encoder block: ``x + Attn(LN x)``, then ``x + FFN(LN x)`` (GELU)."""

    d_model: int
    n_heads: int
    ffn_factor: int
    rel: Any
    n_rel: int
    param_dtype: Any = np.float64
    dtype: Any = np.float64
    """Dtype of the computation (the weights are cast to it)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        p, d = self.param_dtype, self.dtype
        h = nn.LayerNorm(param_dtype=p, dtype=d)(x)
        x = x + FactoredAttention(self.d_model, self.n_heads, self.rel, self.n_rel, p, d)(h)
        h = nn.LayerNorm(param_dtype=p, dtype=d)(x)
        h = nn.gelu(nn.Dense(self.ffn_factor * self.d_model, param_dtype=p, dtype=d)(h))
        return x + nn.Dense(self.d_model, param_dtype=p, dtype=d)(h)


class ViT(nn.Module):
    """Vision Transformer log-amplitude of spin configurations on an ``Lx x Ly`` torus."""

    grid: Any
    """``(Ly, Lx)`` snake index of each grid cell (``HashableArray``)."""
    patch: tuple[int, int] = (2, 2)
    """Patch extent ``(px, py)``; must divide ``(Lx, Ly)``."""
    d_model: int = 16
    """Features per patch."""
    n_heads: int = 4
    """Attention heads (must divide ``d_model``)."""
    n_layers: int = 2
    """Encoder blocks."""
    ffn_factor: int = 2
    """Hidden width of each block's feed-forward network, in units of ``d_model``."""
    n_out: int = 16
    """Complex ``log cosh`` units of the output layer."""
    symmetrize: str = "space_group"
    """``"none"``, ``"translations"`` (average over the translations inside a patch: full
    translation invariance) or ``"space_group"`` (and over the point group)."""
    sign_sites: Any = None
    """Marshall sign prior: sites of sublattice A (``HashableArray`` of snake indices); the
    amplitude is multiplied by ``(-1)^(number of up spins on A)``. ``None``: no prior."""
    param_dtype: Any = np.float64
    """Dtype of all weights (real: the output layer's complex weights are two real layers)."""
    dtype: Any = np.float64
    """Dtype of the encoder's computation (embedding and blocks, weights cast to it); the
    patch sum, the output layer, ``log cosh`` and the average over images run in
    :attr:`param_dtype`."""
    eval_chunk: int | None = 256
    """Configurations evaluated at once (each ``px py`` or ``8 px py`` symmetry images); larger
    batches are mapped in chunks: the local energies of 256 samples on the 8x8 J1-J2 lattice
    in one batch needed over 20 GB. ``None``: all at once."""

    def _patch_geometry(self) -> tuple[np.ndarray, int]:
        ly, lx = np.asarray(self.grid).shape
        px, py = self.patch
        nx, ny = lx // px, ly // py
        pos = [(a, b) for b in range(ny) for a in range(nx)]
        rel = np.empty((len(pos), len(pos)), dtype=np.int32)
        for i, (ax, ay) in enumerate(pos):
            for j, (bx, by) in enumerate(pos):
                rel[i, j] = ((by - ay) % ny) * nx + (bx - ax) % nx
        return rel, nx * ny

    def encode(self, cells: jax.Array) -> jax.Array:
        """Log-amplitude of spins given on the grid, ``cells`` of shape ``(batch, Ly, Lx)``."""
        ly, lx = cells.shape[-2:]
        px, py = self.patch
        b = cells.shape[0]
        patches = cells.reshape(b, ly // py, py, lx // px, px).transpose(0, 1, 3, 2, 4)
        tokens = patches.reshape(b, (ly // py) * (lx // px), py * px)
        rel, n_rel = self._patch_geometry()
        h = nn.Dense(self.d_model, param_dtype=self.param_dtype, dtype=self.dtype, name="embed")(tokens.astype(self.dtype))
        for layer in range(self.n_layers):
            h = EncoderBlock(
                self.d_model, self.n_heads, self.ffn_factor, nk.utils.HashableArray(rel), n_rel,
                self.param_dtype, self.dtype, name=f"block_{layer}",
            )(h)
        h = nn.LayerNorm(param_dtype=self.param_dtype, dtype=self.dtype, name="final_norm")(h)
        z = h.astype(self.param_dtype).sum(axis=1)
        # complex weights acting on the real features z, stored as real and imaginary parts so
        # that every parameter is real (NetKet's minSR/NTK solver needs a single dtype)
        init = nn.initializers.normal(0.05)
        re = nn.Dense(self.n_out, param_dtype=self.param_dtype, kernel_init=init, name="output_re")(z)
        im = nn.Dense(self.n_out, param_dtype=self.param_dtype, kernel_init=init, name="output_im")(z)
        return nk.nn.log_cosh(re + 1j * im).sum(axis=-1)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``log psi`` (complex) of NetKet configurations ``(..., N)``, batches larger than
        :attr:`eval_chunk` in chunks (:mod:`nqs.models.chunking`)."""
        flat = jnp.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
        return map_in_chunks(self, "log_psi", flat, self.eval_chunk).reshape(x.shape[:-1])

    @nn.compact
    def log_psi(self, x: jax.Array) -> jax.Array:
        """``log psi`` of a flat batch ``(B, N)`` of configurations."""
        grid = np.asarray(self.grid)
        cells = x[:, grid]
        if self.symmetrize == "none":
            out = self.encode(cells)
        else:
            px, py = self.patch
            images = point_group_images(cells) if self.symmetrize == "space_group" else [cells]
            shifted = jnp.stack(
                [jnp.roll(c, (sy, sx), axis=(1, 2)) for c in images for sy in range(py) for sx in range(px)], axis=0
            )
            n_shift, b = shifted.shape[:2]
            logs = self.encode(shifted.reshape(n_shift * b, *cells.shape[1:])).reshape(n_shift, b)
            # log of the mean amplitude, stabilised by the largest modulus
            m = jnp.max(logs.real, axis=0)
            out = m + jnp.log(jnp.mean(jnp.exp(logs - m), axis=0))
        if self.sign_sites is not None:
            ups = (x[:, np.asarray(self.sign_sites)] + 1) / 2
            out = out + 1j * jnp.pi * ups.sum(axis=-1)
        return out


@dataclass
class ViTOptions:
    """``[method]`` keys of ``model = "vit"`` (spin-1/2 models on periodic lattices).

    The defaults, with the VMC defaults of :attr:`vmc_defaults`, are chosen for the frustrated
    4x4 periodic J1-J2 model at ``J2 = 0.5``, 300 steps, whose slow accuracy test
    (``tests/nqs/test_accuracy.py``) asks for 5e-3 relative to ED; larger lattices want more layers
    and features.
    """

    vmc_defaults: ClassVar[dict[str, Any]] = {
        "n_samples": 1024,
        "n_chains": 64,
        "learning_rate": 0.05,
        "learning_rate_final": 0.01,
        "diag_shift": 1e-2,
        "diag_shift_final": 1e-4,
        "on_the_fly": False,
    }
    """VMC defaults for this model (a key written in ``[method]`` wins): SR steps and
    regularisation decay geometrically, large early, small late to resolve the last digits. Measurements: ``docs/benchmarks/defaults.md``."""

    patch_size: list[int] = field(default_factory=lambda: [2, 2])
    """Patch extent ``[px, py]`` in lattice sites; must divide ``[Lx, Ly]`` (chains: ``[p, 1]``,
    or a single number ``[p]`` meaning ``p x p`` on square lattices and ``p x 1`` on chains)."""
    d_model: int = 16
    """Features per patch (embedding width); a multiple of ``n_heads``."""
    n_heads: int = 4
    """Attention heads."""
    n_layers: int = 1
    """Encoder blocks (the default is small: a 4x4 lattice has only four 2x2 patches)."""
    ffn_factor: int = 2
    """Feed-forward width of each block in units of ``d_model``."""
    n_out: int = 16
    """Complex ``log cosh`` units of the output layer."""
    symmetrize: Literal["none", "translations", "space_group"] = "space_group"
    """``space_group`` (default): average the amplitude over the translations inside a patch
    and the point group (``8 px py`` evaluations on square lattices), the projection on the
    symmetric sector ``A1, k = 0`` of the J1-J2 ground states. It is what resolves the sign
    structure at ``J2 = 0.5``, at 8 times the cost per amplitude. ``translations``: the translations
    inside a patch only (full translation invariance, ``px * py`` evaluations); ``none``: patch
    translations only."""
    precision: Literal["double", "single"] = "single"
    """Arithmetic of the encoder (embedding and blocks, the bulk of the cost): ``single``
    (float32, weights kept in double and cast; the default), or ``double``. The patch sum, the
    output layer, ``log cosh`` and the average over symmetry images stay in double either way, so
    ``log psi`` carries the encoder's float32 round-off, about 1e-7 of ``|log psi|``: amplitude
    ratios in local energies off by about 1e-5 relative at 6x6, far below the statistical errors
    of VMC, for a step about 2/3 as long (``docs/benchmarks/vmc_step_cost.md``)."""
    eval_chunk: int = 256
    """Configurations per evaluation of the network: larger batches (the local energies:
    samples x connected configurations) are mapped in chunks of this size; bounds the memory."""
    sign_prior: Literal["auto", "marshall", "none"] = "auto"
    """Fixed sign multiplying the network: ``marshall`` = ``(-1)^(up spins on sublattice A)``,
    exact for the unfrustrated Heisenberg model and the bulk of the J1-J2 sign structure
    (the network's phase corrects the rest); ``auto``: Marshall on bipartite lattices unless the
    problem is already Marshall-rotated (``j1j2(marshall = true)``)."""

    def explain_auto(self, problem: Problem) -> dict[str, tuple[Any, str]]:
        """``sign_prior = "auto"`` on ``problem`` (:func:`sign_sites`), ``{key: (value, reason)}``."""
        if self.sign_prior != "auto":
            return {}
        if sign_sites(problem, self) is None:
            return {"sign_prior": ("none", "no Marshall sign applies (not a bipartite antiferromagnet, or marshall = true)")}
        return {"sign_prior": ("marshall", "antiferromagnet on a bipartite lattice: Marshall sign")}

    def __post_init__(self):
        if self.precision not in ("double", "single"):
            raise ValueError(f"precision must be 'double' or 'single', got {self.precision!r}")
        if self.symmetrize not in ("none", "translations", "space_group"):
            raise ValueError(f"symmetrize must be 'none', 'translations' or 'space_group', got {self.symmetrize!r}")
        if not 1 <= len(self.patch_size) <= 2 or any(p < 1 for p in self.patch_size):
            raise ValueError(f"patch_size must be [p] or [px, py] with positive entries, got {self.patch_size}")
        for name in ("d_model", "n_heads", "n_layers", "ffn_factor", "n_out", "eval_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads}); "
                f"e.g. d_model = {self.n_heads * max(1, round(self.d_model / self.n_heads))}"
            )

    def patch_for(self, lattice: SquareLattice) -> tuple[int, int]:
        """``(px, py)`` on this lattice (a single ``p`` means ``p x p``, or ``p x 1`` on a chain)."""
        if len(self.patch_size) == 2:
            return int(self.patch_size[0]), int(self.patch_size[1])
        p = int(self.patch_size[0])
        return (p, 1) if lattice.Ly == 1 else (p, p)


def _fits(problem: Problem) -> str | None:
    geo = problem.geometry
    if problem.local_space.name == "tj_site":
        return "vit acts on spin-1/2 sites (j1j2, heisenberg_chain); for t-J use 'hfds'"
    if problem.local_space.name != "spin_half" or not isinstance(geo, SquareLattice):
        return (
            "vit acts on spin-1/2 sites of a square lattice or chain (j1j2, heisenberg_chain), "
            "not on links; for gauge models use 'gauge_transformer'"
        )
    if not geo.torus:
        return "vit's factored attention and pooling assume a periodic lattice: set pbc = true"
    return None


def check(problem: Problem, o: ViTOptions) -> str | None:
    """``None`` if the options suit the problem's lattice, else what to change."""
    geo = problem.geometry
    px, py = o.patch_for(geo)
    if geo.Lx % px or geo.Ly % py:
        good = [
            f"[{a}, {b}]" for b in range(1, geo.Ly + 1) for a in range(1, geo.Lx + 1)
            if geo.Lx % a == 0 and geo.Ly % b == 0 and a * b > 1 and a * b <= 9
        ]
        return (
            f"patch_size {o.patch_size} = {px}x{py} does not tile the {geo.Lx}x{geo.Ly} lattice; "
            f"choose px dividing Lx and py dividing Ly, e.g. patch_size = {', '.join(good[:6]) or '[1, 1]'}"
        )
    if o.sign_prior == "marshall" and not _bipartite(geo):
        return (
            f"sign_prior = 'marshall' needs a bipartite lattice, and the {geo.Lx}x{geo.Ly} periodic "
            "lattice is not (odd length); use sign_prior = 'none'"
        )
    return None


def _bipartite(geo: SquareLattice) -> bool:
    parity = geo.coords.sum(axis=1) % 2
    return all(parity[i] != parity[j] for i, j in geo.bonds)


def sign_sites(problem: Problem, o: ViTOptions) -> np.ndarray | None:
    """Sublattice-A sites of the Marshall prior, or ``None`` when the prior is off."""
    geo = problem.geometry
    if o.sign_prior == "none":
        return None
    if o.sign_prior == "auto" and (problem.params.get("marshall", False) or not _bipartite(geo)):
        return None
    return np.flatnonzero(geo.coords.sum(axis=1) % 2 == 0)


def build(problem: Problem, o: ViTOptions) -> ViT:
    reason = _fits(problem) or check(problem, o)
    if reason:
        raise ValueError(reason)
    geo = problem.geometry
    grid = np.empty((geo.Ly, geo.Lx), dtype=np.int64)
    for i, (x, y) in enumerate(geo.coords):
        grid[y, x] = i
    return ViT(
        grid=nk.utils.HashableArray(grid),
        patch=o.patch_for(geo),
        d_model=o.d_model,
        n_heads=o.n_heads,
        n_layers=o.n_layers,
        ffn_factor=o.ffn_factor,
        n_out=o.n_out,
        symmetrize=o.symmetrize,
        eval_chunk=o.eval_chunk,
        dtype=np.float32 if o.precision == "single" else np.float64,
        sign_sites=None if (a := sign_sites(problem, o)) is None else nk.utils.HashableArray(a),
    )


register_model(
    ModelSpec(
        "vit", ViTOptions, build, _fits,
        "Vision Transformer with factored (translation-invariant) attention on patches, Metropolis exchange",
        check=check,
    )
)
