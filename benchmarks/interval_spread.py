"""Which training rows should set a point forecaster's band? Coverage of 80% and 95% intervals.

    .venv/bin/python benchmarks/interval_spread.py    # -> results/interval_spread.{json,md}
    .venv/bin/python benchmarks/interval_spread.py --data-dir ../shared/data --forecasters har ewma

A classical point forecaster's band is the log-normal law whose E[sigma^2] is the point, with the
spread s = std of log(actual / forecast) over its training rows (`cryptovol.forecasters.
_log_spread`). On the project's walk-forward folds (`cryptovol.backtest.plan_folds`) DOGE's 80%
intervals cover ~90% of test days. This asks whether a spread from recent training rows only would
do better: for each coin of params.yaml `symbols`, fold and forecaster (fitted on the days before
the origin, as the backtest does), s from all training rows, the last 365 or 730 of them, or an
exponentially weighted variance (half-life 365 days); each band's coverage of the fold's test days
against the close-to-close target. The last column is hindsight (the test fold's own std), to say
how far the test residuals' spread is from any training estimate. Nothing is chosen here; it runs
in seconds.
"""

from __future__ import annotations

import argparse, os, shlex, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_common_args, configure_env, machine_info, machine_markdown, make_root
from _common import md_table, parse_set, release_root, run_main, write_outputs

RULES = ("all training rows", "last 365", "last 730", "EW half-life 365")
Z = {80: 1.2815515655446004, 95: 1.959963984540054}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--horizon", type=int, default=7, help="h, days ahead (default 7)")
    ap.add_argument(
        "--forecasters",
        nargs="+",
        default=["ewma", "har", "har_log"],
        help="registered per-coin daily forecasters (default: ewma har har_log)",
    )
    add_common_args(ap, "interval_spread")
    return ap.parse_args(argv)


def spreads(e_train) -> dict:
    "Each rule's s from the training log errors (oldest first)."
    import numpy as np

    ew_mean = e_train.ewm(halflife=365).mean()
    ew_var = ((e_train - ew_mean) ** 2).ewm(halflife=365).mean().iloc[-1]
    return {
        "all training rows": e_train.std(),
        "last 365": e_train.iloc[-365:].std(),
        "last 730": e_train.iloc[-730:].std(),
        "EW half-life 365": float(np.sqrt(ew_var)),
    }


def coverage(e_test, s: float) -> dict:
    "Share of test log errors inside the band centred on -s^2 (Forecast.mu), per level."
    return {lv: float(((e_test - (-(s**2))).abs() < z * s).mean()) for lv, z in Z.items()}


def coin_rows(symbol: str, p: dict, fng, names, h: int) -> list[dict]:
    "One row per (fold, forecaster): test days and each rule's coverage."
    import numpy as np
    import pandas as pd
    from cryptovol.backtest import plan_folds, window_dates
    from cryptovol.data import load_prices
    from cryptovol.features import log_returns
    from cryptovol.forecasters import FORECASTERS, _train_rows, classical_data

    prices = load_prices(symbol, params=p)
    folds, _ = plan_folds(window_dates(prices, fng, p), p)
    data = classical_data(log_returns(prices["Close"]).dropna(), h, symbol=symbol)
    target = pd.Series(data.target, dtype="float64")
    rows = []
    for fold in folds:
        until = fold.start - pd.Timedelta(days=1)
        for name in names:
            vol = FORECASTERS[name].from_params(p).fit(data, until).series(data)
            e = np.log(target.reindex(vol.index) / vol)
            e_train = e[_train_rows(vol.index, until, h)].dropna()
            e_test = e[(e.index >= fold.start) & (e.index <= fold.end)].dropna()
            row = {"coin": symbol, "fold": fold.k, "forecaster": name, "days": len(e_test)}
            for rule, s in spreads(e_train).items():
                row[rule] = {"s": float(s), **coverage(e_test, s)}
            row["hindsight s"] = float(e_test.std())
            rows.append(row)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    "Per coin: each rule's mean 80% and 95% coverage over folds and forecasters (day-weighted)."
    import pandas as pd

    out = []
    for coin, g in pd.DataFrame(rows).groupby("coin", sort=False):
        w = g["days"] / g["days"].sum()
        r = {"coin": coin}
        for rule in RULES:
            r[f"{rule} 80"] = float((g[rule].map(lambda d: d[80]) * w).sum())
            r[f"{rule} 95"] = float((g[rule].map(lambda d: d[95]) * w).sum())
        out.append(r)
    return out


def markdown(summary, rows, names, h, run_s, cmd, machine) -> str:
    cols = [("coin", "coin")] + [(f"{r} 80", f"{r}: 80%") for r in RULES]
    cols95 = [("coin", "coin")] + [(f"{r} 95", f"{r}: 95%") for r in RULES]
    detail = [
        {"coin": r["coin"], "fold": r["fold"], "forecaster": r["forecaster"]}
        | {rule: f"{r[rule]['s']:.3f} ({r[rule][80]:.1%})" for rule in RULES}
        | {"hindsight s": r["hindsight s"]}
        for r in rows
    ]
    dcols = [("coin", "coin"), ("fold", "fold"), ("forecaster", "forecaster")]
    dcols += [(rule, f"{rule}: s (80% cov.)") for rule in RULES] + [("hindsight s", "test std")]
    return "\n\n".join(
        [
            "# Which training rows set a point forecaster's band",
            f"`{cmd}`; h = {h}; forecasters {', '.join(names)}; close-to-close target; "
            f"{run_s:.0f} s. Coverage of the test days, day-weighted over folds and forecasters.",
            "80% intervals (goal 75-85%):",
            md_table(summary, cols, digits=3),
            "95% intervals:",
            md_table(summary, cols95, digits=3),
            "Per fold and forecaster: s from each rule, its 80% coverage, and the test fold's own "
            "std of log(actual / forecast):",
            md_table(detail, dcols, digits=3),
            machine_markdown(machine),
        ]
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    root = make_root(args.workdir, parse_set(args.set), prefix="cryptovol-spread-")
    configure_env(root, args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR"), args.verbose)
    t0 = time.perf_counter()
    try:
        from cryptovol.config import ConfigError, get_params
        from cryptovol.data import load_fear_greed
        from cryptovol.forecasters import FORECASTERS

        unknown = [n for n in args.forecasters if n not in FORECASTERS]
        if unknown:
            raise ConfigError(
                f"--forecasters {unknown}: not registered; one of {list(FORECASTERS)}"
            )
        p = get_params()
        fng = load_fear_greed(params=p)
        rows = [
            r for s in p["symbols"] for r in coin_rows(s, p, fng, args.forecasters, args.horizon)
        ]
    finally:
        release_root(root, args)
    run_s = time.perf_counter() - t0
    cmd = shlex.join([".venv/bin/python", "benchmarks/interval_spread.py", *sys.argv[1:]])
    machine = machine_info(tensorflow=False)
    summary = summarise(rows)
    md = markdown(summary, rows, args.forecasters, args.horizon, run_s, cmd, machine)
    data = {"summary": summary, "rows": rows, "command": cmd, "run_s": run_s, "machine": machine}
    write_outputs(args.out, args.name or "interval_spread", data, md)
    return 0


if __name__ == "__main__":
    run_main(main, "benchmarks/interval_spread.py")
