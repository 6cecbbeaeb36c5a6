"""Tests for cryptovol.evaluate: metrics by hand, DM vs an independent computation, baselines on
real BTC slices, evaluate() I/O.

Prices come from the real offline mirror ($CRYPTOVOL_DATA_DIR/yahoo/BTC-USD.csv). The end-to-end
test replaces the trained model and the processed dataset by small stand-ins built from those real
prices (no training), so it runs in seconds.
"""

import json, math, sys, types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from cryptovol import evaluate as ev
from cryptovol import forecasters as fc
from cryptovol.config import ConfigError, DataError, load_params

REPO = Path(__file__).resolve().parents[1]


def mirror() -> Path:
    "The data folder (conftest.find_data_dir); skips with the reason when there is none."
    from conftest import require_data

    return require_data()


@pytest.fixture(scope="module")
def btc_returns() -> pd.Series:
    df = pd.read_csv(mirror() / "yahoo" / "BTC-USD.csv")
    idx = pd.DatetimeIndex(pd.to_datetime(df["Date"], utc=True).dt.tz_localize(None), name="Date")
    close = pd.Series(df["Close"].to_numpy(float), index=idx)
    return np.log(close).diff().iloc[-900:].rename("log_return")


# ---------------------------------------------------------------- metrics
def test_metrics_hand_computed():
    a, f, nv = [0.5, 0.6, 0.4, 0.8], [0.4, 0.6, 0.5, 0.6], [0.45, 0.5, 0.55, 0.5]
    m = ev.forecast_metrics(a, f, nv, nv)
    assert m["n"] == 4
    assert m["rmse"] == pytest.approx(math.sqrt(0.015))  # errors -0.1, 0, 0.1, -0.2
    assert m["mae"] == pytest.approx(0.1)
    assert m["mape"] == pytest.approx(17.5)  # (20 + 0 + 25 + 25) / 4 %
    assert m["r2"] == pytest.approx(1 - 0.06 / 0.0875)  # SST around mean 0.575
    assert m["bias"] == pytest.approx(-0.05)
    # forecast (-,+,-,+) vs actual (+,+,-,+)
    assert m["directional_accuracy"] == 0.75
    assert m["theil_u"] == pytest.approx(
        math.sqrt(0.015) / math.sqrt((0.05**2 + 0.1**2 + 0.15**2 + 0.3**2) / 4)
    )
    assert m["corr"] == pytest.approx(np.corrcoef(a, f)[0, 1])
    q = [(x * x) / (y * y) - math.log((x * x) / (y * y)) - 1 for x, y in zip(a, f)]
    assert m["qlike"] == pytest.approx(sum(q) / 4)


def test_qlike_values_and_errors():
    assert ev.qlike_loss([0.5], [0.5])[0] == 0.0
    assert ev.qlike_loss([0.2], [0.1])[0] == pytest.approx(4 - math.log(4) - 1)
    assert ev.qlike_loss([0.1], [0.2])[0] == pytest.approx(0.25 - math.log(0.25) - 1)
    with pytest.raises(DataError, match="positive"):
        ev.qlike_loss([0.5], [0.0])
    with pytest.raises(DataError, match="lengths"):
        ev.forecast_metrics([1, 2, 3], [1, 2], [1, 2, 3], [1, 2, 3])


def test_naive_theil_u_is_exactly_one_on_real_data(btc_returns):
    h = 7
    naive, target = (
        ev.naive_forecast(btc_returns, h),
        ev.forward_realized_vol_from_returns(btc_returns, h),
    )
    ok = naive.notna() & target.notna()
    m = ev.forecast_metrics(target[ok], naive[ok], naive[ok], naive[ok])
    # a flat forecast never calls a direction
    assert m["theil_u"] == 1.0 and m["directional_accuracy"] == 0.0


def test_naive_and_target_definitions(btc_returns):
    h = 7
    r = btc_returns.to_numpy()
    naive, target = (
        ev.naive_forecast(btc_returns, h),
        ev.forward_realized_vol_from_returns(btc_returns, h),
    )
    assert naive.iloc[50] == pytest.approx(math.sqrt(365 / 7 * sum(x * x for x in r[44:51])))
    assert target.iloc[50] == pytest.approx(math.sqrt(365 / 7 * sum(x * x for x in r[51:58])))
    assert target.iloc[-h:].isna().all()


