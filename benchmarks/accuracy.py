"""Forecast-accuracy benchmark: every model type beside naive, EWMA, GARCH(1,1)-t and HAR-RV on each
coin's test window.

    # default coins x (simple, advanced, ensemble, hybrid), h from params
    .venv/bin/python benchmarks/accuracy.py
    # advanced + baselines for h = 1, 7, 30 days
    .venv/bin/python benchmarks/accuracy.py --horizons 1 7 30
    # smoke test
    .venv/bin/python benchmarks/accuracy.py --symbols BTC-USD --model-types simple --epochs 1

Runs in a throw-away project root (copies of params.yaml and settings.ini, `CRYPTOVOL_ROOT` pointing
at it), so the checkout's data/, models/ and reports/ are never touched. Each (coin, horizon)
dataset is built once with the pipeline's own `build_dataset`, every model type is trained with
`cryptovol.train.train` and scored with `cryptovol.evaluate.evaluate` (plots and permutation
importance off): same target, dates and splits as `dvc repro`.

"Best baseline" (the one the Diebold-Mariano p-values are quoted against) is chosen by QLIKE on the
VALIDATION window (baselines fitted on the training rows only, exactly as `evaluate` fits them),
never on the test window. The metrics.json `best_baseline` uses the same rule (validation QLIKE) and
is recorded beside it.
"""

from __future__ import annotations

import argparse, contextlib, io, sys, time, traceback
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
)

MODEL_TYPES = ("simple", "advanced", "ensemble", "hybrid")
# every registered classical forecaster, as evaluate and the backtest use them
from cryptovol.forecasters import FORECASTERS

# metric key, Markdown header, higher is better
METRICS = (
    ("r2", "R²", True),
    ("rmse", "RMSE", False),
    ("mae", "MAE", False),
    ("mape", "MAPE %", False),
    ("corr", "corr", True),
    ("directional_accuracy", "dir. acc.", True),
    ("theil_u", "Theil U", False),
    ("qlike", "QLIKE", False),
)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--symbols", nargs="+", help="coins (default: `symbols` in params.yaml)")
    ap.add_argument(
        "--model-types",
        nargs="+",
        choices=MODEL_TYPES,
        help="model types (default: all four; with --horizons: advanced)",
    )
    ap.add_argument(
        "--horizons",
        nargs="+",
        type=int,
        metavar="H",
        help="horizon mode: one table per target.horizon H (default model type: advanced)",
    )
    ap.add_argument(
        "--epochs",
        type=int,
        help="override training.epochs (quick runs; early stopping still applies)",
    )
    ap.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first failing run instead of recording it and going on",
    )
    add_common_args(ap, "accuracy, or accuracy_horizons with --horizons")
    return ap.parse_args(argv)


# ------------------------------------------------------------------ one (coin, horizon)
def validation_baselines(ds, params: dict) -> dict:
    """Metrics of each baseline on the validation window (fitted on training rows only, as
    `evaluate` does) and the best by QLIKE / RMSE."""
    import pandas as pd
    from cryptovol.evaluate import (
        baseline_forecasts,
        dataset_range_var,
        forecast_metrics,
        training_end,
    )

    h = ds.horizon
    frame = ds.frame
    train_end = training_end(frame.index, ds.dates_train[-1], h)
    base = baseline_forecasts(
        frame["log_return"],
        train_end,
        h,
        params,
        target=frame["target"],
        range_var=dataset_range_var(ds, params),
    ).reindex(pd.DatetimeIndex(ds.dates_val))
    if base.isna().any().any():
        raise BenchmarkError(
            f"{ds.symbol}: baselines have NaN forecasts on validation dates; the history "
            "before validation is too short"
        )
    val = {
        b: forecast_metrics(ds.y_val, base[b], base["naive"], base["naive"])
        for b in list(FORECASTERS)
    }
    return {
        "metrics": val,
        "best_by_qlike": min(val, key=lambda b: val[b]["qlike"]),
        "best_by_rmse": min(val, key=lambda b: val[b]["rmse"]),
        "train_end": str(train_end.date()),
        "start": str(pd.Timestamp(ds.dates_val[0]).date()),
        "end": str(pd.Timestamp(ds.dates_val[-1]).date()),
        "n": int(len(ds.y_val)),
    }


def model_val_qlike(trained, ds) -> float:
    """The trained model's QLIKE on the validation window (what a model choice may legitimately look
    at)."""
    import numpy as np
    from cryptovol.evaluate import qlike_loss
    from cryptovol.train import model_inputs

    return float(np.mean(qlike_loss(ds.y_val, trained.predict(model_inputs(ds, "val", trained)))))


