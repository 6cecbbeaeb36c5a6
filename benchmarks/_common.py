"""Helpers shared by the benchmark scripts: throw-away project roots, params overrides, Markdown
tables, machine facts.

Nothing here imports cryptovol or TensorFlow at module level: the scripts must set `CRYPTOVOL_ROOT`
(and the log level) before cryptovol configures its logger, so every cryptovol import happens inside
the scripts' `main()`.
"""

from __future__ import annotations

import datetime, json, os, platform, shutil, subprocess, sys, tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


class BenchmarkError(RuntimeError):
    """A benchmark could not run as asked (bad option, missing data); the message says what to
    change."""


# ------------------------------------------------------------------ project roots and params
def add_common_args(ap, default_name: str) -> None:
    """Options both benchmarks share: params overrides, output folder and name, data dir, work
    folder, verbosity."""
    ap.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="any params.yaml override, e.g. --set dataset.sequence_length=20 (repeatable)",
    )
    ap.add_argument(
        "--out",
        default=str(RESULTS),
        help="folder for the JSON and Markdown results (default: benchmarks/results/)",
    )
    ap.add_argument("--name", help=f"file name stem (default: {default_name})")
    ap.add_argument(
        "--data-dir",
        help="offline mirror with yahoo/ and sentiment/ (default: $CRYPTOVOL_DATA_DIR; unset: "
        "the network)",
    )
    ap.add_argument(
        "--workdir",
        help="folder for the throw-away project roots (default: a temp folder, deleted unless "
        "--keep-work)",
    )
    ap.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the project roots (datasets, models, logs, metrics.json)",
    )
    ap.add_argument("--verbose", action="store_true", help="show cryptovol's INFO logs")


def set_dotted(d: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = value


def parse_set(items: Iterable[str] | None) -> dict[str, Any]:
    """`['training.epochs=3', 'model.lstm_units=[8]']` -> `{'training.epochs': 3,
    'model.lstm_units': [8]}` (values parsed as YAML)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise BenchmarkError(
                f"--set {item!r}: expected KEY=VALUE, e.g. --set training.epochs=3"
            )
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def make_root(
    workdir: str | Path | None,
    overrides: dict[str, Any] | None = None,
    with_nbs: bool = False,
    prefix: str = "cryptovol-bench-",
) -> Path:
    """A throw-away cryptovol project folder: the repo's params.yaml (with dotted `overrides`) +
    settings.ini (+ nbs/ for reports)."""
    if workdir is None:
        root = Path(tempfile.mkdtemp(prefix=prefix))
    else:
        root = Path(workdir).expanduser().resolve()
        if root.exists() and any(root.iterdir()) and not (root / ".cryptovol-benchmark").is_file():
            raise BenchmarkError(
                f"--workdir {root} exists and was not made by a benchmark; give an empty or "
                "new folder"
            )
        root.mkdir(parents=True, exist_ok=True)
    (root / ".cryptovol-benchmark").write_text(
        "throw-away project root made by benchmarks/; safe to delete\n"
    )
    shutil.copy(REPO / "settings.ini", root / "settings.ini")
    write_params(root, overrides or {})
    if with_nbs:
        (root / "nbs").mkdir(exist_ok=True)
        for nb in (REPO / "nbs").glob("*.ipynb"):
            shutil.copy(nb, root / "nbs" / nb.name)
    return root


def write_params(root: Path, overrides: dict[str, Any]) -> Path:
    """root/params.yaml = the repo's params.yaml with dotted `overrides` applied (validated later by
    cryptovol.config)."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    for k, v in overrides.items():
        set_dotted(p, k, v)
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return root / "params.yaml"


def configure_env(root: Path, data_dir: str | None, verbose: bool) -> dict[str, str]:
    """Point cryptovol at `root` (and the offline mirror `data_dir`) in this process; returns the
    env for subprocesses."""
    os.environ["CRYPTOVOL_ROOT"] = str(root)
    if data_dir:
        d = Path(data_dir).expanduser().resolve()
        if not (d / "yahoo").is_dir():
            raise BenchmarkError(
                f"--data-dir / CRYPTOVOL_DATA_DIR {d} has no yahoo/ folder; point it at the "
                "offline mirror (e.g. ../shared/data) or unset it to download from Yahoo Finance"
            )
        os.environ["CRYPTOVOL_DATA_DIR"] = str(d)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not verbose:
        os.environ["CRYPTOVOL_LOG_LEVEL"] = "WARNING"
    return dict(os.environ)


