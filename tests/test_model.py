"""Tests for cryptovol.model: attention layer, helper layers, losses, builders, ensemble
combination, save/load; plus a learnability check of the advanced model on a clearly labelled
SYNTHETIC volatility series (test-only data).
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import keras

from cryptovol.config import ConfigError, load_params, with_overrides
from cryptovol import model as M

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params():
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def tiny(params):
    return with_overrides(
        params,
        **{"model.lstm_units": [8, 4], "model.dropout": [0.1, 0.1], "model.dense_units": [8]},
    )


@pytest.fixture(scope="module")
def btc_windows(mirror):
    "Real BTC windows (T=20) of 3 standardised trailing features from the mirror's prices."
    df = pd.read_csv(mirror / "yahoo" / "BTC-USD.csv")
    r = np.log(df["Close"]).diff()
    f = pd.DataFrame(
        {
            "rv7": np.sqrt(365 / 7 * (r**2).rolling(7).sum()),
            "abs_ret": r.abs(),
            "hl": np.log(df["High"] / df["Low"]),
        }
    ).dropna()
    x = f.to_numpy(np.float32)
    x = (x - x.mean(0)) / x.std(0)
    idx = np.arange(20)[None, :] + np.arange(len(x) - 19)[:, None]
    return x[idx][-256:]


# ---------------------------------------------------------------- layers
def test_attention_weights_and_context():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 12, 6)).astype("float32")
    att = M.AttentionLayer(units=4)
    ctx, w = att(x, return_attention=True)
    ctx, w = np.asarray(ctx), np.asarray(w)
    assert ctx.shape == (5, 6) and w.shape == (5, 12)
    np.testing.assert_allclose(w.sum(1), 1, rtol=1e-6)
    assert (w > 0).all()
    # context = weighted sum of steps
    np.testing.assert_allclose(ctx, (x * w[..., None]).sum(1), rtol=1e-5, atol=1e-6)
    # default: context only
    np.testing.assert_allclose(np.asarray(att(x)), ctx, rtol=1e-6)
    # identical steps -> uniform weights
    same = np.repeat(x[:, :1], 12, axis=1)
    np.testing.assert_allclose(np.asarray(att(same, return_attention=True)[1]), 1 / 12, rtol=1e-5)
    cfg = att.get_config()
    assert cfg["units"] == 4 and cfg["return_attention"] is False
    twin = M.AttentionLayer.from_config({**cfg, "return_attention": True})
    twin.build(x.shape)
    twin.set_weights(att.get_weights())
    np.testing.assert_allclose(np.asarray(twin(x)[1]), w, rtol=1e-6)


def test_weighted_average_and_last_step():
    wa = M.WeightedAverage([2, 1, 1], ["a", "b", "c"])
    assert wa.get_config()["weights"] == [0.5, 0.25, 0.25]
    np.testing.assert_allclose(np.asarray(wa(np.array([[4.0, 0.0, 8.0]], "float32"))), [[4.0]])
    for bad in ([], [-1, 2], [0, 0]):
        with pytest.raises(ConfigError, match="non-negative"):
            M.WeightedAverage(bad)
    # members' (batch, K) outputs: stacked to (batch, M, K), averaged per horizon
    outs = [
        np.array([[1.0, 2.0, 3.0]], "float32"),
        np.array([[5.0, 6.0, 7.0]], "float32"),
        np.array([[9.0, 0.0, 1.0]], "float32"),
    ]
    st = np.asarray(M.StackMembers()(outs))
    assert st.shape == (1, 3, 3)
    np.testing.assert_allclose(
        np.asarray(wa(st)),
        [[0.5 * 1 + 0.25 * 5 + 0.25 * 9, 0.5 * 2 + 0.25 * 6, 0.5 * 3 + 0.25 * 7 + 0.25 * 1]],
        rtol=1e-6,
    )
    x = np.arange(2 * 3 * 4, dtype="float32").reshape(2, 3, 4)
    np.testing.assert_array_equal(np.asarray(M.LastStep(-1)(x)), x[:, -1, -1:])
    np.testing.assert_array_equal(np.asarray(M.LastStep(1, 3)(x)), x[:, -1, 1:3])


# ---------------------------------------------------------------- losses
def test_qlike_forms():
    y = np.array([[0.2], [0.5], [1.5]], "float32")
    np.testing.assert_allclose(np.asarray(M.qlike_loss(y, y)), 0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(M.qlike_log_loss(np.log(y), np.log(y))), 0, atol=1e-6)
    # Patton's QLIKE by hand: y=0.2, forecast 0.1 -> ratio 4
    assert float(
        np.asarray(M.qlike_loss(np.array([[0.2]]), np.array([[0.1]])))[0]
    ) == pytest.approx(4 - math.log(4) - 1, rel=1e-5)
    # the log-space form equals the level form for the same forecasts
    s = np.log(y) + np.array([[0.3], [-0.2], [0.05]], "float32")
    np.testing.assert_allclose(
        np.asarray(M.qlike_log_loss(np.log(y), s)),
        np.asarray(M.qlike_loss(y, np.exp(s))),
        rtol=1e-4,
    )
    # under-prediction is punished harder than over-prediction by the same factor; minimum at the
    # truth
    lo, hi = (
        float(np.asarray(M.qlike_log_loss(np.log(y), np.log(y) + d)).mean()) for d in (-0.4, 0.4)
    )
    assert lo > hi > 0
    # finite even for absurd early-training outputs
    assert np.isfinite(
        np.asarray(M.qlike_log_loss(np.zeros((2, 1)), np.array([[-50.0], [50.0]])))
    ).all()


def test_get_loss():
    assert isinstance(M.get_loss("huber"), keras.losses.Huber)
    assert isinstance(M.get_loss("mse"), keras.losses.MeanSquaredError)
    assert M.get_loss("qlike", log_target=True) is M.qlike_log_loss
    assert M.get_loss("qlike", log_target=False) is M.qlike_loss
    with pytest.raises(ConfigError, match="model.loss"):
        M.get_loss("mape")


# ---------------------------------------------------------------- builders
def test_default_advanced_is_the_seed_stack(params):
    m = M.build_model(60, 30, params)
    lstms = [l for l in m.layers if isinstance(l, keras.layers.LSTM)]
    assert [l.units for l in lstms] == [128, 64, 32] and all(l.return_sequences for l in lstms)
    assert sum(isinstance(l, keras.layers.BatchNormalization) for l in m.layers) == 3
    assert [l.rate for l in m.layers if isinstance(l, keras.layers.Dropout)][:3] == [0.2, 0.2, 0.3]
    assert any(isinstance(l, M.AttentionLayer) for l in m.layers)
    assert [l.units for l in m.layers if isinstance(l, keras.layers.Dense)] == [32, 16, 1]
    assert m.output_shape == (None, 1)
    # the direct multi-horizon head: the same trunk, one Dense(K) output layer
    mk = M.build_model(60, 30, params, n_outputs=10)
    assert [l.units for l in mk.layers if isinstance(l, keras.layers.Dense)] == [
        32,
        16,
        10,
    ] and mk.output_shape == (None, 10)
    assert mk.count_params() - m.count_params() == 9 * (16 + 1)


def test_every_type_builds_and_round_trips(tiny, btc_windows, tmp_path):
    X = btc_windows
    Xh = np.concatenate([X, X[..., :1]], -1)
    sizes = {}
    bias = np.linspace(-1.0, -0.5, 10)  # per-horizon means: K = 10 outputs
    for kind in M.MODEL_TYPES:
        Xin = Xh if kind == "hybrid" else X
        m = M.build_model(20, Xin.shape[-1], tiny, kind, output_bias=bias)
        out = m.predict(Xin[:32], verbose=0)
        assert out.shape == (32, 10) and np.isfinite(out).all()
        sizes[kind] = m.count_params()
        path = tmp_path / f"{kind}.keras"
        m.save(path)
        # registered layers: no custom_objects needed
        back = keras.models.load_model(path, safe_mode=True)
        np.testing.assert_allclose(back.predict(Xin[:32], verbose=0), out, rtol=1e-5, atol=1e-6)
    assert sizes["ensemble"] > sizes["advanced"] > sizes["simple"]
    assert sizes["hybrid"] > sizes["advanced"]


def test_output_bias_starts_at_the_mean(tiny, btc_windows):
    m = M.build_model(20, 3, tiny, "simple", output_bias=-0.7)
    assert float(m.layers[-1].bias.numpy()[0]) == pytest.approx(-0.7)
    # one initial value per horizon
    b = np.array([-1.2, -0.9, -0.8], "float32")
    mk = M.build_model(20, 3, tiny, "simple", output_bias=b)
    assert mk.output_shape == (None, 3)
    np.testing.assert_allclose(mk.layers[-1].bias.numpy(), b)
    np.testing.assert_allclose(
        M.build_model(20, 3, tiny, "simple", output_bias=-0.7, n_outputs=4).layers[-1].bias.numpy(),
        [-0.7] * 4,
        rtol=1e-6,
    )
    with pytest.raises(ConfigError, match="output_bias"):
        M.build_model(20, 3, tiny, "simple", output_bias=b, n_outputs=4)


def test_hybrid_sees_latest_garch(tiny, btc_windows):
    Xh = np.concatenate([btc_windows, btc_windows[..., :1]], -1)[:16]
    m = M.build_model(20, Xh.shape[-1], tiny, "hybrid")
    assert any(isinstance(l, M.LastStep) for l in m.layers)
    bumped = Xh.copy()
    bumped[:, -1, -1] += 3.0
    assert not np.allclose(m.predict(bumped, verbose=0), m.predict(Xh, verbose=0))
    with pytest.raises(ConfigError, match="GARCH"):
        M.build_model(20, 1, tiny, "hybrid")


def test_ensemble_combination(tiny, btc_windows):
    X = btc_windows[:32]
    kinds = ["attention_lstm", "gru", "bilstm"]
    members = []
    for i, k in enumerate(kinds):
        keras.utils.set_random_seed(i)
        # K = 4 horizons
        members.append(M.build_member(k, 20, 3, tiny, output_bias=0.1 * i + np.arange(4) * 0.05))
    w = M.ensemble_weights([0.2, 0.4, 0.8])
    assert w == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert M.ensemble_weights([0.2, 0.4], "mean") == [0.5, 0.5]
    ens = M.combine_members(members, w)
    parts = M.member_outputs(ens, X)
    assert list(parts) == kinds and all(v.shape == (32, 4) for v in parts.values())
    assert len({tuple(np.round(v.ravel(), 5)) for v in parts.values()}) == 3  # diverse members
    out = ens.predict(X, verbose=0)
    # each horizon averaged over the members
    assert out.shape == (32, 4)
    np.testing.assert_allclose(
        out, sum(wi * parts[k] for wi, k in zip(w, kinds)), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ConfigError, match="same number of horizons"):
        M.combine_members([members[0], M.build_member("gru", 20, 3, tiny, n_outputs=2)])
    assert M.member_outputs(members[0], X) is None
    att = M.attention_model(ens).predict(X, verbose=0)
    assert att.shape == (32, 20)
    np.testing.assert_allclose(att.sum(1), 1, rtol=1e-5)
    assert M.attention_model(M.build_model(20, 3, tiny, "simple")) is None
    with pytest.raises(ConfigError, match="unique"):
        M.combine_members([members[0], members[0]])
    with pytest.raises(ConfigError, match="ensemble member"):
        M.build_member("transformer", 20, 3, tiny)
    with pytest.raises(ConfigError, match="val_loss"):
        M.ensemble_weights([0.1, -1.0])


def test_bad_configs(params, tiny):
    with pytest.raises(ConfigError, match="model.type"):
        M.build_model(20, 3, tiny, "cnn")
    bad = {**tiny, "model": {**tiny["model"], "dropout": [0.1]}}
    with pytest.raises(ConfigError, match="one rate per"):
        M.build_model(20, 3, bad, "advanced")
    with pytest.raises(ConfigError, match="sequence_length"):
        M.build_model(1, 3, tiny, "advanced")


# ---------------------------------------------------------------- learnability on SYNTHETIC data
def synthetic_dataset(n_days=1700, T=20, h=7, seed=0, vol_of_vol=0.12, phi=0.97, K=10):
    """SYNTHETIC (test-only) series with a learnable volatility signal: latent log-vol is a
    persistent AR(1), returns are vol * Gaussian noise, the target is the latent vol over the next h
    days (Y: over the next 1..K days). Features: the return, its absolute value and a 5-day realised
    vol, standardised on the training rows."""
    from cryptovol.features import Dataset

    rng = np.random.default_rng(seed)
    lv = np.empty(n_days)
    lv[0] = np.log(0.6)
    for t in range(1, n_days):
        lv[t] = np.log(0.6) + phi * (lv[t - 1] - np.log(0.6)) + vol_of_vol * rng.normal()
    r = np.exp(lv) / np.sqrt(365) * rng.normal(size=n_days)
    rv5 = np.sqrt(365 / 5 * pd.Series(r**2).rolling(5).sum()).to_numpy()
    # vol over t+1..t+h
    target = np.sqrt(pd.Series(np.exp(2 * lv)).rolling(h).mean().shift(-h)).to_numpy()
    Yall = np.column_stack(
        [
            np.sqrt(pd.Series(np.exp(2 * lv)).rolling(k).mean().shift(-k)).to_numpy()
            for k in range(1, K + 1)
        ]
    )
    feats = np.column_stack([r, np.abs(r), rv5]).astype("float32")
    ok = np.arange(n_days)[(np.arange(n_days) >= T + 5) & np.isfinite(Yall).all(1)]
    n = len(ok)
    ntr, nva = int(0.7 * n), int(0.15 * n)
    # scaler fitted on the training rows only
    train_rows = feats[5 : ok[ntr - 1] + 1]
    mu, sd = train_rows.mean(0), train_rows.std(0)
    xs = ((feats - mu) / sd).astype("float32")
    idx = ok[:, None] - np.arange(T)[::-1][None, :]
    X, y, Y = xs[idx], target[ok].astype("float32"), Yall[ok].astype("float32")
    dates = (np.datetime64("2000-01-01") + ok).astype("datetime64[ns]")
    g = max(h, K)  # purge: no training target of any horizon reaches the validation rows
    parts = {
        "train": slice(0, ntr - g),
        "val": slice(ntr, ntr + nva - g),
        "test": slice(ntr + nva, n),
    }
    kw = {}
    for k, s in parts.items():
        kw.update(
            {
                f"X_{k}": X[s],
                f"y_{k}": y[s],
                f"Y_{k}": Y[s],
                f"dates_{k}": dates[s],
                f"G_{k}": X[s][..., 2:3],
            }
        )
    return Dataset(
        **kw,
        feature_names=["syn_return", "syn_abs_return", "syn_rv5"],
        scaler={"kind": "standard", "center": mu.tolist(), "scale": sd.tolist()},
        params={},
        frame=pd.DataFrame(),
        summary={"horizon": h, "forecast_days": K},
        symbol="SYNTHETIC",
    )


def test_advanced_learns_synthetic_volatility(project):
    from cryptovol.train import train

    ds = synthetic_dataset()
    assert np.isfinite(ds.X_train).all() and len(ds.y_val) > 100
    res = train(
        "SYNTHETIC",
        {
            "model.har_anchor": False,
            "model.lstm_units": [16, 8],
            "model.dropout": [0.0, 0.0],
            "model.dense_units": [8],
            "training.epochs": 12,
            "training.batch_size": 32,
            "training.learning_rate": 0.003,
            "training.patience": 12,
        },
        model_type="advanced",
        dataset=ds,
        verbose=0,
    )
    s = res.summary
    # the constant forecast (training mean of log vol) is the floor; a model that learned the signal
    # is far below it
    assert s["val_loss"] < 0.5 * s["val_loss_constant"], s
    corr = np.corrcoef(res.trained.predict(ds.X_val), ds.y_val)[0, 1]
    assert corr > 0.6, corr
    # every horizon of the direct multi-horizon head learned the signal, and column h-1 is predict()
    H = res.trained.predict_horizons(ds.X_val)
    assert H.shape == (len(ds.y_val), 10) and res.trained.forecast_days == 10
    np.testing.assert_allclose(H[:, 6], res.trained.predict(ds.X_val), rtol=1e-6)
    assert min(np.corrcoef(H[:, k], ds.Y_val[:, k])[0, 1] for k in range(10)) > 0.5
