"""SU(2)_k anyons and interacting anyon chains in the fusion-path basis.

SU(2)_k data (Kirillov-Reshetikhin): labels ``j = 0, 1/2, ..., k/2``; quantum numbers
``[n] = sin(pi n / (k + 2)) / sin(pi / (k + 2))`` (``q = exp(i pi / (k + 2))``, ``[n] =
(q^n - q^-n) / (q - q^-1)``); quantum dimensions ``d_j = [2j + 1]``; fusion
``j1 x j2 = |j1 - j2|, ..., min(j1 + j2, k - j1 - j2)`` in integer steps; quantum 6j symbols by
the q-deformed Racah formula; F-symbols

    [F^{abc}_d]_{ef} = (-1)^(a + b + c + d) sqrt([2e + 1] [2f + 1]) {a b e; c d f}_q,

``e`` the channel of ``a x b`` and ``f`` of ``b x c`` in the fusion tree of ``a x b x c -> d``:
real, orthogonal and pentagon-consistent (tested for k = 2..5).

Chain (:func:`anyon_chain`): ``L`` anyons of spin ``j`` in the fusion-path basis. Site ``s``
holds the label ``x_s`` (local basis index ``2 x_s``); anyon ``m`` fuses ``x_m`` into
``x_{m+1}``, so neighbouring labels obey ``x_{m+1} in x_m x j``, a table constraint
(:class:`~hamiltonians.constraints.AllowedTuples`) of the sector automaton, which ED, the MPO
penalty, DMRG and autoregressive masking take like any other sector. Interactions are products
``|a><a| (x) |x'><x| (x) |c><c|`` of the local ket-bra operators with coefficients from the
F-symbols: ordinary registry terms. ``k = None`` is ordinary SU(2) (q = 1): :func:`su2_chain`,
the Heisenberg chain in the spin-network basis.

References: Feiguin et al., PRL 98, 160409 (2007) (golden chain); Trebst et al., PRL 101,
050401 (2008) (three-anyon interactions).
"""

from __future__ import annotations

from functools import cache
from itertools import product
from math import pi, sin, sqrt

import numpy as np

from .constraints import AllowedTuples, Constraint
from .lattice import SquareLattice
from .local_spaces import LocalSpace, ket_bra
from .problem import Problem
from .registry import register
from .terms import Term, combine

# Labels are handled as twice the spin (integers 0..k) so that fusion and parities are exact.


# ``k = None`` is the classical limit k -> infinity (q = 1): ordinary SU(2), integer [n] = n,
# the Racah 6j symbols, no upper cut in the fusion rules (the spin-network basis of su2_chain).
Level = int | None


def _qnum(n: int, k: Level) -> float:
    return float(n) if k is None else sin(pi * n / (k + 2)) / sin(pi / (k + 2))


@cache
def _qfact(n: int, k: Level) -> float:
    return 1.0 if n <= 0 else _qfact(n - 1, k) * _qnum(n, k)


def _admissible(a: int, b: int, c: int, k: Level) -> bool:
    """Twice-spins ``a x b -> c`` allowed at level ``k`` (``None``: SU(2))."""
    top = a + b if k is None else min(a + b, 2 * k - a - b)
    return abs(a - b) <= c <= top and (a + b + c) % 2 == 0


def _fuse(a: int, b: int, k: Level) -> list[int]:
    return [c for c in range(a + b + 1) if _admissible(a, b, c, k)]


