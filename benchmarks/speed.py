"""Speed and memory benchmark: pipeline stage wall times, featurize of every mirror coin, training
throughput, predict latency.

    # everything, default params (tens of minutes on 2 cores)
    .venv/bin/python benchmarks/speed.py
    .venv/bin/python benchmarks/speed.py --sections one_coin predict --skip-report
    # tiny params: checks the benchmark itself in a few minutes
    .venv/bin/python benchmarks/speed.py --quick

Pipeline stages run as the `cryptovol` commands `dvc.yaml` runs (one process per stage and coin,
like `dvc repro`: `download` and `preprocess` for every coin of `universe`, one `cryptovol train` --
with the default `model.scope: global` the global model over the universe and each symbol's view of
it, with `--set model.scope=per_coin` one network per symbol in that process -- then `evaluate` and
`report` for every symbol). `one_coin` is that pipeline for one coin alone (symbols = universe =
[SYMBOL]); `five_coins` is the default pipeline (the params' universe, the default symbols). Each
command runs in a fresh interpreter inside a throw-away project root (copies of params.yaml,
settings.ini and nbs/), so the checkout's data/, models/ and reports/ are never touched. Each
subprocess's wall time, CPU time and peak resident memory (`RUSAGE_CHILDREN` of a small launcher
process, which includes the processes the command waited for, e.g. papermill kernels, and not this
process's own memory) are recorded.
Training throughput runs in this process through `cryptovol.train.train` (callbacks and checkpoint
writes included), `--throughput-epochs` epochs per (model type, batch size); the first epoch (graph
tracing) is reported apart.
"""

from __future__ import annotations

import argparse, contextlib, io, json, os, resource, shutil, statistics, subprocess, sys
import tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    release_root,
    run_main,
    add_common_args,
    BenchmarkError,
    configure_env,
    machine_info,
    machine_markdown,
    make_root,
    md_table,
    parse_set,
    write_outputs,
    write_params,
)

# no side effects: cryptovol's logger is configured on first use
from cryptovol.config import CryptovolError

SECTIONS = ("one_coin", "five_coins", "featurize_all", "throughput", "predict")
STAGES = ("download", "featurize", "train", "evaluate", "report")
MODEL_TYPES = ("simple", "advanced", "ensemble", "hybrid")
MIRROR_COINS = (
    "BTC-USD",
    "ETH-USD",
    "SOL-USD",
    "XRP-USD",
    "ADA-USD",
    "DOGE-USD",
    "DOT-USD",
    "LTC-USD",
    "BNB-USD",
    "LINK-USD",
    "AVAX-USD",
    "TRX-USD",
    "BCH-USD",
    "NEAR-USD",
)
# --quick: the test suite's tiny network (tests/test_reliability.py TINY), so every code path runs
# in minutes. The window stays at the default 60 days: the report notebooks assert numbers derived
# from the project's params (nbs/01_data.ipynb checks min_history_days(params) == 208), so
# `cryptovol report` fails under dataset.sequence_length: 20.
QUICK = {
    "model.lstm_units": [8],
    "model.dropout": [0.1],
    "model.dense_units": [8],
    "training.epochs": 2,
    "training.batch_size": 64,
    "evaluation.permutation_repeats": 1,
    # the default model.scope global trains globalnet (nbs/12_global); evaluate fits rv_net
    "global_model.units": 8,
    "global_model.dense_units": 8,
    "global_model.epochs": 1,
    "global_model.seeds": 1,
    "rv_net.epochs": 2,
    "rv_net.seeds": 1,
}
TARGETS = {
    "five_coins_total_s": 15 * 60,
    "predict_s": 3,
    "featurize_all_s": 30,
}  # issue 7 (predict: issue 21), on 2 CPU cores


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        help="what to measure (default: all; with --quick: all but five_coins)",
    )
    ap.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        default=list(STAGES),
        help="pipeline stages to time in one_coin/five_coins (earlier stages they need still run, "
        "untimed)",
    )
    ap.add_argument(
        "--skip-report",
        action="store_true",
        help="leave out the report stage (papermill HTML reports)",
    )
    ap.add_argument(
        "--symbol",
        help="the coin of one_coin, throughput and predict (default: first of params symbols)",
    )
    ap.add_argument(
        "--symbols", nargs="+", help="the coins of five_coins (default: params symbols)"
    )
    ap.add_argument(
        "--model-types",
        nargs="+",
        choices=MODEL_TYPES,
        default=list(MODEL_TYPES),
        help="throughput model types",
    )
    ap.add_argument(
        "--batch-sizes",
        nargs="+",
        type=int,
        help="throughput batch sizes (default: 32 64 128; --quick: 64)",
    )
    ap.add_argument(
        "--throughput-epochs",
        type=int,
        default=3,
        help="epochs per throughput run (>= 2; the first is reported apart)",
    )
    ap.add_argument(
        "--predict-repeats",
        type=int,
        default=3,
        help="cold-start `cryptovol predict` runs (median reported)",
    )
    ap.add_argument(
        "--predict-models",
        metavar="DIR",
        help="a models/ folder (e.g. a `dvc repro` checkout's) whose SYMBOL model "
        "predict forecasts from (default: the one_coin model, else a 1-epoch global model trained "
        "first)",
    )
    ap.add_argument(
        "--quick", action="store_true", help=f"tiny params {QUICK} to check the benchmark itself"
    )
    add_common_args(ap, "speed, or speed_quick with --quick")
    a = ap.parse_args(argv)
    if a.throughput_epochs < 2:
        ap.error("--throughput-epochs must be >= 2 (the first epoch is tracing)")
    if a.predict_repeats < 1:
        ap.error("--predict-repeats must be >= 1")
    return a


