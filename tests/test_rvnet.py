"""The RV network (cryptovol.rvnet): no look-ahead, the untrained network is its anchor, outages,
the forecast's kind and spread, the memo, and a light module import.

Real measures of four coins from the offline mirror (the `mirror` fixture of conftest.py), cut to
2020-09..2022-03 so that a fit of the tiny spec below takes seconds.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptovol.config import ConfigError

REPO = Path(__file__).resolve().parents[1]
H, UNTIL = 7, pd.Timestamp("2021-12-31")
COINS = {"BTC-USD": "BTCUSDT", "ETH-USD": "ETHUSDT", "SOL-USD": "SOLUSDT", "XRP-USD": "XRPUSDT"}
MEASURE_COLS = ["rv", "bpv", "rs_neg", "rs_pos", "jump", "jump_sig", "rq", "tq"]


def tiny(**kw):
    from cryptovol.rvnet import RVNetSpec

    base = dict(
        lookback=10,
        units=4,
        dense_units=4,
        epochs=2,
        patience=1,
        batch_size=512,
        val_days=90,
        seeds=1,
    )
    return RVNetSpec(**(base | kw))


@pytest.fixture(scope="module")
def universe(mirror):
    from cryptovol.intraday import read_hourly_csv
    from cryptovol.realized import realized_measures

    out = {}
    for coin, pair in COINS.items():
        m = realized_measures(
            read_hourly_csv(mirror / "intraday" / "binance" / f"{pair}-1h.csv.gz")
        )
        out[coin] = m.loc["2020-09-01":"2022-03-31"]
    return out


def after_until_times_five(universe: dict, until=UNTIL) -> dict:
    "Every measure of every coin after `until` multiplied by 5 (the future changed)."
    out = {}
    for c, m in universe.items():
        m = m.copy()
        m.loc[m.index > until, MEASURE_COLS] *= 5.0
        out[c] = m
    return out


def coin_data(universe, coin="BTC-USD"):
    from cryptovol.forecasters import classical_data
    from cryptovol.realized import realized_target

    m = universe[coin]
    rt = realized_target(m, H)
    # returns on the measures' calendar (the network reads only measures; returns index the dates)
    returns = pd.Series(0.0, index=pd.DatetimeIndex(rt.index).rename(None))
    target = pd.Series(rt.to_numpy(), index=returns.index)
    return classical_data(returns, H, target, symbol=coin, measures=m, universe=universe)


def test_import_does_not_import_tensorflow():
    code = (
        "import sys, cryptovol.rvnet; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]


def test_spec_from_params_and_registration():
    from cryptovol.forecasters import FORECASTERS, make_forecasters
    from cryptovol.rvnet import RVNet, RVNetSpec

    assert FORECASTERS["rv_net"] is RVNet and RVNet.classical is False
    f = RVNet.from_params({"evaluation": {"har_windows": [1, 5, 22]}, "rv_net": {"units": 8}})
    assert f.spec == RVNetSpec(units=8, windows=(1, 5, 22))
    assert RVNet.from_params({}).spec == RVNetSpec()
    with pytest.raises(ConfigError, match="unknown key"):
        RVNetSpec.from_params({"unit": 8})
    with pytest.raises(ConfigError, match="inputs"):
        RVNetSpec(inputs=("log_rv", "volume"))
    params = {"evaluation": {"har_windows": [1, 7, 30], "forecasters": ["rv_net"]}}
    assert [type(x) for x in make_forecasters(params)] == [RVNet]


def test_inputs_and_training_matrices_read_nothing_after_until(universe):
    from cryptovol.har import HARSpec
    from cryptovol.rvnet import design, split_rows, universe_inputs

    spec = tiny()
    changed = after_until_times_five(universe)
    known = {c: m[m.index <= UNTIL] for c, m in universe.items()}
    anchor = HARSpec("log_har", H, spec.windows, scale="coin_mean").fit(
        known, UNTIL + pd.Timedelta(days=1)
    )
    a, b = universe_inputs(universe, anchor, spec), universe_inputs(changed, anchor, spec)
    for c in universe:
        pd.testing.assert_frame_equal(a[c].loc[:UNTIL], b[c].loc[:UNTIL])
        assert (
            not a[c]
            .loc[UNTIL + pd.Timedelta(days=2) :]
            .equals(b[c].loc[UNTIL + pd.Timedelta(days=2) :])
        )  # the change is seen after `until`
    da, db = design(universe, anchor, spec, H), design(changed, anchor, spec, H)
    ta, va = split_rows(da, UNTIL, H, spec.val_days)
    tb, vb = split_rows(db, UNTIL, H, spec.val_days)
    np.testing.assert_array_equal(ta, tb)
    np.testing.assert_array_equal(va, vb)
    for rows in (ta, va):
        np.testing.assert_array_equal(da.X[rows], db.X[rows])
        np.testing.assert_array_equal(da.z[rows], db.z[rows])
    assert (da.date[va] + np.timedelta64(H, "D") <= np.datetime64(UNTIL)).all()
    assert da.date[ta].max() + np.timedelta64(H, "D") < da.date[va].min()  # purged by h


def test_forecasts_up_to_until_ignore_the_future_and_refits_are_identical(universe):
    from cryptovol.rvnet import clear_memo, fit_rvnet_memo

    spec = tiny()
    clear_memo()
    fa = fit_rvnet_memo(universe, UNTIL, H, spec)
    clear_memo()  # a fresh fit on the changed data: determinism, not the memo, must agree
    fb = fit_rvnet_memo(after_until_times_five(universe), UNTIL, H, spec)
    assert fa is not fb
    for c in ("BTC-USD", "SOL-USD"):
        xa = fa.forecast(universe, c).loc[:UNTIL]
        xb = fb.forecast(after_until_times_five(universe), c).loc[:UNTIL]
        assert len(xa) > 300
        pd.testing.assert_frame_equal(xa, xb)


def test_untrained_network_is_the_anchor(universe):
    from cryptovol.har import HARSpec, forecast_measures
    from cryptovol.rvnet import RVNetResult, _standardise, build_network, design

    spec = tiny()
    known = {c: m[m.index <= UNTIL] for c, m in universe.items()}
    anchor = HARSpec("log_har", H, spec.windows, scale="coin_mean").fit(
        known, UNTIL + pd.Timedelta(days=1)
    )
    d = design(known, anchor, spec, H)
    net = build_network(spec, len(spec.inputs), float(np.sqrt(anchor.s2)))
    res = RVNetResult(spec, H, UNTIL, anchor, *_standardise(d.X), (net,))
    f = res.forecast(universe, "ETH-USD")
    np.testing.assert_allclose(f["mean_rv"], f["anchor_rv"], rtol=1e-9)
    np.testing.assert_allclose(f["s"], np.sqrt(anchor.s2), rtol=1e-6)
    pool = anchor.forecast(forecast_measures(universe["ETH-USD"]), coin="ETH-USD")["mean_rv"]
    both = pool.reindex(f.index).notna()
    assert both.mean() > 0.95
    np.testing.assert_allclose(f["mean_rv"][both], pool.reindex(f.index)[both], rtol=1e-9)


def test_a_coin_with_an_outage_gets_nan_windows_not_filled_values(universe):
    from cryptovol.rvnet import clear_memo, fit_rvnet_memo, input_windows, universe_inputs

    spec = tiny(ffill_days=2)
    gap = pd.date_range("2021-06-10", "2021-06-14")  # five days without a bar
    u = dict(universe)
    u["XRP-USD"] = u["XRP-USD"].drop(gap)
    clear_memo()
    res = fit_rvnet_memo(u, UNTIL, H, spec)
    x = universe_inputs(u, res.anchor, spec)["XRP-USD"]
    assert x.loc[gap[:2], "log_rv"].notna().all()  # carried forward ffill_days days
    assert x.loc[gap[2:], "log_rv"].isna().all()  # then missing, never invented
    W, ok, days = input_windows(x, spec.lookback)
    assert W.shape == (len(x), spec.lookback, len(spec.inputs)) and len(days) == len(x)
    f = fit_rvnet_memo(u, UNTIL, H, spec).forecast(u, "XRP-USD")
    missing = pd.date_range(gap[2], gap[-1] + pd.Timedelta(days=spec.lookback - 1))
    assert not f.index.isin(missing).any()  # no window holds the gap: no forecast
    assert f.loc["2021-07-01":].notna().all().all() and len(f.loc["2021-07-01":UNTIL]) > 150
    fc = res.forecast(universe, "BTC-USD")  # other coins are unaffected in shape
    assert fc["vol"].notna().all()


def test_the_forecaster_gives_a_lognormal_forecast_with_a_spread_per_date(universe):
    from cryptovol.forecasters import Origin, walk_forward
    from cryptovol.har import RVLogHARPooled
    from cryptovol.rvnet import RVNet, clear_memo

    clear_memo()
    data = coin_data(universe)
    net = RVNet(tiny())
    fit = net.fit(data, UNTIL)
    assert net.fit(coin_data(universe, "ETH-USD"), UNTIL).res is fit.res  # memo: one fit
    dates = pd.date_range(UNTIL + pd.Timedelta(days=1), "2022-03-20")
    fc = fit.forecast(data, dates)
    assert fc.kind == "lognormal" and fc.spread is not None and len(fc.vol) == len(dates)
    assert (fc.vol > 0).all() and (fc.spread > 0).all()
    s = fit.res.forecast(universe, "BTC-USD")["s"].reindex(dates)
    # spread of log vol = half that of log RV, rescaled to the scored target (here: realized)
    assert 0.3 < fit.scale < 3 and fit.params["spread_scale"] == fit.scale
    np.testing.assert_allclose(fc.spread, fit.scale * s / 2)
    lo, hi = fc.interval(0.8)
    assert (lo < fc.vol).all() and (fc.vol < hi).all()
    rec = walk_forward([net, RVLogHARPooled()], data, [Origin(0, UNTIL, dates)])
    assert rec.forecasts["rv_net"].kind == "lognormal" and rec.losses().notna().all().all()


def test_memoised_rows_inputs_and_pooled_fits_follow_the_data(universe):
    """The three caches (an origin's rows, a fit's market-wide inputs, a pooled HAR fit) hand back
    the same object for the same data and recompute when any day up to the origin changes; a change
    after the origin keeps the rows and the pooled fit."""
    from cryptovol.har import HARSpec, pooled_fit
    from cryptovol.rvnet import _forecast_inputs, clear_memo, fit_rvridge, origin_rows

    spec = tiny()
    clear_memo()
    rows = origin_rows(universe, UNTIL, H, spec)
    assert origin_rows(universe, UNTIL, H, spec) is rows
    assert origin_rows(after_until_times_five(universe), UNTIL, H, spec) is rows
    earlier = {c: m.copy() for c, m in universe.items()}
    earlier["ETH-USD"].loc["2021-06-01", "rv"] *= 2.0
    changed = origin_rows(earlier, UNTIL, H, spec)
    assert changed is not rows and not np.array_equal(changed[2].z, rows[2].z, equal_nan=True)

    panel = HARSpec("log_har", H, spec.windows, scale="coin_mean")
    day = UNTIL + pd.Timedelta(days=1)
    fit = pooled_fit(panel, universe, day)
    assert pooled_fit(panel, after_until_times_five(universe, day), day) is fit
    assert not pooled_fit(panel, earlier, day).params.equals(fit.params)

    from cryptovol.rvnet import RVRidgeSpec

    res = fit_rvridge(universe, UNTIL, H, RVRidgeSpec(rows=spec))
    inputs = _forecast_inputs(res, universe)
    assert _forecast_inputs(res, universe) is inputs
    moved = _forecast_inputs(res, earlier)
    assert moved is not inputs and not moved["ETH-USD"].equals(inputs["ETH-USD"])
    clear_memo()
