"""Tests for cryptovol.train: every model type trains on real BTC windows, saves, reloads and
predicts identically; resume, determinism, artefacts, feature checks and loading errors.

Real prices from the offline mirror ($CRYPTOVOL_DATA_DIR); everything is written into a throw-away
project root (CRYPTOVOL_ROOT) and the networks are tiny (windows of 20 days, LSTM 8 -> 4, 2 epochs)
so the file runs in about a minute.
"""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptovol.config import ModelError, ConfigError, reset_params, load_json

REPO = Path(__file__).resolve().parents[1]
SYMBOL = "BTC-USD"
TINY = {
    "dataset.sequence_length": 20,
    "model.lstm_units": [8, 4],
    "model.dropout": [0.1, 0.1],
    "model.dense_units": [8],
    "training.epochs": 2,
    "training.batch_size": 64,
    "training.patience": 5,
}
ARTEFACTS = (
    "model.keras",
    "checkpoint.keras",
    "last.keras",
    "features.json",
    "scaler.json",
    "params.json",
    "history.json",
    "summary.json",
    "training_history.png",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory, mirror):
    "A module-wide throw-away project root with the real BTC dataset built at sequence_length 20."
    from cryptovol.data import cache_prices, cache_fear_greed
    from cryptovol.features import build_dataset
    from cryptovol.train import resolve_params

    d = tmp_path_factory.mktemp("cryptovol_train")
    shutil.copy(REPO / "params.yaml", d / "params.yaml")
    (d / "settings.ini").touch()
    mp = pytest.MonkeyPatch()
    mp.setenv("CRYPTOVOL_ROOT", str(d))
    mp.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    reset_params()
    cache_prices(SYMBOL)
    cache_fear_greed()
    build_dataset(SYMBOL, resolve_params(TINY))
    yield d
    mp.undo()
    reset_params()


@pytest.fixture(scope="module")
def ds(root):
    from cryptovol.features import load_dataset

    return load_dataset(SYMBOL)


@pytest.mark.parametrize("kind", ["simple", "advanced", "hybrid", "ensemble"])
def test_every_type_trains_saves_reloads(root, ds, kind):
    from cryptovol.train import train, load_trained, model_inputs

    res = train(SYMBOL, TINY, model_type=kind, verbose=0)
    out = root / "models" / SYMBOL
    assert res.model_dir == out
    # an ensemble keeps its resumable state per member (members/{kind}/last.keras)
    for f in ARTEFACTS:
        assert (out / f).is_file() == (f != "last.keras" or kind != "ensemble"), f
    h, s = res.history, res.summary
    if kind == "ensemble":
        assert set(h["members"]) == {"attention_lstm", "gru", "bilstm"}
        assert all(m["epoch"] == [1, 2] for m in h["members"].values())
        assert sum(h["weights"].values()) == pytest.approx(1.0)
        for k in h["members"]:
            assert (out / "members" / k / "last.keras").is_file()
    else:
        assert h["epoch"] == [1, 2] and len(h["val_loss"]) == 2 and len(h["learning_rate"]) == 2
        assert s["best_epoch"] in (1, 2)
    assert s["model_type"] == kind and s["n_train"] == len(ds.y_train) and s["samples_per_s"] > 0
    assert np.isfinite(s["val_loss"]) and np.isfinite(s["val_loss_constant"])
    feats = load_json(out / "features.json")["feature_names"]
    assert feats == list(ds.feature_names) + (["garch_vol"] if kind == "hybrid" else [])
    assert load_json(out / "params.json")["dataset"]["sequence_length"] == 20
    assert load_json(out / "scaler.json") == ds.scaler

    back = load_trained(out)
    assert back.model_type == kind and back.needs_garch == (kind == "hybrid") and back.log_target
    X = model_inputs(ds, "test", back)
    assert X.dtype == np.float32 and X.shape == (len(ds.y_test), 20, len(feats))
    p1, p2 = res.trained.predict(X), back.predict(X)
    np.testing.assert_allclose(p2, p1, rtol=1e-5, atol=1e-6)
    assert p1.shape == (len(ds.y_test),) and (p1 > 0).all() and np.isfinite(p1).all()
    # the direct multi-horizon head: K forecasts per window, column h-1 is predict()
    K, h = ds.forecast_days, ds.horizon
    assert (
        K == 10
        and back.forecast_days == K
        and s["forecast_days"] == K
        and load_json(out / "features.json")["forecast_days"] == K
    )
    H = back.predict_horizons(X)
    assert H.shape == (len(ds.y_test), K) and (H > 0).all()
    np.testing.assert_allclose(H[:, h - 1], p2, rtol=1e-6)
    np.testing.assert_allclose(H, res.trained.predict_horizons(X), rtol=1e-5, atol=1e-6)
    assert len(s["val_rmse_by_day"]) == K
    # log_target: the network's raw output is log vol, predict() applies exp once
    np.testing.assert_allclose(np.exp(back.predict_raw(X[:8])), back.predict(X[:8]), rtol=1e-6)
    att = back.attention_weights(X[:4])
    if kind == "simple":
        assert att is None
    else:
        assert att.shape == (4, 20)
        np.testing.assert_allclose(att.sum(1), 1, rtol=1e-5)
    members = back.member_predictions(X[:16])
    if kind == "ensemble":
        assert all(v.shape == (16,) for v in members.values())
        w = back.summary["ensemble_weights"]
        np.testing.assert_allclose(
            np.exp(sum(w[k] * np.log(v) for k, v in members.items())),
            back.predict(X[:16]),
            rtol=1e-4,
        )
    else:
        assert members is None
    # the same model through a legacy .h5 file (custom layers, nested members)
    if kind in ("advanced", "ensemble"):
        h5dir = root / f"h5_{kind}"
        shutil.copytree(out, h5dir, dirs_exist_ok=True)
        back.model.save(h5dir / "model.h5")
        np.testing.assert_allclose(
            load_trained(h5dir / "model.h5").predict(X), p1, rtol=1e-5, atol=1e-6
        )