# ---------------------------------------------------------------- baselines
def test_ewma_matches_hand_recursion_on_10_real_days(btc_returns):
    r = btc_returns.dropna()
    out = ev.ewma_forecast(btc_returns, lam=0.94, init_window=30)
    s2 = float(np.mean(r.to_numpy()[:30] ** 2))
    for t in range(10):
        s2 = 0.94 * s2 + 0.06 * r.iloc[t] ** 2
        assert out[r.index[t]] == pytest.approx(math.sqrt(365 * s2), rel=1e-12)
    # no look-ahead: truncating the future leaves past forecasts unchanged
    short = ev.ewma_forecast(btc_returns.iloc[:300], lam=0.94, init_window=30)
    pd.testing.assert_series_equal(short, out.iloc[:300])
    with pytest.raises(DataError, match="lambda"):
        ev.ewma_forecast(btc_returns, lam=1.0)


def test_har_fitted_on_purged_training_rows_only(btc_returns):
    h, train_end = 7, btc_returns.index[600]
    har = ev.har_forecast(btc_returns, train_end, h)
    # 1) changing every return (hence every target) after train_end leaves coefficients and past
    # forecasts unchanged
    shocked = btc_returns.copy()
    shocked.iloc[601:] *= 3.0
    har2 = ev.har_forecast(shocked, train_end, h)
    assert har.attrs["params"] == har2.attrs["params"]
    pd.testing.assert_series_equal(har.iloc[:601], har2.iloc[:601])
    assert not np.allclose(har.iloc[700:], har2.iloc[700:])
    # 2) the same coefficients from a hand-built least-squares fit on rows whose target window ends
    # by train_end
    comps = ev.har_components(btc_returns, (1, 7, 30))
    target = ev.forward_realized_vol_from_returns(btc_returns, h)
    rows = np.arange(len(btc_returns)) <= 600 - h
    use = rows & comps.notna().all(axis=1).to_numpy() & target.notna().to_numpy()
    X = np.column_stack([np.ones(use.sum()), comps[use].to_numpy()])
    beta = np.linalg.lstsq(X, target[use].to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(list(har.attrs["params"].values()), beta, rtol=1e-9)
    # 3) purge: the target of row 600-h is used, those of the last h training rows are not
    t_mod = target.copy()
    t_mod.iloc[600 - h + 1 :] = 5.0
    assert ev.har_forecast(btc_returns, train_end, h, target=t_mod).attrs[
        "params"
    ] == pytest.approx(har.attrs["params"], rel=1e-12)
    t_mod.iloc[600 - h] = 5.0
    assert ev.har_forecast(btc_returns, train_end, h, target=t_mod).attrs[
        "params"
    ] != pytest.approx(har.attrs["params"], rel=1e-6)


def test_garch_baseline_uses_features_helper(btc_returns):
    feats = pytest.importorskip("cryptovol.features")
    if not hasattr(feats, "garch_vol_forecast"):
        pytest.skip("cryptovol.features.garch_vol_forecast not exported yet")
    train_end = btc_returns.index[600]
    g = ev.garch_forecast(btc_returns, train_end, 7)
    assert g.name == "garch" and (g.loc[train_end:] > 0).all() and g.loc[train_end:].notna().all()
    # future returns cannot move earlier forecasts
    shocked = btc_returns.copy()
    shocked.iloc[801:] *= 3.0
    np.testing.assert_allclose(
        ev.garch_forecast(shocked, train_end, 7).iloc[:801], g.iloc[:801], rtol=1e-10
    )


# ---------------------------------------------------------------- Diebold-Mariano
def test_dm_by_hand_h1():
    stat, p = ev.diebold_mariano([1, 2, 3, 4], [0, 0, 0, 0], h=1)
    # d = 1..4: mean 2.5, gamma0 = 1.25, DM = 2.5 / sqrt(1.25/4) = 4.4721; HLN factor
    # sqrt((4+1-2)/4)
    assert stat == pytest.approx(4.47213595 * math.sqrt(0.75))
    assert p == pytest.approx(2 * stats.t.sf(stat, df=3))
    # A better -> negative
    assert ev.diebold_mariano([0, 0, 0, 0], [1, 2, 3, 4], h=1)[0] == pytest.approx(-stat)


def _dm_by_hand(d, h, weights):
    n, dbar = len(d), d.mean()
    g = [np.sum((d[k:] - dbar) * (d[: n - k] - dbar)) / n for k in range(h)]
    lrv = g[0] + 2 * sum(w * gk for w, gk in zip(weights, g[1:]))
    return dbar / math.sqrt(lrv / n) * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)


