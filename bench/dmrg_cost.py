"""DMRG cost: the registry's MPO and DMRG method against a hand-built quimb MPO and TeNPy.

Two comparisons, each side by side in this one process (the timings of a shared machine are
inflated alike, so only the ratios carry over):

(a) MPO: quimb's two-site DMRG on the open Heisenberg chain (``J = 1``, ``S = sigma/2``) with
    the registry MPO (``problem.to_mpo``, bare and with the ``S^z`` sector penalty that
    ``kind = "dmrg"`` adds only if the state leaves the sector) against quimb's hand-built ``MPO_ham_heis``. Same random initial MPS,
    same bond dimension, same local eigensolver settings.
(b) Method: the toolkit's ``kind = "dmrg"`` with ``backend = "quimb"`` (dense tensors, started in the sector,
    penalty only if it leaks out) against
    TeNPy's ``TwoSiteDMRGEngine`` at equal bond dimension, TeNPy with ``S^z`` charge
    conservation (its standard use) and without. Problems: the open Heisenberg chain, and the
    J1-J2 model (``J2 = 0.5``) on the 6x6 cylinder (``pbc = [true, false]``: periodic around
    the 6-site circumference, open along the length) in the registry's snake order.

"Time to the same energy": every run records (cumulative wall time, energy) after each sweep;
the target is the highest of the final energies of the runs compared, plus ``1e-7`` per site;
each run's time is that of its first sweep at or below the target. Rows report the ratio
``t_other / t_ours`` (> 1: ours is faster) and the MPO bond dimensions.

    python bench/dmrg_cost.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import quimb
import quimb.tensor as qtn

import hamiltonians
from tensornets.dmrg import DMRG, DMRGOptions

import report

CHAIN = dict(L=64, J=1.0, J2=0.0, pbc=False)
CHAIN_CHI = 32
J1J2 = dict(Lx=6, Ly=6, J2=0.5, pbc=[True, False])
J1J2_CHI = 32
MAX_SWEEPS = 10
REPEATS = 3
TARGET_SLACK_PER_SITE = 1e-7


def quimb_dmrg(mpo, n_sites: int, chi: int, seed: int = 0) -> list[tuple[float, float]]:
    """quimb DMRG2 at fixed ``chi`` from a random MPS; ``(cumulative seconds, energy)`` per sweep."""
    p0 = qtn.MPS_rand_state(n_sites, bond_dim=8, phys_dim=2, seed=seed, dtype="float64")
    dmrg = qtn.DMRG2(mpo, bond_dims=chi, cutoffs=1e-10, p0=p0)
    dmrg.opts["local_eig_ncv"] = 20  # as tensornets.dmrg does
    out, t = [], 0.0
    for sweep in range(MAX_SWEEPS):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = dmrg.sweep(
                "R" if sweep % 2 == 0 else "L", canonize=(sweep == 0), max_bond=chi, cutoff=1e-10,
                cutoff_mode=dmrg.opts["bond_compress_cutoff_mode"], method=dmrg.opts["bond_compress_method"],
            )
        t += time.perf_counter() - t0
        out.append((t, float(np.real(e))))
        if len(out) > 1 and abs(out[-1][1] - out[-2][1]) < 1e-10 * n_sites:
            break
    return out


def ours(problem, chi: int) -> list[tuple[float, float]]:
    """The toolkit's DMRG method at fixed ``chi`` (default sector handling: ``penalty = "auto"``)."""

    class Times:
        def __init__(self):
            self.rows, self.t = [], 0.0

        def record(self, step, values):
            self.t += values["sweep_seconds"]
            self.rows.append((self.t, values["energy"]))

        def checkpoint_due(self, step):
            return False

        def checkpoint(self, next_step, state):
            pass

    method = DMRG(problem, DMRGOptions(backend="quimb", bond_dims=[chi], max_sweeps=MAX_SWEEPS, tol=1e-10))
    rec = Times()
    method.run(0, rec)
    return rec.rows


def tenpy_model(problem, conserve: str | None):
    """The registry problem's spin-1/2 couplings as a TeNPy model on the same snake-ordered chain.

    The registry's terms are already in snake order, so the model is a TeNPy chain of
    ``n_sites`` spins 1/2 with the couplings placed between those site indices (each ``S.S``
    as ``Sz Sz + (S+ S- + S- S+)/2``, TeNPy's ``Sp``/``Sm`` are ``S^+``/``S^-``).
    """
    from tenpy.models.lattice import Chain
    from tenpy.models.model import CouplingMPOModel
    from tenpy.networks.site import SpinHalfSite

    names = {"Sz": "Sz", "Sp": "Sp", "Sm": "Sm"}
    n = problem.n_sites

    class Registry(CouplingMPOModel):
        def init_sites(self, model_params):
            return SpinHalfSite(conserve=conserve, sort_charge=True)

        def init_lattice(self, model_params):
            return Chain(n, self.init_sites(model_params), bc="open", bc_MPS="finite")

        def init_terms(self, model_params):
            for coeff, ops in problem.terms:
                (o1, i), (o2, j) = sorted(ops, key=lambda t: t[1])
                self.add_coupling_term(coeff, i, j, names[o1], names[o2])

    return Registry({})


