"""Re-execute the notebooks in place, so the committed copies carry fresh outputs and figures.

    .venv/bin/python notebooks/execute.py --study              # all notebooks at the study sizes (committed)
    .venv/bin/python notebooks/execute.py --study notebooks/tj.ipynb   # one
    .venv/bin/python notebooks/execute.py notebooks/j1j2.ipynb # CI sizes
    .venv/bin/python notebooks/execute.py notebooks/j1j2.ipynb -p 'J2_values=[0.0, 0.1, 0.2]' -o /tmp/j1j2.ipynb

Each notebook runs in a fresh kernel of this interpreter (``python3`` kernelspec, which
jupyter_client resolves to ``sys.executable``) with a temporary working directory, so the run
archives it writes never land in the repository. ``--workdir DIR`` keeps them in ``DIR``
instead; a rerun with the same ``DIR`` skips the runs that completed and resumes the interrupted
ones (the notebooks run every point through ``nqs.runs.sweep.run_point``). Cells have no time limit
unless ``--timeout`` sets one: a study's run cell takes an hour.

``-p NAME=VALUE`` overrides parameters the way papermill does: a cell tagged
``injected-parameters`` is inserted after the cell tagged ``parameters`` (replacing one left by
an earlier execution). ``--study`` injects the sizes of :data:`STUDY` first, so ``-p`` can still
change them.

The committed notebooks carry the outputs of ``--study``: the figures on the repository page are
the study's, and the injected cell shows the parameters that made them. ``tests/test_notebooks.py``
drops that cell and executes at the CI sizes of the ``parameters`` cell. The output of the cell
tagged ``readme-figure`` is written to ``docs/figures/<notebook>.png`` (``--figures``), the figure
the README shows, whenever a notebook is executed in place.
"""

from __future__ import annotations

import argparse
import ast
import base64
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

# The sizes the committed outputs come from: larger than CI's, small enough for one CPU core in
# under an hour or two each (wall times measured on the 2-core CI-like machine are in the README).
# The J1-J2 notebook's DMRG outputs predate the held bond-dimension schedule (one sweep per value
# then): executed again with "max_sweeps": 8 its DMRG would end at chi = 64 or after few sweeps
# at 128; raise it to about 14 (and re-execute) for the same reach.
STUDY: dict[str, list[str]] = {
    "j1j2.ipynb": [
        "J2_values = [0.0, 0.2, 0.4, 0.5, 0.8]",
        'study_net = {"n_iter": 120, "n_samples": 512, "seed": 0, "symmetrize": "none"}',
        'methods = {"transformer": {"kind": "vmc", "model": "transformer", "on_the_fly": False, **study_net}, '
        '"antn": {"kind": "antn", "on_the_fly": False, **study_net}, '
        '"dmrg": {"kind": "dmrg", "bond_dims": [32, 64, 128], "max_sweeps": 8}}',
    ],
    "tj.ipynb": [
        "Lx, Ly, pbc = 4, 4, True",
        'hfds = {"model": "hfds", "n_iter": 300, "seed": 0}',
        'dmrg = {"bond_dims": [64], "max_sweeps": 4}',
    ],
    "z2_phase_diagram.ipynb": [
        "sweep_sizes = [(2, 2), (3, 3)]",
        "ed_sizes = [(2, 2), (3, 3), (4, 4)]",
        "h_grid = (0.1, 0.7, 25)",
        'dmrg = {"bond_dims": [32, 64, 128], "max_sweeps": 10}',
    ],
    "anyon_chain.ipynb": [
        "n_theta = 18",
        "dmrg_sizes = [12, 24]",
        'dmrg = {"bond_dims": [16, 32], "max_sweeps": 8, "cutoff": 1e-11, "penalty": 5.0}',
        'fit = {"skip": 0.1, "period": 6}',
        "ed_sizes = [12, 18]",
        "ed_points = 144",
        "vmc_size = 8",
        "vmc_thetas = [0.0, 1.0]",
        'vmc = {"n_iter": 60, "n_samples": 256, "d_model": 16, "n_heads": 2, "n_layers": 1, "seed": 0}',
    ],
    "open_systems.ipynb": [
        "L = 6",
        "g_values = [0.25, 0.5, 1.0, 2.0, 4.0]",
        'povm = {"n_iter": 30, "n_samples": 512, "seed": 0}',
        'ndm = {"n_iter": 300, "n_samples": 2000, "seed": 0}',
        "xyz = (4, 1)",
        "t_final, dt = 1.0, 0.1",
        'xyz_povm = {"n_samples": 512, "inner_iter": 5, "seed": 0, "model_options": {"d_model": 16, "n_heads": 2, "n_layers": 1}}',
    ],
    "u1_qlm_dynamics.ipynb": [
        "Lx, Ly = 4, 2",
        "t_final, dt = 3.0, 0.1",
        'mps = {"bond_dim": 64, "ground_bond_dims": [64], "expansion": 0}',
        'vmc = {"model": "gauge_transformer", "scheme": "projected", "n_samples": 4096, "seed": 0, '
        '"model_options": {"d_model": 16, "n_heads": 2, "n_layers": 1}}',
    ],
}