def _delta(a: int, b: int, c: int, k: Level) -> float:
    return sqrt(_qfact((a + b - c) // 2, k) * _qfact((a - b + c) // 2, k) * _qfact((-a + b + c) // 2, k)
                / _qfact((a + b + c) // 2 + 1, k))


@cache
def _six_j(a: int, b: int, e: int, c: int, d: int, f: int, k: Level) -> float:
    """``{a b e; c d f}_q`` in twice-spins; 0 unless all four triangles are admissible."""
    if not (_admissible(a, b, e, k) and _admissible(e, c, d, k) and _admissible(b, c, f, k) and _admissible(a, f, d, k)):
        return 0.0
    tri = [(a + b + e) // 2, (e + c + d) // 2, (b + c + f) // 2, (a + f + d) // 2]
    quad = [(a + b + c + d) // 2, (a + e + c + f) // 2, (b + e + d + f) // 2]
    total = 0.0
    for z in range(max(tri), min(quad) + 1):
        den = np.prod([_qfact(z - t, k) for t in tri]) * np.prod([_qfact(q - z, k) for q in quad])
        total += (-1) ** z * _qfact(z + 1, k) / den
    return _delta(a, b, e, k) * _delta(e, c, d, k) * _delta(b, c, f, k) * _delta(a, f, d, k) * total


def _f(a: int, b: int, c: int, d: int, e: int, f: int, k: Level) -> float:
    sign = -1.0 if ((a + b + c + d) // 2) % 2 else 1.0
    return sign * sqrt(_qnum(e + 1, k) * _qnum(f + 1, k)) * _six_j(a, b, e, c, d, f, k)


def _twice(j: float, what: str = "label") -> int:
    n = 2 * j
    if not float(n).is_integer():
        raise ValueError(f"{what} {j} is not a multiple of 1/2")
    return int(round(n))


def quantum_dimension(j: float, k: Level) -> float:
    """``d_j = [2j + 1] = sin(pi (2j + 1) / (k + 2)) / sin(pi / (k + 2))`` (``2j + 1`` for SU(2))."""
    return _qnum(_twice(j) + 1, k)


def fusion(j1: float, j2: float, k: Level) -> list[float]:
    """The channels of ``j1 x j2`` in SU(2)_k (``k = None``: SU(2)), each with multiplicity one."""
    return [c / 2 for c in _fuse(_twice(j1), _twice(j2), k)]


def f_symbol(a: float, b: float, c: float, d: float, e: float, f: float, k: Level) -> float:
    """``[F^{abc}_d]_{ef}`` (module docstring); 0 where a vertex is not admissible."""
    return _f(*(_twice(x) for x in (a, b, c, d, e, f)), k)


def f_matrix(a: float, b: float, c: float, d: float, k: Level) -> tuple[list[float], list[float], np.ndarray]:
    """``(es, fs, F)``: the channels ``e`` of ``(a x b) x c -> d``, ``f`` of ``a x (b x c) -> d``
    and the orthogonal matrix ``F[i, l] = [F^{abc}_d]_{es[i], fs[l]}``."""
    ta, tb, tc, td = (_twice(x) for x in (a, b, c, d))
    es = [e for e in _fuse(ta, tb, k) if _admissible(e, tc, td, k)]
    fs = [f for f in _fuse(tb, tc, k) if _admissible(ta, f, td, k)]
    m = np.array([[_f(ta, tb, tc, td, e, f, k) for f in fs] for e in es]).reshape(len(es), len(fs))
    return [e / 2 for e in es], [f / 2 for f in fs], m


# ---------------------------------------------------------------------------------- the chain
@cache
def label_space(k: Level, n_max: int | None = None) -> LocalSpace:
    """One fusion-path label of SU(2)_k: basis index ``n`` is the label ``j = n / 2``, ``n = 0 ..
    n_max`` (default ``k``; required for SU(2), ``k = None``); operators are the ket-bras
    ``|n><m|`` of every local space; quantum number ``"j"``. NetKet value of label ``j``: ``2j``
    (the basis index), a ``Fock(n_max)`` site of :func:`hamiltonians.netket_backend.build_hilbert`."""
    if n_max is None:
        if k is None:
            raise ValueError("label_space: SU(2) labels (k = None) need n_max")
        n_max = k
    labels = tuple(str(n // 2) if n % 2 == 0 else f"{n}/2" for n in range(n_max + 1))
    group = "SU(2)" if k is None else f"SU(2)_{k}"
    return LocalSpace(
        name=f"su2_label_{n_max}" if k is None else f"su2_{k}_label",
        labels=labels,
        ops={},
        quantum_numbers={"j": np.arange(n_max + 1) / 2.0},
        parity=(0,) * (n_max + 1),
        netket_values=tuple(float(n) for n in range(n_max + 1)),
        description=f"{group} fusion-path label: index n = 2j, j = 0, 1/2, ..., {n_max}/2",
    )


def pair_projector(a: int, c: int, j: int, k: Level, z: int = 0) -> dict[tuple[int, int], float]:
    """``<a x' c| P^(z) |a x c>`` (twice-spins): two neighbouring anyons ``j`` between the labels
    ``a`` and ``c`` fused into the channel ``z`` (default the trivial one),
    ``F[x', z] F[x, z]`` with ``F = F^{a j j}_c``; for ``z = 0`` zero unless ``a = c``."""
    out = {}
    xs = [x for x in _fuse(a, j, k) if _admissible(x, j, c, k)]
    for x, x2 in product(xs, xs):
        v = _f(a, j, j, c, x2, z, k) * _f(a, j, j, c, x, z, k)
        if abs(v) > 1e-14:
            out[(x2, x)] = v
    return out


def triple_projector(a: int, c: int, j: int, z: int, k: Level) -> dict[tuple[tuple[int, int], tuple[int, int]], float]:
    """``<a x' y' c| P^(z) |a x y c>``: three consecutive anyons ``j`` (labels ``a -> x -> y -> c``)
    fused into the total channel ``z``. The path is recoupled as ``U[(x, y), (f, z)] =
    F^{a j j}_y[x, f] F^{a f j}_c[y, z]`` (``f`` the channel of the first two anyons); ``P^(z) =
    sum_f U[., (f, z)] U[., (f, z)]^T``."""
    paths = [(x, y) for x in _fuse(a, j, k) for y in _fuse(x, j, k) if _admissible(y, j, c, k)]
    fs = _fuse(j, j, k)

    def u(x: int, y: int, f: int) -> float:
        return _f(a, j, j, y, x, f, k) * _f(a, f, j, c, y, z, k)

    out = {}
    for p2, p in product(paths, paths):
        v = sum(u(*p2, f) * u(*p, f) for f in fs)
        if abs(v) > 1e-14:
            out[(p2, p)] = v
    return out


def triple_channel(j: int, k: Level) -> int | None:
    """The largest total channel (twice-spin) of three anyons ``j`` that occurs exactly once,
    or ``None``: spin 3/2 for spin-1/2 anyons (``k >= 3``), the Majumdar-Ghosh projector's
    channel; the trivial channel for Fibonacci anyons (spin 1 at ``k = 3``)."""
    counts: dict[int, int] = {}
    for f in _fuse(j, j, k):
        for z in _fuse(f, j, k):
            counts[z] = counts.get(z, 0) + 1
    once = [z for z, m in counts.items() if m == 1]
    return max(once) if once else None


def _sublattice_labels(s: int, j: int, n_max: int) -> list[int]:
    """Labels ``0 .. n_max`` (twice-spins) site ``s`` can hold when the path starts at an integer
    label: ``2 x_s`` has the parity of ``s * 2j``."""
    return [n for n in range(n_max + 1) if n % 2 == (s * j) % 2]


def _path_tables(L: int, j: int, k: Level, n_max: int, end: int | None) -> list[AllowedTuples]:
    """The fusion-path sector as table constraints on labels ``0 .. n_max`` (twice-spins):
    neighbours fuse with the anyon ``j``; ``end = None``: periodic, ``L`` labels, ``x_L = x_0``
    with ``x_0`` an integer; else open, ``L + 1`` labels, ``x_0 = 0`` and ``x_L = end``."""
    pair_ok = frozenset((a, b) for a in range(n_max + 1) for b in _fuse(a, j, k) if b <= n_max)
    if end is None:
        return [AllowedTuples((s, (s + 1) % L), pair_ok) for s in range(L)] + [
            AllowedTuples((0,), frozenset((n,) for n in range(0, n_max + 1, 2)))
        ]
    return [AllowedTuples((s, s + 1), pair_ok) for s in range(L)] + [
        AllowedTuples((0,), frozenset({(0,)})), AllowedTuples((L,), frozenset({(end,)}))
    ]


def anyon_chain(L: int, k: int = 3, spin: float = 0.5, theta: float = 0.0, pbc: bool = True) -> Problem:
    """Chain of ``L`` interacting SU(2)_k anyons of spin ``spin`` (golden chain: k = 3).

    ``H = sum_i [cos(theta) H2_i + sin(theta) H3_i]``, ``H2_i = -P^(0)`` of the anyon pair
    ``(i, i+1)`` (projector onto their trivial fusion channel), ``H3_i = -P^(z)`` of the anyons
    ``(i-1, i, i+1)`` onto their total channel ``z`` (:func:`triple_channel`: 3/2 for spin 1/2,
    the trivial channel for Fibonacci anyons = spin 1 at k = 3). ``theta = 0``: the
    antiferromagnetic golden chain of Feiguin et al. (favours the trivial channel; at k = 3
    tricritical Ising, c = 7/10); ``theta = pi``: ferromagnetic (Z_k parafermions, c = 4/5 at
    k = 3). ``H3`` carries the same sign as ``H2`` (``sin(theta) > 0`` favours the channel ``z``),
    the form of Trebst et al. (its phase diagram in ``theta``: ``notebooks/anyon_chain.ipynb``). Spin 1/2 and
    spin 1 at k = 3 have the same spectrum (labels mapped by fusion with 3/2).

    The fusion-path basis: labels in ``0, 1/2, ..., k/2`` (site ``s``: basis index ``2 x_s``),
    anyon ``m`` fusing ``x_m`` into ``x_{m+1}``. Sector: every ``x_{m+1} in x_m x spin``, and
    periodic (``pbc``): ``L`` sites ``x_0 .. x_{L-1}``, ``x_L = x_0``, ``x_0`` an integer (for
    half-integer spin this fixes which sublattice holds the integer labels; the other choice is
    the same spectrum translated by one site). Open:
    ``L + 1`` sites ``x_0 .. x_L`` with ``x_0 = 0`` and ``x_L = 0`` (``1/2`` when ``2 spin L`` is
    odd). Pair terms act on ``(x_{i}, x_{i+1}, x_{i+2})`` changing ``x_{i+1}``; triple terms on
    four consecutive labels changing the middle two. Parameters: ``k >= 2``; ``spin`` in
    ``1/2, 1, ..., (k-1)/2``; periodic ``L >= 3`` (``>= 4`` with the three-anyon term), even for
    half-integer spin; open ``L >= 2``.
    """
    model = "anyon_chain"
    if k < 2:
        raise ValueError(f"{model}: parameter 'k'={k} is not allowed; need an integer level k >= 2 (SU(2)_k)")
    allowed_spins = ", ".join(str(n // 2) if n % 2 == 0 else f"{n}/2" for n in range(1, k))
    if not float(2 * spin).is_integer() or not 1 <= round(2 * spin) <= k - 1:
        raise ValueError(
            f"{model}: parameter 'spin'={spin} is not a non-abelian anyon of SU(2)_{k}; allowed: {allowed_spins}"
        )
    j = int(round(2 * spin))
    # cos and sin of multiples of pi/2 are zero only up to round-off
    three = abs(np.sin(theta)) > 1e-12
    z3 = triple_channel(j, k) if three else None
    if three and z3 is None:
        raise ValueError(
            f"{model}: parameter 'theta'={theta} switches on the three-anyon term, but three spin-{spin} anyons "
            f"of SU(2)_{k} have no total channel of multiplicity one; allowed: theta = 0 or pi"
        )
    need = (4 if three else 3) if pbc else (3 if three else 2)
    if L < need:
        raise ValueError(f"{model}: chain too short, parameter 'L'={L}; need L >= {need}")
    if pbc and j % 2 and L % 2:
        raise ValueError(
            f"{model}: parameter 'L'={L} must be even for half-integer spin on a periodic chain "
            "(labels alternate between integers and half-integers)"
        )

    n_sites = L if pbc else L + 1
    space = label_space(k)
    end = None if pbc else (j * L) % 2
    tables = _path_tables(L, j, k, k, end)
    if pbc:
        windows = [tuple((i + r) % L for r in range(-1, 3)) for i in range(L)]
    else:
        windows = [tuple(range(i - 1, i + 3)) for i in range(1, L)]

    terms: list[Term] = []
    c2 = -float(np.cos(theta))
    for w in windows:
        s0, s1, s2 = w[0], w[1], w[2]
        if abs(c2) > 1e-12:
            for a in _sublattice_labels(s0, j, k):
                for (x2, x), v in pair_projector(a, a, j, k).items():
                    ops = ((ket_bra(a, a), s0), (ket_bra(x2, x), s1), (ket_bra(a, a), s2))
                    terms.append((c2 * v, ops))
        if three and (pbc or w[3] <= L):
            s3 = w[3]
            for a in _sublattice_labels(s0, j, k):
                for c in range(k + 1):
                    for ((x2, y2), (x, y)), v in triple_projector(a, c, j, z3, k).items():
                        ops = ((ket_bra(a, a), s0), (ket_bra(x2, x), s1), (ket_bra(y2, y), s2), (ket_bra(c, c), s3))
                        terms.append((-float(np.sin(theta)) * v, ops))
    constraint = Constraint(
        "fusion_path",
        (),
        space,
        n_sites,
        sector={"fusion_path": f"SU(2)_{k}, spin {spin}", "boundary": "periodic, x_0 integer" if pbc else f"x_0 = 0, x_L = {end / 2:g}"},
        tables=tuple(tables),
    )
    if constraint.find_one() is None:
        raise AssertionError(f"{model}: empty fusion-path sector")
    return Problem(
        terms=combine(terms),
        local_space=space,
        constraint=constraint,
        geometry=SquareLattice(n_sites, 1, pbc),
        formula="H = sum_i [-cos(theta) P2^(0)_{i,i+1} - sin(theta) P3^(z)_{i-1,i,i+1}]  (fusion-path basis)",
    )


register("anyon_chain", anyon_chain)


def su2_chain(L: int, spin: float = 0.5, J: float = 1.0, total_spin: float | None = None) -> Problem:
    """Open Heisenberg chain of ``L`` spins ``spin`` in the SU(2) spin-network basis.

    ``H = J sum_{i=0}^{L-2} S_i . S_{i+1}`` (units of ``J``, ``S`` the spin operators: ``S = sigma/2``
    for spin 1/2, as :func:`~hamiltonians.spins.heisenberg_chain`), written as ``sum_z e_z P^(z)``
    over the pair channels ``z`` with ``e_z = [z(z + 1) - 2 spin(spin + 1)] / 2``. The basis is
    the fusion-path basis of :func:`anyon_chain` with ordinary SU(2) data (``k -> infinity``,
    ``q = 1``: Racah 6j symbols, no cut in the fusion rules): ``L + 1`` labels ``x_0 .. x_L``
    (local basis index ``2 x``, up to the largest label a path reaches). Sector: ``x_0 = 0``,
    ``x_{m+1} in x_m x spin``, ``x_L = total_spin`` (default ``spin`` for odd ``L``, else ``0``:
    the antiferromagnet's ground state by Lieb-Mattis). Each basis state is one multiplet of that
    total spin, so the spectrum is the Heisenberg chain's multiplets of that spin, each once, and
    every state is SU(2) invariant by construction. Parameters: ``L >= 2``, ``spin`` in ``1/2, 1,
    3/2, ...``. ``E/N`` in tables divides by the ``L + 1`` labels, not the ``L`` spins.
    """
    model = "su2_chain"
    if L < 2:
        raise ValueError(f"{model}: chain too short, parameter 'L'={L}; need L >= 2")
    if not float(2 * spin).is_integer() or spin <= 0:
        raise ValueError(f"{model}: parameter 'spin'={spin} is not a spin; allowed: 1/2, 1, 3/2, ...")
    j = int(round(2 * spin))
    parity = (j * L) % 2
    end = j * (L % 2) if total_spin is None else _twice(total_spin, "total_spin")
    if not (0 <= end <= j * L and end % 2 == parity):
        raise ValueError(
            f"{model}: parameter 'total_spin'={total_spin} is not a total spin of {L} spins {spin}; allowed: "
            f"{parity / 2:g}, {parity / 2 + 1:g}, ..., {j * L / 2:g}"
        )
    n_max = max(min(m * j, (L - m) * j + end) for m in range(L + 1))
    space = label_space(None, n_max)
    tables = _path_tables(L, j, None, n_max, end)

    channels = {z: J * (z * (z + 2) - 2 * j * (j + 2)) / 8 for z in _fuse(j, j, None)}  # e_z, twice-spins
    terms: list[Term] = []
    for m in range(L - 1):  # the pair of spins m, m + 1 between the labels x_m, x_{m+1}, x_{m+2}
        for a in _sublattice_labels(m, j, n_max):
            for c in _sublattice_labels(m + 2, j, n_max):
                for z, e in channels.items():
                    for (x2, x), v in pair_projector(a, c, j, None, z).items():
                        if x <= n_max and x2 <= n_max:
                            ops = ((ket_bra(a, a), m), (ket_bra(x2, x), m + 1), (ket_bra(c, c), m + 2))
                            terms.append((e * v, ops))
    constraint = Constraint(
        "fusion_path",
        (),
        space,
        L + 1,
        sector={"fusion_path": f"SU(2), spin {spin}", "boundary": f"x_0 = 0, x_L = total spin {end / 2:g}"},
        tables=tuple(tables),
    )
    return Problem(
        terms=combine(terms),
        local_space=space,
        constraint=constraint,
        geometry=SquareLattice(L + 1, 1, False),
        formula="H = J sum_i S_i.S_{i+1} = J sum_i sum_z e_z P^(z)_{i,i+1}  (SU(2) spin-network basis, open)",
    )


register("su2_chain", su2_chain)
