"""Tests of cryptovol.features on the real offline data (CRYPTOVOL_DATA_DIR): no look-ahead, target,
windows, scaler, datasets."""

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import Phase, given, settings, strategies as st

from cryptovol import config
from cryptovol.config import DataError, load_params, with_overrides
from cryptovol.data import load_prices, load_fear_greed
from cryptovol.features import (
    SPLITS,
    UNSCALED_FEATURES,
    apply_scaler,
    build_dataset,
    build_features,
    forward_realized_vol,
    garch_vol_forecast,
    load_dataset,
    log_returns,
    make_dataset,
    realized_vol,
    save_dataset,
    parkinson_vol,
    garman_klass_vol,
    align_fear_greed,
    forecast_days,
    forward_vol_horizons,
)

REPO = Path(__file__).resolve().parents[1]
from conftest import require_data  # noqa: E402

MIRROR = str(require_data())  # the offline mirror; without one this module skips with the reason
COINS = sorted(p.stem for p in (Path(MIRROR) / "yahoo").glob("*-USD.csv"))
assert COINS, f"{MIRROR}/yahoo holds no *-USD.csv files"


@pytest.fixture(scope="module")
def params():
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def btc(params):
    return load_prices("BTC-USD", source="mirror", params=params)


@pytest.fixture(scope="module")
def sol(params):
    return load_prices("SOL-USD", source="mirror", params=params)


@pytest.fixture(scope="module")
def fng(params):
    return load_fear_greed(source="mirror", params=params)


@pytest.fixture(scope="module")
def btc_ds(btc, fng, params):
    return make_dataset(btc, fng, params, "BTC-USD")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A throw-away project root (copy of params.yaml + empty settings.ini) so nothing is written
    into the repo's data/."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    (root / "settings.ini").write_text("")
    mp = pytest.MonkeyPatch()
    mp.setenv("CRYPTOVOL_ROOT", str(root))
    config.reset_params()
    yield root
    mp.undo()
    config.reset_params()


def load_json_features(root: Path) -> dict:
    return config.load_json(root / "data" / "processed" / "AVAX-USD" / "features.json")


def perturb_after(prices: pd.DataFrame, fng: pd.DataFrame, t, seed: int):
    """Copies of prices and sentiment with every value after `t` randomly changed (and some later
    sentiment days removed)."""
    rng = np.random.default_rng(seed)
    p = prices.copy()
    after = p.index > t
    p.loc[after, ["Open", "High", "Low", "Close"]] *= rng.uniform(0.3, 3.0, (after.sum(), 1))
    p.loc[after, "Volume"] *= rng.uniform(0.01, 100, after.sum())
    f = fng.copy()
    fa = f.index > t
    f.loc[fa, "fng_value"] = rng.integers(0, 101, fa.sum()).astype("float64")
    return p, f.drop(f.index[fa][::3])


# ---------------------------------------------------------------- estimators and target


def test_realized_vol_hand_computation(btc):
    c = btc.loc["2021-05-01":"2021-05-08", "Close"].tolist()
    r = [math.log(b / a) for a, b in zip(c, c[1:])]
    want = math.sqrt(365 / 7 * sum(x * x for x in r))
    got = realized_vol(log_returns(btc["Close"]), 7).loc["2021-05-08"]
    assert got == pytest.approx(want, rel=1e-12)
    bars = btc.loc["2021-05-02":"2021-05-08"]
    pk = math.sqrt(
        365 / 7 * sum(math.log(h / l) ** 2 for h, l in zip(bars.High, bars.Low)) / (4 * math.log(2))
    )
    assert parkinson_vol(btc, 7).loc["2021-05-08"] == pytest.approx(pk, rel=1e-12)
    gk = math.sqrt(
        365
        / 7
        * sum(
            0.5 * math.log(h / l) ** 2 - (2 * math.log(2) - 1) * math.log(c_ / o) ** 2
            for o, h, l, c_ in zip(bars.Open, bars.High, bars.Low, bars.Close)
        )
    )
    assert garman_klass_vol(btc, 7).loc["2021-05-08"] == pytest.approx(gk, rel=1e-12)


