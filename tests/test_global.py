"""The global probabilistic model (nbs/12_global): leakage across coins by dates, the log-normal
head's closed forms, a coherent term structure, deterministic training, safe-mode save/load, and the
pipeline, predict and backtest paths.

Real prices of the offline data; every network is tiny (8 units, 2 epochs) and trained on two or
three coins."""

import json, subprocess, sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from cryptovol import globalnet as g
from cryptovol import model as head  # the log-normal head: closed forms and layers
from cryptovol.config import ConfigError, DataError, load_params, reset_params, with_overrides
from cryptovol.features import _read_inputs, make_dataset

REPO = Path(__file__).resolve().parent.parent
COINS = ["BTC-USD", "ETH-USD", "SOL-USD"]
TINY = {
    "global_model.units": 8,
    "global_model.dense_units": 8,
    "global_model.epochs": 2,
    "global_model.seeds": 2,
    "global_model.batch_size": 256,
    "dataset.sequence_length": 20,
}


@pytest.fixture(scope="module")
def params():
    return with_overrides(load_params(REPO / "params.yaml"), **TINY)


@pytest.fixture(scope="module")
def datasets(mirror, params):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
        return {c: make_dataset(*_read_inputs(c, params), params, c) for c in COINS}


@pytest.fixture(scope="module")
def panel(datasets, params):
    return g.build_panel(datasets, params["global_model"]["anchor_features"], coins=COINS)


@pytest.fixture(scope="module")
def trained(panel, params, tmp_path_factory):
    return g.train_global(
        panel, params, tmp_path_factory.mktemp("global") / "model", verbose=0, progress=False
    )


# ---------------------------------------------------------------- leakage across coins, by dates
def test_no_coin_trains_or_stops_on_any_coins_validation_or_test_dates(panel, params):
    gap = max(params["target"]["horizon"], params["predict"]["forecast_days"])
    vs, ts = (
        pd.Timestamp(params["dataset"]["val_start"]),
        pd.Timestamp(params["dataset"]["test_start"]),
    )
    g.check_panel_dates(panel, vs, ts, gap)
    tr, va, te = (pd.DatetimeIndex(panel.splits[s]["dates"]) for s in ("train", "val", "test"))
    # every training target ends before any coin's validation
    assert (tr + pd.Timedelta(days=gap) < vs).all()
    # early stopping never sees a test day
    assert (va >= vs).all() and (va + pd.Timedelta(days=gap) < ts).all()
    assert (te >= ts).all()
    assert len(set(panel.splits["train"]["coin"])) == len(COINS)


def test_per_coin_calendars_are_refused(datasets, params, mirror, monkeypatch):
    """A per-coin fraction split puts one coin's training days inside another's test period: the
    check and the config refuse it."""
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    frac = with_overrides(params, **{"dataset.split": "fraction"})
    with pytest.raises(ConfigError, match="dataset.split: date"):
        g.check_scope_params(frac)
    # BTC's training runs into SOL's test year
    mixed = {c: make_dataset(*_read_inputs(c, frac), frac, c) for c in COINS}
    p = g.build_panel(mixed, params["global_model"]["anchor_features"], coins=COINS)
    test_start = min(pd.Timestamp(ds.dates_test[0]) for ds in mixed.values())
    val_start = min(pd.Timestamp(ds.dates_val[0]) for ds in mixed.values())
    with pytest.raises(DataError, match="cross-coin leakage"):
        g.check_panel_dates(p, val_start, test_start, 10)
    with pytest.raises(ConfigError, match="not in universe"):
        g.check_scope_params(with_overrides(params, **{"universe": ["BTC-USD"]}))


