"""Is there anything left to learn? Ridge and gradient boosting on the residuals of an anchor
forecaster.

    # -> results/residual_learning.{json,md}
    .venv/bin/python benchmarks/residual_learning.py
    # first coin, last fold: a smoke test, ~20 s
    .venv/bin/python benchmarks/residual_learning.py --quick

A diagnostic for issue #22: before a network is asked to beat the best classical forecasters, do
two plain learners find anything in the residuals of those forecasters? For the coins of
params.yaml `symbols`, h = `target.horizon` and the project's walk-forward folds
(`cryptovol.backtest.plan_folds`; test days fold.start..fold.end, origin = fold.start - 1 day),
two anchors of `cryptovol.forecasters` are fitted at each origin: `rv_harq` (HARQ on hourly
realized measures, `cryptovol.har`) and `har_log` (the daily log-HAR on close-to-close returns).
On the training rows (every t with t + h <= origin and everything finite) the residual
log(target_t) - log(anchor_t) is regressed on features known at the close of t:

- log anchor_t;
- the realized measures of day t (`cryptovol.realized`, short days on a 24-hour scale) and over
  the last 7 and 30 days: log RV, the RS-/RV share, the jump share jump_sig/RV, log RQ;
- daily returns: |r_t|, min(r_t, 0), log close-to-close vol and log Garman-Klass vol over 7 and 30
  days; volume: log(volume_t / its 30-day mean);
- cross-coin: BTC's log RV of day t and the mean log RV of the `symbols` coins on day t.

Beside them, as a reference only, `rv_log_har` alone (log-HAR on realized variance, refitted at each
origin): the best single RV-HAR of `benchmarks/har_realized.py`, picked there in hindsight.

Learners: a standardising pipeline into `RidgeCV` (alpha by time-ordered CV on the training rows,
`TimeSeriesSplit` with an h-day gap) and `HistGradientBoostingRegressor` (depth 3, at most 300
trees, `random_state=0`; the number of trees chosen on the chronological last 20% of the training
rows after an h-day purge, then refitted on all of them). A control, "anchor + constant", adds only
the mean training residual: what a level recalibration alone gives. Each corrected forecast is
anchor * exp(prediction + c), with c one of 0, s2/2, s2 (s2 the learner's training residual
variance) chosen by QLIKE on the training rows (the rule fixed in advance). Rows marked "QLIKE
shift" are the same fits with c = log mean(exp(2 e)) / 2 over the training residuals e, the
constant that minimises training QLIKE (no log-normal assumption): a robustness check. A learner is
fitted per anchor and per target, to the residuals on the target it is scored on.

Scored with `cryptovol.evaluate.qlike_loss` against the close-to-close target
(`forward_realized_vol`) and the realized target (`realized_target`), per coin on the SAME dates:
the test days where every forecast and both targets exist. Mean over coins = mean of each coin's
mean QLIKE. No look-ahead is asserted: every training row ends by the origin, and for one fold all
prices and realized measures after the origin (of every coin) are perturbed and the training matrix
and response must come out identical. Nothing is chosen on test data.
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

ANCHORS = ("rv_harq", "har_log")
ANCHOR_LABELS = {
    "rv_harq": "HARQ on realized measures (`rv_harq`)",
    "har_log": "daily log-HAR (`har_log`)",
}
TARGETS = ("close_to_close", "realized")
LEARNERS = ("const", "ridge", "gbm")
LEARNER_LABELS = {
    "anchor": "anchor alone",
    "const": "anchor + constant",
    "ridge": "ridge-corrected",
    "gbm": "GBM-corrected",
}
# the same fits with the shift c that minimises training QLIKE (a robustness row, not the rule
# chosen in advance)
LEARNER_LABELS |= {
    f"{k}_q": f"{v}, QLIKE shift" for k, v in LEARNER_LABELS.items() if k != "anchor"
}
SCORED = ("anchor", *LEARNERS, *(f"{k}_q" for k in LEARNERS))
# not an anchor: the best single RV-HAR of benchmarks/har_realized.py (picked in hindsight)
REFERENCE = "rv_log_har"
LEARNER_LABELS["reference"] = (
    f"reference: `{REFERENCE}` alone (no learner; best RV-HAR in hindsight)"
)
WINDOWS = (7, 30)
TAIL_FRAC = 0.2  # chronological tail of the training rows for the GBM's early stopping
MIN_TRAIN_ROWS = 200
GBM = dict(
    max_depth=3,
    learning_rate=0.05,
    max_iter=300,
    min_samples_leaf=40,
    l2_regularization=1.0,
    max_features=0.8,
)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--horizon", type=int, help="h, days ahead (default: params.yaml target.horizon)"
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="the first coin and the last fold only (checks the script; not a result)",
    )
    add_common_args(ap, "residual_learning")
    return ap.parse_args(argv)


# ------------------------------------------------------------------ inputs and features
def load_inputs(symbol: str, p: dict, h: int) -> dict:
    "One coin's daily prices, realized measures, CoinData, both targets and walk-forward folds."
    import pandas as pd
    from cryptovol.backtest import plan_folds, window_dates
    from cryptovol.features import _read_inputs
    from cryptovol.har import load_measures

    prices, fng = _read_inputs(symbol, p)
    folds, skipped = plan_folds(window_dates(prices, fng, p), p)
    if skipped:
        raise BenchmarkError(f"{symbol}: fold(s) {skipped} skipped by plan_folds")
    measures = load_measures(symbol, p)
    measures.index = pd.DatetimeIndex(measures.index)
    return {"symbol": symbol, "prices": prices, "measures": measures, "folds": folds}


def derive(d: dict, h: int) -> dict:
    "CoinData and both targets from a coin's prices and measures (re-run on perturbed inputs)."
    from cryptovol.features import daily_variance, forward_realized_vol, log_returns
    from cryptovol.forecasters import classical_data
    from cryptovol.realized import realized_target

    prices, measures = d["prices"], d["measures"]
    cc = forward_realized_vol(prices, h, "close_to_close")
    data = classical_data(
        log_returns(prices["Close"]),
        h,
        cc,
        range_var=daily_variance(prices, "garman_klass"),
        symbol=d["symbol"],
        measures=measures,
    )
    rt = realized_target(measures, h)
    rt.index = rt.index.rename(None)
    return {"data": data, "targets": {"close_to_close": cc, "realized": rt.reindex(prices.index)}}


def _log(x):
    import numpy as np

    return np.log(x.where(x > 0))


def daily_measures(measures):
    """The realized inputs on a full daily calendar, short days on a 24-hour scale
    (`forecast_measures`)."""
    from cryptovol.har import daily_inputs, forecast_measures

    x = daily_inputs(forecast_measures(measures))
    x.index = x.index.rename(None)
    return x


def cross_coin(panel: dict):
    """Per day: BTC's log RV and the mean log RV over the coins of `panel` (those with a value that
    day)."""
    import pandas as pd

    lrv = pd.DataFrame({s: _log(daily_measures(m)["rv"]) for s, m in panel.items()})
    btc = next((s for s in lrv if s.upper().startswith("BTC")), None)
    if btc is None:
        raise BenchmarkError("the cross-coin features need BTC among params.yaml `symbols`")
    return pd.DataFrame({"btc_log_rv": lrv[btc], "mean_log_rv": lrv.mean(axis=1)})


def features(d: dict, cross):
    """Per date t of the coin's prices: every feature but the anchor, from data up to the close of t
    only."""
    import numpy as np
    import pandas as pd
    from cryptovol.features import daily_variance, log_returns
    from cryptovol.forecasters import har_components, rolling_vol_components

    prices = d["prices"]
    x = daily_measures(d["measures"])
    share = lambda num, w: (
        num.rolling(w, min_periods=int(0.8 * w)).sum()
        / x["rv"].rolling(w, min_periods=int(0.8 * w)).sum()
    )
    mean = lambda s, w: s.rolling(w, min_periods=int(0.8 * w)).mean()
    f = {
        "log_rv": _log(x["rv"]),
        "neg_share": x["rs_neg"] / x["rv"].where(x["rv"] > 0),
        "jump_share": x["jump_sig"] / x["rv"].where(x["rv"] > 0),
        "log_rq": _log(x["rq"]),
    }
    for w in WINDOWS:
        f |= {
            f"log_rv_{w}": _log(mean(x["rv"], w)),
            f"neg_share_{w}": share(x["rs_neg"], w),
            f"jump_share_{w}": share(x["jump_sig"], w),
            f"log_rq_{w}": _log(mean(x["rq"], w)),
        }
    out = pd.DataFrame(f).reindex(prices.index)
    r = log_returns(prices["Close"])
    out["abs_r"], out["neg_r"] = r.abs(), r.clip(upper=0.0)
    cc = har_components(r, WINDOWS)
    gk = rolling_vol_components(daily_variance(prices, "garman_klass"), WINDOWS, "gk")
    for w in WINDOWS:
        out[f"log_cc_vol_{w}"], out[f"log_gk_vol_{w}"] = _log(cc[f"rv_{w}"]), _log(gk[f"gk_{w}"])
    v = prices["Volume"].astype("float64").where(prices["Volume"] > 0)
    out["log_volume_change"] = np.log(v / v.rolling(30, min_periods=24).mean())
    return out.join(cross.reindex(prices.index))


def anchor_series(names, data, origin) -> dict:
    "Each anchor fitted on what was known at the close of `origin`, forecast at every date."
    from cryptovol import forecasters as fc

    fits = fc.fit_all(fc.make_forecasters(None, list(names)), data, origin)
    missing = [n for n in names if n not in fits]
    if missing:
        raise BenchmarkError(
            f"{data.symbol}: anchor(s) {missing} do not apply (no realized measures?)"
        )
    return {n: fits[n].series(data).reindex(data.returns.index) for n in names}


def training_matrix(feats, anchor, target, origin, h: int):
    """X (features + log anchor) and residual y on the rows t with t + h <= origin where everything
    is finite."""
    import numpy as np
    import pandas as pd

    X = feats.assign(log_anchor=np.log(anchor.where(anchor > 0)))
    y = np.log(target.where(target > 0)) - X["log_anchor"]
    ends = X.index + pd.Timedelta(days=h)
    ok = (ends <= origin) & np.isfinite(X).all(axis=1).to_numpy() & np.isfinite(y).to_numpy()
    Xt, yt = X[ok], y[ok]
    assert (Xt.index + pd.Timedelta(days=h) <= origin).all(), (
        "a training target ends after the origin"
    )
    return X, Xt, yt


# ------------------------------------------------------------------ learners
def _qlike(a, f) -> float:
    import numpy as np
    from cryptovol.evaluate import qlike_loss

    return float(np.mean(qlike_loss(a, f)))


def choose_shift(resid, yt) -> tuple[float, str]:
    """c in (0, s2/2, s2) with the least QLIKE of exp(y - resid + c) against exp(y) on the training
    rows."""
    import numpy as np

    s2 = float(np.var(resid, ddof=1))
    a, base = np.exp(yt), np.exp(yt - resid)  # target / anchor, prediction-corrected ratio
    opts = {"0": 0.0, "s2/2": s2 / 2, "s2": s2}
    q = {k: _qlike(a, base * np.exp(c)) for k, c in opts.items()}
    k = min(q, key=q.get)
    return opts[k], k


def qlike_shift(resid) -> float:
    """The constant c minimising training QLIKE of exp(prediction + c): c = log mean(exp(2 e)) / 2,
    e the residuals."""
    import numpy as np

    return float(0.5 * np.log(np.mean(np.exp(2 * np.asarray(resid)))))


def fit_ridge(Xt, yt, h: int):
    import numpy as np
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import TimeSeriesSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    m = make_pipeline(
        StandardScaler(),
        RidgeCV(
            alphas=np.logspace(-2, 4, 13),
            scoring="neg_mean_squared_error",
            cv=TimeSeriesSplit(n_splits=5, gap=h),
        ),
    )
    m.fit(Xt.to_numpy(), yt.to_numpy())
    return m, {"alpha": float(m[-1].alpha_)}


def fit_gbm(Xt, yt, h: int):
    """Trees chosen on the chronological tail (after an h-row purge), then refitted on every
    training row."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor

    n = len(Xt)
    cut = int(n * (1 - TAIL_FRAC))
    X, y = Xt.to_numpy(), yt.to_numpy()
    head = HistGradientBoostingRegressor(**GBM, early_stopping=False, random_state=0).fit(
        X[: cut - h], y[: cut - h]
    )
    mse = [float(np.mean((p - y[cut:]) ** 2)) for p in head.staged_predict(X[cut:])]
    best = int(np.argmin(mse)) + 1
    m = HistGradientBoostingRegressor(
        **{**GBM, "max_iter": best}, early_stopping=False, random_state=0
    ).fit(X, y)
    return m, {
        "trees": best,
        "tail_mse": mse[best - 1],
        "tail_mse_zero": float(np.mean(y[cut:] ** 2)),
    }


