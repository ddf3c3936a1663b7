"""The ``nqs`` command.

``nqs run CONFIG.toml [--resume | --overwrite]``  run a ground-state calculation, write its archive
                                                 (over N processes: ``srun -n N nqs run ...``)
``nqs compare A.h5 B.h5 ... [--markdown]``       table of energies, errors, V-scores, costs
``nqs plot A.h5 ... -o FIG.png``                  energy vs step with the exact/reference line
``nqs plot A.h5 ... --truncation -o FIG.png``     DMRG: energy vs discarded weight, extrapolation
``nqs show A.h5``                                 one archive in detail
``nqs sweep CONFIG.toml --param h=0.1:0.6:11``    independent runs over a grid (processes or Dask)
``nqs models``                                    registered Hamiltonians, ansätze and methods
``nqs models transformer j1j2 Lx=4 Ly=4 J2=0.5``  what each "auto" option resolves to there, and why
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_run(args) -> int:
    from . import distributed

    # several processes (NQS_NUM_PROCESSES or srun -n N): join them before NetKet starts JAX
    try:
        distributed.initialize()
    except ValueError as err:
        print(f"nqs run: error: {err}", file=sys.stderr)
        return 2
    from . import config as cfg
    from .runner import run

    conf = cfg.load(args.config)
    if args.archive:
        conf.output.archive = args.archive
    archive = run(conf, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    from .compare import table

    if distributed.is_writer():
        print(table([archive]))
        print(f"archive: {archive.path}")
    return 0


def _load_all(paths):
    from .archive import load

    return [load(p) for p in paths]


def _cmd_compare(args) -> int:
    from .compare import table

    print(table(_load_all(args.archives), markdown=args.markdown))
    return 0


def _cmd_plot(args) -> int:
    from .plotting import plot_energy, plot_truncation

    archives = _load_all(args.archives)
    if args.truncation:
        try:
            out = plot_truncation(archives, args.output, title=args.title)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    else:
        try:
            out = plot_energy(archives, args.output, title=args.title, x=args.x)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    print(f"wrote {out}")
    return 0


def _cmd_show(args) -> int:
    a = _load_all([args.archive])[0]
    print(f"archive   {a.path}")
    print(f"status    {a.status}   format {a.meta.get('format_version')}   created {a.meta.get('created')}")
    print(f"problem   {a.problem.get('label')}   n_sites={a.n_sites}   sector={json.dumps(a.problem.get('sector'))}")
    print(f"          {a.problem.get('formula')}")
    print(f"method    {a.method}   steps={len(a.history.get('step', []))}   checkpoint at step {a.checkpoint_step}")
    print("result")
    for k, v in sorted(a.result.items()):
        print(f"  {k:18s} {v}")
    print("history columns: " + ", ".join(sorted(a.history)))
    print(f"host {a.meta.get('host')}   git {a.meta.get('git_revision')}   devices {a.meta.get('devices')}")
    print("config:\n" + "\n".join("  " + line for line in a.config_toml.strip().splitlines()))
    if "options" in a.meta:  # with the defaults filled in (archives since 2026-12-01)
        print("resolved options:\n  " + a.meta["options"])
        _show_autos(a)
    return 0


def _show_autos(a) -> None:
    """The archive's ``"auto"`` options with today's reason for their archived value."""
    from .config import ConfigError
    from .methods import explain_options
    from .runner import archived_config

    try:
        config = archived_config(a)
    except (ConfigError, KeyError, ValueError) as err:  # a method or model no longer available
        print(f"auto options: not explained ({err})")
        return
    for key, (value, reason) in explain_options(config.options, config.problem).items():
        print(f"  auto {key} = {value!r}: {reason}")


def _cmd_sweep(args) -> int:
    from .sweep import sweep, table

    points = sweep(
        args.config, args.param, workers=args.workers, scheduler=args.scheduler,
        retries=args.retries, out_dir=args.out,
    )
    print(table(points))
    return 0 if all(p.status == "completed" for p in points) else 1


def _cmd_models(args) -> int:
    import hamiltonians

    from .methods import available_methods
    from ..models import model_names, model_spec

    if args.name is not None:
        return _describe(args.name, args.problem, args.params)
    print("Hamiltonians (hamiltonians.get / [problem] name):")
    for _, line in hamiltonians.available().items():
        print(f"  {line}")
    print("\nAnsätze (vmc: [method] model):")
    for name in model_names():
        print(f"  {name:18s} {model_spec(name).summary}")
    print("\nMethods ([method] kind): " + ", ".join(available_methods()))
    print("\n`nqs models NAME PROBLEM [PARAM=VALUE ...]`: what NAME's \"auto\" options resolve to there, and why")
    return 0


def _describe(name: str, problem_name: str | None, params: list[str]) -> int:
    """``nqs models NAME [PROBLEM PARAM=VALUE ...]``: a model's or method's options with their
    defaults and, on a problem, whether it applies and what each ``"auto"`` option resolves to."""
    import dataclasses
    import tomllib

    import hamiltonians

    from .config import ConfigError, suggest
    from .methods import available_methods, explain_options, method_class
    from ..models import model_names, model_spec

    known = model_names() + available_methods()
    if name not in known:
        raise ConfigError(f"{name!r} is neither an ansatz nor a method.{suggest(name, known)} Known: {', '.join(known)}")
    spec = model_spec(name) if name in model_names() else None
    options_cls = spec.options if spec is not None else method_class(name).Options
    print(f"{name}: {spec.summary if spec is not None else 'method ([method] kind)'}")
    try:
        options = options_cls()
    except TypeError:  # options with required fields (e.g. evolve's engine): defaults only
        options = None
    print("options (default):")
    for f in dataclasses.fields(options_cls):
        default = getattr(options, f.name) if options is not None else (
            f.default if f.default is not dataclasses.MISSING else "(required)")
        if f.name != "model_options":
            print(f"  {f.name:20s} {default!r}")
    if problem_name is None:
        return 0
    kwargs = {}
    for item in params:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"problem parameter {item!r}: write NAME=VALUE, e.g. Lx=4")
        try:
            kwargs[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            kwargs[key] = text
    try:
        problem = hamiltonians.get(problem_name, **kwargs)
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(str(err)) from None
    print(f"on {problem.label}:")
    if spec is not None:
        why = spec.fits(problem)
        if why is not None:
            print(f"  does not apply: {why}")
            return 1
    if options is None:
        return 0
    autos = explain_options(options, problem)
    if not autos:
        print("  no \"auto\" options")
    for key, (value, reason) in autos.items():
        print(f"  {key} = {value!r}: {reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nqs", description="Ground states by NQS and tensor networks on one registry.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a configuration and write its archive")
    r.add_argument("config", type=Path)
    g = r.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue from the archive's last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="replace an existing archive")
    r.add_argument("--archive", help="archive path (overrides [output] archive)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)

    c = sub.add_parser("compare", help="print a comparison table of archives")
    c.add_argument("archives", nargs="+", type=Path)
    c.add_argument("--markdown", action="store_true")
    c.set_defaults(func=_cmd_compare)

    pl = sub.add_parser("plot", help="plot energy vs step of archives")
    pl.add_argument("archives", nargs="+", type=Path)
    pl.add_argument("-o", "--output", type=Path, default=Path("energy.png"))
    pl.add_argument("--title")
    pl.add_argument(
        "--truncation", action="store_true", help="DMRG: energy vs discarded weight with the extrapolation"
    )
    pl.add_argument(
        "--x", choices=["step", "wall"], default="step",
        help="horizontal axis: the step (default) or the cumulative wall time, to compare runs at equal budget",
    )
    pl.set_defaults(func=_cmd_plot)

    s = sub.add_parser("show", help="describe one archive")
    s.add_argument("archive", type=Path)
    s.set_defaults(func=_cmd_show)

    sw = sub.add_parser("sweep", help="run a configuration over a parameter grid (process pool or Dask)")
    sw.add_argument("config", type=Path)
    sw.add_argument("--param", action="append", default=[], required=True,
                    help="NAME=START:STOP:NUM or NAME=V1,V2,... (repeat for a grid); NAME may be problem.X or method.Y")
    sw.add_argument("--workers", type=int, help="local worker processes (default: number of cores)")
    sw.add_argument("--scheduler", help="Dask scheduler address (e.g. tcp://host:8786) instead of local processes")
    sw.add_argument("--retries", type=int, default=2, help="retries of a failing point (default 2)")
    sw.add_argument("--out", type=Path, help="directory of the archives and index.json (default runs/<config>_sweep)")
    sw.set_defaults(func=_cmd_sweep)

    m = sub.add_parser("models", help="list Hamiltonians, ansätze and methods; or what one resolves to on a problem")
    m.add_argument("name", nargs="?", help="an ansatz ([method] model) or a method ([method] kind)")
    m.add_argument("problem", nargs="?", help="a registered Hamiltonian")
    m.add_argument("params", nargs="*", help="its parameters, NAME=VALUE (TOML values)")
    m.set_defaults(func=_cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    from .archive import ArchiveError
    from .config import ConfigError
    from .runner import RunError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, RunError, ArchiveError, FileNotFoundError) as err:
        print(f"nqs {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; the archive keeps its last checkpoint (continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