# ------------------------------------------------------------------ timed subprocesses
# Peak RSS of a child must not be read from this process's wait4/RUSAGE_CHILDREN: Linux records the
# RSS high-water mark of the memory image a process exec()s away from, and a child forked (or
# vforked) from this process starts as a copy of it (TensorFlow and the throughput models loaded:
# ~1 GiB). So each command runs under this tiny launcher, whose own image is ~15 MiB: its
# RUSAGE_CHILDREN is the command's peak RSS (and that of the processes the command waited for).
LAUNCHER = (
    "import json, resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(json.dumps({'maxrss_kib': ru.ru_maxrss,\n"
    "                                          'cpu_s': ru.ru_utime + ru.ru_stime}))\n"
    "sys.exit(rc)\n"
)


def run_cli(cli_args: list[str], root: Path, label: str) -> dict:
    """Run `python -m cryptovol ...` in `root` (fresh interpreter); wall s, CPU s and peak RSS (MiB)
    of it and what it waited for."""
    log_dir = root / "logs"
    log_dir.mkdir(exist_ok=True)
    log = log_dir / f"bench_{label}.log"
    env = dict(os.environ, CRYPTOVOL_ROOT=str(root))
    usage = log_dir / f"bench_{label}.rusage.json"
    cmd = [sys.executable, "-c", LAUNCHER, str(usage), sys.executable, "-m", "cryptovol", *cli_args]
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - t0
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise BenchmarkError(
            f"`cryptovol {' '.join(cli_args)}` failed (exit {rc}) in {root}; "
            f"last lines of {log}:\n{tail}"
        )
    ru = json.loads(usage.read_text())
    PEAKS.append(ru["maxrss_kib"] / 1024)
    return {
        "command": "cryptovol " + " ".join(cli_args),
        "seconds": round(wall, 2),
        "cpu_seconds": round(ru["cpu_s"], 2),
        "peak_rss_mib": round(ru["maxrss_kib"] / 1024, 1),
    }


PEAKS: list[float] = []  # peak RSS (MiB) of every timed command