def test_target_equals_hand_computation(btc):
    # forecast at the close of 2021-05-01: returns of 05-02 .. 05-08 (h = 7)
    c = btc.loc["2021-05-01":"2021-05-08", "Close"].tolist()
    want = math.sqrt(365 / 7 * sum(math.log(b / a) ** 2 for a, b in zip(c, c[1:])))
    assert forward_realized_vol(btc, 7).loc["2021-05-01"] == pytest.approx(want, rel=1e-12)
    bars = btc.loc["2021-05-02":"2021-05-08"]
    pk = math.sqrt(
        365 / 7 * sum(math.log(h / l) ** 2 for h, l in zip(bars.High, bars.Low)) / (4 * math.log(2))
    )
    assert forward_realized_vol(btc, 7, "parkinson").loc["2021-05-01"] == pytest.approx(
        pk, rel=1e-12
    )
    y = forward_realized_vol(btc, 7)
    # incomplete windows are NaN, never padded
    assert y.iloc[-7:].isna().all() and y.iloc[:-7].notna().all()


@pytest.mark.parametrize("estimator", ["close_to_close", "parkinson", "garman_klass"])
def test_target_depends_only_on_next_h_days(btc, estimator):
    h = 7
    y = forward_realized_vol(btc, h, estimator)
    rng = np.random.default_rng(1)
    for t in rng.integers(10, len(btc) - h - 10, 8):
        p = btc.copy()
        # anything before t (and for range estimators day t itself), and anything after t+h, is
        # irrelevant
        before = slice(0, t + (0 if estimator == "close_to_close" else 1))
        p.iloc[before, :4] *= rng.uniform(0.5, 2, (p.iloc[before].shape[0], 1))
        p.iloc[t + h + 1 :, :4] *= rng.uniform(0.5, 2, (len(p) - t - h - 1, 1))
        assert forward_realized_vol(p, h, estimator).iloc[t] == y.iloc[t]
        assert forward_realized_vol(btc.iloc[: t + h + 1], h, estimator).iloc[t] == y.iloc[t]
        assert np.isnan(forward_realized_vol(btc.iloc[: t + h], h, estimator).iloc[t])
        col = btc.columns.get_loc("Close" if estimator == "close_to_close" else "High")
        q = btc.copy()
        q.iloc[t + h, col] *= 1.1  # ...but day t+h matters
        assert forward_realized_vol(q, h, estimator).iloc[t] != y.iloc[t]


# ---------------------------------------------------------------- features: no look-ahead


