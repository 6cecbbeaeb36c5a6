"""rv_net against the HAR family on realized measures: walk-forward QLIKE on both targets.

    CRYPTOVOL_DATA_DIR=../shared/data .venv/bin/python benchmarks/rvnet.py # results/rvnet.{json,md}
    CRYPTOVOL_DATA_DIR=../shared/data .venv/bin/python benchmarks/rvnet.py --quick  # < 2 min

Test folds start 2021-12-01, 2022-12-01 and 2023-12-01 (365 days each, the last to the end of the
data); every forecaster is fitted at the fold start - 1 day (`Origin.until`) through
`cryptovol.forecasters.walk_forward`, on a `classical_data` CoinData per coin and target (daily
log returns, the close-to-close or the realized target, the coin's measures and the universe's).
Validation, for every choice: a fit at the fold start - 366 days forecasting the 365 days before
the fold start whose targets end before it. On validation only:
- the rv_net spec (from `CANDIDATES`): least mean realized-target QLIKE over folds and coins;
- per coin, fold and target, the best classical forecaster of the HAR family (`CLASSICAL`).
Scored per coin on the test dates where every forecast and both targets exist; the mean over coins
is the mean of the coins' mean QLIKE.
"""

from __future__ import annotations

import argparse, json, logging, os, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
COINS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "DOGE-USD")
FOLD_STARTS = ("2021-12-01", "2022-12-01", "2023-12-01")
CLASSICAL = ("rv_log_har_pool", "rv_harq_pool", "rv_log_har", "rv_harq", "har")
TARGETS = ("realized", "close_to_close")
CANDIDATES = {  # rv_net specs compared on validation (RVNetSpec keywords); 3 seeds won: the default
    "1 seed (GRU 16, L 30)": {"seeds": 1},
    "L 14": {"lookback": 14, "seeds": 1},
    "learning rate 3e-4": {"learning_rate": 3e-4, "seeds": 1},
    "3 seeds": {"seeds": 3},
}
QUICK = {
    "coins": ("BTC-USD", "ETH-USD"),
    "folds": ("2023-12-01",),
    "candidates": {
        "quick (GRU 8, 3 epochs)": {"units": 8, "dense_units": 8, "epochs": 3, "seeds": 1}
    },
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 fold, 2 coins, a tiny spec (< 2 min)")
    ap.add_argument("--horizon", type=int, default=7)
    ap.add_argument("--out", default=str(RESULTS))
    return ap.parse_args(argv)


def load(coins, h: int):
    "The universe's measures and, per coin, the two CoinData (one per target)."
    from cryptovol.config import load_params
    from cryptovol.data import load_prices
    from cryptovol.features import forward_realized_vol, log_returns
    from cryptovol.forecasters import classical_data
    from cryptovol.har import load_universe_measures
    from cryptovol.realized import realized_target

    p = load_params()
    universe = load_universe_measures(p)
    data = {}
    for c in coins:
        prices = load_prices(c, params=p)
        r = log_returns(prices["Close"])
        tg = {
            "realized": realized_target(universe[c], h).reindex(r.index),
            "close_to_close": forward_realized_vol(prices, h, "close_to_close"),
        }
        data[c] = {
            t: classical_data(r, h, tg[t], symbol=c, measures=universe[c], universe=universe)
            for t in TARGETS
        }
    return p, data


def origins(starts, h: int, end):
    "Test and validation origins per fold."
    import pandas as pd
    from cryptovol.forecasters import Origin

    test, val = [], []
    for k, s in enumerate(starts):
        s = pd.Timestamp(s)
        e = min(s + pd.Timedelta(days=364), end) if k < len(starts) - 1 else end
        test.append(Origin(k, s - pd.Timedelta(days=1), pd.date_range(s, e)))
        val.append(
            Origin(
                k,
                s - pd.Timedelta(days=366),
                pd.date_range(s - pd.Timedelta(days=365), s - pd.Timedelta(days=h + 1)),
            )
        )
    return test, val


def fold_losses(rec, both_ok=None):
    "Per date QLIKE of every forecaster, with the fold."
    out = rec.losses("qlike")
    out["fold"] = rec.fold
    return out


def run_walk(forecasters, data, origins_):
    "coin -> target -> TrackRecord."
    from cryptovol.forecasters import walk_forward

    return {
        c: {t: walk_forward(forecasters, d[t], origins_) for t in TARGETS} for c, d in data.items()
    }


def choose_spec(p, data, val_origins, candidates) -> tuple[str, dict]:
    "The rv_net candidate with the least mean realized-target validation QLIKE (folds, coins)."
    from cryptovol.rvnet import RVNet, RVNetSpec

    windows = p["evaluation"]["har_windows"]
    scores = {}
    for label, kw in candidates.items():
        net = RVNet(RVNetSpec.from_params(kw, windows))
        t0 = time.perf_counter()
        per = []
        for c, d in data.items():
            rec = run_walk([net], {c: d}, val_origins)[c]["realized"]
            per.append(float(rec.losses("qlike")["rv_net"].mean()))
        scores[label] = {"val_qlike": sum(per) / len(per), "seconds": time.perf_counter() - t0}
        print(f"  candidate {label}: validation QLIKE {scores[label]['val_qlike']:.4f}", flush=True)
    best = min(scores, key=lambda k: scores[k]["val_qlike"])
    return best, scores


def choose_classical(data, val_origins) -> dict:
    "coin -> target -> fold -> the classical forecaster with the least validation QLIKE."
    from cryptovol.forecasters import FORECASTERS

    recs = run_walk([FORECASTERS[n].from_params(_params()) for n in CLASSICAL], data, val_origins)
    out = {}
    for c, by_t in recs.items():
        out[c] = {}
        for t, rec in by_t.items():
            q = fold_losses(rec).dropna().groupby("fold").mean()
            out[c][t] = {int(k): str(row.idxmin()) for k, row in q.iterrows()}
    return out


def _params():
    from cryptovol.config import load_params

    return load_params()


def score(recs, chosen) -> dict:
    "coin -> target -> {forecaster: mean QLIKE, 'best classical', coverage, n} on common dates."
    out = {}
    for c, by_t in recs.items():
        common = None
        for rec in by_t.values():
            ok = rec.frame().notna().all(axis=1)
            common = ok if common is None else common & ok
        out[c] = {}
        for t, rec in by_t.items():
            L = rec.losses("qlike")[common]
            fold = rec.fold[common]
            best = L.apply(lambda row: row[chosen[c][t][int(fold[row.name])]], axis=1)
            lo, hi = rec.forecasts["rv_net"].interval(0.8)
            a = rec.actual[common]
            cover = float(((a >= lo[common]) & (a <= hi[common])).mean())
            out[c][t] = {
                **{n: float(L[n].mean()) for n in L},
                "best classical": float(best.mean()),
                "coverage80 rv_net": cover,
                "n": int(common.sum()),
            }
    return out


def summary_md(res: dict, args) -> str:
    "The Markdown tables of the results."
    lines = [
        f"# rv_net walk-forward (h = {args.horizon}{', QUICK' if args.quick else ''})",
        "",
        f"Spec chosen on validation: **{res['chosen_spec']}** "
        f"({json.dumps(res['candidates'][res['chosen_spec']]['spec'])})",
        "",
        "| candidate | validation QLIKE (realized) | seconds |",
        "|---|---:|---:|",
    ]
    for k, v in res["candidates"].items():
        lines.append(f"| {k} | {v['val_qlike']:.4f} | {v['seconds']:.0f} |")
    names = ["rv_net", *CLASSICAL, "best classical"]
    for t in TARGETS:
        sc = {c: res["scores"][c][t] for c in res["scores"]}
        lines += [
            "",
            f"## Target: {t}",
            "",
            "| coin | days | " + " | ".join(names) + " | rv_net / best | rv_net / anchor |"
            " 80% cover |",
            "|---|---:|" + "---:|" * (len(names) + 3),
        ]
        for c, s in sc.items():
            lines.append(
                f"| {c} | {s['n']} | "
                + " | ".join(f"{s[n]:.4f}" for n in names)
                + f" | {s['rv_net'] / s['best classical']:.3f}"
                f" | {s['rv_net'] / s['rv_log_har_pool']:.3f} | {s['coverage80 rv_net']:.2f} |"
            )
        m = {n: sum(s[n] for s in sc.values()) / len(sc) for n in names}
        lines.append(
            "| **mean** | | "
            + " | ".join(f"{m[n]:.4f}" for n in names)
            + f" | **{m['rv_net'] / m['best classical']:.3f}** | "
            f"{m['rv_net'] / m['rv_log_har_pool']:.3f} | |"
        )
        beats = sum(s["rv_net"] < s["rv_log_har_pool"] for s in sc.values())
        lines.append(
            f"\nrv_net beats its anchor (rv_log_har_pool) on {beats}/{len(sc)} coins; "
            f"beats the best classical on "
            f"{sum(s['rv_net'] < s['best classical'] for s in sc.values())}/{len(sc)}."
        )
    lines += [
        "",
        "Validation-chosen best classical per coin/target/fold: "
        + json.dumps(res["chosen_classical"]),
        "",
        "rv_net test fits: " + json.dumps(res["fits"]),
    ]
    return "\n".join(lines) + "\n"


def test_fit_info() -> list:
    "Summary of every rv_net fit still in the memo (the test origins')."
    from cryptovol.rvnet import _MEMO

    return [
        {
            "until": str(k[1].date()),
            "val_qlike": round(r.summary["val_qlike"], 4),
            "val_qlike_anchor": round(r.summary["val_qlike_anchor"], 4),
            "best_epochs": [m["best_epoch"] for m in r.summary["members"]],
            "samples_per_s": [m["samples_per_s"] for m in r.summary["members"]],
            "fit_seconds": r.summary["fit_seconds"],
        }
        for k, r in _MEMO.items()
    ]


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("cryptovol.intraday").setLevel(logging.WARNING)
    import pandas as pd

    coins = QUICK["coins"] if args.quick else COINS
    starts = QUICK["folds"] if args.quick else FOLD_STARTS
    candidates = QUICK["candidates"] if args.quick else CANDIDATES
    t0 = time.perf_counter()
    p, data = load(coins, args.horizon)
    end = min(d["realized"].returns.index[-1] for d in data.values())
    test_o, val_o = origins(starts, args.horizon, pd.Timestamp(end))
    print(f"data loaded in {time.perf_counter() - t0:.0f} s; choosing the rv_net spec", flush=True)
    label, cand = choose_spec(p, data, val_o, candidates)
    chosen_classical = choose_classical(data, val_o)
    from cryptovol.forecasters import FORECASTERS
    from cryptovol.rvnet import RVNet, RVNetSpec, clear_memo

    clear_memo()
    spec = RVNetSpec.from_params(candidates[label], p["evaluation"]["har_windows"])
    fcs = [RVNet(spec), *[FORECASTERS[n].from_params(p) for n in CLASSICAL]]
    print(f"chose {label}; test walk-forward", flush=True)
    recs = run_walk(fcs, data, test_o)
    for k in cand:
        cand[k]["spec"] = candidates[k]
    res = {
        "quick": args.quick,
        "horizon": args.horizon,
        "coins": list(coins),
        "folds": [str(o.dates[0].date()) for o in test_o],
        "chosen_spec": label,
        "candidates": cand,
        "chosen_classical": chosen_classical,
        "fits": test_fit_info(),
        "scores": score(recs, chosen_classical),
        "seconds": time.perf_counter() - t0,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "rvnet_quick" if args.quick else "rvnet"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str))
    (out / f"{stem}.md").write_text(summary_md(res, args))
    print(summary_md(res, args))
    print(f"{time.perf_counter() - t0:.0f} s; wrote {out / stem}.{{json,md}}")
    return res


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
