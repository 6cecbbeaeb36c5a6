"""Walk-forward backtest: folds by dates, refits at each origin, the joined track record, the Model
Confidence Set."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cryptovol import backtest as bt
from cryptovol.config import DataError, load_params, with_overrides
from cryptovol.features import _read_inputs, forecast_days

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent
COINS = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "DOGE-USD"]


@pytest.fixture(scope="module")
def params():
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def inputs(mirror, params):
    """Real prices and Fear & Greed of the default coins (the raw cache when built, else the offline
    folder)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
        return {s: _read_inputs(s, params) for s in COINS}


@pytest.mark.parametrize("symbol", COINS)
def test_no_fold_trains_stops_or_selects_on_its_test_dates(symbol, inputs, params):
    """By dates, for every fold: training and validation targets (max(h, K) days) end before the
    fold's first test day."""
    prices, fng = inputs[symbol]
    folds, skipped = bt.plan_folds(bt.window_dates(prices, fng, params), params)
    gap = max(params["target"]["horizon"], forecast_days(params))
    assert len(folds) >= 3 or symbol == "SOL-USD"
    for f in folds:
        ds = bt.fold_dataset(prices, fng, params, f, symbol)
        tr, va, te = (pd.DatetimeIndex(getattr(ds, f"dates_{k}")) for k in ("train", "val", "test"))
        assert tr[-1] + pd.Timedelta(days=gap) < va[0], (
            "a training target reaches the validation stretch"
        )
        assert va[-1] + pd.Timedelta(days=gap) < f.start, (
            "a validation target (early stopping, selection) reaches the fold"
        )
        assert (
            te[0] == f.start and te[-1] == f.end and (te >= f.start).all() and (te <= f.end).all()
        )
        assert pd.Timestamp(ds.scaler["fitted_on"]["end"]) < va[0], (
            "the scaler saw rows after the training period"
        )
        # the classical selection is fitted on the training period, the forecasting fit ends before
        # the origin
        _, info = bt.fold_classical(ds, params, f)
        assert pd.Timestamp(info["fit_end"]) < f.start


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scale=st.floats(0.3, 3.0), seed=st.integers(0, 10_000))
def test_baseline_parameters_at_an_origin_ignore_later_data(inputs, params, scale, seed):
    """Perturbing every price after the origin leaves every refitted classical parameter (HAR,
    log-HAR, range-HAR, GARCH) unchanged."""
    prices, fng = inputs["ETH-USD"]
    folds, _ = bt.plan_folds(bt.window_dates(prices, fng, params), params)
    f = folds[1]
    ds = bt.fold_dataset(prices, fng, params, f, "ETH-USD")
    _, ref = bt.fold_classical(ds, params, f)
    shocked = prices.copy()
    after = shocked.index >= f.start
    noise = np.exp(np.random.default_rng(seed).normal(0, 0.1, (int(after.sum()), 1)))
    ohlc = ["Open", "High", "Low", "Close"]
    shocked.loc[after, ohlc] = shocked.loc[after, ohlc].to_numpy() * noise * scale
    shocked["High"], shocked["Low"] = shocked[ohlc].max(axis=1), shocked[ohlc].min(axis=1)
    _, got = bt.fold_classical(bt.fold_dataset(shocked, fng, params, f, "ETH-USD"), params, f)
    assert got["parameters"] == ref["parameters"]
    assert (
        got["best_classical"] == ref["best_classical"]
        and got["validation_qlike"] == ref["validation_qlike"]
    )


def test_mcs_excludes_a_clearly_worse_forecaster_and_keeps_equal_ones():
    rng = np.random.default_rng(3)
    common = rng.gamma(2.0, 0.3, 800)
    losses = pd.DataFrame(
        {
            "a": common + rng.normal(0, 0.03, 800),
            "b": common + rng.normal(0, 0.03, 800),
            "worse": common + 0.5 + rng.normal(0, 0.03, 800),
        }
    )
    m = bt.model_confidence_set(losses, 0.10, 500, 10, seed=1)
    assert set(m["included"]) == {"a", "b"} and m["excluded"] == ["worse"]
    assert m["pvalues"]["worse"] < 0.10 <= min(m["pvalues"]["a"], m["pvalues"]["b"])