def _assert_rows_equal(a: pd.Series, b: pd.Series):
    assert list(a.index) == list(b.index)
    np.testing.assert_array_equal(a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64"))


# no slow shrinking
@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(frac=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_features_no_lookahead_property(btc, fng, params, frac, seed):
    days = btc.index[btc.index >= fng.index[0]][:-1]
    t = days[int(frac * (len(days) - 1))]
    full = build_features(btc, fng, params)
    trunc = build_features(btc.loc[:t], fng.loc[:t], params)
    p, f = perturb_after(btc, fng, t, seed)
    pert = build_features(p, f, params)
    # every feature at every day up to t is unchanged (checking all rows <= t, not only t)
    pd.testing.assert_frame_equal(trunc, full.loc[:t], check_exact=True, check_freq=False)
    pd.testing.assert_frame_equal(pert.loc[:t], full.loc[:t], check_exact=True, check_freq=False)
    assert len(full.columns) >= 15


def test_features_no_lookahead_sweep_without_sentiment(sol, params):
    p0 = load_params(REPO / "params.yaml", overrides={"features.sentiment": False})
    full = build_features(sol, None, p0)
    # every one of the first 130 days (indicator warm-ups: truncated inputs are very short there)
    # and 10 later days
    ts = np.r_[np.arange(0, 130, 3), np.linspace(130, len(sol) - 2, 10).astype(int)]
    for i, t in enumerate(sol.index[ts]):
        p, _ = perturb_after(sol, pd.DataFrame({"fng_value": []}, index=pd.DatetimeIndex([])), t, i)
        _assert_rows_equal(build_features(sol.loc[:t], None, p0).loc[t], full.loc[t])
        _assert_rows_equal(build_features(p, None, p0).loc[t], full.loc[t])


def test_perturbation_is_detected(btc, fng, params):
    """Guard that the no-look-ahead tests can fail: a leaky feature (centred rolling mean) is caught
    by the same check."""
    t = btc.index[2000]
    leaky = lambda px: px["Close"].rolling(15, center=True).mean()
    p, _ = perturb_after(btc, fng, t, 0)
    assert leaky(p).loc[t] != leaky(btc).loc[t]


# ---------------------------------------------------------------- sentiment policy


def test_sentiment_ffill_flag_and_exclusion(btc, fng, params):
    lim = params["features"]["sentiment_max_ffill"]
    al = align_fear_greed(fng, btc.index, lim)
    assert al.loc[:"2018-01-31", "fng_value"].isna().all()
    assert (
        al.loc["2018-04-14":"2018-04-16", "fng_value"].eq(al.loc["2018-04-13", "fng_value"]).all()
    )
    assert (
        al.loc["2018-04-14":"2018-04-16", "fng_available"].eq(0).all()
        and al.loc["2018-04-17", "fng_available"] == 1
    )
    # a gap longer than the fill limit stays NaN, and no window containing it is used
    gap = pd.date_range("2021-06-01", periods=lim + 5)
    ds = make_dataset(btc, fng.drop(gap, errors="ignore"), params, "BTC-USD")
    assert ds.frame.loc[gap[lim:], "fng_value"].isna().all()
    T = params["dataset"]["sequence_length"]
    all_dates = np.concatenate([ds.dates_train, ds.dates_val, ds.dates_test])
    pos = ds.frame.index.get_indexer(pd.DatetimeIndex(all_dates))
    gap_pos = ds.frame.index.get_indexer(gap[lim:])
    assert not any(((pos >= g) & (pos - T + 1 <= g)).any() for g in gap_pos)
    # nothing before the index start (2018-02-01) is an input of any window
    first_input = ds.frame.index[pos.min() - T + 1]
    assert first_input >= pd.Timestamp("2018-02-01")


def test_sentiment_switches(btc, fng):
    off = load_params(REPO / "params.yaml", overrides={"features.sentiment": False})
    f_off = build_features(btc, fng, off)
    assert (
        not [c for c in f_off.columns if c.startswith("fng_")]
        and "price_sentiment_proxy" in f_off.columns
    )
    ds = make_dataset(btc, None, off, "BTC-USD")
    # pre-2018 history kept without sentiment
    assert pd.Timestamp(ds.dates_train[0]) < pd.Timestamp("2015-06-01")
    old = btc.loc[:"2017-12-31"]
    err = load_params(REPO / "params.yaml", overrides={"features.on_missing_sentiment": "error"})
    with pytest.raises(DataError, match="on_missing_sentiment"):
        build_features(old, fng, err)
    with pytest.raises(DataError, match="Fear & Greed"):
        build_features(btc, None, err)
    dis = load_params(REPO / "params.yaml", overrides={"features.on_missing_sentiment": "disable"})
    assert list(build_features(old, fng, dis).columns) == list(
        build_features(old, None, off).columns
    )


# ---------------------------------------------------------------- GARCH


@pytest.mark.parametrize("refit_every", [0, 150])
def test_garch_no_lookahead(btc, refit_every):
    r = log_returns(btc["Close"])
    train_end = btc.index[2400]
    g = garch_vol_forecast(r, train_end, 7, refit_every=refit_every)
    assert g.iloc[1:].notna().all() and (g.iloc[1:] > 0).all()
    # include the day just before a refit: a refit must not leak into the forecasts made before it
    for k, t in enumerate(btc.index[[2400, 2400 + refit_every - 2 if refit_every else 2650, 3100]]):
        r2 = r.copy()
        after = r2.index > t
        r2[after] = np.random.default_rng(k).standard_normal(after.sum()) * 0.1
        g2 = garch_vol_forecast(r2, train_end, 7, refit_every=refit_every)
        np.testing.assert_allclose(g2.loc[:t].to_numpy()[1:], g.loc[:t].to_numpy()[1:], rtol=1e-10)
        assert not np.allclose(g2.loc[t:].to_numpy()[5:], g.loc[t:].to_numpy()[5:])


def test_garch_matches_arch(btc):
    from arch import arch_model

    r = log_returns(btc["Close"]).dropna()
    train_end = r.index[1500]
    res = arch_model(100 * r, mean="Zero", vol="GARCH", p=1, q=1, dist="t").fit(
        last_obs=1501, disp="off"
    )
    t = r.index[2000]
    var = res.forecast(horizon=7, start=t, reindex=False).variance.loc[t].to_numpy()
    want = np.sqrt(365 / 7 * var.sum()) / 100
    assert garch_vol_forecast(log_returns(btc["Close"]), train_end, 7).loc[t] == pytest.approx(
        want, rel=1e-6
    )


# ---------------------------------------------------------------- datasets


def test_windows_line_up_with_dates(btc_ds, btc, params):
    ds, T, h = btc_ds, params["dataset"]["sequence_length"], params["target"]["horizon"]
    fr = ds.frame
    rng = np.random.default_rng(0)
    for k in SPLITS:
        X, y, d, G = ds.split(k)
        assert X.dtype == y.dtype == G.dtype == np.float32 and d.dtype == np.dtype("datetime64[ns]")
        assert X.shape == (len(y), T, len(ds.feature_names)) and G.shape == (len(y), T, 1)
        assert np.isfinite(X).all() and np.isfinite(y).all() and np.isfinite(G).all()
        assert (np.diff(d) > np.timedelta64(0)).all()
        for i in rng.integers(0, len(y), 5):
            t = pd.Timestamp(d[i])
            p = fr.index.get_loc(t)
            rows = fr.iloc[p - T + 1 : p + 1]
            np.testing.assert_allclose(
                X[i],
                apply_scaler(rows[ds.feature_names].to_numpy(), ds.scaler),
                rtol=1e-5,
                atol=1e-5,
            )
            g = ds.scaler["garch"]
            np.testing.assert_allclose(
                G[i, :, 0],
                (rows["garch_vol"].to_numpy() - g["center"]) / g["scale"],
                rtol=1e-5,
                atol=1e-5,
            )
            # C_t .. C_{t+h}: target starts the day after t
            closes = btc["Close"].iloc[p : p + h + 1].to_numpy()
            assert y[i] == pytest.approx(
                np.sqrt(365 / h * np.sum(np.diff(np.log(closes)) ** 2)), rel=1e-5
            )
            assert rows.index[-1] == t


def test_splits_chronological_and_purged(btc_ds, params):
    ds, h, m = btc_ds, params["target"]["horizon"], params["dataset"]["min_split_samples"]
    K = forecast_days(params)
    g = max(h, K)
    assert K == max(params["predict"]["forecast_days"], h) and g >= K
    idx = ds.frame.index
    pos = {k: idx.get_indexer(pd.DatetimeIndex(getattr(ds, f"dates_{k}"))) for k in SPLITS}
    assert all(len(pos[k]) >= m for k in SPLITS)
    # no training target of any horizon (rows t+1..t+K) reaches the validation period, no validation
    # target the test period
    assert pos["train"].max() + K < pos["val"].min() and pos["val"].max() + K < pos["test"].min()
    assert pos["train"].max() + h < pos["val"].min() and pos["val"].max() + h < pos["test"].min()
    assert pos["val"].min() - pos["train"].max() == g + 1 and ds.summary["purged"] == {
        "train": g,
        "val": g,
    }


def test_multi_horizon_targets(btc_ds, btc, params):
    """Y (N, K): column k-1 = forward vol over days t+1..t+k, by hand on real rows; column h-1 is y
    exactly; NaN only at the data end."""
    ds, h, K = btc_ds, params["target"]["horizon"], forecast_days(params)
    assert ds.forecast_days == K == 10 and ds.summary["forecast_days"] == K
    closes = btc["Close"]
    rng = np.random.default_rng(1)
    for k in SPLITS:
        Y, y, d = getattr(ds, f"Y_{k}"), getattr(ds, f"y_{k}"), getattr(ds, f"dates_{k}")
        assert Y.dtype == np.float32 and Y.shape == (len(y), K)
        np.testing.assert_array_equal(Y[:, h - 1], y)  # exactly the target
        for i in rng.integers(0, len(y) - K, 4):
            p = closes.index.get_loc(pd.Timestamp(d[i]))
            r = np.diff(np.log(closes.iloc[p : p + K + 1].to_numpy()))  # r[t+1..t+K]
            want = np.sqrt(365 / np.arange(1, K + 1) * np.cumsum(r**2))
            np.testing.assert_allclose(Y[i], want, rtol=1e-5)
    # the purge keeps every horizon inside its period
    assert np.isfinite(ds.Y_train).all() and np.isfinite(ds.Y_val).all()
    # test rows: column k is NaN exactly when day t+k is past the end of the data
    p_last = closes.index.get_loc(pd.Timestamp(ds.dates_test[-1]))
    # days after the last test date
    left = len(closes) - 1 - p_last
    assert left == h
    assert np.isfinite(ds.Y_test[:-K]).all()
    np.testing.assert_array_equal(np.isnan(ds.Y_test[-1]), np.arange(1, K + 1) > left)
    # the helper itself: one forward_realized_vol per horizon, on another estimator too
    Yp = forward_vol_horizons(btc.iloc[-300:], 3, "parkinson")
    np.testing.assert_array_equal(
        Yp["vol_2d"].to_numpy(), forward_realized_vol(btc.iloc[-300:], 2, "parkinson").to_numpy()
    )
    # a larger predict.forecast_days widens Y and the purge
    p2 = load_params(REPO / "params.yaml", overrides={"predict.forecast_days": 14})
    ds2 = make_dataset(
        btc,
        None,
        load_params(
            REPO / "params.yaml",
            overrides={"predict.forecast_days": 14, "features.sentiment": False},
        ),
        "BTC-USD",
    )
    assert (
        forecast_days(p2) == 14
        and ds2.Y_train.shape[1] == 14
        and ds2.summary["purged"] == {"train": 14, "val": 14}
    )
    assert np.isfinite(ds2.Y_val).all()


def test_date_split(btc, fng):
    p = load_params(
        REPO / "params.yaml",
        overrides={
            "dataset.split": "date",
            "dataset.val_start": "2022-06-01",
            "dataset.test_start": "2023-06-01",
        },
    )
    ds = make_dataset(btc, fng, p, "BTC-USD")
    assert pd.Timestamp(ds.dates_train[-1]) < pd.Timestamp("2022-06-01") - pd.Timedelta(days=7)
    assert pd.Timestamp("2022-06-01") == pd.Timestamp(ds.dates_val[0])
    assert pd.Timestamp(ds.dates_val[-1]) < pd.Timestamp("2023-06-01") - pd.Timedelta(days=7)
    assert pd.Timestamp(ds.dates_test[0]) == pd.Timestamp("2023-06-01")


def test_scaler_uses_training_rows_only(btc_ds, btc, fng, params):
    ds, T = btc_ds, params["dataset"]["sequence_length"]
    fr = ds.frame
    first = fr.index.get_loc(pd.Timestamp(ds.dates_train[0])) - T + 1
    last = fr.index.get_loc(pd.Timestamp(ds.dates_train[-1]))
    rows = fr.iloc[first : last + 1][ds.feature_names].to_numpy()
    # 0/1 flag fng_available: deliberately unscaled
    flag = ds.feature_names.index(UNSCALED_FEATURES[0])
    assert (ds.scaler["center"][flag], ds.scaler["scale"][flag]) == (0.0, 1.0)
    cols = [j for j in range(len(ds.feature_names)) if j != flag]
    np.testing.assert_allclose(
        np.array(ds.scaler["center"])[cols], rows.mean(axis=0)[cols], rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        np.array(ds.scaler["scale"])[cols], rows.std(axis=0)[cols], rtol=1e-9, atol=1e-12
    )
    assert ds.scaler["n_rows"] == len(rows)
    # changing every price after the training period changes val/test but neither the scaler nor the
    # training arrays
    # end of the training period (incl. purged samples)
    t = fr.index[last + max(params["target"]["horizon"], forecast_days(params))]
    p, f = perturb_after(btc, fng, t, 3)
    ds2 = make_dataset(p, f, params, "BTC-USD")
    assert ds2.scaler == ds.scaler
    np.testing.assert_array_equal(ds2.X_train, ds.X_train)
    np.testing.assert_array_equal(ds2.y_train, ds.y_train)
    np.testing.assert_array_equal(ds2.G_train, ds.G_train)
    assert not np.array_equal(ds2.X_test, ds.X_test)


def test_minmax_scaler_on_train(btc, fng):
    p = load_params(REPO / "params.yaml", overrides={"dataset.scaler": "minmax"})
    ds = make_dataset(btc, fng, p, "BTC-USD")
    flat = ds.X_train.reshape(-1, ds.X_train.shape[-1])
    varying = np.array(ds.scaler["scale"]) != 1.0
    np.testing.assert_allclose(flat.min(axis=0)[varying], 0, atol=1e-6)
    np.testing.assert_allclose(flat.max(axis=0)[varying], 1, atol=1e-6)
    # later data is not squeezed into the training range
    assert ds.X_test.max() > 1 or ds.X_test.min() < 0


def test_too_short_history_names_minimum(sol, fng, params):
    # the minimum-history rule of a per-coin fraction split
    params = with_overrides(params, **{"dataset.split": "fraction"})
    need = make_dataset(sol, fng, params, "SOL-USD").summary["min_history_days"]
    assert need > 300
    # exactly the minimum works
    ds = make_dataset(sol.iloc[:need], fng, params, "SOL-USD")
    assert (
        min(len(ds.y_train), len(ds.y_val), len(ds.y_test))
        >= params["dataset"]["min_split_samples"]
    )
    with pytest.raises(DataError, match=f"at least {need} days"):
        make_dataset(sol.iloc[: need - 1], fng, params, "SOL-USD")
    with pytest.raises(DataError, match="at least"):
        make_dataset(sol.iloc[:80], fng, params, "SOL-USD")


def test_build_dataset_every_coin(project, params):
    assert len(COINS) >= 14
    for sym in COINS:
        ds = build_dataset(sym, params)
        out = project / "data" / "processed" / sym
        assert {p.name for p in out.iterdir()} >= {
            "windows.npz",
            "features.json",
            "scaler.json",
            "params.json",
            "frame.csv",
            "summary.json",
        }
        assert len(ds.feature_names) >= 15
        for k in SPLITS:
            X, y, d, G = ds.split(k)
            assert len(y) >= params["dataset"]["min_split_samples"]
            assert np.isfinite(X).all() and np.isfinite(y).all() and np.isfinite(G).all()


def test_load_dataset_roundtrip_and_format(project, params):
    ds = build_dataset("AVAX-USD", params)
    back = load_dataset("AVAX-USD")
    for k in SPLITS:
        for a in ("X", "y", "dates", "G", "Y"):
            np.testing.assert_array_equal(getattr(back, f"{a}_{k}"), getattr(ds, f"{a}_{k}"))
    assert (
        back.feature_names == ds.feature_names
        and back.scaler == ds.scaler
        and back.summary == ds.summary
    )
    assert back.forecast_days == ds.forecast_days == load_json_features(project)["forecast_days"]
    assert set(back.scaler) >= {"kind", "center", "scale"} and len(back.scaler["center"]) == len(
        ds.feature_names
    )
    np.testing.assert_allclose(
        back.frame[ds.feature_names].to_numpy(), ds.frame[ds.feature_names].to_numpy(), rtol=1e-12
    )
    assert {"target", "Close", "log_return", "garch_vol", "split"} <= set(back.frame.columns)
    with np.load(
        project / "data" / "processed" / "AVAX-USD" / "windows.npz", allow_pickle=False
    ) as z:
        assert set(z.files) == {f"{a}_{k}" for a in ("X", "y", "dates", "G", "Y") for k in SPLITS}
    # identical inputs give identical bytes (DVC sees no change on a re-run)
    a, b = save_dataset(ds, project / "a"), save_dataset(ds, project / "b")
    assert (a / "windows.npz").read_bytes() == (b / "windows.npz").read_bytes()
    with pytest.raises(DataError, match="build_dataset"):
        load_dataset("NOPE-USD")


def test_build_dataset_prefers_raw_cache(project, params, sol, monkeypatch):
    import cryptovol.data as cdata

    monkeypatch.setattr(cdata, "read_cached_prices", lambda symbol, params=None: sol.iloc[:900])

    def no_download(*a, **k):
        raise AssertionError("load_prices must not be called when the cache exists")

    monkeypatch.setattr(cdata, "load_prices", no_download)
    # 900 days end before the date split's validation
    ds = build_dataset("SOL-USD", with_overrides(params, **{"dataset.split": "fraction"}))
    assert ds.summary["history"]["days"] == 900


def test_build_dataset_short_history_raises(project, params):
    p = load_params(REPO / "params.yaml", overrides={"data.start": "2024-05-01"})
    with pytest.raises(DataError, match="at least"):
        build_dataset("NEAR-USD", p)
