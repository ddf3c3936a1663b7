"""Sign structure of trained states against exact diagonalisation, and the Marshall floor.

On a lattice small enough for ED (default: J1-J2 4x4 torus at J2 = 0.5, 12,870 states of
S^z = 0) this computes, by full summation over the sector:

* the **Marshall floor**: the lowest energy of any state ``f(a) * M(a)`` with ``f >= 0`` and
  ``M`` the Marshall sign ``(-1)^{N_down(A)}``, i.e. the best any ansatz can do whose sign is
  Marshall's; the Rayleigh quotient minimised over the non-negative orthant by L-BFGS-B from
  ``|psi_ED|`` and from three random starts (they agree to 1e-12 here);
* ``|psi_ED| * M``: the exact moduli with the Marshall sign;
* for each archive given (a VMC run of that problem, its last checkpoint): the exact energy of
  the trained state (no Monte Carlo), its fidelity with the ED ground state, the energy of the
  exact moduli with the *trained state's* phases (the global phase fixed by the overlap), the ED
  weight on configurations where ``sign(Re psi)`` differs from the ED sign, and the weight of
  ``Im psi`` after the global phase is removed.

A trained state whose "exact moduli, its phases" energy equals that of ``|psi_ED| * M`` has
the Marshall sign everywhere: its error cannot go below the floor, whatever its moduli.

    python bench/sign_structure.py [ARCHIVE ...] [--L 4] [--J2 0.5]

Writes ``bench/results/sign_structure.json`` and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np
from scipy.optimize import minimize

import hamiltonians
from hamiltonians.netket_backend import configs_to_netket
from nqs.runs.archive import load
from nqs.models.autoregressive import marshall_sublattice
from nqs.runs.runner import archived_config

import report


def relative_error(h, e0: float):
    """``v -> (<v|H|v>/<v|v> - e0) / |e0|``."""
    return lambda v: (float(np.real(np.vdot(v, h @ v) / np.vdot(v, v))) - e0) / abs(e0)


def marshall_floor(h, sign: np.ndarray, start: np.ndarray, seed: int = 0) -> list[float]:
    """Minimum of ``<f M|H|f M> / <f|f>`` over ``f >= 0`` from ``start`` and three random starts."""
    hm = h.multiply(sign[:, None]).multiply(sign[None, :]).tocsr()

    def value_and_grad(f):
        hf = hm @ f
        n = f @ f
        e = f @ hf / n
        return e, 2 * (hf - e * f) / n

    rng = np.random.default_rng(seed)
    found = []
    for f0 in [start] + [rng.random(len(start)) for _ in range(3)]:
        r = minimize(
            value_and_grad, f0, jac=True, method="L-BFGS-B", bounds=[(0, None)] * len(f0),
            options={"maxiter": 50_000, "maxfun": 100_000, "ftol": 0.0, "gtol": 1e-14, "maxcor": 50},
        )
        found.append(float(r.fun))
    return found


def trained_amplitudes(path: Path, states: np.ndarray) -> tuple[np.ndarray, int, dict]:
    """The archive's last checkpointed state evaluated on ``states`` (normalised), the step of
    that checkpoint and the run's ``[method]`` table. The method is rebuilt with the defaults
    the archive ran with (:func:`nqs.runs.runner.archived_config`), not today's."""
    archive = load(path, checkpoint=True)
    if archive.checkpoint is None:
        raise SystemExit(f"{path}: no checkpoint to evaluate")
    config = archived_config(archive)
    method = config.method(config.problem, config.options)
    method.load_state_dict(archive.checkpoint)
    vstate = method.state
    log_psi = np.asarray(jax.jit(vstate.model.apply)(vstate.variables, states))
    psi = np.exp(log_psi - np.max(log_psi.real))
    return psi / np.linalg.norm(psi), int(archive.checkpoint_step), archive.config["method"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archives", nargs="*", type=Path)
    ap.add_argument("--L", type=int, default=4)
    ap.add_argument("--J2", type=float, default=0.5)
    args = ap.parse_args()
    problem = hamiltonians.get("j1j2", Lx=args.L, Ly=args.L, J2=args.J2)
    # the registry's ED: its basis (sorted local configurations) orders every vector below;
    # the models take them as NetKet configurations
    e0, gs, basis = problem.exact_ground_state()
    h = problem.sparse_matrix().tocsr()
    states = configs_to_netket(problem.local_space, basis)
    rel = relative_error(h, e0)
    sublattice = marshall_sublattice(problem)
    sign = (-1.0) ** (states[:, sublattice] < 0).sum(axis=1)
    sign *= np.sign(np.vdot(np.abs(gs) * sign, gs))
    floors = marshall_floor(h, sign, np.abs(gs))
    rows = [
        {"state": "Marshall floor: min over f >= 0 of f * M", "relative_error": (min(floors) - e0) / abs(e0),
         "spread_of_4_starts": max(floors) - min(floors)},
        {"state": "|psi_ED| * M", "relative_error": rel(np.abs(gs) * sign), "fidelity": abs(np.vdot(gs, np.abs(gs) * sign)) ** 2},
    ]
    for path in args.archives:
        psi, step, method = trained_amplitudes(path, states)
        overlap = np.vdot(gs, psi)
        psi = psi * np.conj(overlap) / abs(overlap)  # the global phase that best matches ED
        phase = psi / np.maximum(np.abs(psi), 1e-300)
        wrong = np.real(phase) * np.sign(gs) < 0
        options = {k: v for k, v in method.items() if k not in ("kind", "n_iter", "seed")}
        rows.append({
            "state": f"{path.name} (step {step}, seed {method.get('seed')}, {options})",
            "relative_error": rel(psi),
            "fidelity": abs(overlap) ** 2,
            "exact_moduli_its_phases": rel(np.abs(gs) * phase),
            "ed_weight_wrong_sign": float((gs[wrong] ** 2).sum()),
            "imaginary_weight": float((np.abs(psi.imag) ** 2).sum()),
        })
    columns = ["state", "relative_error", "fidelity", "exact_moduli_its_phases", "ed_weight_wrong_sign", "imaginary_weight", "spread_of_4_starts"]
    report.write(
        "sign_structure", rows, columns, problem=problem.label, exact_energy=e0,
        note="relative errors of exact (full-sum) energies against ED; M: the Marshall sign; see the module docstring",
    )


if __name__ == "__main__":
    main()
