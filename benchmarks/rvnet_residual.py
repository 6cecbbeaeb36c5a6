"""Is there anything left to learn for rv_net's anchor? Ridge and gradient boosting on the residuals
of the frozen pooled log-HAR on realized variance (`rv_log_har_pool`), beside rv_net itself.

    # -> results/rvnet_residual.{json,md}
    CRYPTOVOL_DATA_DIR=../shared/data .venv/bin/python benchmarks/rvnet_residual.py
    # last fold only, rv_net tiny (GRU 8, 3 epochs, 1 seed): checks the script, not a result
    CRYPTOVOL_DATA_DIR=../shared/data .venv/bin/python benchmarks/rvnet_residual.py --quick
    # the learners only (rv_net not trained; its numbers: benchmarks/README.md)
    CRYPTOVOL_DATA_DIR=../shared/data .venv/bin/python benchmarks/rvnet_residual.py --no-rvnet

Issue #22's diagnostic (`residual_learning.py` asked it of the daily log-HAR and HARQ) for the
network in the pipeline. The folds are the backtest's (params.yaml `backtest`: 365-day test folds
from `backtest.start`, the last to the end of the data; origin = fold start - 1 day), h =
`target.horizon`, pooled over params.yaml `universe`, scored on the `symbols`. At each origin,
exactly as `cryptovol.rvnet.fit_rvnet` does on data up to the origin: the anchor (pooled
coin-scaled log-HAR on RV, `HARSpec('log_har', scale='coin_mean')`, i.e. `rv_log_har_pool`), then
rv_net's rows (`cryptovol.rvnet.design`: its input windows of `rv_net.lookback` days of the
`rv_net.inputs` -- coin-scaled log RV, RS-, RS+, BPV, jump share, log RQ/RV^2, signed share, the
universe's mean log RV, BTC's log RV, the anchor a_t -- and its residual target z = log(mean RV of
the next h days / c) - a_t), and its split (`cryptovol.rvnet.split_rows`: the last `rv_net.val_days`
days before the origin validate, the training rows end h days before them). The learners read each
window as 5 numbers per input: the values at t, t-1, t-2 and the means over the last 7 and the last
`lookback` days. Both learners regress z (squared error) on the training rows:

- ridge: standardised features, alpha in 10^-1..10^5 (13 values) with the least validation QLIKE;
- `HistGradientBoostingRegressor` (depth 3, learning rate 0.05, <= 500 trees, `random_state=0`):
  the number of trees with the least validation QLIKE;
- a control, "anchor + constant": no features, only the level shift below.

Each forecast of mean RV is c exp(a_t + prediction + k), k = log mean(exp(z - prediction)) over the
validation rows (the shift that minimises validation QLIKE; the anchor alone uses its log-normal
s2/2). The chosen learner is then refitted on every row known at the origin (training + validation)
and k kept. Nothing is chosen on test days. rv_net is run through its Forecaster
(`cryptovol.rvnet.RVNet`, params.yaml `rv_net`) with `walk_forward` on the same origins, and
`rv_log_har_pool` through its own Forecaster too: the anchor rebuilt here must equal it.

Scored with `cryptovol.evaluate.qlike_loss` against the realized target (`realized_target`) and
the close-to-close target (`forward_realized_vol`), per coin on the SAME dates: the test days where
every forecast and both targets exist. Mean over coins = mean of each coin's mean QLIKE; ratios are
to the anchor alone. No look-ahead is asserted on the first origin: every coin's measures after it
are perturbed and the training and validation rows (features and z) must come out identical.
"""

from __future__ import annotations

import argparse, os, shlex, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchmarkError, RESULTS, machine_info, machine_markdown, md_table, write_outputs