def test_same_seed_same_val_loss_and_resume(root, ds):
    from cryptovol.train import train, load_keras_model

    a = train(SYMBOL, TINY, model_type="simple", verbose=0)
    b = train(SYMBOL, TINY, model_type="simple", verbose=0)
    # bitwise equal on CPU with op determinism
    assert a.history["val_loss"] == b.history["val_loss"]
    out = root / "models" / SYMBOL
    steps = int(np.ceil(len(ds.y_train) / TINY["training.batch_size"]))
    assert int(load_keras_model(out / "last.keras", compile=True).optimizer.iterations) == 2 * steps
    r = train(SYMBOL, resume=out, additional_epochs=2, verbose=0)
    assert r.history["epoch"] == [1, 2, 3, 4]
    assert (
        r.history["loss"][:2] == b.history["loss"]
        and r.history["val_loss"][:2] == b.history["val_loss"]
    )
    assert load_json(out / "history.json")["epoch"] == [1, 2, 3, 4]
    # optimizer state kept
    assert int(load_keras_model(out / "last.keras", compile=True).optimizer.iterations) == 4 * steps
    assert r.summary["resumed_from"] == str(out) and r.summary["epochs_this_run"] == 2
    assert r.summary["best_val_loss"] == pytest.approx(min(r.history["val_loss"]))
    log_csv = pd.read_csv(root / "logs" / f"{SYMBOL}_training.csv")
    # CSVLogger appended on resume (0-based epochs)
    assert log_csv["epoch"].tolist()[-4:] == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="additional_epochs"):
        train(SYMBOL, resume=out, verbose=0)
    with pytest.raises(ModelError, match="params.json"):
        train(SYMBOL, resume=root / "nowhere", additional_epochs=1, verbose=0)