def stage_commands(
    stage: str, symbols: list[str], universe: list[str]
) -> list[tuple[str, list[str]]]:
    """The `cryptovol` command lines of one dvc.yaml stage, as (label, args): download and
    featurize every `universe` coin, one `cryptovol train` (the global model over the universe, or
    with model.scope per_coin one network per symbol, in one process as dvc.yaml runs it), evaluate
    and report every symbol."""
    per = lambda coins, name, args: [(f"{name}_{c}", [*args, "--crypto_symbol", c]) for c in coins]
    return {
        "download": per(universe, "download", ["download"]),
        "featurize": per(universe, "featurize", ["preprocess"]),
        "train": [("train", ["train"])],
        "evaluate": per(symbols, "evaluate", ["evaluate"]),
        "report": [
            (f"report_{c}", ["report", "--crypto_symbol", c, "--no-index"]) for c in symbols
        ],
    }[stage]


def pipeline(
    root: Path, symbols: list[str], universe: list[str], stages: list[str], bar, out: dict
) -> dict:
    """Run the pipeline stage by stage (like `dvc repro`: each stage for every coin) up to the last
    selected stage; time each into `out`."""
    last = max(STAGES.index(s) for s in stages)
    out.update(
        symbols=symbols, universe=universe, stages={}, total_seconds=None, all_stages_timed=False
    )
    sentiment = None
    for stage in STAGES[: last + 1]:
        runs = {}
        if stage == "download":
            bar.set_postfix_str(f"{len(symbols)} coin(s): sentiment")
            sentiment = run_cli(["download", "--sentiment"], root, "sentiment")
        for label, cmd in stage_commands(stage, symbols, universe):
            bar.set_postfix_str(f"{len(symbols)} coin(s): {label}")
            key = cmd[cmd.index("--crypto_symbol") + 1] if "--crypto_symbol" in cmd else "all"
            runs[key] = run_cli(cmd, root, label)
        if stage == "report" and len(symbols) > 1:
            bar.set_postfix_str("report index")
            runs["index"] = run_cli(["report", "--index_only"], root, "report_index")
        rec = {
            "timed": stage in stages,
            "per_coin": runs,
            "seconds": round(sum(r["seconds"] for r in runs.values()), 2),
            "cpu_seconds": round(sum(r["cpu_seconds"] for r in runs.values()), 2),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs.values()),
        }
        if stage == "download":
            rec["sentiment"] = sentiment
            for k in ("seconds", "cpu_seconds"):
                rec[k] = round(rec[k] + sentiment[k], 2)
            rec["peak_rss_mib"] = max(rec["peak_rss_mib"], sentiment["peak_rss_mib"])
        out["stages"][stage] = rec
        out["total_seconds"] = round(
            sum(r["seconds"] for r in out["stages"].values() if r["timed"]), 2
        )
        bar.update(1)
    out["all_stages_timed"] = all(s in stages for s in STAGES)
    return out


def featurize_all(root: Path, coins: list[str], bar) -> dict:
    "Download every coin (untimed), then time one `cryptovol preprocess` process over all of them."
    bar.set_postfix_str(f"download {len(coins)} coins (setup)")
    setup = run_cli(["download"], root, "download_all")
    bar.set_postfix_str(f"preprocess {len(coins)} coins")
    run = run_cli(["preprocess"], root, "featurize_all")
    bar.update(1)
    return {"coins": coins, "download_setup_seconds": setup["seconds"], **run}


ENGINE_PROBE = (
    "import sys; from cryptovol.predict import load_forecaster\n"
    "m = load_forecaster(sys.argv[1]); print(type(m).__name__, 'tensorflow' in sys.modules)"
)


