"""The HAR family on realized measures against the daily log-HAR: walk-forward QLIKE, both targets.

    .venv/bin/python benchmarks/har_realized.py       # -> results/har_realized.{json,md}
    .venv/bin/python benchmarks/har_realized.py --data-dir ../shared/data --horizon 7

For the coins of params.yaml `symbols` and h = `--horizon` (default 7), on the project's
walk-forward folds (`cryptovol.backtest.plan_folds`: backtest.start 2021-12-01, 365-day folds),
every model of `cryptovol.har` (HAR-RV, log-HAR, HARQ, SHAR, HAR-CJ), fitted per coin, pooled
over the coins, and pooled with each coin scaled by its training mean RV, is fitted at each origin
on the days before it only (every training target ends before the origin) and forecasts the
fold. Beside them: the daily log-HAR of `cryptovol.evaluate` (`har_log`, regressors from daily
close-to-close returns), refitted at each origin, fitted once to the close-to-close target (the
project's current bar) and once to the realized target. A "best RV-HAR" is chosen per coin,
fold and target on the 365 days before each origin (fits before the validation start, scored on
validation days whose target ends before the origin); nothing is chosen on test data.

Scored with `cryptovol.evaluate.qlike_loss` against the realized target (`realized_target`) and
the close-to-close target (`forward_realized_vol`), per coin on the SAME dates: the test days
where every forecast and both targets exist. The mean over coins is the mean of the coins' mean
QLIKE. Runs in seconds in a throw-away project root.
"""

from __future__ import annotations

import argparse, os, shlex, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BenchmarkError,
    add_common_args,
    configure_env,
    machine_info,
    machine_markdown,
    make_root,
    md_table,
    parse_set,
    release_root,
    run_main,
    write_outputs,
)

SCOPES = {"per coin": "none", "pooled": "none", "pooled, coin-scaled": "coin_mean"}
TARGETS = ("realized", "close_to_close")
DAILY = {
    "realized": "daily log-HAR (fitted to realized target)",
    "close_to_close": "daily log-HAR `har_log` (fitted to close-to-close target)",
}
BEST = "best RV-HAR (chosen on validation)"
MIN_VAL_DAYS = 30


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--horizon", type=int, default=7, help="h, days ahead (default 7)")
    add_common_args(ap, "har_realized")
    return ap.parse_args(argv)


def candidates() -> dict[str, tuple[str, str]]:
    "label -> (model, scope) for every RV-HAR variant."
    from cryptovol.har import MODEL_LABELS, MODELS

    return {f"{MODEL_LABELS[m]} ({s})": (m, s) for m in MODELS for s in SCOPES}


def load_coin(symbol: str, p: dict, fng, h: int) -> dict:
    "One coin's measures, daily prices, both targets and its walk-forward folds."
    from cryptovol.backtest import plan_folds, window_dates
    from cryptovol.data import load_prices
    from cryptovol.features import forward_realized_vol
    from cryptovol.intraday import load_hourly_bars
    from cryptovol.realized import realized_measures, realized_target

    measures = realized_measures(load_hourly_bars(symbol, params=p))
    prices = load_prices(symbol, params=p)
    folds, skipped = plan_folds(window_dates(prices, fng, p), p)
    if skipped:
        raise BenchmarkError(
            f"{symbol}: fold(s) {skipped} skipped by plan_folds; every coin needs "
            "the same calendar (move backtest.start later)"
        )
    targets = {
        "realized": realized_target(measures, h),
        "close_to_close": forward_realized_vol(prices, h, "close_to_close"),
    }
    return {"measures": measures, "prices": prices, "targets": targets, "folds": folds}


def rv_forecasts(data: dict, until, dates: dict, h: int, windows) -> dict:
    "coin -> frame (one column per candidate) of vol forecasts on `dates[coin]`; NaN if unfittable."
    from cryptovol.config import DataError
    from cryptovol.har import HARSpec

    panel = {s: d["measures"] for s, d in data.items()}
    out = {s: {} for s in data}
    for label, (model, scope) in candidates().items():
        spec = HARSpec(model, h, windows, scale=SCOPES[scope])
        fits = {}
        try:
            if scope == "per coin":
                fits = {s: spec.fit({s: m}, until) for s, m in panel.items()}
            else:
                fits = dict.fromkeys(panel, spec.fit(panel, until))
        except DataError:  # too few complete training rows (SOL before its first validation)
            fits = (
                {s: _fit_or_none(spec, {s: m}, until) for s, m in panel.items()}
                if scope == "per coin"
                else {}
            )
        for s in data:
            r = fits.get(s)
            out[s][label] = (
                r.forecast(panel[s], dates[s], coin=s).vol if r is not None else _nan(dates[s])
            )
    return {s: _frame(cols, dates[s]) for s, cols in out.items()}


