"""DMRG at the sizes where exact diagonalisation ends, and block2 against TeNPy side by side.

Sections (``--only NAME ...``; all by default):

* ``torus``: J1-J2 6x6 torus at ``J2 = 0.5`` by ``kind = "dmrg"`` with block2 in its SU(2)
  mode (``symmetry = "su2"``) and a schedule up to ``--torus-chi`` within ``--torus-budget``
  seconds; relative error against the exact ``-0.503810`` per site.
* ``tj_torus``: t-J 4x4 torus, 2 holes, ``J = 0.4``, abelian charges ``(N_up, N_dn)``; against ED.
* ``tj_cylinder``: t-J 4x8 cylinder (periodic around the 4 sites), 4 holes, up to
  ``--cylinder-chi``; energy, truncation error, extrapolated energy with its uncertainty.
* ``vs_tenpy``: time to the same energy, ours (block2, abelian charges) against TeNPy's
  ``TwoSiteDMRGEngine`` conserving the same charges, both fed the registry's terms (TeNPy as
  multi-site couplings of the same local matrices), the same bond-dimension ramp, one after
  the other in this process; J1-J2 6x6 cylinder (``J2 = 0.5``) and the t-J 4x8 cylinder at
  each of ``--tenpy-chis``. TeNPy stops after ``--tenpy-cap`` times our total time (checked
  after each of its sweeps). The target is the higher of the two final energies plus ``1e-7``
  per site, which both reached; the ratio is ``t_ours / t_tenpy`` (< 1: ours faster).
* ``cost``: seconds per sweep against bond dimension (converged sweeps at each value) on the
  J1-J2 6x6 cylinder, with the fitted exponent of ``t ~ chi^a``.

Writes ``bench/results/dmrg_scale.json`` (rows: problem, engine, bond_dim, sweeps, energy,
truncation_error, extrapolated_energy, relative_error, wall_seconds; merged into the existing
file by section) and prints the table.

    python bench/dmrg_scale.py --only tj_torus vs_tenpy
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import hamiltonians
from tensornets.dmrg import DMRG, DMRGOptions

import report

J1J2_TORUS = dict(Lx=6, Ly=6, J2=0.5, pbc=True)
J1J2_CYLINDER = dict(Lx=6, Ly=6, J2=0.5, pbc=[True, False])
TJ_TORUS = dict(Lx=4, Ly=4, n_holes=2, J=0.4, pbc=True)
TJ_CYLINDER = dict(Lx=4, Ly=8, n_holes=4, J=0.4, pbc=[True, False])
SLACK_PER_SITE = 1e-7


class _Log:
    """Recorder: (cumulative seconds, energy, bond dimension, truncation error) per sweep."""

    def __init__(self, label: str, n_sites: int, reference: float | None = None):
        self.rows: list[tuple[float, float, int, float]] = []
        self.t0 = time.perf_counter()
        self.label, self.n, self.ref = label, n_sites, reference

    def record(self, step, values):
        t = time.perf_counter() - self.t0
        self.rows.append((t, values["energy"], int(values["bond_dim"]), values["truncation_error"]))
        rel = "" if self.ref is None else f" rel {abs(values['energy'] - self.ref) / abs(self.ref):.2e}"
        print(f"  {self.label} sweep {step}: E/N {values['energy'] / self.n:.8f}{rel} chi {int(values['bond_dim'])}"
              f" eps {values['truncation_error']:.1e} t {t:.0f}s", flush=True)

    def checkpoint_due(self, step):
        return False

    def checkpoint(self, next_step, state):
        pass


def _row(problem_name, problem, method, log, reference, section, budget=None):
    r = method.final_result()
    row = {
        "section": section,
        "problem": problem_name,
        "engine": f"block2 ({r.get('symmetry')})" if r.get("backend") == "block2" else "quimb",
        "bond_dim": r["bond_dim"],
        "bond_dim_states": r.get("bond_dim_states", r["bond_dim"]),
        "sweeps": r["sweeps"],
        "energy": r["energy"],
        "energy_per_site": r["energy"] / problem.n_sites,
        "truncation_error": r["truncation_error"],
        "extrapolated_energy": r.get("energy_extrapolated"),
        "extrapolated_error": r.get("energy_extrapolated_error"),
        "relative_error": None if reference is None else abs(r["energy"] - reference) / abs(reference),
        "extrapolated_relative_error": (
            None if reference is None or r.get("energy_extrapolated") is None
            else abs(r["energy_extrapolated"] - reference) / abs(reference)
        ),
        "wall_seconds": log.rows[-1][0] if log.rows else 0.0,
        "budget_seconds": budget,
        "sweep_log": [list(x) for x in log.rows],
    }
    return row


class _Budget(_Log):
    """Stops the run (by raising) once ``budget`` seconds have passed after a sweep."""

    def __init__(self, *a, budget: float, **k):
        super().__init__(*a, **k)
        self.budget = budget

    def record(self, step, values):
        super().record(step, values)
        if self.rows[-1][0] > self.budget:
            raise TimeoutError


def run_ours(problem, options: DMRGOptions, label: str, reference=None, budget=None):
    method = DMRG(problem, options)
    log = _Budget(label, problem.n_sites, reference, budget=budget) if budget else _Log(label, problem.n_sites, reference)
    try:
        method.run(0, log)
    except TimeoutError:
        print(f"  {label}: budget of {budget:.0f} s spent", flush=True)
    return method, log


def section_torus(args):
    p = hamiltonians.get("j1j2", **J1J2_TORUS)
    ref = p.reference.energy
    dims = [d for d in (256, 512, 768, 1024, 1536, 2048, 3072) if d <= args.torus_chi]
    opts = DMRGOptions(bond_dims=dims, max_sweeps=40, min_sweeps_per_bond_dim=2, max_sweeps_per_bond_dim=2,
                       symmetry="su2")
    m, log = run_ours(p, opts, "j1j2 6x6 torus", ref, budget=args.torus_budget)
    return [_row("j1j2 6x6 torus J2=0.5", p, m, log, ref, "torus", args.torus_budget)]


def section_tj_torus(args):
    p = hamiltonians.get("tj", **TJ_TORUS)
    t0 = time.perf_counter()
    ref = p.exact()
    print(f"  ED of the t-J 4x4 torus: {ref:.10f} in {time.perf_counter() - t0:.0f} s", flush=True)
    opts = DMRGOptions(bond_dims=[256, 512, 1024, 2048, 3000], max_sweeps=20, max_sweeps_per_bond_dim=2)
    m, log = run_ours(p, opts, "tj 4x4 torus", ref, budget=args.tj_budget)
    return [_row("tj 4x4 torus 2 holes J=0.4", p, m, log, ref, "tj_torus", args.tj_budget)]


def section_tj_cylinder(args):
    p = hamiltonians.get("tj", **TJ_CYLINDER)
    dims = [d for d in (256, 512, 1024, 1536, 2048, 3072, 4096) if d <= args.cylinder_chi]
    opts = DMRGOptions(bond_dims=dims, max_sweeps=2 * len(dims) + 2, max_sweeps_per_bond_dim=2)
    m, log = run_ours(p, opts, "tj 4x8 cylinder", None, budget=args.cylinder_budget)
    return [_row("tj 4x8 cylinder 4 holes J=0.4", p, m, log, None, "tj_cylinder", args.cylinder_budget)]


# ------------------------------------------------------------------------------ TeNPy side
def tenpy_model(problem):
    """TeNPy ``MPOModel`` of the registry terms on a chain in snake order, conserving the
    sector's charges: each term as a multi-site coupling of the same local matrices (Jordan-
    Wigner strings included) that block2 receives (:mod:`tensornets.block2_model`)."""
    from tenpy.linalg import np_conserved as npc
    from tenpy.models.lattice import Chain
    from tenpy.models.model import CouplingMPOModel
    from tenpy.networks.site import Site

    from hamiltonians.terms import site_factors
    from tensornets.block2_model import charges_of

    ch = charges_of(problem)
    space = problem.local_space
    info = npc.ChargeInfo([1] * len(ch.groups), list(ch.names))
    leg = npc.LegCharge.from_qflat(info, [list(q) for q in ch.site_charges[0]])
    if any(c != ch.site_charges[0] for c in ch.site_charges):
        raise ValueError("site-dependent charges are not translated to TeNPy here")
    names: dict[bytes, str] = {}
    terms = []
    for c, ops in problem.terms:
        f = site_factors(ops, space)
        sites = sorted(f)
        labels = []
        for s in sites:
            key = np.ascontiguousarray(f[s]).tobytes()
            names.setdefault(key, f"O{len(names)}")
            labels.append(names[key])
        terms.append((c, sites, labels))
    matrices = {name: np.frombuffer(key).reshape(space.dim, space.dim) for key, name in names.items()}

    class Registry(CouplingMPOModel):
        def init_sites(self, model_params):
            site = Site(leg, list(space.labels))
            for name, m in matrices.items():
                site.add_op(name, m.copy())
            return site

        def init_lattice(self, model_params):
            return Chain(problem.n_sites, self.init_sites(model_params), bc="open", bc_MPS="finite")

        def init_terms(self, model_params):
            for c, sites, labels in terms:
                if len(sites) == 1:
                    self.add_onsite_term(c, sites[0], labels[0])
                else:
                    self.add_multi_coupling_term(c, sites, labels, ["Id"] * (len(sites) - 1))

    return Registry({})


def product_state(problem) -> list[str]:
    """A configuration in the sector: holes spread evenly, spins alternating."""
    n = problem.n_sites
    if problem.local_space.name == "spin_half":
        return ["up", "down"] * (n // 2) + ["up"] * (n % 2)
    sec = problem.sector
    holes = n - int(sec["n_up"]) - int(sec["n_dn"])
    hole_sites = {round((k + 0.5) * n / holes) for k in range(holes)} if holes else set()
    out, spin = [], 0
    for s in range(n):
        if s in hole_sites:
            out.append("hole")
        else:
            out.append("up" if spin % 2 == 0 else "down")
            spin += 1
    return out


def tenpy_run(problem, ramp: list[int], sweeps_per: int, max_sweeps: int, max_seconds: float):
    from tenpy.algorithms import dmrg
    from tenpy.networks.mps import MPS

    model = tenpy_model(problem)
    psi = MPS.from_product_state(model.lat.mps_sites(), product_state(problem), bc="finite")
    chi_list = {k * sweeps_per: chi for k, chi in enumerate(ramp)}
    engine = dmrg.TwoSiteDMRGEngine(
        psi, model,
        {
            "trunc_params": {"chi_max": ramp[-1], "svd_min": 1e-10},
            "chi_list": chi_list,
            "mixer": True,
            "max_sweeps": max_sweeps,
            "min_sweeps": max_sweeps,
            "max_E_err": 1e-12,
            "max_trunc_err": 1.0,
            "lanczos_params": {"N_max": 20, "E_tol": 1e-10},
            # TeNPy checks its clock after each sweep: it may overrun by one sweep.
            "max_hours": max_seconds / 3600.0,
        },
    )
    t0 = time.perf_counter()
    engine.run()
    stats = engine.sweep_stats
    rows = [(float(t), float(e)) for t, e in zip(stats["time"], stats["E"])]
    return rows, time.perf_counter() - t0


def ours_run(problem, ramp: list[int], sweeps_per: int, max_sweeps: int):
    opts = DMRGOptions(
        backend="block2", symmetry="abelian", bond_dims=ramp, max_sweeps=max_sweeps, tol=1e-12,
        min_sweeps_per_bond_dim=sweeps_per, max_sweeps_per_bond_dim=sweeps_per, truncation_tol=1e-14,
    )
    m, log = run_ours(problem, opts, "ours")
    return [(t, e) for t, e, _, _ in log.rows], log.rows[-1][0]


def time_to(rows, target):
    for t, e in rows:
        if e <= target:
            return t
    return None


def section_vs_tenpy(args):
    out = []
    for name, problem_name, params in [
        ("j1j2 6x6 cylinder J2=0.5", "j1j2", J1J2_CYLINDER),
        ("tj 4x8 cylinder 4 holes J=0.4", "tj", TJ_CYLINDER),
    ]:
        if problem_name not in args.tenpy_problems:
            continue
        p = hamiltonians.get(problem_name, **params)
        for chi in args.tenpy_chis:
            ramp = [c for c in (128, 256, 512, 1024, 2048) if c < chi] + [chi]
            ramp = ramp[-3:]
            max_sweeps = 2 * len(ramp) + 2
            print(f"{name}, chi {chi}: ramp {ramp}, {max_sweeps} sweeps each engine", flush=True)
            ours_rows, ours_t = ours_run(p, ramp, 2, max_sweeps)
            cap = args.tenpy_cap * ours_t
            tp_rows, tp_t = tenpy_run(p, ramp, 2, max_sweeps, cap)
            for t, e in tp_rows:
                print(f"  tenpy: E/N {e / p.n_sites:.8f} t {t:.0f}s", flush=True)
            tenpy_finished = len(tp_rows) >= max_sweeps
            # the higher of the two final energies: both engines reached it, so the ratio is a
            # measured one even where the cap stopped TeNPy early
            target = max(ours_rows[-1][1], tp_rows[-1][1]) + SLACK_PER_SITE * p.n_sites
            t_o, t_t = time_to(ours_rows, target), time_to(tp_rows, target)
            out.append({
                "section": "vs_tenpy", "problem": name, "bond_dim": chi, "ramp": ramp, "sweeps": max_sweeps,
                "target_energy": target,
                "ours_final_energy": ours_rows[-1][1], "tenpy_final_energy": tp_rows[-1][1],
                "ours_seconds_to_target": t_o, "tenpy_seconds_to_target": t_t,
                "ours_total_seconds": ours_t, "tenpy_total_seconds": tp_t,
                "ratio_ours_over_tenpy": (t_o / t_t) if (t_o and t_t) else None,
                "tenpy_cap_seconds": cap, "tenpy_finished": tenpy_finished,
                "ours_log": ours_rows, "tenpy_log": tp_rows,
            })
            args.save_partial(out)
    return out


def section_cost(args):
    p = hamiltonians.get("j1j2", **J1J2_CYLINDER)
    rows = []
    for chi in args.cost_chis:
        ramp = [c for c in (128, 256, 512, 1024) if c < chi][-1:] + [chi]
        opts = DMRGOptions(backend="block2", symmetry="abelian", bond_dims=ramp, max_sweeps=4,
                           min_sweeps_per_bond_dim=2, max_sweeps_per_bond_dim=2, truncation_tol=1e-14, tol=1e-14)
        m, log = run_ours(p, opts, f"cost chi={chi}")
        times = np.diff([0.0] + [t for t, *_ in log.rows])
        rows.append({"section": "cost", "problem": "j1j2 6x6 cylinder J2=0.5", "engine": "block2 (abelian)",
                     "bond_dim": chi, "seconds_per_sweep": float(times[-1]), "energy": log.rows[-1][1]})
    chis = np.array([r["bond_dim"] for r in rows], dtype=float)
    secs = np.array([r["seconds_per_sweep"] for r in rows])
    if len(rows) >= 2:
        slope = float(np.polyfit(np.log(chis), np.log(secs), 1)[0])
        for r in rows:
            r["fitted_exponent"] = slope
    return rows


SECTIONS = {
    "torus": section_torus, "tj_torus": section_tj_torus, "tj_cylinder": section_tj_cylinder,
    "vs_tenpy": section_vs_tenpy, "cost": section_cost,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    ap.add_argument("--torus-chi", type=int, default=2048)
    ap.add_argument("--torus-budget", type=float, default=3600.0)
    ap.add_argument("--tj-budget", type=float, default=600.0)
    ap.add_argument("--cylinder-chi", type=int, default=2048)
    ap.add_argument("--cylinder-budget", type=float, default=3600.0)
    ap.add_argument("--tenpy-chis", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--cost-chis", type=int, nargs="+", default=[128, 256, 512, 1024])
    ap.add_argument("--tenpy-problems", nargs="+", choices=["j1j2", "tj"], default=["j1j2", "tj"])
    ap.add_argument("--tenpy-cap", type=float, default=3.0,
                    help="TeNPy stops after this multiple of our total time")
    args = ap.parse_args()
    old = report.previous("dmrg_scale")

    def replaced(r):  # vs_tenpy rows are replaced per bond dimension, so chis may run separately
        if r.get("section") == "vs_tenpy":
            return (
                "vs_tenpy" in args.only and r.get("bond_dim") in args.tenpy_chis
                and r.get("problem", "").split()[0] in args.tenpy_problems
            )
        return r.get("section") in args.only

    rows = [r for r in old["rows"] if not replaced(r)]
    columns = [
        "section", "problem", "engine", "bond_dim", "sweeps", "energy", "truncation_error", "extrapolated_energy",
        "relative_error", "wall_seconds", "ratio_ours_over_tenpy", "seconds_per_sweep",
        "fitted_exponent",
    ]
    # Each finished row is written at once, so a long run killed midway keeps what it measured.
    args.save_partial = lambda partial: report.write("dmrg_scale", rows + partial, columns, quiet=True)
    for name in args.only:
        print(f"== {name}", flush=True)
        rows += SECTIONS[name](args)
        args.save_partial([])
    report.write("dmrg_scale", rows, columns)

if __name__ == "__main__":
    main()
