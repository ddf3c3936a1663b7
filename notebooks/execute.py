"""Re-execute the notebooks in place, so the committed copies carry fresh outputs and figures.

    .venv/bin/python notebooks/execute.py                      # all notebooks, CI sizes
    .venv/bin/python notebooks/execute.py notebooks/j1j2.ipynb # one
    .venv/bin/python notebooks/execute.py notebooks/j1j2.ipynb -p 'J2_values=[0.0, 0.1, 0.2]' -o /tmp/j1j2.ipynb

Each notebook runs in a fresh kernel of this interpreter (``python3`` kernelspec, which
jupyter_client resolves to ``sys.executable``) with a temporary working directory, so the run
archives it writes never land in the repository. ``-p NAME=VALUE`` overrides parameters the way
papermill does: a cell tagged ``injected-parameters`` is inserted after the cell tagged
``parameters``. The output of the cell tagged ``readme-figure`` is written to
``docs/figures/<notebook>.png`` (``--figures``), the figure the README shows.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def inject(nb: nbformat.NotebookNode, assignments: list[str]) -> None:
    """Insert ``NAME = VALUE`` lines (Python expressions) after the ``parameters`` cell."""
    if not assignments:
        return
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    lines = []
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise SystemExit(f"-p {item!r}: expected NAME=PYTHON_EXPRESSION")
        lines.append(f"{name.strip()} = {value.strip()}")
    cell = nbformat.v4.new_code_cell("# injected by notebooks/execute.py\n" + "\n".join(lines))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 1800) -> nbformat.NotebookNode:
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
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of in place (one notebook)")
    parser.add_argument("--figures", type=Path, default=HERE.parent / "docs" / "figures")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (generous: shared CI machines)")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    if args.output and len(paths) != 1:
        parser.error("--output needs exactly one notebook")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        inject(nb, args.param)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"nb-{path.stem}-") as tmp:
            execute(nb, Path(tmp), args.timeout)
        out = args.output or path
        nbformat.write(nb, out)
        png = readme_figure(nb)
        if png is not None and not args.param:
            # figures from overridden parameters are not the README's
            args.figures.mkdir(parents=True, exist_ok=True)
            (args.figures / f"{path.stem}.png").write_bytes(png)
        print(f"{path.name}: executed in {time.perf_counter() - t0:.0f} s -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