def predict_model(root: Path, symbol: str, overrides: dict, models: str | None, bar) -> dict:
    """Put a model for `symbol` into `root` (untimed): a copy of `models`/SYMBOL, the one already
    there, or a tiny global model."""
    setup, source = [], "reused"

    def run(label, cmd):
        setup.append(run_cli(cmd, root, label)["command"])

    # a `dvc repro` checkout's models/ folder: the coin view is self-contained (model, head, scaler,
    # params)
    if models:
        src = Path(models).expanduser().resolve() / symbol
        if not (src / "model.keras").is_file():
            raise BenchmarkError(f"--predict-models: {src} holds no model.keras")
        shutil.copytree(src, root / "models" / symbol, dirs_exist_ok=True)
        source = str(src)
    elif not (
        root / "models" / symbol / "model.keras"
    ).is_file():  # the shipped scope's model, small: one epoch, one seed, two coins
        partner = "ETH-USD" if symbol != "ETH-USD" else "BTC-USD"
        from _common import write_params

        write_params(
            root,
            {
                **overrides,
                "symbols": [symbol],
                "universe": [symbol, partner],
                "global_model.epochs": 1,
                "global_model.seeds": 1,
            },
        )
        bar.set_postfix_str("predict: setup (download, preprocess, train a 1-epoch global model)")
        for c in (symbol, partner):
            run(f"p_download_{c}", ["download", "--crypto_symbol", c])
            run(f"p_featurize_{c}", ["preprocess", "--crypto_symbol", c])
        run("p_train", ["train"])
        source = "trained here"
    run("p_sentiment", ["download", "--sentiment"])
    run("p_download", ["download", "--crypto_symbol", symbol])  # the cache predict reads
    probe = subprocess.run(
        [sys.executable, "-c", ENGINE_PROBE, str(root / "models" / symbol)],
        env=dict(os.environ, CRYPTOVOL_ROOT=str(root)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        "setup": setup,
        "model_source": source,
        "engine": "numpy" if probe[0] == "NumpyView" else "keras",
        "imports_tensorflow": probe[1] == "True",
    }


def predict_latency(
    root: Path, symbol: str, repeats: int, bar, overrides: dict, models: str | None = None
) -> dict:
    """Median wall time of `cryptovol predict` from a cold start (new interpreter each time) and of
    importing what it imports first."""
    out = {"symbol": symbol, **predict_model(root, symbol, overrides, models, bar)}
    runs = []
    for i in range(repeats):
        bar.set_postfix_str(f"predict {i + 1}/{repeats}")
        runs.append(
            run_cli(
                [
                    "predict",
                    "--crypto_symbol",
                    symbol,
                    "--output",
                    str(root / "bench_forecast.csv"),
                ],
                root,
                f"predict_{i}",
            )
        )
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import cryptovol.cli, cryptovol.predict"],
        check=True,
        env=dict(os.environ, CRYPTOVOL_ROOT=str(root)),
        capture_output=True,
    )
    imp = time.perf_counter() - t0
    bar.update(1)
    return {
        **out,
        "runs_seconds": [r["seconds"] for r in runs],
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "import_only_seconds": round(imp, 2),
        "command": runs[0]["command"],
    }


# ------------------------------------------------------------------ in-process training throughput
def throughput(
    root: Path,
    symbol: str,
    model_types,
    batch_sizes,
    epochs: int,
    params_overrides: dict,
    verbose: bool,
    bar,
) -> dict:
    """Samples/s and s/epoch of `cryptovol.train.train` per (model type, batch size); epoch 1
    (tracing) apart from epochs 2..E."""
    import numpy as np
    from cryptovol.config import load_params, reset_params, with_overrides
    from cryptovol.data import cache_fear_greed, cache_prices
    from cryptovol.features import build_dataset
    from cryptovol.train import train

    os.environ["CRYPTOVOL_ROOT"] = str(root)
    reset_params()
    p = load_params(root / "params.yaml")
    bar.set_postfix_str(f"throughput: dataset {symbol}")
    if p["features"]["sentiment"]:
        cache_fear_greed(p)
    cache_prices(symbol, p)
    with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
        ds = build_dataset(symbol, p)
    rows = []
    for mt in model_types:
        for bs in batch_sizes:
            bar.set_postfix_str(f"throughput: {mt} batch {bs}")
            pm = with_overrides(
                p,
                **{
                    "model.type": mt,
                    "training.batch_size": bs,
                    "training.epochs": epochs,
                    "training.patience": max(p["training"]["patience"], epochs + 1),
                    "training.lr_patience": max(p["training"]["lr_patience"], epochs + 1),
                },
            )
            shutil.rmtree(
                root / "models" / symbol, ignore_errors=True
            )  # each run starts from an empty model folder
            res = train(symbol, pm, dataset=ds, verbose=1 if verbose else 0)
            h = res.history
            per_epoch = (
                np.sum([m["seconds"] for m in h["members"].values()], axis=0)
                if "members" in h
                else np.asarray(h["seconds"])
            ).tolist()
            n = int(res.summary["n_train"])
            steady = float(np.mean(per_epoch[1:]))
            rows.append(
                {
                    "model_type": mt,
                    "batch_size": bs,
                    "n_train": n,
                    "n_params": res.summary["n_params"],
                    "epochs": len(per_epoch),
                    "first_epoch_s": round(per_epoch[0], 2),
                    "s_per_epoch": round(steady, 2),
                    "samples_per_s": int(round(n / steady)),
                    "samples_per_s_incl_first": int(round(n * len(per_epoch) / sum(per_epoch))),
                    "epoch_seconds": [round(x, 3) for x in per_epoch],
                }
            )
            bar.update(1)
    return {
        "symbol": symbol,
        "sequence_length": int(ds.X_train.shape[1]),
        "n_features": int(ds.X_train.shape[2]),
        "rows": rows,
    }