class _Const:
    def __init__(self, v):
        self.v = float(v)

    def predict(self, X):
        return __import__("numpy").full(len(X), self.v)


def fit_learner(name: str, Xt, yt, h: int):
    if name == "const":
        return _Const(yt.mean()), {}
    return (fit_ridge if name == "ridge" else fit_gbm)(Xt, yt, h)


def corrected(model, shift, X, anchor):
    "anchor * exp(prediction + shift) where every feature is finite; NaN elsewhere."
    import numpy as np
    import pandas as pd

    ok = np.isfinite(X).all(axis=1).to_numpy()
    out = pd.Series(np.nan, index=X.index)
    if ok.any():
        out[ok] = anchor[ok].to_numpy() * np.exp(model.predict(X[ok].to_numpy()) + shift)
    return out


# ------------------------------------------------------------------ one fold
def fold_forecasts(d: dict, derived: dict, feats, fold, h: int):
    "The fold's test frame (anchors, corrected forecasts, both targets) and a record of every fit."
    import pandas as pd

    origin = fold.start - pd.Timedelta(days=1)
    dates = pd.date_range(fold.start, fold.end, freq="D")
    anchors = anchor_series((*ANCHORS, REFERENCE), derived["data"], origin)
    out, fits = {f"target {t}": derived["targets"][t].reindex(dates) for t in TARGETS}, []
    out[f"{REFERENCE} | anchor"] = anchors[REFERENCE].reindex(dates)
    for a in ANCHORS:
        out[f"{a} | anchor"] = anchors[a].reindex(dates)
        for t in TARGETS:
            X, Xt, yt = training_matrix(feats, anchors[a], derived["targets"][t], origin, h)
            if len(Xt) < MIN_TRAIN_ROWS:
                raise BenchmarkError(
                    f"{d['symbol']} fold {fold.k}: {len(Xt)} complete training rows for {a}/{t}"
                )
            for learner in LEARNERS:
                model, info = fit_learner(learner, Xt, yt, h)
                resid = yt.to_numpy() - model.predict(Xt.to_numpy())
                shift, which = choose_shift(resid, yt.to_numpy())
                cq = qlike_shift(resid)
                Xd, ad = X.reindex(dates), anchors[a].reindex(dates)
                out[f"{a} | {t} | {learner}"] = corrected(model, shift, Xd, ad)
                out[f"{a} | {t} | {learner}_q"] = corrected(model, cq, Xd, ad)
                fits.append(
                    {
                        "symbol": d["symbol"],
                        "fold": fold.k,
                        "anchor": a,
                        "target": t,
                        "learner": learner,
                        "n_train": len(Xt),
                        "first_row": str(Xt.index[0].date()),
                        "last_row": str(Xt.index[-1].date()),
                        "shift": which,
                        "c": shift,
                        "c_qlike": cq,
                        "s2": float(resid.var(ddof=1)),
                        **info,
                    }
                )
    frame = pd.DataFrame(out, index=dates)
    frame["fold"] = fold.k
    return frame, fits


