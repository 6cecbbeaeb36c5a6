"""Run the notebooks as `nbdev_test` does and keep their outputs for the docs site (`make nbtest`).

`nbdev_test` executes every notebook of nbs/ with execnb's `CaptureShell` and throws the outputs
away. This runs them the same way (the same cells skipped: `#| eval: false`, the flags of
settings.ini's `tst_flags` unless forced with `--flags`, `nbdev_export(` cells, notebooks marked
`skip_exec` or beside a `.notest` file; the same workers, working directory and `IN_TEST`), fails
the same way (the notebook's name and its traceback on stderr, exit status 1), and also writes
each notebook that passed, with its outputs, to _docs_src/executed/NAME.ipynb (git-ignored; nbs/
stays clean). docs/build_docs.py shows those copies, so in `make test` the notebooks run once.

A copy records the digest of the notebook's cells (`cryptovol_executed.source_sha256` in its
metadata); a copy whose notebook has changed since is stale and not used (`executed_copy`).
Images stay as embedded PNG; a text, HTML or other output over MAX_CHARS characters is cut to
MAX_CHARS, saying so, so one huge print does not bloat the site.

    python docs/run_notebooks.py [NOTEBOOK ...] [--n_workers 2] [--flags "slow"] [--timing]
"""

from __future__ import annotations

import argparse, hashlib, json, os, sys, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXECUTED = ROOT / "_docs_src" / "executed"
# characters kept of one text/HTML output (stream, text/plain, text/html, ...); images are kept
MAX_CHARS = 20_000
_IMAGES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")