def _fit_or_none(spec, frames: dict, until):
    from cryptovol.config import DataError

    try:
        return spec.fit(frames, until)
    except DataError:
        return None


def _nan(dates):
    import numpy as np
    import pandas as pd

    return pd.Series(np.nan, index=dates)


def _frame(cols: dict, dates):
    import pandas as pd

    return pd.DataFrame({k: v.to_numpy() for k, v in cols.items()}, index=dates)


def daily_log_har(d: dict, until, h: int, windows, dates, target: str):
    "The daily log-HAR of cryptovol.evaluate, fitted on days before `until` to `target`."
    import pandas as pd
    from cryptovol.evaluate import har_components, log_har_forecast
    from cryptovol.features import log_returns

    comp = har_components(log_returns(d["prices"]["Close"]), windows)
    f = log_har_forecast(
        comp,
        d["targets"][target].reindex(comp.index),
        pd.Timestamp(until) - pd.Timedelta(days=1),
        h,
    )
    return f.reindex(dates)


def mean_qlike(frame, actual) -> dict:
    "Mean QLIKE of every column of `frame` on the dates where all columns and `actual` exist."
    import numpy as np
    from cryptovol.evaluate import qlike_loss

    ok = frame.notna().all(axis=1) & actual.reindex(frame.index).notna()
    ok &= np.isfinite(frame).all(axis=1)
    a = actual.reindex(frame.index)[ok]
    return {c: float(qlike_loss(a, frame.loc[ok, c]).mean()) for c in frame} | {"_n": int(ok.sum())}


def choose_on_validation(data: dict, fold, h: int, windows) -> dict:
    "coin -> target -> the candidate with the least validation QLIKE (fits before val_start)."
    import pandas as pd

    last = fold.start - pd.Timedelta(days=h + 1)  # the validation target ends before the origin
    dates = {s: pd.date_range(fold.val_start, last, freq="D") for s in data}
    val = rv_forecasts(data, fold.val_start, dates, h, windows)
    chosen = {}
    for s, f in val.items():
        f = f.loc[:, f.notna().sum() >= MIN_VAL_DAYS]
        chosen[s] = {}
        for t in TARGETS:
            q = mean_qlike(f, data[s]["targets"][t])
            n = q.pop("_n")
            if n < MIN_VAL_DAYS:
                raise BenchmarkError(f"{s} fold {fold.k}: {n} validation days")
            chosen[s][t] = min(q, key=q.get)
    return chosen


def fold_record(data: dict, fold, h: int, windows) -> dict:
    "coin -> the fold's test frame: every forecast, the chosen best per target and both targets."
    import pandas as pd

    dates = {s: pd.date_range(fold.start, fold.end, freq="D") for s in data}
    test = rv_forecasts(data, fold.start, dates, h, windows)
    chosen = choose_on_validation(data, fold, h, windows)
    out = {}
    for s, f in test.items():
        d = data[s]
        for t in TARGETS:
            f[f"{BEST} [{t}]"] = f[chosen[s][t]]
            f[DAILY[t]] = daily_log_har(d, fold.start, h, windows, dates[s], t).to_numpy()
            f[f"target {t}"] = d["targets"][t].reindex(dates[s]).to_numpy()
        f["fold"] = fold.k
        out[s] = f
    return out, chosen


def scores(records: dict) -> tuple[dict, dict]:
    "coin -> target -> row label -> mean QLIKE on the coin's common dates; coin -> days scored."
    import pandas as pd

    per_coin, days = {}, {}
    for s, frames in records.items():
        rec = pd.concat(frames)
        fc = rec.drop(columns=["fold", *[f"target {t}" for t in TARGETS]])
        both = rec[[f"target {t}" for t in TARGETS]].notna().all(axis=1)
        fc = fc[both]
        per_coin[s] = {}
        for t in TARGETS:
            q = mean_qlike(fc, rec.loc[both, f"target {t}"])
            days[s] = q.pop("_n")
            q[BEST] = q.pop(f"{BEST} [{t}]")
            q.pop(f"{BEST} [{'close_to_close' if t == 'realized' else 'realized'}]")
            per_coin[s][t] = q
    return per_coin, days


