"""Build the documentation site into _docs/ (`make docs`): MkDocs Material + mkdocs-jupyter +
mkdocstrings, offline.

nbdev's own `nbdev_docs` needs Quarto, which cannot be installed here, so this assembles the MkDocs
sources in _docs_src/ (git-ignored) and runs `mkdocs build`:

* index.md      README.md's content (the landing page), with the screenshots in docs/ beside it;
* NAME.md       the pages in docs/ (docs/NAME.md: what it does, results, benchmarks, usage), in the
  order of PAGES;
* notebooks/    the numbered notebooks with their outputs, formulas rendered to MathML
  (mkdocs-jupyter renders them; nbs/ and its Quarto markup untouched). The outputs come from the
  executed copies docs/run_notebooks.py writes to _docs_src/executed/ (`make nbtest` writes them,
  so the notebooks run once in `make test`); a notebook with no copy of its current cells is run
  here when CRYPTOVOL_DATA_DIR names the data folder, else (or with --no-execute, or when it fails)
  shown without outputs, and the build prints which pages those are;
* api/NAME.md   one page per module: every exported function's signature and docstring
  (mkdocstrings) followed by
                its example, the notebook cells that come right after its definition.

Links are rewritten from the repository's layout to the site's (`site_links`): README.md's
`docs/NAME.md` becomes `NAME.md`, a page's `../README.md` becomes `index.md` and its images
`NAME.png` become `docs/NAME.png`, so the same relative links work on GitHub and in the site.
"""

from __future__ import annotations

import argparse, ast, contextlib, json, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import run_notebooks  # noqa: E402  (docs/run_notebooks.py: the executed copies)

# BUILD holds the generated mkdocs.yml; BUILD/pages is its docs_dir
BUILD, SITE = ROOT / "_docs_src", ROOT / "_docs"
SRC = BUILD / "pages"
# kept across builds: the executed notebooks (run_notebooks.EXECUTED)
KEEP = {run_notebooks.EXECUTED.name}
# which notebook pages show outputs (written by the build, read by --check)
OUTPUTS = BUILD / "notebook_outputs.json"
# a page that must show a figure and a table when the data folder is there (docs-check)
CHECK_PAGE = "05_evaluate"
LIB = "cryptovol"
# docs/NAME.md in nav order; any other docs/*.md follows, by name
PAGES = ("method", "results", "benchmarks", "usage")


def doc_pages() -> list[Path]:
    "The Markdown pages in docs/: those of PAGES in that order, then any others by name."
    found = {p.stem: p for p in (ROOT / "docs").glob("*.md")}
    return [found[n] for n in PAGES if n in found] + [
        found[n] for n in sorted(set(found) - set(PAGES))
    ]


def page_title(text: str, default: str) -> str:
    "A page's first `# ` heading (its nav entry), else default."
    m = re.search(r"^#\s+(.+?)\s*$", text, re.M)
    return m.group(1) if m else default