def source_digest(nb: dict) -> str:
    "sha256 of a notebook's cell types and sources (outputs, ids and metadata do not count)."
    cells = [(c["cell_type"], "".join(c.get("source", ""))) for c in nb["cells"]]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def executed_copy(nb_path: Path, folder: Path = EXECUTED) -> Path | None:
    "The executed copy of the notebook `nb_path` in `folder`, if there is one of its current cells."
    copy = folder / nb_path.name
    if not copy.is_file():
        return None
    try:
        meta = json.loads(copy.read_text(encoding="utf-8"))["metadata"]["cryptovol_executed"]
        current = source_digest(json.loads(nb_path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError):
        return None
    return copy if meta.get("source_sha256") == current else None


def _cut(text: str, limit: int) -> str:
    return text[:limit] + f"\n... [{len(text) - limit:,} more characters cut for the docs site]\n"


def capped(outputs: list[dict], limit: int = MAX_CHARS) -> list[dict]:
    """The outputs with each text longer than `limit` characters cut to `limit` (saying so); an
    HTML or other non-image rich output that long is dropped when a plain-text form is there."""
    out = []
    for o in outputs:
        o = dict(o)
        if o.get("output_type") == "stream":
            text = "".join(o.get("text", ""))
            if len(text) > limit:
                o["text"] = _cut(text, limit)
        elif "data" in o:
            data = {}
            for mime, v in o["data"].items():
                size = (
                    len(v)
                    if isinstance(v, str)
                    else len("".join(v) if isinstance(v, list) else json.dumps(v))
                )
                if mime in _IMAGES or size <= limit:
                    data[mime] = v
                elif mime == "text/plain":
                    data[mime] = _cut("".join(v) if isinstance(v, list) else str(v), limit)
                elif "text/plain" not in o["data"]:
                    data["text/plain"] = (
                        f"[a {mime} output of {size:,} characters, left out of the docs site]"
                    )
            o["data"] = data
        out.append(o)
    return out


def _skip(cell, flags: set[str]) -> bool:
    "nbdev_test's rule (nbdev.test.test_nb): the cells it does not run."
    if cell.cell_type != "code":
        return True
    if "nbdev_export" + "(" in cell.source:
        return True
    direc = getattr(cell, "directives_", {}) or {}
    if direc.get("eval:", [""])[0].lower() == "false":
        return True
    return bool(flags & direc.keys())


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_nb(fn: Path, skip_flags=None, force_flags=None, out: Path = EXECUTED, basepath=None):
    """Execute notebook `fn` as nbdev.test.test_nb does; on success write it with its outputs to
    `out`/NAME.ipynb. Returns (passed, seconds); a failure prints the notebook and traceback."""
    from execnb.shell import CaptureShell
    from fastcore.basics import str2bool
    from fastcore.foundation import working_directory
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.process import NBProcessor, nb_lang

    fn = Path(fn)
    if basepath:
        sys.path.insert(0, str(basepath))
    os.environ["IN_TEST"] = "1"
    flags = set(skip_flags or []) - set(force_flags or [])
    raw = json.loads(fn.read_text(encoding="utf-8"))
    # the notebook nbdev_test runs: directives parsed out of the sources, front matter merged
    nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb
    copy = out / fn.name
    fm = getattr(nb, "frontmatter_", {})
    if str2bool(fm.get("skip_exec", False)) or nb_lang(nb) != "python":
        copy.unlink(missing_ok=True)
        return True, 0.0
    start, k, ran = time.time(), CaptureShell(fn), set()
    try:
        with working_directory(fn.parent):
            k.run_all(
                nb,
                exc_stop=True,
                preproc=lambda c: _skip(c, flags),
                postproc=lambda c: ran.add(c.idx_),
            )
    except Exception:
        sys.stderr.write(k.prettytb(fname=fn) + "\n")
        copy.unlink(missing_ok=True)  # no stale outputs of an older version on the site
        return False, time.time() - start
    secs = time.time() - start
    try:
        _write_copy(raw, nb, ran, fn, copy, secs)
    except Exception:  # the notebook passed: a copy that cannot be written only costs its outputs
        sys.stderr.write(f"run_notebooks: {fn.name} passed, its executed copy was not written:\n")
        traceback.print_exc()
        copy.unlink(missing_ok=True)
    return True, secs


def _write_copy(raw: dict, nb, ran: set, fn: Path, copy: Path, secs: float) -> None:
    """`raw` (the notebook as committed) with the outputs of the run `nb` (`ran`: the indices of
    the cells that ran), written to `copy`. The front-matter processor only moves markdown/raw
    cells, so the code cells pair up in order."""
    done = [c for c in nb.cells if c.cell_type == "code"]
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    if len(done) != len(code):
        raise ValueError(f"{fn.name}: {len(code)} code cells, {len(done)} after nbdev's processing")
    n = 0
    for c, r in zip(code, done):
        if r.idx_ not in ran:  # skipped (eval: false, a tst_flags flag): shown as not run
            c["outputs"], c["execution_count"] = [], None
            continue
        n += 1
        c["execution_count"] = n
        c["outputs"] = capped(json.loads(json.dumps(r.get("outputs") or [])))
        for o in c["outputs"]:
            if o.get("output_type") == "execute_result":
                o["execution_count"] = n
    raw.setdefault("metadata", {})["cryptovol_executed"] = {
        "source_sha256": source_digest(raw),
        "seconds": round(secs, 1),
        "data_dir": os.environ.get("CRYPTOVOL_DATA_DIR", ""),
    }
    _write_atomic(copy, json.dumps(raw, indent=1, ensure_ascii=False) + "\n")


def run(files=None, n_workers: int | None = 2, flags: str = "", out: Path = EXECUTED, pause=0.01):
    """Run the notebooks `files` (default: nbdev's, as nbdev_test finds them) in `n_workers`
    processes. Returns [(path, passed, seconds)]."""
    from fastcore.parallel import parallel
    from fastcore.foundation import working_directory
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    from nbdev.test import _keep_file

    cfg = get_config()
    if files is None:
        files = nbglob(as_path=True)
    files = [Path(f).absolute() for f in sorted(files) if _keep_file(Path(f), ".notest")]
    if not files:
        return []
    if n_workers is None:
        n_workers = 0 if len(files) == 1 else min(os.cpu_count() or 1, 8)
    wd = cfg.nbs_path
    with working_directory(wd if (wd and wd.exists()) else os.getcwd()):
        results = parallel(
            run_nb,
            files,
            skip_flags=cfg.tst_flags.split(),
            force_flags=flags.split(),
            out=Path(out).absolute(),
            basepath=cfg.config_path,
            n_workers=n_workers,
            pause=pause,
        )
    # a worker that died (None) counts as a failure
    return [(f, *(r or (False, 0.0))) for f, r in zip(files, results)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: all of nbs/)")
    ap.add_argument("--n_workers", type=int, default=None, help="processes (nbdev_test's default)")
    ap.add_argument("--flags", default="", help="tst_flags to run anyway, space separated")
    ap.add_argument("--out", type=Path, default=EXECUTED, help="folder for the executed copies")
    ap.add_argument("--timing", action="store_true", help="print each notebook's time")
    a = ap.parse_args(argv)
    results = run(a.notebooks or None, n_workers=a.n_workers, flags=a.flags, out=a.out)
    if not results:
        print("No files were eligible for testing")
        return 0
    failed = [f.name for f, ok, _ in results if not ok]
    if a.timing:
        for f, _, secs in sorted(results, key=lambda r: -r[2]):
            print(f"{f.name}: {int(secs)} secs")
    if failed:
        fence = "=" * 50
        sys.stderr.write(
            f"\nnbdev Tests Failed On The Following Notebooks:\n{fence}\n\t"
            + "\n\t".join(failed)
            + "\n"
        )
        return 1
    print(f"Success. Executed copies with outputs: {a.out} ({len(results)} notebooks)")
    return 0


if __name__ == "__main__":
    # run as `run_notebooks`, not `__main__`: the workers unpickle `run_nb` by its module's name,
    # and a notebook's IPython shell replaces `__main__` in the worker it ran in
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import run_notebooks

    sys.exit(run_notebooks.main())