def run_group(symbol: str, h: int, base_params: dict, model_types, args, bar) -> dict:
    """Build the (symbol, h) dataset once, then train + evaluate each model type; returns the
    group's record."""
    from cryptovol.config import with_overrides
    from cryptovol.evaluate import evaluate
    from cryptovol.features import build_dataset
    from cryptovol.train import train

    p = with_overrides(base_params, **{"target.horizon": h})
    rec = {"symbol": symbol, "horizon": h, "runs": {}, "errors": {}}
    t0 = time.perf_counter()
    sink = contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        ds = build_dataset(symbol, p)
    rec["dataset_seconds"] = round(time.perf_counter() - t0, 2)
    rec["dataset"] = {
        k: ds.summary[k]
        for k in ("splits", "forecast_days", "n_features", "sequence_length", "purged")
    }
    rec["validation"] = validation_baselines(ds, p)
    for mt in model_types:
        bar.set_postfix_str(f"{symbol} h={h} {mt}")
        pm = with_overrides(p, **{"model.type": mt})
        try:
            t1 = time.perf_counter()
            res = train(symbol, pm, dataset=ds, verbose=1 if args.verbose else 0)
            t2 = time.perf_counter()
            m = evaluate(symbol, pm, plots=False, importance=False)
            t3 = time.perf_counter()
            rec["runs"][mt] = {
                "metrics": m,
                "val_qlike": model_val_qlike(res.trained, ds),
                "train_seconds": round(t2 - t1, 1),
                "evaluate_seconds": round(t3 - t2, 1),
                "epochs_run": res.summary.get("epochs_run"),
                "best_epoch": res.summary.get("best_epoch"),
                "n_params": res.summary.get("n_params"),
            }
        except Exception as e:  # record and go on: one broken run must not lose the others' numbers
            if args.fail_fast:
                raise
            rec["errors"][mt] = f"{type(e).__name__}: {e}"
            bar.write(
                f"ERROR {symbol} h={h} {mt}: {type(e).__name__}: "
                f"{e}\n{traceback.format_exc(limit=3)}"
            )
        bar.update(1)
    return rec


# ------------------------------------------------------------------ tables
def dm_text(p, stat) -> str:
    "DM p-value with the direction: `0.0123 better` (model's loss lower) or `0.0123 worse`."
    if p is None or stat is None or p != p:
        return "–"
    return f"{p:.4f} {'better' if stat < 0 else 'worse'}"


def coin_rows(rec: dict) -> list[dict]:
    """One row per forecaster (model types first, then baselines) with test metrics and DM p-values
    vs the validation-chosen baseline."""
    best = rec["validation"]["best_by_qlike"]
    rows, base_fc = [], None
    for mt, run in rec["runs"].items():
        m = run["metrics"]
        fc = m["forecasts"]["model"]
        dm = m["dm"][best]
        rows.append(
            {
                "forecaster": mt,
                **{k: fc[k] for k, _, _ in METRICS},
                "dm_se_p": dm["se_pvalue"],
                "dm_se_stat": dm["se_stat"],
                "dm_qlike_p": dm["qlike_pvalue"],
                "dm_qlike_stat": dm["qlike_stat"],
                "dm_se": dm_text(dm["se_pvalue"], dm["se_stat"]),
                "dm_qlike": dm_text(dm["qlike_pvalue"], dm["qlike_stat"]),
                "val_qlike": run["val_qlike"],
                "n": fc["n"],
            }
        )
        base_fc = base_fc or m["forecasts"]
    if base_fc is None:
        return rows
    for b in list(FORECASTERS):
        rows.append(
            {
                "forecaster": b + (" *" if b == best else ""),
                "baseline": b,
                **{k: base_fc[b][k] for k, _, _ in METRICS},
                "val_qlike": rec["validation"]["metrics"][b]["qlike"],
                "n": base_fc[b]["n"],
            }
        )
    return rows


def check_baselines_agree(rec: dict) -> str | None:
    """The baselines must be identical across model types of one (coin, h); a difference means the
    runs did not share the dataset."""
    runs = list(rec["runs"].values())
    for r in runs[1:]:
        for b in list(FORECASTERS):
            a, c = (
                runs[0]["metrics"]["forecasts"][b]["qlike"],
                r["metrics"]["forecasts"][b]["qlike"],
            )
            if abs(a - c) > 1e-9 * max(1.0, abs(a)):
                return f"baseline {b} differs between model types ({a} vs {c})"
    return None