TARGETS = ("realized", "close_to_close")
ROWS = ("anchor", "const", "ridge", "gbm", "rv_net")
LABELS = {
    "anchor": "anchor alone (`rv_log_har_pool`)",
    "const": "anchor + constant",
    "ridge": "ridge-corrected",
    "gbm": "GBM-corrected",
    "rv_net": "rv_net",
}
ALPHAS = tuple(10.0**k for k in (-1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5))
GBM = dict(
    max_depth=3,
    learning_rate=0.05,
    max_iter=500,
    min_samples_leaf=40,
    l2_regularization=1.0,
    max_features=0.8,
)
SUMMARIES = ("lag0", "lag1", "lag2", "mean7", "meanL")
QUICK_RVNET = {"units": 8, "dense_units": 8, "epochs": 3, "seeds": 1}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="the last fold, rv_net tiny (a check)")
    ap.add_argument(
        "--no-rvnet", action="store_true", help="skip rv_net (its numbers: benchmarks/README.md)"
    )
    ap.add_argument(
        "--out", default=str(RESULTS), help="folder for the results (default: benchmarks/results/)"
    )
    ap.add_argument("--name", help="file name stem (default: rvnet_residual[_quick])")
    return ap.parse_args(argv)


# ------------------------------------------------------------------ data and folds
def fold_starts(p: dict, end) -> list:
    "The backtest's test-fold starts: every `fold_days` from `backtest.start` with a full fold."
    import pandas as pd

    b = p["backtest"]
    s, days, out = pd.Timestamp(b["start"]), int(b["fold_days"]), []
    while s + pd.Timedelta(days=days - 1) <= end:
        out.append(s)
        s += pd.Timedelta(days=days)
    if not out:
        raise BenchmarkError(f"no full {days}-day fold from backtest.start {b['start']} to {end}")
    return out


def window_features(X, inputs):
    "(n, L, F) windows -> (n, 5F): per input its values at t, t-1, t-2 and its 7- and L-day means."
    import numpy as np

    parts = [X[:, -1], X[:, -2], X[:, -3], X[:, -7:].mean(axis=1), X.mean(axis=1)]
    names = [f"{i}_{s}" for s in SUMMARIES for i in inputs]
    return np.concatenate(parts, axis=1).astype("float64"), names


# ------------------------------------------------------------------ learners
def _qlike_ratio(z, pred) -> tuple[float, float]:
    """Validation QLIKE of exp(pred + k) against exp(z) with k = log mean(exp(z - pred)) (its
    minimiser); (QLIKE, k)."""
    import numpy as np

    k = float(np.log(np.mean(np.exp(z - pred))))
    r = np.exp(z - pred - k)
    return float(np.mean(r - np.log(r) - 1.0)), k


def fit_ridge(F, z, tr, va, known):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    make = lambda a: make_pipeline(StandardScaler(), Ridge(alpha=a))
    val = {}
    for a in ALPHAS:
        m = make(a).fit(F[tr], z[tr])
        val[a] = _qlike_ratio(z[va], m.predict(F[va]))
    best = min(val, key=lambda a: val[a][0])
    m = make(best).fit(F[known], z[known])
    return m.predict, val[best][1], {"alpha": best, "val_qlike": val[best][0]}


def fit_gbm(F, z, tr, va, known):
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor

    head = HistGradientBoostingRegressor(**GBM, early_stopping=False, random_state=0)
    head.fit(F[tr], z[tr])
    val = [_qlike_ratio(z[va], p) for p in head.staged_predict(F[va])]
    best = int(np.argmin([q for q, _ in val])) + 1
    m = HistGradientBoostingRegressor(
        **{**GBM, "max_iter": best}, early_stopping=False, random_state=0
    ).fit(F[known], z[known])
    return m.predict, val[best - 1][1], {"trees": best, "val_qlike": val[best - 1][0]}


def fit_const(F, z, tr, va, known):
    import numpy as np

    q, k = _qlike_ratio(z[va], np.zeros(len(va)))
    return (lambda X: np.zeros(len(X))), k, {"val_qlike": q}


LEARNERS = {"const": fit_const, "ridge": fit_ridge, "gbm": fit_gbm}


# ------------------------------------------------------------------ one origin
def rows_at(universe, until, h: int, spec):
    """fit_rvnet's anchor and rows at `until`: (anchor, Design over every fitted coin, features,
    names, train rows, validation rows, every known row)."""
    import numpy as np
    import pandas as pd
    from cryptovol.har import HARSpec
    from cryptovol.rvnet import design, split_rows

    until = pd.Timestamp(until).normalize()
    known = {c: m[m.index <= until] for c, m in universe.items()}
    known = {c: m for c, m in known.items() if len(m) > spec.lookback + h}
    anchor = HARSpec("log_har", int(h), spec.windows, scale="coin_mean").fit(
        known, until + pd.Timedelta(days=1)
    )
    d = design({c: universe[c] for c in known}, anchor, spec, int(h))
    tr, va = split_rows(d, until, int(h), spec.val_days)
    k = np.flatnonzero(np.isfinite(d.z) & (d.date + np.timedelta64(int(h), "D") <= until))
    F, names = window_features(d.X, spec.inputs)
    return anchor, d, F, names, tr, va, k


