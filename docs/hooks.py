"""MkDocs hooks: pages generated from the code and the data, so that they cannot drift.

- ``{{ options("tensornets.dmrg.DMRGOptions") }}`` in a page becomes the options table of that
  dataclass (key, type, default, the first paragraph of the field's docstring), read statically
  by griffe (nothing is imported); a field without a docstring is a warning.
- ``{{ bench("dmrg_scale", columns="a,b", where="section=torus|cost") }}`` becomes the table
  of ``bench/results/dmrg_scale.json`` (its scalar columns unless ``columns``; the rows whose
  ``section`` is one of those given), with its machine and date.
- ``notebooks/*.ipynb`` become the pages ``tutorials/<name>.md`` as committed (never executed).
- Every ``docs/*.md`` page missing from ``nav`` is appended to it, so pages added later appear.
- Every public name rendered by a ``::: identifier`` block of the API reference must have a
  docstring; a missing one is a warning (``mkdocs build --strict`` fails on warnings).
"""

from __future__ import annotations

import ast
import base64
import html
import json
import logging
import re
from pathlib import Path

import griffe
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.docs")
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hamiltonians", "nqs", "tensornets")
MACRO = re.compile(r"\{\{\s*(\w+)\((.*?)\)\s*\}\}")
_loader: griffe.GriffeLoader | None = None


def _griffe() -> griffe.GriffeLoader:
    global _loader
    if _loader is None:
        _loader = griffe.GriffeLoader(search_paths=[str(ROOT)], docstring_parser="google")
        for p in PACKAGES:
            _loader.load(p)
        _loader.resolve_aliases(external=False, implicit=False)
    return _loader


def _obj(path: str):
    return _griffe().modules_collection[path]


# ------------------------------------------------------------------ options tables
def _default(value: str) -> str | None:
    """The default of a field as written; ``None`` for ``field(init=False)``."""
    if not value.startswith(("field(", "dataclasses.field(")):
        return value
    call = ast.parse(value, mode="eval").body
    kw = {k.arg: k.value for k in call.keywords}
    if isinstance(kw.get("init"), ast.Constant) and kw["init"].value is False:
        return None
    if "default" in kw:
        return ast.unparse(kw["default"])
    factory = kw.get("default_factory")
    if isinstance(factory, ast.Lambda):
        return ast.unparse(factory.body)
    return f"{ast.unparse(factory)}()" if factory is not None else "-"


def _first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n")[0].split())


def _cell(text: str) -> str:
    return text.replace("|", "&#124;")


def _code(text: str) -> str:
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def _doc_cell(text: str) -> str:
    """A docstring paragraph as one table cell: RST roles and literals become code, pipes
    (``|psi|^2``) are escaped so that they do not split the row."""
    text = re.sub(r":(?:class|meth|func|attr|mod|data|obj):`~?([^`]+)`", lambda m: f"``{m.group(1)}``", text)
    parts = re.split(r"(``.+?``|`[^`]+`)", text)
    return "".join(_code(p.strip("`")) if p.startswith("`") else _cell(p) for p in parts)