def summarise(groups: list[dict], forecasters: list[str]) -> dict:
    """Mean rank (1 = best, ties share the best rank) of each forecaster across coins per metric,
    wins per metric, and the issue-7 goal counts."""
    import pandas as pd

    per_coin = {}
    for g in groups:
        rows = {r.get("baseline", r["forecaster"]): r for r in coin_rows(g)}
        if all(f in rows for f in forecasters):
            per_coin[g["symbol"]] = rows
    out = {"coins": sorted(per_coin), "mean_rank": {}, "wins": {}}
    if not per_coin:
        return out
    for key, _, higher in METRICS:
        df = pd.DataFrame(
            {c: {f: rows[f][key] for f in forecasters} for c, rows in per_coin.items()}
        ).astype(float)
        ranks = df.rank(axis=0, ascending=not higher, method="min")
        out["mean_rank"][key] = ranks.mean(axis=1).round(2).to_dict()
        out["wins"][key] = (ranks == 1).sum(axis=1).astype(int).to_dict()
    goal = {}
    for mt in [f for f in forecasters if f not in list(FORECASTERS)]:
        beats = sig = 0
        for g in groups:
            if mt not in g["runs"]:
                continue
            best = g["validation"]["best_by_qlike"]
            fc, dm = g["runs"][mt]["metrics"]["forecasts"], g["runs"][mt]["metrics"]["dm"][best]
            beats += fc["model"]["qlike"] < fc[best]["qlike"]
            sig += (dm["qlike_stat"] or 0) < 0 and (
                dm["qlike_pvalue"] if dm["qlike_pvalue"] is not None else 1
            ) < 0.05
        goal[mt] = {
            "coins": sum(mt in g["runs"] for g in groups),
            "beats_best_baseline_qlike": int(beats),
            "dm_qlike_p_lt_005_better": int(sig),
        }
    out["goal"] = goal
    return out