def test_killed_run_resumes_to_training_epochs(root, ds):
    """A fresh run killed after epoch 1 leaves params/features.json and its own history.json (not an
    older run's): resume finishes it."""
    import cryptovol.train as tr

    out = root / "models" / SYMBOL
    # an earlier, complete run
    tr.train(SYMBOL, {**TINY, "training.epochs": 3}, model_type="simple", verbose=0)
    assert load_json(out / "history.json")["epoch"] == [1, 2, 3]
    real_begin = tr.EpochProgress.on_epoch_begin

    def killed(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill")
        return real_begin(self, epoch, logs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tr.EpochProgress, "on_epoch_begin", killed)
        with pytest.raises(KeyboardInterrupt):
            tr.train(SYMBOL, TINY, model_type="simple", verbose=0)
    # the killed run's history, written after epoch 1
    assert load_json(out / "history.json")["epoch"] == [1]
    # written when the run started
    assert load_json(out / "params.json")["training"]["epochs"] == 2
    # additional_epochs=None: up to training.epochs
    res = tr.train(SYMBOL, resume=True, verbose=0)
    assert res.history["epoch"] == [1, 2] and res.summary["epochs_this_run"] == 1
    with pytest.raises(ConfigError, match="additional_epochs"):
        tr.train(SYMBOL, resume=True, verbose=0)


def test_feature_mismatch_refused(root, ds):
    from cryptovol.train import train, load_trained, model_inputs

    train(SYMBOL, {**TINY, "training.epochs": 1}, model_type="simple", verbose=0)
    tm = load_trained(root / "models" / SYMBOL)
    names = list(ds.feature_names)
    tm.check_features(names)
    with pytest.raises(ModelError, match=r"missing \['" + names[0]):
        tm.check_features(names[1:])
    with pytest.raises(ModelError, match="different order"):
        tm.check_features(names[::-1])
    with pytest.raises(ModelError, match="unexpected"):
        tm.check_features(names + ["garch_vol"])

    class Renamed:  # a dataset whose feature list differs from the model's
        feature_names = names[:-1] + ["something_else"]
        X_test = ds.X_test

    with pytest.raises(ModelError, match="something_else"):
        model_inputs(Renamed, "test", tm)
    with pytest.raises(ModelError, match=r"expects windows"):
        tm.predict(ds.X_test[:, :10])


def test_load_errors_name_the_path(root, tmp_path):
    from cryptovol.train import load_trained, train

    if not (root / "models" / SYMBOL / "model.keras").is_file():
        train(SYMBOL, {**TINY, "training.epochs": 1}, model_type="simple", verbose=0)
    with pytest.raises(ModelError, match="no model.keras"):
        load_trained(tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        load_trained(tmp_path / "model.keras")
    with pytest.raises(ModelError, match="not a Keras model"):
        load_trained(tmp_path / "model.pkl")
    bad = tmp_path / "bad"
    shutil.copytree(root / "models" / SYMBOL, bad, ignore=shutil.ignore_patterns("members"))
    (bad / "model.keras").write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match=str(bad / "model.keras")):
        load_trained(bad)
    (bad / "model.keras").unlink()
    shutil.copy(root / "models" / SYMBOL / "model.keras", bad / "model.keras")
    (bad / "features.json").unlink()
    with pytest.raises(ModelError, match="features.json"):
        load_trained(bad)


@pytest.mark.parametrize("kind", ["advanced", "ensemble"])
def test_har_anchor_is_ols_on_training_windows_and_stays_frozen(root, ds, kind):
    """model.har_anchor: the frozen branch equals OLS of the training targets on log rv_7 / log
    rv_30 and training leaves it alone."""
    from cryptovol.model import _anchor_layers
    from cryptovol.train import load_trained, model_inputs, to_model_target, train

    over = {**TINY, "model.har_anchor": True, "model.ensemble_members": ["attention_lstm", "gru"]}
    res = train(SYMBOL, over, model_type=kind, verbose=0)
    # expected coefficients by hand: unscale the last day's rv_7 and rv_30, log, regress the (N, K)
    # log targets
    Xtr = model_inputs(ds, "train", kind)
    idx = [ds.feature_names.index(f) for f in ("rv_7", "rv_30")]
    raw = (
        Xtr[:, -1, idx] * np.asarray(ds.scaler["scale"])[idx] + np.asarray(ds.scaler["center"])[idx]
    )
    A = np.c_[np.ones(len(raw)), np.log(raw)]
    want, *_ = np.linalg.lstsq(A, to_model_target(ds.targets("train"), True), rcond=None)
    tm = load_trained(root / "models" / SYMBOL)
    pairs = _anchor_layers(tm.model)
    assert len(pairs) == (2 if kind == "ensemble" else 1)
    for _, dense in pairs:  # after two epochs of training the frozen weights are still the OLS fit
        assert not dense.trainable
        np.testing.assert_allclose(dense.kernel.numpy(), want[1:], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(dense.bias.numpy(), want[0], rtol=1e-3, atol=1e-4)
    coef = res.summary["har_anchor"]
    from cryptovol.model import ensemble_members

    assert set(coef) == (
        {tm.model.name}
        if kind != "ensemble"
        else {f"member_{k}" for k in ensemble_members(tm.model)}
    )
    assert all(np.allclose(c["rv_30"], want[2], atol=1e-4) for c in coef.values())
    assert np.isfinite(tm.predict(model_inputs(ds, "val", tm))).all()


def test_anchor_feature_must_exist(root):
    from cryptovol.train import train

    with pytest.raises(ConfigError, match="model.anchor_features"):
        train(
            SYMBOL,
            {**TINY, "model.har_anchor": True, "model.anchor_features": ["rv_90"]},
            verbose=0,
        )
