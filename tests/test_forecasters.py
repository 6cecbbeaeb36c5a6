"""The forecaster interface: Forecast, the registry, the walk-forward engine, a new forecaster."""

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy import stats

from cryptovol import backtest as bt
from cryptovol import evaluate as ev
from cryptovol import forecasters as fc
from cryptovol import report
from cryptovol.config import ConfigError, DataError, load_params, with_overrides
from cryptovol.features import _read_inputs, daily_variance, log_returns
from cryptovol.har import load_measures, load_universe_measures

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent
OLD_SEVEN = ["naive", "ewma", "garch", "har", "har_log", "har_range", "combo"]


@pytest.fixture(scope="module")
def params():
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def btc(mirror, params):
    """Real BTC returns, close-to-close target, Garman-Klass variance, realized measures (its own
    and the universe's): CoinData."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
        prices, _ = _read_inputs("BTC-USD", params)
        measures = load_measures("BTC-USD", params)
        universe = load_universe_measures(params)
    r = log_returns(prices["Close"])
    gk = daily_variance(prices, "garman_klass")
    return fc.classical_data(
        r, 7, range_var=gk, symbol="BTC-USD", measures=measures, universe=universe
    )


def test_every_registered_forecaster_fits_and_forecasts_a_lognormal_law(btc, params):
    until = pd.Timestamp("2022-12-31")
    dates = pd.date_range("2023-01-01", "2023-06-30")
    classical = [n for n, f in fc.FORECASTERS.items() if f.classical]  # the networks: own tests
    fits = fc.fit_all(fc.make_forecasters(params, classical), btc, until)
    assert list(fits) == classical and OLD_SEVEN == list(fc.FORECASTERS)[:7] and "har_lev" in fits
    for name, fit in fits.items():
        f = fit.forecast(btc, dates)
        assert isinstance(f, fc.Forecast) and f.name == name and f.horizon == 7
        assert f.vol.notna().all() and (f.vol > 0).all(), name
        assert 0.2 < fit.spread < 1.5, (
            name,
            fit.spread,
        )  # every forecaster gets its training spread, so intervals
        lo, hi = f.interval(0.8)
        assert ((lo < f.mean_vol()) & (f.mean_vol() <= f.vol) & (f.vol < hi)).all(), name
        assert f.kind == (
            "lognormal" if name in ("har_log", "har_range", "har_lev") else "point"
        ), name


@settings(max_examples=25, deadline=None)
@given(mu=st.floats(-4, 1), s=st.floats(0.01, 1.5), q=st.floats(0.01, 0.99))
def test_forecast_moments_and_quantiles_are_the_lognormal_closed_forms(mu, s, q):
    d = pd.DatetimeIndex(["2024-01-01"])
    f = fc.Forecast(
        "x", pd.Series(np.exp(mu + s * s), index=d), pd.Series(s, index=d), kind="lognormal"
    )
    law = stats.lognorm(s=s, scale=np.exp(mu))
    np.testing.assert_allclose(f.mean_var(), law.moment(2), rtol=1e-9)
    np.testing.assert_allclose(f.mean_vol(), law.mean(), rtol=1e-9)
    np.testing.assert_allclose(f.quantile(q), law.ppf(q), rtol=1e-9)


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(day=st.integers(0, 400), scale=st.floats(0.2, 5.0))
def test_walk_forward_forecasts_ignore_everything_after_the_origin(btc, params, day, scale):
    """Multiplying every return after day d by `scale` leaves every fit at an origin <= d, and its
    forecast on d, unchanged.
    """
    origin = pd.Timestamp("2022-06-01") + pd.Timedelta(days=day)
    d = origin + pd.Timedelta(days=1)
    variances = ["rv", "bpv", "rs_neg", "rs_pos", "jump", "jump_sig"]

    def shock(measures):
        m = measures.copy()
        later = m.index > d
        m.loc[later, variances] *= scale**2
        m.loc[later, ["rq", "tq"]] *= scale**4
        return m

    universe = {c: shock(m) for c, m in btc.universe.items()}  # every coin of the pooled fits
    shocked = fc.classical_data(
        btc.returns.where(btc.returns.index <= d, btc.returns * scale),
        7,
        btc.target,
        btc.range_var.where(btc.range_var.index <= d, btc.range_var * scale**2),
        "BTC-USD",
        universe["BTC-USD"],
        universe,
    )
    o = [fc.Origin(0, origin, pd.DatetimeIndex([d]))]
    names = [n for n, f in fc.FORECASTERS.items() if f.classical]
    a = fc.walk_forward(fc.make_forecasters(params, names), btc, o)
    b = fc.walk_forward(fc.make_forecasters(params, names), shocked, o)
    assert {"rv_harq", "rv_harq_pool"} <= set(a.names)
    assert a.fits[0]["params"] == b.fits[0]["params"]
    pd.testing.assert_frame_equal(a.frame(), b.frame())


def test_origins_and_records_refuse_look_ahead_and_double_dates(btc, params):
    with pytest.raises(DataError, match="look-ahead"):
        fc.Origin(0, "2023-01-05", pd.date_range("2023-01-05", periods=3))
    o1 = fc.Origin(0, "2022-12-31", pd.date_range("2023-01-01", periods=10))
    o2 = fc.Origin(1, "2023-01-04", pd.date_range("2023-01-05", periods=10))
    with pytest.raises(DataError, match="twice"):
        fc.walk_forward(fc.make_forecasters(params, ["naive"]), btc, [o1, o2])
    rec = fc.walk_forward(
        fc.make_forecasters(params, ["naive", "har"]),
        btc,
        [o1, fc.Origin(1, "2023-01-10", pd.date_range("2023-01-11", periods=10))],
    )
    fr = rec.frame()
    assert (
        list(fr.columns) == ["fold", "actual", "naive", "har"]
        and fr["fold"].tolist() == [0] * 10 + [1] * 10
    )
    np.testing.assert_allclose(
        rec.losses("qlike")["har"], ev.qlike_loss(fr["actual"], fr["har"]), rtol=1e-12
    )
    np.testing.assert_allclose(
        rec.losses("se")["naive"], (fr["actual"] - fr["naive"]) ** 2, rtol=1e-12
    )  # no spread: E[sigma] = point


def test_evaluation_forecasters_chooses_the_set_and_names_the_registered_ones(params):
    p = with_overrides(params, **{"evaluation.forecasters": ["har", "naive"]})
    assert fc.forecaster_names(p) == ["naive", "har"]  # registration order, whatever the list's
    with pytest.raises(ConfigError, match="registered forecasters are"):
        fc.forecaster_names(with_overrides(params, **{"evaluation.forecasters": ["egarch"]}))
    with pytest.raises(ConfigError, match="evaluation.combination"):
        fc.fit_all(
            fc.make_forecasters(
                with_overrides(params, **{"evaluation.forecasters": ["naive", "combo"]})
            ),
            fc.classical_data(pd.Series(0.01, index=pd.date_range("2020-01-01", periods=300)), 7),
            "2020-06-01",
        )


def test_har_leverage_equals_an_independent_statsmodels_fit(btc):
    until = pd.Timestamp("2023-06-30")
    fit = fc.HARLeverage().fit(btc, until)
    r, y = btc.returns, np.log(btc.target.clip(lower=1e-4))
    X = pd.DataFrame(
        {
            f"rv{w}": np.log(np.sqrt(365 / w * (r**2).rolling(w).sum()).clip(lower=1e-4))
            for w in (1, 7, 30)
        }
    )
    for w in (1, 7, 30):
        X[f"neg{w}"] = np.minimum(r, 0).rolling(w).mean()
    X = sm.add_constant(X)
    rows = (r.index <= until - pd.Timedelta(days=7)) & X.notna().all(axis=1) & y.notna()
    ols = sm.OLS(y[rows], X[rows]).fit()
    np.testing.assert_allclose(
        [fit.params[f"lev_{w}"] for w in (1, 7, 30)],
        [ols.params[f"neg{w}"] for w in (1, 7, 30)],
        rtol=1e-8,
    )
    np.testing.assert_allclose(fit.params["s2"], ols.mse_resid, rtol=1e-10)
    assert (
        fit.params["lev_1"] < 0
    )  # a fall raises next week's vol (Corsi & Renò 2012): the leverage effect, on real BTC


class SlowEWMA(fc.EWMA):
    "A toy new forecaster: EWMA with lambda 0.97."

    name = "ewma_slow"

    @classmethod
    def from_params(cls, params):
        return cls(0.97)


@pytest.fixture()
def registered():
    fc.register(SlowEWMA)
    yield SlowEWMA
    fc.FORECASTERS.pop("ewma_slow")


def test_a_new_forecaster_is_one_class_and_shows_up_everywhere(registered, project, params):
    """Registered once, a forecaster is in the baselines, the walk-forward record, the MCS, the
    summary tables.
    """
    res = bt.backtest("SOL-USD", params, with_model=False, out=project / "bt", progress=False)
    meta, rec = bt.load_backtest("SOL-USD", project / "bt")
    assert "ewma_slow" in rec and rec["ewma_slow"].notna().all()
    assert "ewma_slow" in meta["metrics"] and "ewma_slow" in meta["mcs"]["pvalues"]
    assert all("ewma_slow" in v for v in meta["per_year_qlike"].values())
    assert all("ewma_slow" in f["validation_qlike"] for f in res["folds"])
    assert (
        "ewma_slow" in meta["realized_target"]["qlike"] and meta["realized_target"]["n_days"] > 1000
    )
    s = bt.backtest_summary(["SOL-USD"], project / "bt")
    assert (
        "| ewma_slow |" in (project / "bt" / "summary.md").read_text()
        and "ewma_slow" in s["mean_rank"]["qlike"]
    )
    assert (
        "the vol of the next 7 days from hourly returns"
        in (project / "bt" / "summary.md").read_text()
    )
    pred = rec[["actual", *[c for c in rec if c in fc.FORECASTERS]]]
    scored = ev.score_forecasts(pred.assign(model=pred["har"]), 7)
    assert "ewma_slow" in scored["dm"] and "ewma_slow" in ev.comparison_table(scored).index
    long = pd.DataFrame(
        [("SOL-USD", f, m, v) for f, ms in scored["forecasts"].items() for m, v in ms.items()],
        columns=["symbol", "forecaster", "metric", "value"],
    )
    assert "| SOL-USD | ewma_slow |" in report.summary_markdown(long)
    json.dumps(ev._clean(meta))