def check_no_lookahead(universe, until, h: int, spec) -> dict:
    "Perturb every coin's measures after `until`: the known rows' features and z must not move."
    import numpy as np
    import pandas as pd

    _, d0, F0, _, tr0, va0, k0 = rows_at(universe, until, h, spec)
    until = pd.Timestamp(until)
    bent = {}
    for c, m in universe.items():
        m = m.copy()
        num = m.select_dtypes("float").columns
        late = m.index > until
        m.loc[late, num] = m.loc[late, num] * 1.7 + 1e-6
        bent[c] = m
    _, d1, F1, _, tr1, va1, k1 = rows_at(bent, until, h, spec)
    same = (
        np.array_equal(tr0, tr1)
        and np.array_equal(va0, va1)
        and np.array_equal(k0, k1)
        and np.array_equal(F0[k0], F1[k1])
        and np.array_equal(d0.z[k0], d1.z[k1])
    )
    if not same:
        raise BenchmarkError(f"look-ahead: rows known at {until.date()} changed with later data")
    return {"until": str(until.date()), "passed": True, "rows": int(len(k0))}


def origin_forecasts(universe, until, dates, h: int, spec, coins) -> tuple[dict, dict]:
    """coin -> DataFrame of forecast vols on `dates` (anchor, const, ridge, gbm); and a record of
    the fits."""
    import numpy as np
    import pandas as pd
    from cryptovol.features import ANNUALISATION

    t0 = time.perf_counter()
    anchor, d, F, names, tr, va, known = rows_at(universe, until, h, spec)
    ok = np.isfinite(F).all(axis=1)
    tr, va, known = tr[ok[tr]], va[ok[va]], known[ok[known]]
    z, s2 = d.z, float(anchor.s2)
    fits = {
        "until": str(pd.Timestamp(until).date()),
        "n_train": int(len(tr)),
        "n_val": int(len(va)),
        "n_known": int(len(known)),
        "last_known_row": str(pd.Timestamp(d.date[known].max()).date()),
        "coins": sorted(set(d.coin)),
    }
    # QLIKE of the anchor itself on validation, with its own shift s2/2 (no k)
    r = np.exp(z[va] - 0.5 * s2)
    fits["val_qlike_anchor"] = float(np.mean(r - np.log(r) - 1.0))
    preds = {}
    for name, fit in LEARNERS.items():
        predict, k, info = fit(F, z, tr, va, known)
        fits[name] = {**info, "shift": k}
        preds[name] = (predict, k)
    dates = pd.DatetimeIndex(dates)
    out = {}
    for c in coins:
        rows = np.flatnonzero((d.coin == c) & np.isin(d.date, dates.to_numpy()) & ok)
        scale = anchor._scale(c)
        f = {"anchor": scale * np.exp(d.a[rows] + 0.5 * s2)}
        for name, (predict, k) in preds.items():
            f[name] = scale * np.exp(d.a[rows] + predict(F[rows]) + k)
        idx = pd.DatetimeIndex(d.date[rows])
        out[c] = pd.DataFrame({n: np.sqrt(ANNUALISATION * v) for n, v in f.items()}, index=idx)
        out[c] = out[c].reindex(dates)
    fits["seconds"] = round(time.perf_counter() - t0, 1)
    fits["features"] = len(names)
    return out, fits


# ------------------------------------------------------------------ scores and tables
def scores(frames: dict) -> tuple[dict, dict]:
    """coin -> target -> row -> mean QLIKE on the coin's common dates; coin -> days."""
    import numpy as np
    from cryptovol.evaluate import qlike_loss

    per, days = {}, {}
    for c, f in frames.items():
        ok = f.notna().all(axis=1) & (f > 0).all(axis=1)
        g = f[ok]
        days[c] = int(ok.sum())
        per[c] = {
            t: {
                n: float(np.mean(qlike_loss(g[f"target {t}"], g[n])))
                for n in f
                if not n.startswith("target")
            }
            for t in TARGETS
        }
    return per, days