# ---------------------------------------------------------------- the head
@pytest.mark.parametrize("mu,s", [(np.log(0.6), 0.25), (np.log(0.2), 0.8), (0.3, 0.05)])
def test_head_forecasts_equal_the_closed_forms(mu, s):
    """At known (mu, s): E[sigma^2], E[sigma], quantiles and the point layer match the log-normal's
    closed forms."""
    K, min_spread = 4, 0.02
    m2 = np.exp(2 * mu + 2 * s**2)
    # a flat term structure: E[sigma_k^2] = m2 for every k
    day_var = np.full((1, K), m2)
    raw = g._inv_softplus(np.full((1, K), s - min_spread)).astype("float32")
    out = np.asarray(
        head.LogNormalTermStructure(min_spread)([np.log(day_var).astype("float32"), raw]), "float64"
    )
    np.testing.assert_allclose(out[0, :, 1], s, rtol=1e-5)
    np.testing.assert_allclose(out[0, :, 0], mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(head.lognormal_mean_var(mu, s), m2)
    np.testing.assert_allclose(head.lognormal_mean_vol(mu, s), np.exp(mu + s**2 / 2))
    np.testing.assert_allclose(
        head.lognormal_quantile(mu, s, 0.9), np.exp(mu + 1.2815515655446004 * s)
    )
    lo, hi = head.lognormal_interval(mu, s, 0.95)
    np.testing.assert_allclose([lo, hi], np.exp(mu + np.array([-1, 1]) * 1.959963984540054 * s))
    np.testing.assert_allclose(
        np.exp(np.asarray(head.LogNormalPoint("variance")(out))), np.sqrt(m2), rtol=1e-5
    )
    np.testing.assert_allclose(
        np.exp(np.asarray(head.LogNormalPoint("vol")(out))), np.exp(mu + s**2 / 2), rtol=1e-5
    )
    draws = np.exp(np.random.default_rng(1).normal(mu, s, 400_000))
    np.testing.assert_allclose(np.mean(draws**2), m2, rtol=0.01)


def test_mixture_keeps_the_mean_variance():
    mus, ss = np.array([[-1.0, -0.2], [-0.6, 0.1]]), np.array([[0.2, 0.5], [0.4, 0.3]])
    mu, s = head.mix_lognormals(mus, ss)
    np.testing.assert_allclose(
        head.lognormal_mean_var(mu, s), head.lognormal_mean_var(mus, ss).mean(axis=0)
    )
    layer = np.asarray(
        head.LogNormalMixture()(
            [
                np.stack([mus[0], ss[0]], -1)[None].astype("float32"),
                np.stack([mus[1], ss[1]], -1)[None].astype("float32"),
            ]
        )
    )[0]
    np.testing.assert_allclose(layer, np.stack([mu, s], -1), rtol=1e-4, atol=1e-5)


def test_cumulative_variance_is_monotone_for_every_test_window(trained, panel):
    mu, s = g.predict_lognormal(trained.model, panel.inputs("test"))
    C = head.lognormal_mean_var(mu, s) * np.arange(1, mu.shape[1] + 1)
    assert len(C) == panel.n("test") and np.all(np.diff(C, axis=1) > 0)
    assert np.isfinite(mu).all() and (s > 0).all()


# ---------------------------------------------------------------- training
def test_global_training_is_deterministic_for_a_seed(panel, params, tmp_path):
    p = with_overrides(params, **{"global_model.seeds": 1})
    a = g.train_global(panel, p, tmp_path / "a", verbose=0, progress=False)
    b = g.train_global(panel, p, tmp_path / "b", verbose=0, progress=False)
    ha, hb = (
        {
            k: {kk: v for kk, v in h.items() if kk != "seconds"}
            for k, h in json.loads((r.out / "history.json").read_text())["members"].items()
        }
        for r in (a, b)
    )
    # losses, validation QLIKE per epoch, the choice (not the timings)
    assert ha == hb and len(next(iter(ha.values()))["loss"]) == 2
    # the trained weights
    la, lb = (
        keras.models.load_model(next((r.out / "members").glob("*/last.keras")), safe_mode=True)
        for r in (a, b)
    )
    for wa, wb in zip(la.get_weights(), lb.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    few = {k: v[:50] for k, v in panel.inputs("val").items()}
    np.testing.assert_array_equal(
        g.predict_lognormal(a.model, few)[0], g.predict_lognormal(b.model, few)[0]
    )


def test_validation_decides_between_network_and_anchor(trained):
    s = trained.summary
    assert 1 <= s["ensemble_size"] <= 2 and set(s["validation_qlike_by_size"]) == {"1", "2"}
    # epoch 0 (the anchor) is a candidate of every member
    assert s["validation_qlike"] <= s["validation_qlike_anchor"] + 1e-9
    assert s["samples_per_s"] > 0 and s["n_train"] == trained.panel.n("train")


# ---------------------------------------------------------------- saving
def test_head_and_ensemble_round_trip_in_safe_mode(trained, datasets, params, tmp_path):
    few = {k: v[:40] for k, v in trained.panel.inputs("val").items()}
    for i, m in enumerate(
        [*trained.members, g.combine_global(trained.members + trained.members[:1])]
    ):
        f = tmp_path / f"m{i}.keras"
        m.save(f)
        back = keras.models.load_model(f, safe_mode=True, compile=False)
        np.testing.assert_allclose(
            g.predict_lognormal(back, few)[0], g.predict_lognormal(m, few)[0], rtol=1e-6
        )
    from cryptovol.train import load_trained

    view = g.write_coin_view(trained, datasets["ETH-USD"], "ETH-USD", params, tmp_path / "ETH-USD")
    tm = load_trained(view)
    X = np.asarray(datasets["ETH-USD"].X_val[:40], "float32")
    rows = trained.panel.rows_of("val", "ETH-USD")
    mu, s = g.predict_lognormal(
        trained.model, {k: v[rows][:40] for k, v in trained.panel.inputs("val").items()}
    )
    np.testing.assert_allclose(
        tm.predict_horizons(X), np.sqrt(head.lognormal_mean_var(mu, s)), rtol=1e-4
    )
    np.testing.assert_allclose(
        tm.predict_mean_vol(X), head.lognormal_mean_vol(mu[:, 6], s[:, 6]), rtol=1e-4
    )
    lo, hi = tm.predict_intervals(X, 0.8)
    np.testing.assert_allclose(lo, head.lognormal_quantile(mu[:, 6], s[:, 6], 0.1), rtol=1e-4)


# ---------------------------------------------------------------- the pipeline, predict and the
# backtest
def _tiny_root(root: Path, **extra) -> Path:
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    flat = {
        **TINY,
        "symbols": ["BTC-USD"],
        "universe": ["BTC-USD", "ETH-USD"],
        "evaluation.permutation_repeats": 1,
        "evaluation.plots": False,
        "backtest.mcs_reps": 200,
        **extra,
    }
    for k, v in flat.items():
        d = p
        *parents, last = k.split(".")
        for q in parents:
            d = d[q]
        d[last] = v
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    (root / "settings.ini").write_text((REPO / "settings.ini").read_text())
    return root


def _cli(*args, root, mirror, ok=True):
    import os

    env = {
        **os.environ,
        "CRYPTOVOL_ROOT": str(root),
        "CRYPTOVOL_DATA_DIR": str(mirror),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    r = subprocess.run(
        [sys.executable, "-m", "cryptovol", *args],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=900,
    )
    if ok:
        assert r.returncode == 0, (
            f"cryptovol {' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
        )
    return r


def test_global_pipeline_predict_and_one_line_errors(tmp_path, mirror):
    root = _tiny_root(tmp_path / "p")
    _cli("pipeline", "--no_report", root=root, mirror=mirror)
    assert (root / "models" / "global" / "model.keras").is_file() and (
        root / "models" / "BTC-USD" / "distribution.keras"
    ).is_file()
    m = json.loads((root / "reports" / "BTC-USD" / "metrics.json").read_text())
    assert m["model_type"] == "global" and {"80", "95"} <= set(m["intervals"]["test"])
    assert 0 < m["intervals"]["test"]["80"] < m["intervals"]["test"]["95"] <= 1
    pred = pd.read_csv(root / "reports" / "BTC-USD" / "predictions.csv")
    assert {"model", "model_mean_vol", "lo80", "hi80", "lo95", "hi95"} <= set(pred.columns)
    assert (
        (pred.lo95 <= pred.lo80)
        & (pred.lo80 <= pred.model_mean_vol)
        & (pred.model_mean_vol <= pred.model)
        & (pred.hi80 <= pred.hi95)
    ).all()
    _cli("predict", "--crypto_symbol", "BTC-USD", "--forecast_days", "10", root=root, mirror=mirror)
    table = pd.read_csv(root / "reports" / "BTC-USD" / "forecast.csv")
    assert {"vol_mean", "lo80", "hi80", "lo95", "hi95"} <= set(table.columns)
    k = np.arange(1, 11)
    assert (
        np.all(np.diff(k * table.vol_next_k_days.to_numpy() ** 2) > 0)
        and (table.vol_of_day > 0).all()
    )
    r = _cli("train", "--crypto_symbol", "BTC-USD", root=root, mirror=mirror, ok=False)
    assert r.returncode != 0 and "no --crypto_symbol" in r.stderr and "Traceback" not in r.stderr


def test_global_backtest_joins_each_coins_record(tmp_path, mirror, monkeypatch):
    root = _tiny_root(
        tmp_path / "b",
        **{
            "backtest.start": "2023-06-01",
            "backtest.fold_days": 270,
            "backtest.global_val_days": 180,
            "rv_net.epochs": 2,  # in the job processes, where conftest's tiny rv_net does not reach
            "rv_net.seeds": 1,
        },
    )
    monkeypatch.setenv("CRYPTOVOL_ROOT", str(root))
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    reset_params()
    try:
        from cryptovol import backtest as bt

        p = load_params(root / "params.yaml")
        from cryptovol.parallel import Executor

        # the backtest fits the global model inside each fold's job (here two, in two processes)
        # and joins it in memory
        res = bt.backtest("BTC-USD", p, progress=False, executor=Executor(workers=2))
        _, rec = bt.load_backtest("BTC-USD")
        # ... the same digits as the global model's part run on its own (`--global_models`)
        pred = bt.backtest_global(p, out=tmp_path / "alone", progress=False)
        assert set(pred["coin"]) == {"BTC-USD"} and not pred.duplicated(["coin", "date"]).any()
        alone = pred.set_index("date").sort_index()
        for c in ("model", "model_mean_vol", "lo80", "hi95", "anchor_global"):
            np.testing.assert_array_equal(rec[c].to_numpy(), alone[c].reindex(rec.index).to_numpy())
        assert res["model_type"] == "global" and len(res["folds"]) == 2
        assert all(
            pd.Timestamp(f["start"]) - pd.Timestamp(f["val_start"]) == pd.Timedelta(days=180)
            for f in res["folds"]
        )
        for f in res["folds"]:
            assert pd.Timestamp(f["train_end"]) + pd.Timedelta(days=10) < pd.Timestamp(
                f["val_start"]
            )
        assert {"lo80", "hi95", "model_mean_vol"} <= set(rec.columns) and "lo80" not in res[
            "metrics"
        ]
        assert 0 <= res["coverage"]["80"] <= res["coverage"]["95"] <= 1
        assert "model_mean_vol" not in res["mcs"]["pvalues"]
        info = json.loads((root / "models" / "backtest" / "global" / "summary.json").read_text())
        assert [f["fold"] for f in info["folds"]] == [0, 1] and all(
            set(f["coins"]) == {"BTC-USD", "ETH-USD"} for f in info["folds"]
        )
    finally:
        reset_params()
