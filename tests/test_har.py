"""The HAR family on realized measures: coefficients against statsmodels, pooling, no look-ahead.

The real-data checks read BTC's and ETH's hourly bars from the offline mirror (the `mirror`
fixture of conftest.py). The measures frames in the property test are SYNTHETIC and exist only
inside these tests (DESIGN.md: no generated price reaches a path a user runs).
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings, strategies as st

from cryptovol.config import ConfigError, DataError
from cryptovol.har import (
    MODELS,
    HARResult,
    HARSpec,
    daily_inputs,
    har_regressors,
    har_target,
)
from cryptovol.realized import realized_measures, realized_target

H, UNTIL = 7, pd.Timestamp("2023-01-01")


@pytest.fixture(scope="module")
def btc(mirror):
    from cryptovol.intraday import read_hourly_csv

    return realized_measures(read_hourly_csv(mirror / "intraday" / "binance" / "BTCUSDT-1h.csv.gz"))


@pytest.fixture(scope="module")
def eth(mirror):
    from cryptovol.intraday import read_hourly_csv

    return realized_measures(read_hourly_csv(mirror / "intraday" / "binance" / "ETHUSDT-1h.csv.gz"))


# ---------------------------------------------------------------- an independent design
def by_hand(m: pd.DataFrame, model: str, h: int = H, scale: float = 1.0) -> pd.DataFrame:
    "The regressors and target (column y), built here from the measures apart from cryptovol.har."
    assert len(m) == (m.index[-1] - m.index[0]).days + 1  # realized_measures: every calendar day
    ok = ~m.short_day
    rv, rq = m.rv.where(ok) / scale, m.rq.where(ok) / scale**2
    neg, pos = m.rs_neg.where(ok) / scale, m.rs_pos.where(ok) / scale
    j = m.jump_sig.where(ok) / scale
    c = rv - j
    mean = lambda x, w: x.rolling(w).mean()  # pandas: NaN unless all w values exist
    cols = {
        "har": {"rv_1": rv, "rv_7": mean(rv, 7), "rv_30": mean(rv, 30)},
        "harq": {"rv_1": rv, "q": rv * np.sqrt(rq), "rv_7": mean(rv, 7), "rv_30": mean(rv, 30)},
        "shar": {"neg": neg, "pos": pos, "rv_7": mean(rv, 7), "rv_30": mean(rv, 30)},
        "har_cj": {
            "c1": c,
            "c7": mean(c, 7),
            "c30": mean(c, 30),
            "j1": j,
            "j7": mean(j, 7),
            "j30": mean(j, 30),
        },
    }
    cols["log_har"] = {k: np.log(v) for k, v in cols["har"].items()}
    y = sum(rv.shift(-k) for k in range(1, h + 1)) / h
    out = pd.DataFrame(cols[model]).assign(y=np.log(y) if model == "log_har" else y)
    return out


def ols_before(rows: pd.DataFrame, until: pd.Timestamp, h: int = H):
    "statsmodels OLS on the complete rows t with t + h < until (the target ends before `until`)."
    use = rows[rows.index + pd.Timedelta(days=h) < until].dropna()
    return sm.OLS(use.y, sm.add_constant(use.drop(columns="y"))).fit()


# ---------------------------------------------------------------- coefficients
@pytest.mark.parametrize("model", MODELS)
def test_each_model_equals_statsmodels_ols_on_btc(btc, model):
    r = HARSpec(model, H).fit(btc, UNTIL, "BTC-USD")
    ols = ols_before(by_hand(btc, model), UNTIL)
    np.testing.assert_allclose(r.params.to_numpy(), ols.params.to_numpy(), rtol=1e-8, atol=0)
    assert r.nobs == int(ols.nobs) and r.s2 == pytest.approx(ols.mse_resid, rel=1e-10)
    assert r.last_row == UNTIL - pd.Timedelta(days=H + 1) and r.coins == ("BTC-USD",)


@pytest.mark.parametrize("model", MODELS)
def test_pooled_equals_ols_on_stacked_rows(btc, eth, model):
    r = HARSpec(model, H).fit({"BTC-USD": btc, "ETH-USD": eth}, UNTIL)
    stacked = pd.concat([by_hand(btc, model), by_hand(eth, model)])
    ols = ols_before(stacked, UNTIL)
    np.testing.assert_allclose(r.params.to_numpy(), ols.params.to_numpy(), rtol=1e-8, atol=0)
    assert r.nobs == int(ols.nobs) and r.s2 == pytest.approx(ols.mse_resid, rel=1e-10)


def test_coin_scaled_pooling_is_ols_on_rows_in_each_coins_units(btc, eth):
    r = HARSpec("harq", H, scale="coin_mean").fit({"BTC-USD": btc, "ETH-USD": eth}, UNTIL)
    c = {
        s: m.rv[~m.short_day & (m.index < UNTIL)].mean()
        for s, m in (("BTC-USD", btc), ("ETH-USD", eth))
    }
    assert dict(r.scales) == pytest.approx(c, rel=1e-12)
    stacked = pd.concat(
        [by_hand(btc, "harq", scale=c["BTC-USD"]), by_hand(eth, "harq", scale=c["ETH-USD"])]
    )
    ols = ols_before(stacked, UNTIL)
    np.testing.assert_allclose(r.params.to_numpy(), ols.params.to_numpy(), rtol=1e-8, atol=0)
    f = r.forecast(btc, ["2023-06-01"], coin="BTC-USD").mean_rv.iloc[0]
    x = by_hand(btc, "harq", scale=c["BTC-USD"]).drop(columns="y").loc["2023-06-01"]
    assert f == pytest.approx(c["BTC-USD"] * (ols.params.iloc[0] + x @ ols.params.iloc[1:].values))


# ---------------------------------------------------------------- training rows only
def test_the_fit_reads_only_days_before_until(btc):
    spec = HARSpec("har_cj", H)
    r = spec.fit(btc, UNTIL)
    changed = btc.copy()
    changed.loc[UNTIL:, ["rv", "rs_neg", "rs_pos", "rq", "jump_sig"]] *= 7.0
    changed.loc[UNTIL + pd.Timedelta(days=3), "short_day"] = True
    pd.testing.assert_series_equal(spec.fit(changed, UNTIL).params, r.params, check_exact=True)
    edge = btc.copy()  # the last day before `until` is in the last training target: it counts
    edge.loc[UNTIL - pd.Timedelta(days=1), "rv"] *= 7.0
    assert not np.allclose(spec.fit(edge, UNTIL).params, r.params)
    rows = spec.training_rows(btc, UNTIL)
    assert rows.index.max() + pd.Timedelta(days=H) < UNTIL and len(rows) == r.nobs


def test_forecasts_use_the_fitted_coefficients_out_of_sample(btc):
    r = HARSpec("har", H).fit(btc, UNTIL)
    f = r.forecast(btc, pd.date_range(UNTIL, periods=30))
    x = by_hand(btc, "har").drop(columns="y").reindex(f.index)
    by_ols = r.params.iloc[0] + x @ r.params.iloc[1:].values
    np.testing.assert_allclose(f.mean_rv, by_ols, rtol=1e-12)


# ---------------------------------------------------------------- units, short days, floor
def test_units_match_realized_target(btc):
    y, rt = har_target(btc, H), realized_target(btc, H)
    assert (y.isna() == rt.isna()).all()
    np.testing.assert_allclose(np.sqrt(365 * y.dropna()), rt.dropna(), rtol=1e-14)
    f = HARSpec("log_har", H).fit(btc, UNTIL).forecast(btc)
    np.testing.assert_allclose(f.vol.dropna(), np.sqrt(365 * f.mean_rv.dropna()), rtol=1e-15)


@pytest.mark.parametrize("model", MODELS)
def test_short_days_give_nan_forecasts_not_filled_values(btc, model):
    short = pd.Timestamp("2021-08-13")
    assert btc.short_day[short]
    f = HARSpec(model, H).fit(btc, UNTIL).forecast(btc)
    assert f.loc[short : short + pd.Timedelta(days=29), "vol"].isna().all()  # RV_m covers it
    assert np.isfinite(f.vol[short - pd.Timedelta(days=1)])
    assert np.isfinite(f.vol[short + pd.Timedelta(days=30)])
    rows = HARSpec(model, H).training_rows(btc, UNTIL)
    assert not rows.index.isin(pd.date_range(short - pd.Timedelta(days=H), periods=H + 30)).any()


def test_level_forecasts_are_floored_and_flagged(btc):
    r = HARSpec("harq", H).fit(btc, UNTIL)
    assert r.floor == HARSpec("harq", H).training_rows(btc, UNTIL).y.min() > 0
    wild = dataclasses.replace(r, params=r.params * [1, 1, 1e3, 1, 1])  # beta_Q x 1000: negative
    f = wild.forecast(btc).dropna()
    assert f.floored.any() and (f.mean_rv[f.floored] == r.floor).all()
    assert (f.mean_rv >= r.floor).all() and not r.forecast(btc).floored.any()


def test_json_round_trip(btc, eth):
    r = HARSpec("shar", H, scale="coin_mean").fit({"BTC-USD": btc, "ETH-USD": eth}, UNTIL)
    back = HARResult.from_json(r.to_json())
    assert back.to_json() == r.to_json() and back.scales == r.scales
    pd.testing.assert_frame_equal(
        back.forecast(eth, coin="ETH-USD"), r.forecast(eth, coin="ETH-USD")
    )


def test_errors_name_the_input_and_the_fix(btc):
    with pytest.raises(ConfigError, match="use one of"):
        HARSpec("garch")
    with pytest.raises(ConfigError, match="increasing"):
        HARSpec("har", windows=(7, 1, 30))
    with pytest.raises(ConfigError, match="midnight"):
        HARSpec().fit(btc, "2023-01-01 06:00")
    with pytest.raises(DataError, match="move `until` later"):
        HARSpec().fit(btc, "2018-02-20")
    with pytest.raises(DataError, match="realized_measures"):
        daily_inputs(btc.drop(columns="rq"))
    scaled = HARSpec(scale="coin_mean").fit({"BTC-USD": btc, "X": btc}, UNTIL)
    with pytest.raises(DataError, match="pass coin="):
        scaled.forecast(btc)


# ---------------------------------------------------------------- no look-ahead (SYNTHETIC)
N = 100
RNG = np.random.default_rng(0)
BASE = {
    "rv": np.exp(RNG.normal(-7, 1, N)),
    "neg_share": RNG.uniform(0.2, 0.8, N),
    "rq_factor": RNG.uniform(1.5, 4.0, N),
    "jump_share": np.where(RNG.random(N) < 0.2, 0.3, 0),
}


def synthetic_measures(rv, short, neg_share, rq_factor, jump_share) -> pd.DataFrame:
    "A SYNTHETIC measures frame: RV per day, its split into semivariances, RQ and jumps."
    rv = np.asarray(rv, dtype="float64")
    idx = pd.date_range("2024-01-01", periods=len(rv), freq="D", name="Date", unit="ns")
    return pd.DataFrame(
        {
            "rv": rv,
            "rs_neg": neg_share * rv,
            "rs_pos": (1 - neg_share) * rv,
            "rq": rq_factor * rv**2,
            "jump_sig": jump_share * rv,
            "short_day": np.asarray(short, dtype=bool),
        },
        index=idx,
    )


A = synthetic_measures(
    BASE["rv"], [False] * N, BASE["neg_share"], BASE["rq_factor"], BASE["jump_share"]
)
FITTED = {m: HARSpec(m, 3, min_rows_per_param=1).fit(A, A.index[60]) for m in MODELS}
later_values = st.lists(st.floats(1e-6, 1e-1), min_size=N, max_size=N)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    t=st.integers(45, N - 2),
    new=later_values,
    short=st.lists(st.booleans(), min_size=N, max_size=N),
)
def test_changing_days_after_t_leaves_regressors_and_forecasts_at_t_unchanged(t, new, short):
    b = A.copy()  # every day after t changed: other RV, semivariances, RQ, jumps; some days short
    later = slice(t + 1, None)
    new = np.asarray(new)
    b.iloc[later, b.columns.get_loc("rv")] = new[later]
    b.iloc[later, b.columns.get_loc("rs_neg")] = new[later] / 3
    b.iloc[later, b.columns.get_loc("rq")] = new[later] ** 2
    b.iloc[later, b.columns.get_loc("jump_sig")] = new[later] / 10
    b.iloc[later, b.columns.get_loc("short_day")] = np.asarray(short)[later]
    upto = A.index[t]
    for m in MODELS:
        pd.testing.assert_frame_equal(
            har_regressors(A, m).loc[:upto], har_regressors(b, m).loc[:upto]
        )
        pd.testing.assert_frame_equal(
            FITTED[m].forecast(A).loc[:upto], FITTED[m].forecast(b).loc[:upto]
        )
        spec, until = HARSpec(m, 3, min_rows_per_param=1), upto + pd.Timedelta(days=1)
        pd.testing.assert_series_equal(spec.fit(A, until).params, spec.fit(b, until).params)