def options_table(path: str) -> str:
    cls = _obj(path)
    rows, seen = [], set()
    for klass in [*reversed(cls.mro()), cls]:
        for name, attr in klass.members.items():
            if not attr.is_attribute or "instance-attribute" not in attr.labels or name.startswith("_"):
                continue
            default = _default(str(attr.value)) if attr.value is not None else "(required)"
            if default is None:
                continue
            docstring = attr.docstring
            if docstring is None:  # redeclared without a docstring: the base's
                for base in cls.mro():
                    if name in base.members and base.members[name].docstring:
                        docstring = base.members[name].docstring
                        break
            if docstring is None:
                log.warning(f"option {path}.{name} has no docstring")
            row = (name, str(attr.annotation), default, _first_paragraph(docstring.value) if docstring else "")
            if name in seen:
                rows = [row if r[0] == name else r for r in rows]
            else:
                rows.append(row)
                seen.add(name)
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{n}` | {_code(t)} | {_code(d)} | {_doc_cell(doc)} |" for n, t, d, doc in rows]
    vmc = cls.all_members.get("vmc_defaults")
    if vmc is not None and vmc.value is not None:
        text = f"VMC defaults of this model (`vmc_defaults`, keys written in `[method]` win): `{vmc.value}`"
        for const in dict.fromkeys(re.findall(r"\b[A-Z][A-Z0-9_]+\b", str(vmc.value))):
            member = vmc.parent.module.members.get(const)
            if member is not None:
                target = member.final_target if member.is_alias else member
                text += f", with `{const} = {target.value}`"
        lines += ["", text + "."]
    return "\n".join(lines) + f"\n\n(Generated from [`{path}`][{path}].)\n"


# ------------------------------------------------------------------ benchmark tables
def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if v == 0 or 1e-4 <= abs(v) < 1e5 else f"{v:.3g}"
    return str(v)


def bench_table(name: str, columns: str | None = None, where: str | None = None) -> str:
    path = ROOT / "bench" / "results" / f"{name}.json"
    if not path.exists():
        log.warning(f"bench table: {path} does not exist")
        return f"(no results file `bench/results/{name}.json`)"
    data = json.loads(path.read_text())
    rows = data.get("rows", [])
    if where:
        key, _, values = where.partition("=")
        rows = [r for r in rows if str(r.get(key)) in values.split("|")]
    if not rows:
        return f"(`bench/results/{name}.json` holds no rows with {where or 'data'} yet.)\n"
    if columns:
        cols = [c.strip() for c in columns.split(",")]
    else:
        cols = []
        for r in rows:
            cols += [k for k, v in r.items() if k not in cols and not isinstance(v, (list, dict))]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(_fmt(r.get(c))) for c in cols) + " |" for r in rows]
    meta = f"`bench/results/{name}.json`, written {data.get('date', '?')} on {data.get('machine', '?')}"
    if data.get("conditions"):
        meta += f"; {data['conditions']}"
    return "\n".join(lines) + f"\n\n({_cell(meta)}.)\n"


def _macro(match: re.Match, page) -> str:
    name, args = match.group(1), match.group(2)
    try:
        call = ast.parse(f"f({args})", mode="eval").body
        pos = [ast.literal_eval(a) for a in call.args]
        kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        if name == "options":
            return options_table(*pos, **kw)
        if name == "bench":
            return bench_table(*pos, **kw)
    except Exception as err:  # a broken macro must fail the strict build, not vanish
        log.warning(f"{page.file.src_uri}: macro {match.group(0)!r} failed: {err!r}")
        return match.group(0)
    log.warning(f"{page.file.src_uri}: unknown macro {name!r}")
    return match.group(0)


# ------------------------------------------------------------------ notebooks as pages
def _notebook_markdown(path: Path) -> str:
    nb = json.loads(path.read_text())
    out = [
        f"_The notebook `notebooks/{path.name}` as committed, with the outputs of its study sizes "
        "(not executed by the docs build)._\n"
    ]
    for cell in nb["cells"]:
        src = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            out.append(src + "\n")
        elif cell["cell_type"] == "code":
            out.append(f"```python\n{src}\n```\n")
            for o in cell.get("outputs", []):
                data = o.get("data", {})
                if "image/png" in data:
                    png = "".join(data["image/png"]).replace("\n", "")
                    base64.b64decode(png[:64] + "=" * (-len(png[:64]) % 4))
                    out.append(f'<img alt="output" src="data:image/png;base64,{png}"/>\n')
                elif o.get("output_type") == "stream" or "text/plain" in data:
                    text = "".join(o.get("text", "") or data.get("text/plain", ""))
                    if text.strip():
                        out.append(f"```text\n{text.rstrip()}\n```\n")
    return "\n".join(out)


def on_files(files, config):
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files.append(File.generated(config, f"tutorials/{nb.stem}.md", content=_notebook_markdown(nb)))
    return files


# ------------------------------------------------------------------ nav: every page listed
def _nav_files(nav) -> set[str]:
    found = set()
    for item in nav or []:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            found |= _nav_files(value)
        elif isinstance(value, str):
            found.add(value)
    return found


def on_config(config):
    listed = _nav_files(config.nav)
    extra = [p.name for p in sorted(Path(config.docs_dir).glob("*.md")) if p.name not in listed]
    if extra and config.nav is not None:
        config.nav.append({"More topics": extra})
    return config


def on_page_markdown(markdown, page, config, files):
    markdown = MACRO.sub(lambda m: _macro(m, page), markdown)
    for ident in re.findall(r"^:::\s+([\w.]+)", markdown, flags=re.M):
        _check_docstrings(ident)
    return markdown


# ------------------------------------------------------------------ missing docstrings
_checked: set[str] = set()


def _inherited_doc(obj) -> bool:
    cls = obj.parent
    for base in cls.mro() if cls.is_class else []:
        if obj.name in base.members and base.members[obj.name].docstring:
            return True
    return False


def _check_docstrings(ident: str) -> None:
    if ident in _checked:
        return
    _checked.add(ident)
    obj = _obj(ident)
    targets = [obj]
    if obj.is_module:
        if obj.exports is not None:
            members = [obj.members[str(n)] for n in obj.exports if str(n) in obj.members]
        else:
            members = [m for n, m in obj.members.items() if not n.startswith("_") and not m.is_alias]
        targets += [m.final_target if m.is_alias else m for m in members]
    for t in list(targets):
        if t.is_class:
            targets += [
                m for n, m in t.members.items()
                if not n.startswith("_") and not m.is_alias and m.is_function
            ]
    for t in targets:
        if not (t.is_function or t.is_class or t.is_module):
            continue
        if t.docstring is None and not (t.is_function and t.parent.is_class and _inherited_doc(t)):
            log.warning(f"public name {t.path} (rendered by '::: {ident}') has no docstring")