def test_dm_by_hand_h2():
    # positively autocorrelated: rectangular weights
    d = np.array([1.0, 1.5, 2.0, 0.5, 0.0, -0.5, 0.5, 1.0])
    stat, p = ev.diebold_mariano(d, np.zeros(len(d)), h=2)
    assert stat == pytest.approx(_dm_by_hand(d, 2, [1.0]))
    assert p == pytest.approx(2 * stats.t.sf(abs(stat), df=len(d) - 1))
    # gamma0 + 2 gamma1 < 0: Bartlett fallback (weight 1/2)
    d = np.array([1.0, -0.5, 2.0, 0.5, 1.5, -1.0])
    assert ev.diebold_mariano(d, np.zeros(len(d)), h=2)[0] == pytest.approx(
        _dm_by_hand(d, 2, [0.5])
    )


def test_dm_matches_statsmodels_hac_on_real_losses(btc_returns):
    h = 7
    target = ev.forward_realized_vol_from_returns(btc_returns, h)
    naive, ewma = ev.naive_forecast(btc_returns, h), ev.ewma_forecast(btc_returns)
    ok = (target.notna() & naive.notna() & ewma.notna()).to_numpy()
    a, f1, f2 = target[ok], naive[ok], ewma[ok]
    for la, lb in [
        (ev.squared_error(a, f1), ev.squared_error(a, f2)),
        (ev.qlike_loss(a, f1), ev.qlike_loss(a, f2)),
    ]:
        n = len(la)
        ols = sm.OLS(la - lb, np.ones(n)).fit(
            cov_type="HAC",
            cov_kwds={"maxlags": h - 1, "kernel": "uniform", "use_correction": False},
        )
        stat, p = ev.diebold_mariano(la, lb, h)
        hln = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
        assert stat == pytest.approx(ols.tvalues[0] * hln, rel=1e-9)
        assert p == pytest.approx(2 * stats.t.sf(abs(stat), df=n - 1), rel=1e-9)


def test_dm_identical_losses_and_bad_input():
    s, p = ev.diebold_mariano([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], h=1)
    assert math.isnan(s) and math.isnan(p)
    with pytest.raises(DataError):
        ev.diebold_mariano([1.0, 2.0], [0.0, 0.0], h=3)


# ---------------------------------------------------------------- residual tests, importance,
# attention
def test_residual_tests_match_independent_formulas():
    rng = np.random.default_rng(1)
    f = rng.uniform(0.3, 1.0, 300)
    a = 0.1 + 0.8 * f + rng.normal(0, 0.05, 300)
    r = ev.residual_tests(a, f, horizon=1, lags=5)
    beta, alpha = np.polyfit(f, a, 1)
    assert r["mz_alpha"] == pytest.approx(alpha) and r["mz_beta"] == pytest.approx(beta)
    assert r["mz_f_pvalue"] < 1e-6  # a=0.1, b=0.8 is far from (0, 1)
    e = a - f
    n = len(e)
    ec = e - e.mean()
    rho = np.array([ec[k:] @ ec[:-k] / (ec @ ec) for k in range(1, 6)])
    assert r["ljung_box_stat"] == pytest.approx(
        n * (n + 2) * np.sum(rho**2 / (n - np.arange(1, 6)))
    )
    s, k = stats.skew(e), stats.kurtosis(e)
    assert r["jarque_bera_stat"] == pytest.approx(n / 6 * (s**2 + k**2 / 4))
    assert ev.residual_tests(f + rng.normal(0, 0.05, 300), f, horizon=1)["mz_f_pvalue"] > 0.001


def test_permutation_importance_finds_the_only_used_feature():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6, 3)).astype(np.float32)
    y = 0.5 + 0.1 * X[:, :, 2].mean(axis=1)
    calls = []

    def predict(Xb):
        calls.append(len(Xb))
        return 0.5 + 0.1 * Xb[:, :, 2].mean(axis=1)

    imp = ev.permutation_importance(predict, X, y, ["a", "b", "c"], repeats=4, seed=3)
    assert (
        imp["feature"].iloc[0] == "c"
        and imp["importance_mean"].iloc[0] > 0
        and imp["importance_std"].iloc[0] > 0
    )
    assert imp.set_index("feature").loc[["a", "b"], "importance_mean"].tolist() == [0.0, 0.0]
    # baseline once, then all repeats of a feature in one batch
    assert calls == [300, 1200, 1200, 1200]
    with pytest.raises(DataError, match="shape"):
        ev.permutation_importance(predict, X, y, ["a", "b"])