# ------------------------------------------------------------------ provenance and machine
def git_commit() -> str | None:
    """Short commit of the checkout (read-only `git rev-parse`), with `+dirty` when tracked files
    changed."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return (sha + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return None


THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_DETERMINISTIC_OPS",
    "TF_CPP_MIN_LOG_LEVEL",
    "KMP_BLOCKTIME",
    "KMP_AFFINITY",
    "CRYPTOVOL_DATA_DIR",
    "CRYPTOVOL_LOG_LEVEL",
)


def machine_info(tensorflow: bool = True) -> dict:
    """Cores, CPU model, RAM, load, Python/TF versions, TF thread settings and thread-related env
    vars."""
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": git_commit(),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "ram_gib": _mem_total_gib(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "env": {k: os.environ.get(k) for k in THREAD_ENV},
    }
    if tensorflow:
        import keras, numpy, pandas, tensorflow as tf

        info.update(
            tensorflow=tf.__version__,
            keras=keras.__version__,
            numpy=numpy.__version__,
            pandas=pandas.__version__,
            tf_inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
            tf_intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        )
    return info


def machine_markdown(m: dict) -> str:
    thr = lambda v: "default (0 = TF picks)" if v == 0 else v
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items() if v is not None) or "none set"
    lines = [
        f"- machine: {m['nproc']} CPU cores ({m.get('cpus_usable')} usable), "
        f"{m['cpu_model']}, {m['ram_gib']} GiB RAM; "
        f"load average at start {m.get('load_avg_1_5_15')}",
        f"- software: Python {m['python']}"
        + (
            f", TensorFlow {m['tensorflow']}, Keras {m['keras']}, NumPy {m['numpy']}, "
            f"pandas {m['pandas']}"
            if "tensorflow" in m
            else ""
        ),
        (
            f"- TF threads: inter-op {thr(m['tf_inter_op_threads'])}, intra-op "
            f"{thr(m['tf_intra_op_threads'])}"
            if "tensorflow" in m
            else ""
        ),
        f"- env: {env}",
        f"- commit {m['commit']}, run {m['date']}",
    ]
    return "\n".join(l for l in lines if l)


# ------------------------------------------------------------------ output
def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return "–"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return str(v)


def md_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], digits: int = 4) -> str:
    "A GitHub Markdown table of `rows` with `columns` = [(key, header), ...]."
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(columns))) + " |"
    body = ["| " + " | ".join(fmt(r.get(k), digits) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _clean(o):
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, float) and o != o:
        return None
    return o


def write_outputs(out_dir: str | Path, name: str, data: dict, markdown: str) -> tuple[Path, Path]:
    "Write `{name}.json` and `{name}.md` into `out_dir` atomically and print the Markdown."
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, text in (
        (".json", json.dumps(_clean(data), indent=2, default=_json_default) + "\n"),
        (".md", markdown.rstrip() + "\n"),
    ):
        path = out / f"{name}{suffix}"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=out)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        paths.append(path)
    print(markdown)
    print(f"\nwrote {paths[0]} and {paths[1]}", file=sys.stderr)
    return paths[0], paths[1]


# ------------------------------------------------------------------ entry points
def release_root(root: Path, args) -> None:
    """Delete the throw-away root unless the user asked to keep it (`--keep-work`) or named it
    (`--workdir`)."""
    if args.workdir is None and not args.keep_work:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"project root(s) kept in {root}", file=sys.stderr)


def run_main(main, script: str) -> None:
    """Run a benchmark's `main()` and exit: one-line errors (exit 2) instead of tracebacks for bad
    options or data."""
    from cryptovol.config import CryptovolError

    try:
        sys.exit(main())
    except (BenchmarkError, CryptovolError) as e:
        print(f"{script}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