def test_track_record_one_forecast_per_date_no_gaps(project, params):
    """A classical-only backtest (no network): one forecast per test date, folds back to back, files
    written."""
    res = bt.backtest("SOL-USD", params, with_model=False, out=project / "bt", progress=False)
    meta, rec = bt.load_backtest("SOL-USD", project / "bt")
    assert rec.index.is_unique and len(rec) == res["n_days"]
    assert (np.diff(rec.index.values).astype("timedelta64[D]").astype(int) == 1).all()
    assert rec.index[0] == pd.Timestamp(res["folds"][0]["start"]) and rec.index[-1] == pd.Timestamp(
        res["folds"][-1]["end"]
    )
    assert sorted(rec["fold"].unique()) == [f["fold"] for f in res["folds"]]
    assert not rec.drop(columns="fold").isna().any().any()
    assert set(meta["mcs"]["included"]) <= set(meta["metrics"]) and "model" not in meta["metrics"]
    # every forecaster's intervals, counted per fold and summed: shares of the coin's days
    cov = meta["interval_coverage_all"]
    assert {"naive", "ewma", "garch", "har"} <= set(cov)
    for f, c in cov.items():
        assert c["n"] == res["n_days"] and 0 < c["80"] <= c["95"] <= 1, f
        assert c["80"] == sum(x["interval_counts"][f]["80"] for x in res["folds"]) / c["n"]
    pick = bt.validation_pick([res])["coins"]["SOL-USD"]["coverage"]
    picked = [x["interval_counts"][x["validation_pick"]] for x in res["folds"]]
    assert pick["80"] == sum(x["80"] for x in picked) / sum(x["n"] for x in picked)
    with pytest.raises(DataError, match="forecast twice"):
        bt.join_folds([rec.iloc[:10], rec.iloc[5:20]])
    with pytest.raises(DataError, match="gap"):
        bt.join_folds([rec.iloc[:10], rec.iloc[12:20]])


def test_backtest_with_a_tiny_network_and_warm_start(project, params):
    """The network path end to end on two short folds: retrained per fold, then warm-started from
    the previous fold."""
    p = with_overrides(
        params,
        **{
            "model.scope": "per_coin",
            "model.lstm_units": [8],
            "model.dropout": [0.1],
            "model.dense_units": [4],
            "model.batch_norm": False,
            "training.epochs": 2,
            "training.batch_size": 128,
            "dataset.sequence_length": 20,
            "backtest.start": "2023-11-01",
            "backtest.fold_days": 200,
            "backtest.warm_epochs": 1,
            "backtest.mcs_reps": 200,
        },
    )
    cold = bt.backtest("BTC-USD", p, out=project / "cold", progress=False)
    assert len(cold["folds"]) == 2 and all(
        f["network"]["warm_start_from"] is None for f in cold["folds"]
    )
    assert {"model", "anchor", "best_classical", "har_log", "har_range", "combo"} <= set(
        cold["metrics"]
    )
    assert set(cold["dm"]["best_classical"]) == {
        "qlike_stat",
        "qlike_pvalue",
        "se_stat",
        "se_pvalue",
    }
    assert (project / "cold" / "models" / "BTC-USD" / "fold_1" / "model.keras").is_file()
    warm = bt.backtest("BTC-USD", p, warm_start=True, out=project / "warm", progress=False)
    f0, f1 = warm["folds"]
    assert f0["network"]["warm_start_from"] is None and f1["network"]["warm_start_from"].endswith(
        "fold_0/model.keras"
    )
    assert f1["network"]["epochs_run"] == 1
    s = bt.backtest_summary(["BTC-USD"], project / "warm")
    row = s["coins"]["BTC-USD"]
    assert row["ratio"] == pytest.approx(row["model_qlike"] / row["best_classical_qlike"])
    assert (project / "warm" / "summary.md").read_text().count("| BTC-USD |") >= 2


def test_interval_counts_cover_their_level_when_the_law_is_right():
    """Actuals drawn from each forecast's own log-normal law fall inside its 80% and 95% intervals
    that often."""
    from cryptovol.forecasters import Forecast, TrackRecord

    rng, dates = np.random.default_rng(1), pd.date_range("2022-01-01", periods=4000)
    vol, s = pd.Series(0.5, index=dates), pd.Series(0.4, index=dates)
    median = np.exp(np.log(vol) - s**2)  # Forecast's mu for a log-normal law
    actual = median * np.exp(s * rng.standard_normal(len(dates)))
    actual.iloc[:10] = np.nan  # unknown actuals are not counted
    fc = {
        "right": Forecast("right", vol, s),
        "narrow": Forecast("narrow", vol, s / 3),
        "point": Forecast("point", vol, None, kind="point"),
        "banded": Forecast("banded", vol, s, kind="point"),
    }
    rec = TrackRecord(actual, pd.Series(0, index=dates), fc, [])
    c = bt.interval_counts(rec)
    assert set(c) == {"right", "narrow", "banded"} and c["right"]["n"] == len(dates) - 10
    # a point with a spread: the same law's band (not centred on the point)
    assert c["banded"] == c["right"]
    assert (
        abs(c["right"]["80"] / c["right"]["n"] - 0.80) < 0.02
        and abs(c["right"]["95"] / c["right"]["n"] - 0.95) < 0.02
    )
    assert c["narrow"]["80"] / c["narrow"]["n"] < 0.5
    assert (
        bt.coverage_of_counts([c["right"], c["right"]])["80"] == c["right"]["80"] / c["right"]["n"]
    )
    assert bt.coverage_of_counts([c["right"], None]) is None