def perturbed(coins: dict, origin, seed: int = 0) -> dict:
    """Copies of every coin's prices and measures with every value after `origin` scaled by random
    factors."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for s, d in coins.items():
        p, m = d["prices"].copy(), d["measures"].copy()
        late = p.index > origin
        for c in ("Open", "High", "Low", "Close", "Volume"):
            p.loc[late, c] = p.loc[late, c] * np.exp(rng.normal(0, 0.3, late.sum()))
        late = m.index > origin
        for c in ("rv", "bpv", "rs_neg", "rs_pos", "jump", "jump_sig", "rq", "tq"):
            m.loc[late, c] = m.loc[late, c] * np.exp(rng.normal(0, 0.5, late.sum()))
        out[s] = {**d, "prices": p, "measures": m}
    return out


def check_no_lookahead(coins: dict, symbol: str, fold, h: int) -> dict:
    """Perturb every coin's data after the fold's origin: the training matrix and response of every
    anchor and target must be identical, and the test-period features must change (the perturbation
    bites)."""
    import numpy as np
    import pandas as pd

    origin = fold.start - pd.Timedelta(days=1)
    mats = []
    for c in (coins, perturbed(coins, origin)):
        d = c[symbol]
        der = derive(d, h)
        feats = features(d, cross_coin({s: x["measures"] for s, x in c.items()}))
        anchors = anchor_series(ANCHORS, der["data"], origin)
        mats.append(
            {
                (a, t): training_matrix(feats, anchors[a], der["targets"][t], origin, h)
                for a in ANCHORS
                for t in TARGETS
            }
        )
    n = {}
    for key, (X0, Xt0, yt0) in mats[0].items():
        X1, Xt1, yt1 = mats[1][key]
        assert Xt0.index.equals(Xt1.index) and list(Xt0) == list(Xt1), (
            f"{key}: training rows differ"
        )
        np.testing.assert_allclose(
            Xt0.to_numpy(), Xt1.to_numpy(), rtol=1e-12, atol=0, err_msg=f"{key}: X changed"
        )
        np.testing.assert_allclose(
            yt0.to_numpy(), yt1.to_numpy(), rtol=1e-12, atol=0, err_msg=f"{key}: y changed"
        )
        late = X0.index > origin
        assert not np.allclose(X0[late].fillna(0).to_numpy(), X1[late].fillna(0).to_numpy()), (
            "perturbation had no effect"
        )
        n["/".join(key)] = len(Xt0)
    return {
        "symbol": symbol,
        "fold": fold.k,
        "origin": str(origin.date()),
        "training_rows": n,
        "passed": True,
    }


# ------------------------------------------------------------------ scoring
def columns() -> list[tuple[str, str, str]]:
    "(anchor, target, learner) of every scored row, 'anchor' for the anchor alone."
    return [(a, t, lr) for a in ANCHORS for t in TARGETS for lr in (*SCORED, "reference")]


def _col(a, t, lr):
    if lr == "reference":
        return f"{REFERENCE} | anchor"
    return f"{a} | anchor" if lr == "anchor" else f"{a} | {t} | {lr}"


def scores(frames: dict) -> tuple[dict, dict]:
    """coin -> (anchor, target, learner) -> mean QLIKE on the coin's common dates; coin -> days
    scored."""
    import numpy as np
    import pandas as pd

    per_coin, days = {}, {}
    for s, parts in frames.items():
        rec = pd.concat(parts)
        cols = sorted({_col(*c) for c in columns()}) + [f"target {t}" for t in TARGETS]
        ok = np.isfinite(rec[cols]).all(axis=1) & (rec[cols] > 0).all(axis=1)
        days[s] = int(ok.sum())
        per_coin[s] = {
            "|".join(c): _qlike(rec.loc[ok, f"target {c[1]}"], rec.loc[ok, _col(*c)])
            for c in columns()
        }
    return per_coin, days


def tables(per_coin: dict) -> list[dict]:
    """One row per anchor, target and learner: QLIKE per coin, mean over coins, % change vs the
    anchor, coins improved."""
    import numpy as np

    rows = []
    for a, t, lr in columns():
        key, ref = f"{a}|{t}|{lr}", f"{a}|{t}|anchor"
        vals = {s: q[key] for s, q in per_coin.items()}
        mean, mref = (
            float(np.mean(list(vals.values()))),
            float(np.mean([q[ref] for q in per_coin.values()])),
        )
        rows.append(
            {
                "anchor": a,
                "target": t,
                "learner": lr,
                "row": LEARNER_LABELS[lr],
                **vals,
                "mean": mean,
                "pct": None if lr == "anchor" else 100 * (mean / mref - 1),
                "improves": None
                if lr == "anchor"
                else (
                    f"{sum(per_coin[s][key] < per_coin[s][ref] for s in per_coin)}/{len(per_coin)}"
                ),
            }
        )
    return rows


def markdown(rows, days, folds, fits, check, h, run_s, cmd, machine, quick) -> str:
    from collections import Counter

    coins = list(days)
    fold_txt = ", ".join(f"{f.start.date()}..{f.end.date()}" for f in folds)
    trees = [f["trees"] for f in fits if f["learner"] == "gbm"]
    alphas = Counter(f"{f['alpha']:g}" for f in fits if f["learner"] == "ridge")
    shifts = {lr: Counter(f["shift"] for f in fits if f["learner"] == lr) for lr in LEARNERS}
    lines = [
        f"# Residual learning on two anchors (h = {h}, "
        f"walk-forward){' — QUICK, not a result' if quick else ''}",
        "",
        f"- command: `{cmd}`",
        f"- folds (cryptovol.backtest.plan_folds): {fold_txt}; anchors and learners "
        "refitted at each origin (fold start - 1 day) on rows whose target ends by it",
        f"- coins: {', '.join(coins)}; days scored per coin (the same for every row and "
        "both targets): " + ", ".join(f"{s} {n}" for s, n in days.items()),
        "- QLIKE (`cryptovol.evaluate.qlike_loss`); mean = mean over coins of each coin's mean; "
        "% = change of the mean vs the anchor alone (< 0: better); improves = coins where "
        "it beats the anchor",
        f"- no look-ahead check ({check['symbol']} fold {check['fold']}, origin "
        f"{check['origin']}): every coin's "
        "prices and measures after the origin perturbed, training matrices unchanged: "
        + ("passed" if check["passed"] else "FAILED"),
        "- ridge alphas chosen: "
        f"{
            ', '.join(f'{k} x{v}' for k, v in sorted(alphas.items(), key=lambda kv: float(kv[0])))
        }; "
        f"GBM trees chosen: median {sorted(trees)[len(trees) // 2]}, range "
        f"{min(trees)}..{max(trees)}",
        "- shift c chosen on training rows: "
        + "; ".join(
            f"{LEARNER_LABELS[lr]}: " + ", ".join(f"{k} x{v}" for k, v in shifts[lr].most_common())
            for lr in LEARNERS
        )
        + '; rows "QLIKE shift": c = log mean(exp(2 e)) / 2 over the training residuals e',
        f"- run time {run_s:.1f} s",
        "",
    ]
    cols = [
        ("row", "forecast"),
        *[(s, s) for s in coins],
        ("mean", "mean"),
        ("pct", "% vs anchor"),
        ("improves", "coins improved"),
    ]
    for a in ANCHORS:
        for t in TARGETS:
            sub = [r for r in rows if r["anchor"] == a and r["target"] == t]
            lines += [
                f"## Anchor {ANCHOR_LABELS[a]}, {t.replace('_', '-')} target",
                "",
                md_table(sub, cols, digits=3),
                "",
            ]
    return "\n".join([*lines, machine_markdown(machine)])


def main(argv=None) -> int:
    args = parse_args(argv)
    root = make_root(args.workdir, parse_set(args.set), prefix="cryptovol-residual-")
    configure_env(root, args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR"), args.verbose)
    t0 = time.perf_counter()
    try:
        from cryptovol.config import get_params

        p = get_params()
        h = args.horizon or int(p["target"]["horizon"])
        coins = {s: load_inputs(s, p, h) for s in p["symbols"]}
        scored = list(coins)[:1] if args.quick else list(coins)
        cross = cross_coin({s: d["measures"] for s, d in coins.items()})
        folds = coins[scored[0]]["folds"]
        if any(
            [(f.start, f.end) for f in coins[s]["folds"]] != [(f.start, f.end) for f in folds]
            for s in scored
        ):
            raise BenchmarkError("the coins' fold calendars differ")
        if args.quick:
            folds = folds[-1:]
        check = check_no_lookahead(coins, scored[0], folds[0], h)
        print(f"no look-ahead: passed on {check['symbol']} fold {check['fold']}", file=sys.stderr)
        frames, fits = {s: [] for s in scored}, []
        for s in scored:
            d = coins[s]
            der, feats = derive(d, h), features(d, cross)
            for fold in folds:
                fr, fi = fold_forecasts(d, der, feats, fold, h)
                frames[s].append(fr)
                fits += fi
            print(
                f"{s}: {len(folds)} fold(s) done at {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )
        per_coin, days = scores(frames)
        rows = tables(per_coin)
    finally:
        release_root(root, args)
    run_s = time.perf_counter() - t0
    cmd = shlex.join([".venv/bin/python", "benchmarks/residual_learning.py", *sys.argv[1:]])
    machine = machine_info(tensorflow=False)
    md = markdown(rows, days, folds, fits, check, h, run_s, cmd, machine, args.quick)
    write_outputs(
        args.out,
        args.name or ("residual_learning_quick" if args.quick else "residual_learning"),
        {
            "rows": rows,
            "per_coin": per_coin,
            "days": days,
            "fits": fits,
            "no_lookahead": check,
            "folds": [f.as_dict() for f in folds],
            "features": list(feats.columns) + ["log_anchor"],
            "gbm": GBM,
            "command": cmd,
            "run_s": run_s,
            "quick": args.quick,
            "machine": machine,
        },
        md,
    )
    return 0


if __name__ == "__main__":
    run_main(main, "benchmarks/residual_learning.py")