# ------------------------------------------------------------------ Markdown
def markdown(r: dict) -> str:
    m = r["meta"]
    quick = " (--quick: tiny params, not the real numbers)" if m["quick"] else ""
    L = [
        f"# cryptovol speed benchmark{quick}",
        "",
        f"Command: `{m['command']}`",
        "",
        machine_markdown(m["machine"]),
        f"- params overrides: {m['overrides'] or 'none (default params.yaml)'}; "
        f"data: {m['data_source']}",
        "",
    ]
    for key, title in (("one_coin", "one coin"), ("five_coins", "the default coins")):
        if key not in r:
            continue
        pl = r[key]
        if not pl.get("stages"):
            continue
        universe = pl.get("universe", pl["symbols"])
        L += [
            f"## Pipeline stages, {title} ({', '.join(pl['symbols'])}; "
            f"universe of {len(universe)} coin(s))",
            "",
            "Each stage as `dvc repro` runs it: one `cryptovol` process per coin (a fresh "
            "interpreter, TensorFlow import included): download and preprocess every universe "
            "coin, one `cryptovol train` (model.scope "
            f"{m.get('model_scope', 'global')}), evaluate and report every symbol. "
            "Peak RSS is the largest single process of the stage.",
            "",
        ]
        rows = [
            {
                "stage": s + ("" if v["timed"] else " (setup, untimed)"),
                "seconds": v["seconds"],
                "per_coin": (
                    ", ".join(f"{c} {x['seconds']:.1f}" for c, x in v["per_coin"].items())
                    if len(v["per_coin"]) > 1
                    else ""
                ),
                "cpu": v["cpu_seconds"],
                "rss": v["peak_rss_mib"],
                "cmd": v["per_coin"][next(iter(v["per_coin"]))]["command"]
                + (" (+ download --sentiment)" if s == "download" else ""),
            }
            for s, v in pl["stages"].items()
        ]
        rows.append(
            {
                "stage": "**total (timed stages)**"
                + ("" if key not in r.get("errors", {}) else " (incomplete: a stage failed)"),
                "seconds": pl["total_seconds"],
            }
        )
        cols = [
            ("stage", "stage"),
            ("seconds", "wall s"),
            ("cpu", "CPU s"),
            ("rss", "peak RSS MiB"),
            ("cmd", "command"),
        ]
        if len(universe) > 1:
            cols.insert(2, ("per_coin", "per coin s"))
        L += [md_table(rows, cols, digits=1), ""]
        if key == "five_coins" and pl["all_stages_timed"]:
            t = pl["total_seconds"]
            met = "met" if t < TARGETS["five_coins_total_s"] else "NOT met"
            L += [
                f"Whole default pipeline: {t / 60:.1f} min (issue-7 target < 15 min: {met}).",
                "",
            ]
    if "featurize_all" in r:
        f = r["featurize_all"]
        met = "met" if f["seconds"] < TARGETS["featurize_all_s"] else "NOT met"
        L += [
            f"## Featurize all {len(f['coins'])} mirror coins",
            "",
            f"`{f['command']}` (one process, all coins): **{f['seconds']:.1f} s** wall, "
            f"{f['cpu_seconds']:.1f} s CPU, peak RSS {f['peak_rss_mib']:.0f} MiB "
            f"(issue-7 target < 30 s: {met}). Coins: {', '.join(f['coins'])}.",
            "",
        ]
    if "throughput" in r:
        t = r["throughput"]
        L += [
            f"## Training throughput ({t['symbol']}, windows of {t['sequence_length']} days x "
            f"{t['n_features']} features)",
            "",
            "`cryptovol.train.train` in-process, callbacks and per-epoch checkpoint writes "
            "included; an epoch includes the validation pass. Epoch 1 includes graph tracing and "
            "is reported apart; `s/epoch` and `samples/s` are the mean of epochs 2..E "
            "(ensemble: one epoch of every member).",
            "",
            md_table(
                t["rows"],
                [
                    ("model_type", "model"),
                    ("batch_size", "batch"),
                    ("n_train", "train windows"),
                    ("n_params", "params"),
                    ("first_epoch_s", "epoch 1 s"),
                    ("s_per_epoch", "s/epoch (2..E)"),
                    ("samples_per_s", "samples/s (2..E)"),
                    ("samples_per_s_incl_first", "samples/s (all)"),
                ],
                digits=2,
            ),
            "",
        ]
    if "predict" in r:
        p = r["predict"]
        how = {
            "reused": "the model already in the project root",
            "trained here": "a 1-epoch global model trained for this "
            "(two coins, one seed: the forecast costs the same)",
        }.get(p["model_source"], f"the model copied from {p['model_source']}")
        runs = ", ".join(f"{x:.2f}" for x in p["runs_seconds"])
        tf = "TensorFlow imported" if p["imports_tensorflow"] else "TensorFlow never imported"
        met = "met" if p["median_seconds"] <= TARGETS["predict_s"] else "NOT met"
        L += [
            "## `cryptovol predict` latency from a cold start",
            "",
            f"`{p['command']}`, {len(p['runs_seconds'])} runs, each a new interpreter (model "
            f"load, features, forecast): **median {p['median_seconds']:.2f} s** (runs {runs}), "
            f"peak RSS {p['peak_rss_mib']:.0f} MiB; forecast by {p['engine']} ({tf}), from {how}; "
            "importing cryptovol.cli + cryptovol.predict alone takes "
            f"{p['import_only_seconds']:.2f} s "
            f"(issue-21 target <= {TARGETS['predict_s']} s: {met}).",
            "",
        ]
    mem = r["memory"]
    L += [
        "## Peak memory",
        "",
        f"- largest `cryptovol` command (getrusage RUSAGE_CHILDREN in a small launcher, so the "
        f"benchmark's own memory is not counted): {mem['children_peak_rss_mib']:.0f} MiB",
        "- this benchmark process (in-process training throughput; RUSAGE_SELF): "
        f"{mem['self_peak_rss_mib']:.0f} MiB",
        "",
        f"Total benchmark wall time {m['wall_seconds'] / 60:.1f} min.",
    ]
    for s, e in r.get("errors", {}).items():
        L += ["", f"**{s} failed**: {e}"]
    return "\n".join(L)


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = {**(QUICK if args.quick else {}), **parse_set(args.set)}
    sections = args.sections or [s for s in SECTIONS if not (args.quick and s == "five_coins")]
    stages = [s for s in args.stages if not (args.skip_report and s == "report")]
    if not stages and {"one_coin", "five_coins"} & set(sections):
        raise BenchmarkError("--stages/--skip-report leave no stage to time")
    batch_sizes = args.batch_sizes or ([64] if args.quick else [32, 64, 128])
    if any(b < 1 for b in batch_sizes):
        raise BenchmarkError(f"--batch-sizes must be positive, got {batch_sizes}")
    data_dir = args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR")
    base = (
        Path(args.workdir).expanduser().resolve()
        if args.workdir
        else Path(tempfile.mkdtemp(prefix="cryptovol-speed-"))
    )
    base.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    try:
        roots = {
            s: make_root(base / s, overrides, with_nbs=s in ("one_coin", "five_coins"))
            for s in sections
        }
        configure_env(roots[sections[0]], data_dir, args.verbose)
        from tqdm.auto import tqdm
        from cryptovol.config import load_params

        params = load_params(roots[sections[0]] / "params.yaml")  # validates the overrides
        symbol = args.symbol or params["symbols"][0]
        five = args.symbols or list(params["symbols"])
        coins = (
            sorted(p.stem for p in (Path(data_dir) / "yahoo").glob("*.csv"))
            if data_dir
            else list(MIRROR_COINS)
        )
        if "featurize_all" in sections:
            write_params_symbols(roots["featurize_all"], overrides, coins)
        # one_coin: the pipeline of one coin alone (symbols = universe = [symbol], so `cryptovol
        # train` fits the global model on that coin); five_coins: the default pipeline, every
        # universe coin downloaded and featurized, one `cryptovol train`, the symbols evaluated
        universes = {
            "one_coin": [symbol],
            "five_coins": list(dict.fromkeys([*params["universe"], *five])),
        }
        for s, syms in (("one_coin", [symbol]), ("five_coins", five)):
            if s in sections:
                write_params(roots[s], {**overrides, "symbols": syms, "universe": universes[s]})
        machine = machine_info()
        n_steps = {
            "one_coin": max(STAGES.index(s) for s in stages) + 1 if stages else 0,
            "five_coins": max(STAGES.index(s) for s in stages) + 1 if stages else 0,
            "featurize_all": 1,
            "throughput": len(args.model_types) * len(batch_sizes),
            "predict": 1,
        }
        result, errors = {}, {}
        print(f"speed benchmark in {base}: sections {', '.join(sections)}", file=sys.stderr)
        with tqdm(total=sum(n_steps[s] for s in sections), desc="speed", unit="step") as bar:
            for s in sections:
                try:
                    if s == "one_coin":
                        pipeline(
                            roots[s], [symbol], universes[s], stages, bar, result.setdefault(s, {})
                        )
                    elif s == "five_coins":
                        pipeline(
                            roots[s], five, universes[s], stages, bar, result.setdefault(s, {})
                        )
                    elif s == "featurize_all":
                        result[s] = featurize_all(roots[s], coins, bar)
                    elif s == "throughput":
                        result[s] = throughput(
                            roots[s],
                            symbol,
                            args.model_types,
                            batch_sizes,
                            args.throughput_epochs,
                            overrides,
                            args.verbose,
                            bar,
                        )
                    elif s == "predict":  # the one_coin root's model if it trained one
                        reuse = (
                            "one_coin" in roots
                            and (roots["one_coin"] / "models" / symbol / "model.keras").is_file()
                            and not args.predict_models
                        )
                        result[s] = predict_latency(
                            roots["one_coin"] if reuse else roots[s],
                            symbol,
                            args.predict_repeats,
                            bar,
                            overrides,
                            args.predict_models,
                        )
                except (BenchmarkError, CryptovolError) as e:
                    errors[s] = str(e)
                    bar.write(f"ERROR in {s}: {e}")
        result["memory"] = {
            "children_peak_rss_mib": round(max(PEAKS, default=0.0), 1),
            "self_peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
        }
        result["errors"] = errors
        result["meta"] = {
            "command": "python benchmarks/speed.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "quick": args.quick,
            "sections": sections,
            "stages": stages,
            "overrides": overrides,
            "model_scope": params["model"]["scope"],
            "targets": TARGETS,
            "data_source": f"offline mirror {data_dir}"
            if data_dir
            else "network (yfinance, Fear & Greed API)",
            "machine": machine,
            "wall_seconds": round(time.perf_counter() - t_start, 1),
            "workdir": str(base),
        }
        write_outputs(
            args.out,
            args.name or ("speed_quick" if args.quick else "speed"),
            result,
            markdown(result),
        )
        return 1 if errors else 0
    finally:
        release_root(base, args)


def write_params_symbols(root: Path, overrides: dict, coins: list[str]) -> None:
    write_params(root, {**overrides, "symbols": coins})


if __name__ == "__main__":
    run_main(main, "speed.py")