def test_anchor_alone_survives_a_flat_day_in_training(inputs, params):
    """A zero 1-day vol in the training targets (DOGE's flat early days) is floored as training
    floors it, not log(0)."""
    import dataclasses

    prices, fng = inputs["DOGE-USD"]
    folds, _ = bt.plan_folds(bt.window_dates(prices, fng, params), params)
    ds = bt.fold_dataset(prices, fng, params, folds[0], "DOGE-USD")
    Y = ds.Y_train.copy()
    Y[0, 0] = 0.0
    a = bt.anchor_forecast(dataclasses.replace(ds, Y_train=Y), params["model"]["anchor_features"])
    assert np.isfinite(a).all() and (a > 0).all()


def _without_timings(res: dict) -> dict:
    "A coin's backtest results less the seconds it took (which differ from run to run)."
    out = {k: v for k, v in res.items() if k != "fit_seconds"}
    out["folds"] = [{k: v for k, v in f.items() if k != "seconds"} for f in res["folds"]]
    return out


def test_backtest_in_two_processes_equals_serial(project, params):
    """The (coin, fold) jobs in two processes give the serial backtest's files digit for digit:
    classical forecasters (GARCH, whose fit moves with the BLAS thread count, among them), a pooled
    one and rv_net (small), two coins, three folds; one job per fold, so a pooled fit is made once
    per origin."""
    from cryptovol.parallel import Executor

    # GARCH: thread-sensitive
    fast = ["naive", "ewma", "garch", "har_log", "rv_log_har_pool", "rv_net"]
    small = {"rv_net.epochs": 2, "rv_net.seeds": 1, "evaluation.forecasters": fast}
    p = with_overrides(params, **small, universe=["BTC-USD", "ETH-USD", "XRP-USD"])
    coins = ["BTC-USD", "ETH-USD"]
    plans = {s: bt.plan_folds(bt.window_dates(*_read_inputs(s, p), p), p)[0] for s in coins}
    jobs = bt.plan_jobs(plans, p, False, False, {s: project / s for s in coins})
    assert [sorted({f.k for _, f, _ in j.runs}) for j in jobs] == [[k] for k in (0, 1, 2)]
    assert all([s for s, _, _ in j.runs] == coins for j in jobs)
    runs, results = {}, {}
    for name, ex in (("serial", Executor(workers=1)), ("two", Executor(workers=2))):
        got = bt.backtest_coins(coins, p, False, out=project / name, progress=False, executor=ex)
        runs[name], results[name] = {r["symbol"]: _without_timings(r) for r in got}, got
    assert runs["two"] == runs["serial"]
    for s in coins:
        f = f"{s}_predictions.csv"
        assert (project / "two" / f).read_bytes() == (project / "serial" / f).read_bytes()
    assert "rv_net" in runs["serial"]["BTC-USD"]["metrics"]
    # per-coin networks warm-started from their previous fold: one job per coin, folds in order
    chained = bt.plan_jobs(plans, p, True, True, {s: project / s for s in coins})
    pc = with_overrides(p, **{"model.scope": "per_coin"})
    per_coin = bt.plan_jobs(plans, pc, True, True, {s: project / s for s in coins})
    assert len(chained) == 3 and [[s for s, _, _ in j.runs] for j in per_coin] == [
        [c] * 3 for c in coins
    ]

    # what validation would ship: per fold the lowest validation QLIKE, networks included, scored
    # on the record's own forecasts of that pick
    vp = bt.validation_pick(results["serial"])
    for r in results["serial"]:
        _, rec = bt.load_backtest(r["symbol"], project / "serial")
        picks = {f["fold"]: f["validation_pick"] for f in r["folds"]}
        for f in r["folds"]:
            scores = f["validation_qlike_all"]
            assert f["validation_pick"] == min(scores, key=scores.get) and "rv_net" in scores
        chosen = np.array([rec.at[d, picks[k]] for d, k in rec["fold"].items()])
        a = rec["actual"].to_numpy()
        expect = np.mean(a**2 / chosen**2 - np.log(a**2 / chosen**2) - 1)
        assert vp["coins"][r["symbol"]]["qlike"] == pytest.approx(expect, rel=1e-9)