_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def site_links(text: str, src: Path) -> str:
    """Markdown links and images of the repository file `src`, rewritten for the site, where
    README.md is index.md and docs/NAME.md is NAME.md (both at the top of the pages folder) and
    docs/*.png stay under docs/."""

    def fix(m: re.Match) -> str:
        target = m.group(2)
        # URL, same-page anchor, absolute
        if re.match(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|#|/)", target):
            return m.group(0)
        path, sep, anchor = target.partition("#")
        try:
            rel = (src.parent / path).resolve().relative_to(ROOT).as_posix()
        except ValueError:
            return m.group(0)
        if rel == "README.md":
            new = "index.md"
        elif rel.startswith("docs/") and rel.endswith(".md") and "/" not in rel[5:]:
            new = rel[5:]
        elif rel.startswith("docs/"):
            new = rel  # images: copied to pages/docs/
        # a file outside the site: left as on GitHub
        else:
            return m.group(0)
        return f"{m.group(1)}{new}{sep}{anchor}{m.group(3)}"

    return _LINK.sub(fix, text)


def notebooks() -> list[Path]:
    "The numbered notebooks in nbs/, in order."
    return sorted(p for p in (ROOT / "nbs").glob("[0-9][0-9]_*.ipynb"))


def module_of(nb: dict) -> str | None:
    "The module a notebook exports to (its `#| default_exp` cell), or None."
    for c in nb["cells"]:
        m = re.search(r"^#\|\s*default_exp\s+(\S+)", "".join(c["source"]), re.M)
        if m:
            return m.group(1)
    return None


def exported_names(module: str) -> list[str]:
    "The module's __all__ as nbdev_export wrote it (read statically: no TensorFlow import)."
    tree = ast.parse((ROOT / LIB / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return []


def _defined(src: str) -> list[str]:
    "Top-level functions and classes a code cell defines."
    try:
        tree = ast.parse(re.sub(r"^\s*[%!].*$", "", src, flags=re.M))
    except SyntaxError:
        return []
    return [
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]


def _is_directive(src: str, *names: str) -> bool:
    return any(re.search(rf"^#\|\s*{n}\b", src, re.M) for n in names)


def api_page(nb_path: Path, nb: dict, module: str) -> str:
    """Markdown for one module: each exported function/class (mkdocstrings) with the example cells
    that follow it in the notebook."""
    public = set(exported_names(module))
    cells = [("".join(c["source"]), c["cell_type"]) for c in nb["cells"]]
    lines = [
        f"# `{LIB}.{module}`",
        "",
        f"Source notebook: [`nbs/{nb_path.name}`](../notebooks/{nb_path.name}) "
        "(explanations, code, examples and assertions).",
        "",
    ]
    for i, (src, kind) in enumerate(cells):
        if kind != "code" or not _is_directive(src, "export", "exports"):
            continue
        names = [n for n in _defined(src) if n in public]
        if not names:
            continue
        example = []
        for src2, kind2 in cells[i + 1 :]:
            if kind2 == "code" and _is_directive(src2, "export", "exports"):
                break
            if kind2 == "code" and src2.strip() and not _is_directive(src2, "hide"):
                example.append(src2.strip())
                if len(example) == 2:
                    break
        for n in names:
            lines += [
                f"## `{n}`",
                "",
                f"::: {LIB}.{module}.{n}",
                "    options:",
                "      show_root_heading: false",
                "      heading_level: 3",
                "",
            ]
        if example:
            lines += [
                "**Example** (from "
                f"`nbs/{nb_path.name}`"
                f"{', run with the real offline data' if 'load_' in ''.join(example) else ''}"
                "):",
                "",
                "```python",
                "\n\n".join(example),
                "```",
                "",
            ]
    return "\n".join(lines)


def with_mathml(nb: dict) -> dict:
    """The notebook with its markdown formulas rendered to MathML at build time
    (cryptovol.report.math_to_mathml), as in the reports."""
    from cryptovol.report import math_to_mathml

    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            c["source"] = math_to_mathml("".join(c["source"]))
    return nb


def mathjax_stub(site: Path) -> Path:
    """An empty script where mkdocs-jupyter loads MathJax from: formulas are MathML by now
    (`with_mathml`), so nothing is fetched or typeset."""
    dest = site / "assets" / "mathjax-stub.js"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(
        "/* cryptovol docs: formulas are rendered to MathML at build time (docs/build_docs.py); "
        "mkdocs-jupyter always adds a MathJax script, so it loads this empty file instead "
        "of a CDN copy. */\n",
        encoding="utf-8",
    )
    return dest


def ensure_executed(nbs: list[Path], execute: bool = True) -> dict[str, str]:
    """Run (docs/run_notebooks.py, 2 workers) those of the notebooks `nbs` that have no executed
    copy of their current cells, when `execute` and CRYPTOVOL_DATA_DIR names a folder.
    Returns {notebook file name: why its page has no outputs} for those still without one."""
    missing = [p for p in nbs if run_notebooks.executed_copy(p) is None]
    data = os.environ.get("CRYPTOVOL_DATA_DIR", "")
    if not missing:
        return {}
    if not execute:
        return {p.name: "no executed copy of its current cells (--no-execute)" for p in missing}
    if not (data and Path(data).is_dir()):
        why = "no executed copy of its current cells and no data folder to run it on"
        return {p.name: f"{why} (set CRYPTOVOL_DATA_DIR; make nbtest writes them)" for p in missing}
    print(f"docs: running {len(missing)} notebook(s) with no executed copy of their current cells")
    why = {}
    for f, ok, _ in run_notebooks.run(missing, n_workers=2):
        if not ok:
            why[f.name] = "it failed when run (traceback above)"
        elif run_notebooks.executed_copy(f) is None:
            why[f.name] = "not executed (skip_exec, or its copy could not be written)"
    return why


def assemble() -> None:
    """Write _docs_src/: the landing page, the pages in docs/, the notebooks (their executed
    copies where there are any) and one API page per module."""
    if BUILD.exists():
        for item in BUILD.iterdir():
            if item.name not in KEEP:
                shutil.rmtree(item) if item.is_dir() else item.unlink()
    (SRC / "notebooks").mkdir(parents=True)
    (SRC / "api").mkdir()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (SRC / "index.md").write_text(site_links(readme, ROOT / "README.md"), encoding="utf-8")
    nav_pages = []
    if (ROOT / "docs").is_dir():
        for p in (ROOT / "docs").glob("*.png"):
            (SRC / "docs").mkdir(exist_ok=True)
            shutil.copy(p, SRC / "docs" / p.name)
        for p in doc_pages():
            text = p.read_text(encoding="utf-8")
            (SRC / p.name).write_text(site_links(text, p), encoding="utf-8")
            nav_pages.append({page_title(text, p.stem): p.name})
    nav_nbs, nav_api, shown = [], [], {}
    for p in notebooks():
        nb = json.loads(p.read_text(encoding="utf-8"))
        copy = run_notebooks.executed_copy(p)
        page = json.loads(copy.read_text(encoding="utf-8")) if copy else json.loads(json.dumps(nb))
        # cells with outputs (a notebook may run and print nothing), None: not executed
        shown[p.stem] = sum(bool(c.get("outputs")) for c in page["cells"]) if copy else None
        (SRC / "notebooks" / p.name).write_text(
            json.dumps(with_mathml(page), indent=1), encoding="utf-8"
        )
        nav_nbs.append({p.stem: f"notebooks/{p.name}"})
        mod = module_of(nb)
        if mod and (ROOT / LIB / f"{mod}.py").is_file():
            (SRC / "api" / f"{mod}.md").write_text(api_page(p, nb, mod), encoding="utf-8")
            nav_api.append({f"{LIB}.{mod}": f"api/{mod}.md"})
    OUTPUTS.write_text(json.dumps(shown, indent=1) + "\n", encoding="utf-8")
    nav = [{"Home": "index.md"}, *nav_pages, {"Notebooks": nav_nbs}, {"API": nav_api}]
    (BUILD / "mkdocs.yml").write_text(
        "# written by docs/build_docs.py: the project's mkdocs.yml plus the generated pages "
        "and nav\n"
        f"INHERIT: ../mkdocs.yml\ndocs_dir: pages\nsite_dir: ../_docs\nnav: {json.dumps(nav)}\n",
        encoding="utf-8",
    )


_REMOTE = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["'](?:https?:)?//[^"']+""", re.I
)


def remote_assets(site: Path) -> list[str]:
    """'page: tag' for every script, stylesheet, image or frame a built page would fetch from the
    network."""
    return [
        f"{p.relative_to(site)}: {m.group(0)[:120]}"
        for p in sorted(site.rglob("*.html"))
        for m in _REMOTE.finditer(p.read_text(encoding="utf-8", errors="replace"))
    ]


def browser_check(
    site: Path, pages=("index.html", "notebooks/05_evaluate.html", "api/report.html")
) -> list[str]:
    """Problems headless Chromium sees on a few pages (console errors, failed or non-file requests);
    skipped when no browser is installed."""
    import os

    chromium = (
        os.environ.get("CRYPTOVOL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("docs: playwright not installed, browser check skipped")
        return []
    if not os.path.exists(chromium):
        print(f"docs: no Chromium at {chromium} (make browser), browser check skipped")
        return []
    problems = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for name in pages:
                pg = b.new_page()
                pg.on(
                    "console",
                    lambda m, n=name: (
                        problems.append(f"{n}: console error {m.text}")
                        if m.type == "error"
                        else None
                    ),
                )
                pg.on("requestfailed", lambda r, n=name: problems.append(f"{n}: failed {r.url}"))
                pg.route(
                    "**/*",
                    lambda r: (
                        r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
                    ),
                )
                pg.goto((site / name).resolve().as_uri(), wait_until="load")
                pg.wait_for_timeout(500)
                pg.close()
        finally:
            b.close()
    return problems


_OUTPUT_AREA = 'class="jp-OutputArea jp-Cell-outputArea"'  # mkdocs-jupyter: one per cell output
_FIGURE = 'src="data:image/png;base64,'
_TABLE = re.compile(r"<table\b[^>]*>")


def _executed(shown: dict) -> int:
    return sum(n is not None for n in shown.values())


def output_problems(site: Path = SITE, page: str = CHECK_PAGE) -> list[str]:
    """Why the built site's notebook pages do not show the outputs they should (empty: none).
    Every page built from an executed copy with outputs must show them; with a data folder
    (CRYPTOVOL_DATA_DIR), the page `page` must be one and show a figure (PNG) and a table."""
    if not OUTPUTS.is_file() or not (site / "index.html").is_file():
        return [f"no built site ({site}/index.html, {OUTPUTS.name}): run make docs first"]
    shown = json.loads(OUTPUTS.read_text(encoding="utf-8"))
    problems = []
    for name, n in shown.items():
        html = site / "notebooks" / f"{name}.html"
        if n and _OUTPUT_AREA not in html.read_text(encoding="utf-8", errors="replace"):
            problems.append(
                f"{html.relative_to(site)} shows no outputs, yet its executed copy has {n} cells "
                "with outputs"
            )
    data = os.environ.get("CRYPTOVOL_DATA_DIR", "")
    if not (data and Path(data).is_dir()):
        print(
            f"docs-check: no data folder (CRYPTOVOL_DATA_DIR), so {page}'s outputs are not "
            f"required; {_executed(shown)} of {len(shown)} notebook pages built from "
            "executed copies"
        )
        return problems
    html = site / "notebooks" / f"{page}.html"
    text = html.read_text(encoding="utf-8", errors="replace") if html.is_file() else ""
    # the output areas only (each up to the next cell), not the page's markdown
    outs = [o.split('<div class="jp-Cell ')[0] for o in text.split(_OUTPUT_AREA)[1:]]
    if not shown.get(page):
        problems.append(f"{html.relative_to(site)} was built without outputs (see make docs)")
    else:
        problems += [
            f"{html.relative_to(site)} has no {what} among its outputs"
            for what, found in (
                ("figure (PNG)", any(_FIGURE in o for o in outs)),
                ("table", any(_TABLE.search(o) for o in outs)),
            )
            if not found
        ]
    if not problems:
        print(
            f"docs-check: {_executed(shown)} of {len(shown)} notebook pages built from executed "
            f"copies; {html.relative_to(site)} has figures and tables"
        )
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build the documentation site into _docs/.")
    ap.add_argument(
        "--no-execute",
        action="store_true",
        help="never run notebooks: pages with no executed copy show no outputs",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="only check the built site's notebook pages show their outputs (make docs-check)",
    )
    a = ap.parse_args(argv)
    if a.check:
        problems = output_problems(SITE)
        for p in problems:
            print(f"docs-check: {p}", file=sys.stderr)
        return 1 if problems else 0
    with contextlib.chdir(ROOT):  # nbdev finds settings.ini from here
        no_outputs = ensure_executed(notebooks(), execute=not a.no_execute)
    assemble()
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--clean", "-f", str(BUILD / "mkdocs.yml")],
        cwd=ROOT,
    )
    if r.returncode:
        print(
            f"docs: mkdocs build failed (exit {r.returncode}); sources are in {BUILD}",
            file=sys.stderr,
        )
        return r.returncode
    if not (SITE / "index.html").is_file():
        print(f"docs: {SITE}/index.html was not written", file=sys.stderr)
        return 1
    mathjax_stub(SITE)
    remote = remote_assets(SITE)
    if remote:
        print(
            "docs: pages load scripts/styles from the network (the site must work offline):\n  "
            + "\n  ".join(remote[:10]),
            file=sys.stderr,
        )
        return 1
    problems = browser_check(SITE)
    if problems:
        print("docs: in the browser:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(
        f"docs: {SITE}/index.html ({sum(1 for _ in SITE.rglob('*.html'))} pages, no remote "
        "scripts or styles, no browser errors)"
    )
    shown = json.loads(OUTPUTS.read_text(encoding="utf-8"))
    print(
        f"docs: {_executed(shown)} of {len(shown)} notebook pages built from executed copies "
        f"(in {run_notebooks.EXECUTED.relative_to(ROOT)}/)"
    )
    if no_outputs:
        print(
            "docs: notebook pages WITHOUT outputs:\n  "
            + "\n  ".join(f"{name}: {why}" for name, why in sorted(no_outputs.items()))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