COLS = [
    ("forecaster", "forecaster"),
    *[(k, h) for k, h, _ in METRICS],
    ("dm_se", "DM p (SE)"),
    ("dm_qlike", "DM p (QLIKE)"),
    ("val_qlike", "val QLIKE"),
]


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        f"# cryptovol accuracy benchmark{' (horizons)' if meta['horizon_mode'] else ''}",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Coins {', '.join(meta['symbols'])}; model types {', '.join(meta['model_types'])}; "
        f"horizons {meta['horizons']}; "
        f"overrides {meta['overrides'] or 'none'}; data: {meta['data_source']}.",
        machine_markdown(meta["machine"]),
        "",
        "Test-window metrics of each forecaster on the same dates. **\\*** marks the best "
        "baseline, chosen by QLIKE on the "
        "**validation** window (baselines fitted on training rows only); the "
        "Diebold–Mariano p-values (HLN-corrected, "
        "two-sided; squared error and QLIKE) compare each model against that baseline, with "
        "the direction (`better`: the model's "
        "mean loss is lower). `val QLIKE` is the validation-window "
        "QLIKE the choice is based on. Nothing is tuned on the test window.",
        "",
    ]
    for h in meta["horizons"]:
        groups = [g for g in result["groups"] if g["horizon"] == h]
        lines += [f"## h = {h} day{'s' if h > 1 else ''}", ""]
        for g in groups:
            sp = g["dataset"]["splits"]["test"]
            v = g["validation"]
            lines += [
                f"### {g['symbol']} (test {sp['start']} .. {sp['end']}, n = {sp['n']}; best "
                "baseline on validation: "
                f"{v['best_by_qlike']} by QLIKE, {v['best_by_rmse']} by RMSE)",
                "",
                md_table(coin_rows(g), COLS),
                "",
            ]
            for mt, err in g["errors"].items():
                lines += [f"- **{mt} failed**: {err}"]
            if g.get("warning"):
                lines += [f"- warning: {g['warning']}"]
            if g["errors"] or g.get("warning"):
                lines.append("")
        s = result["summary"].get(str(h)) or {}
        if s.get("mean_rank"):
            fs = list(next(iter(s["mean_rank"].values())))
            lines += [
                f"### Summary over {len(s['coins'])} coin(s), h = {h}: mean rank (1 = best "
                f"of {len(fs)}) / wins per metric",
                "",
                md_table(
                    [
                        {
                            "forecaster": f,
                            **{
                                k: f"{s['mean_rank'][k][f]:.2f} / {s['wins'][k][f]}"
                                for k, _, _ in METRICS
                            },
                        }
                        for f in fs
                    ],
                    [("forecaster", "forecaster"), *[(k, h_) for k, h_, _ in METRICS]],
                ),
                "",
            ]
            lines += [
                "Issue-7 goal (beat the validation-chosen best baseline on test QLIKE for "
                ">= 3 of 5 coins, DM QLIKE p < 0.05 on >= 1):",
                "",
                md_table(
                    [{"model": mt, **g_} for mt, g_ in s["goal"].items()],
                    [
                        ("model", "model"),
                        ("coins", "coins"),
                        ("beats_best_baseline_qlike", "beats best baseline (QLIKE)"),
                        ("dm_qlike_p_lt_005_better", "DM QLIKE p < 0.05, model better"),
                    ],
                ),
                "",
            ]
    if meta["horizon_mode"]:
        rows = []
        for g in result["groups"]:
            b = g["validation"]["best_by_qlike"]
            for mt, run in g["runs"].items():
                fc, dm = run["metrics"]["forecasts"], run["metrics"]["dm"][b]
                rows.append(
                    {
                        "coin": g["symbol"],
                        "h": g["horizon"],
                        "model": mt,
                        "mq": fc["model"]["qlike"],
                        "best": b,
                        "bq": fc[b]["qlike"],
                        "p": dm_text(dm["qlike_pvalue"], dm["qlike_stat"]),
                        "mr2": fc["model"]["r2"],
                        "br2": fc[b]["r2"],
                    }
                )
        lines += [
            "## Across horizons",
            "",
            md_table(
                rows,
                [
                    ("coin", "coin"),
                    ("h", "h"),
                    ("model", "model"),
                    ("mq", "model QLIKE"),
                    ("best", "best baseline (val)"),
                    ("bq", "its QLIKE"),
                    ("p", "DM p (QLIKE)"),
                    ("mr2", "model R²"),
                    ("br2", "baseline R²"),
                ],
            ),
            "",
        ]
    lines.append(f"Total wall time {meta['wall_seconds'] / 60:.1f} min.")
    return "\n".join(lines)


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    args = parse_args(argv)
    import os

    horizon_mode = args.horizons is not None
    model_types = args.model_types or (["advanced"] if horizon_mode else list(MODEL_TYPES))
    overrides = parse_set(args.set)
    if args.epochs is not None:
        if args.epochs < 1:
            raise BenchmarkError("--epochs must be >= 1")
        overrides["training.epochs"] = args.epochs
    overrides["evaluation.plots"] = False
    if horizon_mode and any(h < 1 for h in args.horizons):
        raise BenchmarkError(f"--horizons must be positive days, got {args.horizons}")
    root = make_root(args.workdir, overrides)
    data_dir = args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR")
    t_start = time.perf_counter()
    try:
        configure_env(root, data_dir, args.verbose)
        from tqdm.auto import tqdm
        from cryptovol.config import load_params
        from cryptovol.data import cache_fear_greed, cache_prices

        # validates the overrides (ConfigError names a bad key)
        params = load_params(root / "params.yaml")
        symbols = args.symbols or list(params["symbols"])
        horizons = args.horizons or [int(params["target"]["horizon"])]
        machine = machine_info()
        print(
            f"accuracy benchmark in {root}: {len(symbols)} coin(s) x {len(horizons)} "
            f"horizon(s) x {len(model_types)} model type(s)",
            file=sys.stderr,
        )
        if params["features"]["sentiment"]:
            cache_fear_greed(params)
        groups = []
        with tqdm(
            total=len(symbols) * len(horizons) * len(model_types), desc="train+evaluate", unit="run"
        ) as bar:
            for s in symbols:
                cache_prices(s, params)
                for h in horizons:
                    bar.set_postfix_str(f"{s} h={h} dataset")
                    try:
                        g = run_group(s, h, params, model_types, args, bar)
                    # dataset or baselines failed: every model of this group is lost
                    except Exception as e:
                        if args.fail_fast:
                            raise
                        bar.write(f"ERROR {s} h={h}: {type(e).__name__}: {e}")
                        bar.update(len(model_types))
                        continue
                    g["warning"] = check_baselines_agree(g)
                    groups.append(g)
        forecasters = list(model_types) + list(list(FORECASTERS))
        summary = {
            str(h): summarise([g for g in groups if g["horizon"] == h], forecasters)
            for h in horizons
        }
        result = {
            "meta": {
                "command": "python benchmarks/accuracy.py "
                + " ".join(sys.argv[1:] if argv is None else argv),
                "horizon_mode": horizon_mode,
                "symbols": symbols,
                "model_types": model_types,
                "horizons": horizons,
                "overrides": {k: v for k, v in overrides.items() if k != "evaluation.plots"},
                "data_source": f"offline mirror {data_dir}"
                if data_dir
                else "network (yfinance, Fear & Greed API)",
                "best_baseline_rule": "lowest QLIKE on the validation window (baselines fitted "
                "on training rows only)",
                "machine": machine,
                "wall_seconds": round(time.perf_counter() - t_start, 1),
                "project_root": str(root),
            },
            "groups": groups,
            "summary": summary,
        }
        name = args.name or ("accuracy_horizons" if horizon_mode else "accuracy")
        write_outputs(args.out, name, result, markdown(result))
        failed = sum(len(g["errors"]) for g in groups) + (
            len(symbols) * len(horizons) - len(groups)
        )
        if failed:
            print(
                f"{failed} run(s)/group(s) failed; see the errors above and in {name}.json",
                file=sys.stderr,
            )
        return 1 if failed else 0
    finally:
        release_root(root, args)


if __name__ == "__main__":
    run_main(main, "accuracy.py")