def test_mean_attention_shapes():
    w = np.random.default_rng(0).dirichlet(np.ones(8), size=20)
    np.testing.assert_allclose(ev.mean_attention(w), w.mean(axis=0))
    np.testing.assert_allclose(ev.mean_attention(w[:, :, None]), w.mean(axis=0))


def test_history_formats():
    recs = [{"epoch": 0, "loss": 1.0, "val_loss": 1.2}, {"epoch": 1, "loss": 0.5, "val_loss": 0.9}]
    for h in (
        {"loss": [1.0, 0.5], "val_loss": [1.2, 0.9]},
        {"history": {"loss": [1.0, 0.5], "val_loss": [1.2, 0.9]}},
        recs,
    ):
        assert (
            list(ev._history_frame(h).columns) == ["loss", "val_loss"]
            and len(ev._history_frame(h)) == 2
        )
    assert ev._history_frame({"foo": "bar"}).empty


def test_comparison_table_best_values():
    metrics = {
        "forecasts": {
            "model": {"r2": 0.1, "rmse": 0.2, "qlike": 0.5, "bias": -0.01},
            "naive": {"r2": -0.5, "rmse": 0.3, "qlike": 0.4, "bias": 0.02},
        }
    }
    table = ev.comparison_table(metrics)
    assert list(table.index) == ["model", "naive"] and list(table.columns) == list(
        ev.METRIC_COLUMNS
    )
    best = ev.best_per_metric(table)
    assert (
        best["r2"] == "model"
        and best["rmse"] == "model"
        and best["qlike"] == "naive"
        and best["bias"] == "model"
    )


# ---------------------------------------------------------------- evaluate() end to end with
# stand-ins
@dataclass
class FakeDataset:
    X_train: np.ndarray
    y_train: np.ndarray
    dates_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    dates_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    dates_test: np.ndarray
    feature_names: list
    frame: pd.DataFrame
    params: dict = field(default_factory=dict)


class FakeTrained:
    """Stand-in for a trained model: a fixed linear map of the last window step, with uniform
    attention."""

    model_type, needs_garch, feature_names = "stand-in", False, ["rv_1", "rv_7", "rv_30"]

    def __init__(self, mean, scale):
        self.mean, self.scale = mean, scale

    def predict(self, X):
        return (0.15 + 0.6 * (X[:, -1, 2] * self.scale[2] + self.mean[2])).astype(np.float32)

    def attention_weights(self, X):
        return np.full((len(X), X.shape[1]), 1 / X.shape[1], dtype=np.float32)

    def member_predictions(self, X):
        return None

    def check_features(self, names):
        if list(names) != self.feature_names:
            raise ValueError("feature mismatch")


def make_fake(returns: pd.Series, h=7, T=10):
    frame = ev.har_components(returns, (1, 7, 30)).assign(
        log_return=returns, target=ev.forward_realized_vol_from_returns(returns, h)
    )
    frame["Close"] = np.exp(returns.fillna(0).cumsum())
    # stand-in for the daily high-low variance (this frame has no OHLC)
    frame["var_garman_klass"] = returns**2
    feats = ["rv_1", "rv_7", "rv_30"]
    valid = frame.dropna()
    rows = np.arange(T - 1, len(valid))
    F = valid[feats].to_numpy()
    mean, scale = F.mean(0), F.std(0)
    W = (
        np.lib.stride_tricks.sliding_window_view((F - mean) / scale, T, axis=0)
        .transpose(0, 2, 1)
        .astype(np.float32)
    )
    dates, y = valid.index.to_numpy()[rows], valid["target"].to_numpy(np.float32)[rows]
    i1, i2 = int(len(W) * 0.7), int(len(W) * 0.85)
    # purged like make_dataset: the last h windows before each split are dropped, so no target
    # crosses into the next
    ds = FakeDataset(
        W[: i1 - h],
        y[: i1 - h],
        dates[: i1 - h],
        W[i1 : i2 - h],
        y[i1 : i2 - h],
        dates[i1 : i2 - h],
        W[i2:],
        y[i2:],
        dates[i2:],
        feats,
        frame,
        {"target": {"horizon": h}},
    )
    return ds, FakeTrained(mean, scale)


# the classical forecasters on daily data: every registered one but the HAR family on hourly
# measures (intraday off here)
DAILY = [n for n in fc.FORECASTERS if not n.startswith("rv_")]