def tables(per: dict, rows) -> list[dict]:
    "One record per (target, row): per-coin QLIKE and ratio to the anchor, mean, wins."
    out = []
    for t in TARGETS:
        anchor = {c: per[c][t]["anchor"] for c in per}
        m_anchor = sum(anchor.values()) / len(anchor)
        for n in rows:
            q = {c: per[c][t][n] for c in per}
            mean = sum(q.values()) / len(q)
            out.append(
                {
                    "target": t,
                    "row": n,
                    **q,
                    **{f"{c} ratio": q[c] / anchor[c] for c in q},
                    "mean": mean,
                    "mean ratio": mean / m_anchor,
                    # strictly lower beyond rounding (rv_net where it is the anchor ties)
                    "beats anchor": sum(q[c] < anchor[c] * (1 - 1e-9) for c in q),
                }
            )
    return out


def markdown(res: dict) -> str:
    coins = list(res["days"])
    short = lambda c: c.split("-")[0]
    L = [
        f"# Anything left to learn for rv_net's anchor? (h = {res['horizon']}"
        f"{', QUICK: not a result' if res['quick'] else ''})",
        "",
        f"Command: `{res['command']}` ({res['run_s'] / 60:.1f} min)",
        "",
        machine_markdown(res["machine"]),
        f"- folds (test days): {', '.join(f['start'] + '..' + f['end'] for f in res['folds'])}; "
        f"universe {len(res['universe'])} coins; scored days per coin: "
        + ", ".join(f"{short(c)} {n}" for c, n in res["days"].items()),
        f"- no look-ahead check at {res['no_lookahead']['until']}: passed "
        f"({res['no_lookahead']['rows']} known rows unchanged)",
        f"- anchor rebuilt here vs the `rv_log_har_pool` Forecaster: max relative difference "
        f"{res['anchor_check']:.1e}",
        f"- rv_net: {res['rvnet_note']}",
        "",
    ]
    for t in TARGETS:
        L += [f"## Target: {t} (QLIKE, ratio to the anchor)", ""]
        rs = [r for r in res["rows"] if r["target"] == t]
        recs = [
            {
                "row": LABELS[r["row"]],
                **{
                    short(c): f"{r[c]:.4f} ({r[c + ' ratio']:.3f})" if r[c] is not None else None
                    for c in coins
                },
                "mean": f"**{r['mean']:.4f} ({r['mean ratio']:.3f})**",
                "wins": f"{r['beats anchor']}/{len(coins)}",
            }
            for r in rs
        ]
        cols = [("row", "forecast"), *((short(c), short(c)) for c in coins)]
        L += [md_table(recs, [*cols, ("mean", "mean"), ("wins", "beats anchor")]), ""]
    L += ["## Fits per origin (chosen on validation only)", ""]
    recs = [
        {
            "until": f["until"],
            "rows": f"{f['n_train']} / {f['n_val']} / {f['n_known']}",
            "anchor": f["val_qlike_anchor"],
            "const": f["const"]["val_qlike"],
            "ridge": f"{f['ridge']['val_qlike']:.4f} (alpha {f['ridge']['alpha']:g})",
            "gbm": f"{f['gbm']['val_qlike']:.4f} ({f['gbm']['trees']} trees)",
            "s": f"{f['seconds']:.0f}",
        }
        for f in res["fits"]
    ]
    L += [
        md_table(
            recs,
            [
                ("until", "origin"),
                ("rows", "train / val / refit rows"),
                ("anchor", "val QLIKE anchor"),
                ("const", "+ constant"),
                ("ridge", "ridge"),
                ("gbm", "GBM"),
                ("s", "seconds"),
            ],
        ),
        "",
        "Validation QLIKE is on the residual target (mean RV ratio), the last "
        f"{res['val_days']} days before each origin.",
    ]
    return "\n".join(L) + "\n"


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CRYPTOVOL_LOG_LEVEL", "WARNING")
    t0 = time.perf_counter()
    import numpy as np
    import pandas as pd
    import rvnet as bench_rvnet  # benchmarks/rvnet.py: the same CoinData and origins
    from cryptovol.config import load_params
    from cryptovol.forecasters import FORECASTERS, walk_forward
    from cryptovol.rvnet import RVNet, RVNetSpec

    p = load_params()
    h = int(p["target"]["horizon"])
    coins = list(p["symbols"])
    _, data = bench_rvnet.load(coins, h)
    universe = dict(next(iter(data.values()))["realized"].universe)
    end = pd.Timestamp(min(d["realized"].returns.index[-1] for d in data.values()))
    starts = fold_starts(p, end)
    test_o, _ = bench_rvnet.origins(starts, h, end)
    if args.quick:
        test_o = test_o[-1:]
    rv_kw = dict(p["rv_net"]) | (QUICK_RVNET if args.quick else {})
    spec = RVNetSpec.from_params(rv_kw, p["evaluation"]["har_windows"])
    check = check_no_lookahead(universe, test_o[0].until, h, spec)
    print(f"no look-ahead: passed at {check['until']}", file=sys.stderr, flush=True)

    frames = {c: [] for c in coins}
    fits = []
    for o in test_o:
        f, info = origin_forecasts(universe, o.until, o.dates, h, spec, coins)
        fits.append(info)
        for c in coins:
            frames[c].append(f[c])
        print(
            f"origin {info['until']}: learners in {info['seconds']} s "
            f"(ridge alpha {info['ridge']['alpha']:g}, GBM {info['gbm']['trees']} trees)",
            file=sys.stderr,
            flush=True,
        )
    pool = FORECASTERS["rv_log_har_pool"].from_params(p)
    net = RVNet(spec)
    walk = [pool] if args.no_rvnet else [net, pool]
    anchor_diff, rv_fits = 0.0, {}
    for c in coins:
        fr = pd.concat(frames[c])
        for t in TARGETS:
            fr[f"target {t}"] = data[c][t].target.reindex(fr.index)
        rec = walk_forward(walk, data[c]["realized"], test_o)
        pv = rec.forecasts["rv_log_har_pool"].vol.reindex(fr.index)
        both = pv.notna() & fr["anchor"].notna()
        anchor_diff = max(
            anchor_diff,
            float(
                np.max(
                    np.abs(pv[both].to_numpy() / fr["anchor"][both].to_numpy() - 1.0), initial=0.0
                )
            ),
        )
        if not args.no_rvnet:
            fr["rv_net"] = rec.forecasts["rv_net"].vol.reindex(fr.index)
            rv_fits = {str(f["until"])[:10]: f["params"].get("rv_net") for f in rec.fits}
        frames[c] = fr
        print(f"{c}: scored at {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    if anchor_diff > 1e-6:
        raise BenchmarkError(f"the anchor rebuilt here differs from rv_log_har_pool: {anchor_diff}")
    per, days = scores(frames)
    rows = [r for r in ROWS if not (args.no_rvnet and r == "rv_net")]
    run_s = time.perf_counter() - t0
    note = (
        "not run (--no-rvnet); see benchmarks/README.md for its documented ratios"
        if args.no_rvnet
        else f"its Forecaster on the same origins, spec {rv_kw}"
    )
    res = {
        "quick": args.quick,
        "horizon": h,
        "coins": coins,
        "universe": list(universe),
        "folds": [
            {
                "until": str(o.until.date()),
                "start": str(o.dates[0].date()),
                "end": str(o.dates[-1].date()),
            }
            for o in test_o
        ],
        "rows": tables(per, rows),
        "per_coin": per,
        "days": days,
        "fits": fits,
        "rv_net_fits": rv_fits,
        "rvnet_note": note,
        "no_lookahead": check,
        "anchor_check": anchor_diff,
        "val_days": spec.val_days,
        "gbm": GBM,
        "alphas": list(ALPHAS),
        "command": shlex.join([".venv/bin/python", "benchmarks/rvnet_residual.py", *sys.argv[1:]]),
        "run_s": run_s,
        "machine": machine_info(tensorflow=False),
    }
    name = args.name or ("rvnet_residual_quick" if args.quick else "rvnet_residual")
    write_outputs(args.out, name, res, markdown(res))
    return 0


if __name__ == "__main__":
    from _common import run_main

    run_main(main, "benchmarks/rvnet_residual.py")