def tables(per_coin: dict, days: dict) -> tuple[list[dict], dict[str, list[dict]]]:
    "Summary rows (mean over coins; ratio to the daily log-HAR of the same target), per coin rows."
    import numpy as np

    coins = list(per_coin)
    labels = [*candidates(), BEST, DAILY["realized"], DAILY["close_to_close"]]
    summary, detail = [], {t: [] for t in TARGETS}
    for lab in labels:
        row = {"model": lab}
        for t in TARGETS:
            vals = [per_coin[s][t][lab] for s in coins]
            ref = np.mean([per_coin[s][t][DAILY[t]] for s in coins])
            row[f"q_{t}"], row[f"r_{t}"] = float(np.mean(vals)), float(np.mean(vals) / ref)
            detail[t].append({"model": lab, **dict(zip(coins, vals)), "mean": row[f"q_{t}"]})
        summary.append(row)
    return summary, detail


def markdown(summary, detail, days, folds, chosen, h, run_s, cmd, machine) -> str:
    "The benchmark's Markdown report."
    from collections import Counter

    coins = list(days)
    cols = [
        ("model", "model"),
        ("q_realized", "QLIKE vs realized target"),
        ("r_realized", "÷ daily log-HAR"),
        ("q_close_to_close", "QLIKE vs close-to-close"),
        ("r_close_to_close", "÷ `har_log`"),
    ]
    fold_txt = ", ".join(f"{f.start.date()}..{f.end.date()}" for f in folds)
    picks = {t: Counter(c[s][t] for c in chosen for s in c) for t in TARGETS}
    lines = [
        f"# HAR family on realized measures vs the daily log-HAR (h = {h}, walk-forward)",
        "",
        f"- command: `{cmd}`",
        f"- folds (cryptovol.backtest.plan_folds): {fold_txt}; each "
        "model refitted at each origin on the days before it",
        f"- coins: {', '.join(coins)}; days scored per coin (the same for every row and both "
        f"targets): {', '.join(f'{s} {n}' for s, n in days.items())}",
        "- mean QLIKE over the coins (mean of each coin's mean); ÷: ratio to the daily "
        "log-HAR fitted to the same target (< 1: better)",
        f"- run time {run_s:.1f} s",
        "",
        md_table(summary, cols, digits=3),
        "",
        "`best RV-HAR` picks, over coins x folds: "
        + "; ".join(
            f"{t}: " + ", ".join(f"{k} {v}" for k, v in picks[t].most_common()) for t in TARGETS
        ),
        "",
    ]
    for t in TARGETS:
        cc = [("model", "model"), *[(s, s) for s in coins], ("mean", "mean")]
        lines += [
            f"## Mean QLIKE per coin, {t.replace('_', '-')} target",
            "",
            md_table(detail[t], cc, digits=3),
            "",
        ]
    return "\n".join([*lines, machine_markdown(machine)])


def main(argv=None) -> int:
    args = parse_args(argv)
    root = make_root(args.workdir, parse_set(args.set), prefix="cryptovol-har-")
    configure_env(root, args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR"), args.verbose)
    t0 = time.perf_counter()
    try:
        from cryptovol.config import get_params
        from cryptovol.data import load_fear_greed

        p, h = get_params(), args.horizon
        windows = tuple(p["evaluation"]["har_windows"])
        fng = load_fear_greed(params=p)
        data = {s: load_coin(s, p, fng, h) for s in p["symbols"]}
        folds = next(iter(data.values()))["folds"]
        if any(
            [(f.start, f.end) for f in d["folds"]] != [(f.start, f.end) for f in folds]
            for d in data.values()
        ):
            raise BenchmarkError("the coins' fold calendars differ; pooling needs one calendar")
        records, chosen = {s: [] for s in data}, []
        for fold in folds:
            rec, ch = fold_record(data, fold, h, windows)
            chosen.append(ch)
            for s in data:
                records[s].append(rec[s])
        per_coin, days = scores(records)
        summary, detail = tables(per_coin, days)
    finally:
        release_root(root, args)
    run_s = time.perf_counter() - t0
    cmd = shlex.join([".venv/bin/python", "benchmarks/har_realized.py", *sys.argv[1:]])
    machine = machine_info(tensorflow=False)
    md = markdown(summary, detail, days, folds, chosen, h, run_s, cmd, machine)
    write_outputs(
        args.out,
        args.name or "har_realized",
        {
            "summary": summary,
            "per_coin": per_coin,
            "days": days,
            "chosen": chosen,
            "folds": [f.as_dict() for f in folds],
            "command": cmd,
            "run_s": run_s,
            "machine": machine,
        },
        md,
    )
    return 0


if __name__ == "__main__":
    run_main(main, "benchmarks/har_realized.py")