def tenpy_dmrg(problem, chi: int, conserve: str | None) -> tuple[list[tuple[float, float]], int]:
    """TeNPy two-site DMRG at fixed ``chi`` from the Neel state; ``(time, energy)`` per sweep."""
    from tenpy.algorithms import dmrg
    from tenpy.networks.mps import MPS

    model = tenpy_model(problem, conserve)
    n = problem.n_sites
    psi = MPS.from_product_state(model.lat.mps_sites(), ["up", "down"] * (n // 2) + ["up"] * (n % 2), bc="finite")
    engine = dmrg.TwoSiteDMRGEngine(
        psi, model,
        {
            "trunc_params": {"chi_max": chi, "svd_min": 1e-10},
            "mixer": True,  # TeNPy's default; without it a product state cannot grow charge sectors
            "max_sweeps": MAX_SWEEPS,
            "min_sweeps": 2,
            "max_E_err": 1e-10 * n,
            # the comparison is at a fixed, deliberately small chi: on the 6x6 J1-J2 lattice its
            # truncation error exceeds TeNPy's consistency guard (1e-4), which would abort the run
            "max_trunc_err": 1.0,
        },
    )
    engine.run()
    stats = engine.sweep_stats
    rows = [(float(t), float(e)) for t, e in zip(stats["time"], stats["E"])]
    return rows, int(max(model.H_MPO.chi))


def time_to(rows: list[tuple[float, float]], target: float) -> float | None:
    for t, e in rows:
        if e <= target:
            return t
    return None


def compare(name: str, n_sites: int, runs: dict[str, tuple[list, int]], ours_key: str) -> list[dict]:
    target = max(r[-1][1] for r, _ in runs.values()) + TARGET_SLACK_PER_SITE * n_sites
    t_ours = time_to(runs[ours_key][0], target)
    out = []
    for key, (rows, mpo_chi) in runs.items():
        t = time_to(rows, target)
        out.append(
            {
                "problem": name,
                "run": key,
                "mpo_bond_dim": mpo_chi,
                "mpo_ratio": mpo_chi / runs[ours_key][1],
                "final_energy": rows[-1][1],
                "sweeps": len(rows),
                "time_to_target_s": t,
                "time_ratio": (t / t_ours) if (t is not None and t_ours) else None,
            }
        )
    return out


def main() -> None:
    import tenpy

    rows = []
    chain = hamiltonians.get("heisenberg_chain", **CHAIN)
    n = chain.n_sites
    mpo_reg, mpo_pen = chain.to_mpo(penalty=0), chain.to_mpo()
    mpo_quimb = qtn.MPO_ham_heis(n, j=1.0, cyclic=False)
    quimb_dmrg(mpo_quimb, n, 8)  # warm-up: one-off costs (imports, caches) out of the timed runs
    mpos = {
        "quimb DMRG2, registry MPO": mpo_reg,
        "quimb DMRG2, registry MPO + Sz penalty": mpo_pen,
        "quimb DMRG2, MPO_ham_heis": mpo_quimb,
    }
    # seconds-long runs on a shared machine: REPEATS interleaved rounds, each MPO's median run
    trials = {name: [] for name in mpos}
    for _ in range(REPEATS):
        for name, mpo in mpos.items():
            trials[name].append(quimb_dmrg(mpo, n, CHAIN_CHI))
    runs = {
        name: (sorted(t, key=lambda rows: rows[-1][0])[REPEATS // 2], max(mpos[name].bond_sizes()))
        for name, t in trials.items()
    }
    rows += compare(f"(a) chain L={n} chi={CHAIN_CHI}", n, runs, "quimb DMRG2, registry MPO")

    for label, problem, chi in (
        (f"(b) chain L={n} chi={CHAIN_CHI}", chain, CHAIN_CHI),
        (f"(b) j1j2 {J1J2['Lx']}x{J1J2['Ly']} cylinder J2={J1J2['J2']} chi={J1J2_CHI}", hamiltonians.get("j1j2", **J1J2), J1J2_CHI),
    ):
        method_mpo = problem.to_mpo(penalty=0)  # what the sweeps minimise while in the sector
        runs = {"ours (kind=dmrg)": (ours(problem, chi), max(method_mpo.bond_sizes()))}
        for conserve in ("Sz", None):
            rows_t, mpo_chi = tenpy_dmrg(problem, chi, conserve)
            runs[f"TeNPy {tenpy.__version__} conserve={conserve}"] = (rows_t, mpo_chi)
        rows += compare(label, problem.n_sites, runs, "ours (kind=dmrg)")
        print(report.table(rows[-3:]), flush=True)

    report.write("dmrg_cost", rows, tenpy_version=tenpy.__version__, quimb_version=quimb.__version__)


if __name__ == "__main__":
    main()