def inject(nb: nbformat.NotebookNode, assignments: list[str]) -> None:
    """Insert ``NAME = VALUE`` lines (Python expressions) after the ``parameters`` cell, in
    place of any injected cell of an earlier execution."""
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    if not assignments:
        return
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    for item in assignments:
        # one assignment to names, `x = 1` or `Lx, Ly = 4, 4`: checked here, not in the kernel
        try:
            (statement,) = ast.parse(item).body
        except (SyntaxError, ValueError):
            statement = None
        names_only = isinstance(statement, ast.Assign) and all(
            isinstance(target, (ast.Name, ast.Tuple)) for target in statement.targets
        )
        if not names_only:
            raise SystemExit(f"-p {item!r}: expected NAME = PYTHON_EXPRESSION (or NAME, NAME = ...)")
    cell = nbformat.v4.new_code_cell("# injected by notebooks/execute.py\n" + "\n".join(assignments))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int | None = None) -> nbformat.NotebookNode:
    """Run every cell in a fresh ``python3`` kernel started in ``cwd``; a failing cell raises
    :class:`nbclient.exceptions.CellExecutionError` naming it."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def readme_figure(nb: nbformat.NotebookNode) -> bytes | None:
    """The PNG shown by the cell tagged ``readme-figure``."""
    for cell in nb.cells:
        if "readme-figure" in cell.metadata.get("tags", []):
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "image/png" in data:
                    return base64.b64decode(data["image/png"])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--study", action="store_true", help="inject the sizes of STUDY (committed)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of in place (one notebook)")
    parser.add_argument("--figures", type=Path, default=HERE.parent / "docs" / "figures")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    parser.add_argument("--workdir", type=Path, help="kernel's working directory, kept (default: temporary)")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    if args.output and len(paths) != 1:
        parser.error("--output needs exactly one notebook")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if args.study and path.name not in STUDY:
            raise SystemExit(
                f"--study: {path.name} has no entry in STUDY (notebooks/execute.py); "
                "add its study sizes there"
            )
        inject(nb, (STUDY[path.name] if args.study else []) + args.param)
        t0 = time.perf_counter()
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            execute(nb, args.workdir.resolve(), args.timeout)
        else:
            with tempfile.TemporaryDirectory(prefix=f"nb-{path.stem}-") as tmp:
                execute(nb, Path(tmp), args.timeout)
        out = args.output or path
        nbformat.write(nb, out)
        png = readme_figure(nb)
        if png is not None and args.output is None:
            # the README shows the committed notebook's figure, whatever sizes made it
            args.figures.mkdir(parents=True, exist_ok=True)
            (args.figures / f"{path.stem}.png").write_bytes(png)
        print(f"{path.name}: executed in {time.perf_counter() - t0:.0f} s -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