@pytest.fixture()
def project(tmp_path, monkeypatch, btc_returns):
    # cryptovol.features is stubbed below, so the hourly measures (which need it) stay off:
    # evaluation.intraday false
    (tmp_path / "params.yaml").write_text(
        (REPO / "params.yaml").read_text().replace("  intraday: true ", "  intraday: false ")
    )
    (tmp_path / "settings.ini").write_text((REPO / "settings.ini").read_text())
    monkeypatch.setenv("CRYPTOVOL_ROOT", str(tmp_path))
    ds, trained = make_fake(btc_returns)
    feats = types.ModuleType("cryptovol.features")
    feats.load_dataset = lambda symbol: ds
    train = types.ModuleType("cryptovol.train")
    train.load_trained = lambda path: (trained.loaded_from.append(Path(path)), trained)[1]
    trained.loaded_from = []
    train.model_inputs = lambda d, split, t: getattr(d, f"X_{split}")
    monkeypatch.setitem(sys.modules, "cryptovol.features", feats)
    monkeypatch.setitem(sys.modules, "cryptovol.train", train)
    # GARCH comes from cryptovol.features (stubbed out here): use a fixed-parameter stand-in, not
    # the real fit
    monkeypatch.setattr(
        fc, "garch_forecast", lambda r, te, hh, k=0: ev.ewma_forecast(r, 0.97).rename("garch")
    )
    hist = tmp_path / "models" / "BTC-USD"
    hist.mkdir(parents=True)
    (hist / "history.json").write_text(
        json.dumps({"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.6]})
    )
    return tmp_path, ds


def test_evaluate_writes_metrics_predictions_and_plots(project):
    root, ds = project
    params = load_params(
        root / "params.yaml", {"evaluation.permutation_repeats": 2, "evaluation.intraday": False}
    )
    res = ev.evaluate("BTC-USD", params=params, plots=True)
    out = root / "reports" / "BTC-USD"
    m = json.loads((out / "metrics.json").read_text())
    assert m == json.loads(json.dumps(ev._clean(res)))
    for name in ("model", *DAILY):
        assert set(ev.METRIC_COLUMNS) <= set(m["forecasts"][name]) and m["forecasts"][name][
            "n"
        ] == len(ds.y_test)
    assert m["forecasts"]["naive"]["theil_u"] == 1.0
    # baselines are fitted on the training period: last training forecast date + h days (the end of
    # its target window)
    pos = ds.frame.index.get_loc(pd.Timestamp(ds.dates_train[-1]))
    assert m["train_end"] == str(ds.frame.index[pos + 7].date())
    har = ev.fit_har(
        ds.frame["log_return"], ds.frame.index[pos + 7], 7, (1, 7, 30), ds.frame["target"]
    )
    assert m["har_coefficients"] == pytest.approx(har.params.to_dict(), rel=1e-12)
    for b in DAILY:
        assert set(m["dm"][b]) == {"se_stat", "se_pvalue", "qlike_stat", "qlike_pvalue"}
        assert all(0 <= m["dm"][b][k] <= 1 for k in ("se_pvalue", "qlike_pvalue"))
    assert {"mz_f_pvalue", "ljung_box_pvalue", "jarque_bera_pvalue"} <= set(m["residuals"])
    pred = pd.read_csv(out / "predictions.csv", parse_dates=["date"])
    # every registered classical forecaster, in order
    assert list(pred.columns) == ["date", "actual", "model", *DAILY]
    assert m["best_baseline"] in DAILY and set(m["validation_qlike"]) == set(DAILY)
    np.testing.assert_allclose(pred["actual"], ds.y_test, rtol=1e-6)
    assert (pred["date"].to_numpy() == ds.dates_test.astype("datetime64[ns]")).all()
    imp = pd.read_csv(out / "importance.csv")
    imp = imp.set_index("feature")["importance_mean"]  # the stand-in reads only rv_30
    assert (
        set(imp.index) == {"rv_1", "rv_7", "rv_30"}
        and imp["rv_1"] == imp["rv_7"] == 0.0
        and imp["rv_30"] != 0.0
    )
    assert len(pd.read_csv(out / "attention.csv")) == ds.X_test.shape[1]
    for png in (
        "forecast_vs_actual",
        "pred_vs_actual",
        "residuals",
        "training_history",
        "feature_importance",
        "feature_correlation",
        "attention",
    ):
        assert (out / "figures" / f"{png}.png").stat().st_size > 1000, png
    assert not list(out.rglob(".*tmp*"))  # atomic writes leave no temp files


def test_evaluate_no_plots_and_alignment_guard(project):
    root, ds = project
    params = load_params(
        root / "params.yaml", {"evaluation.plots": False, "evaluation.intraday": False}
    )
    ev.evaluate(
        "BTC-USD",
        params={"evaluation.plots": False},
        importance=False,
        model_path=root / "elsewhere" / "model.keras",
    )
    fake = sys.modules["cryptovol.train"].load_trained("probe")
    assert fake.loaded_from[-2] == root / "elsewhere" / "model.keras"
    # dotted overrides work too
    ev.evaluate("BTC-USD", params={"evaluation.plots": False}, importance=False)
    assert fake.loaded_from[-1] == root / "models" / "BTC-USD"
    out = root / "reports" / "BTC-USD"
    assert (out / "metrics.json").exists() and not list(out.rglob("*.png"))
    ds.y_test = ds.y_test * 1.1  # dataset targets no longer match the frame
    with pytest.raises(DataError, match="y_test"):
        ev.evaluate("BTC-USD", params=params, plots=False, importance=False)


def test_log_har_log_normal_correction_and_training_rows_only(btc_returns):
    """log-HAR: OLS on logs of training rows only; the forecast is exp(mu + s2) = sqrt(E[sigma^2])
    under log-normal errors."""
    import statsmodels.api as sm

    h, comp = 7, ev.har_components(btc_returns)
    target = ev.forward_realized_vol_from_returns(btc_returns, h)
    train_end = btc_returns.index[int(len(btc_returns) * 0.6)]
    f = ev.log_har_forecast(comp, target, train_end, h)
    # independent OLS on the rows whose target ends by train_end
    X = sm.add_constant(np.log(comp.clip(lower=1e-4)))
    use = (X.notna().all(axis=1) & target.notna()).to_numpy() & (
        np.arange(len(X)) <= btc_returns.index.searchsorted(train_end, "right") - 1 - h
    )
    res = sm.OLS(np.log(target[use]), X[use]).fit()
    s2 = float(np.sum(res.resid**2) / (use.sum() - X.shape[1]))
    assert f.attrs["params"]["s2"] == pytest.approx(s2, rel=1e-10)
    expect = np.exp(X.dropna() @ res.params + s2)
    np.testing.assert_allclose(f.dropna().to_numpy(), expect.to_numpy(), rtol=1e-10)
    # the closed forms of the two point forecasts
    assert ev.log_normal_point(np.log(0.5), 0.2) == pytest.approx(
        np.sqrt(np.exp(2 * np.log(0.5) + 2 * 0.2))
    )
    assert ev.log_normal_point(np.log(0.5), 0.2, "vol") == pytest.approx(0.5 * np.exp(0.1))
    # data after train_end cannot move the coefficients
    shocked = btc_returns.copy()
    shocked[shocked.index > train_end] *= 2.5
    f2 = ev.log_har_forecast(
        ev.har_components(shocked), ev.forward_realized_vol_from_returns(shocked, h), train_end, h
    )
    assert f2.attrs["params"] == f.attrs["params"]


def test_all_baselines_range_har_and_combination(btc_returns):
    h, train_end = 7, btc_returns.index[int(len(btc_returns) * 0.6)]
    params = load_params(REPO / "params.yaml")
    rv = btc_returns**2 * 1.3  # a stand-in daily range variance
    base = ev.baseline_forecasts(btc_returns, train_end, h, params, range_var=rv)
    # no hourly measures given
    assert list(base.columns) == [n for n in fc.FORECASTERS if not n.startswith("rv_")]
    assert set(base.attrs["params"]) >= {"har", "har_log", "har_range", "garch"}
    members = params["evaluation"]["combination"]
    ok = base[members].notna().all(axis=1)
    np.testing.assert_allclose(
        base.loc[ok, "combo"], np.sqrt((base.loc[ok, members] ** 2).mean(axis=1)), rtol=1e-12
    )
    # without range data the range-HAR is left out, and the combination uses the rest
    no_range = ev.baseline_forecasts(btc_returns, train_end, h, params)
    assert "har_range" not in no_range and "har_range" not in no_range.attrs["combination"]
    with pytest.raises(ConfigError, match="evaluation.combination"):
        ev.combine_forecasts(base, ["har", "egarch"])
