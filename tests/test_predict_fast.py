"""The numpy forward pass of the global model's coin view (nbs/06_predict, issue #21): the same
forecast as Keras, and a cold `cryptovol predict` that never imports TensorFlow.

The views are tiny: random weights for the layer-by-layer comparison, and a two-coin global model
(8 units, one epoch, one seed) on the real offline prices for the command itself."""

import json, logging, os, subprocess, sys, textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptovol import globalnet as gn
from cryptovol.config import load_params, reset_params, with_overrides
from cryptovol.predict import (
    NumpyView,
    UnsupportedModel,
    forecast,
    keras_archive,
    load_forecaster,
    run_functional,
)

REPO = Path(__file__).resolve().parent.parent
T, F, K = 12, 6, 5


def _random_view(cell: str, embedding_dim: int, channels, n_members: int, seed: int = 0):
    "The coin view (point, distribution) of an ensemble of random global networks."
    rng = np.random.default_rng(seed)
    gp = {
        **load_params(REPO / "params.yaml")["global_model"],
        "cell": cell,
        "units": 5,
        "dense_units": 4,
        "embedding_dim": embedding_dim,
    }
    members = []
    for i in range(n_members):
        m = gn.build_global(T, F, 3, 2, K, gp, name=f"seed_{i}", channels=channels)
        m.set_weights(
            [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in m.get_weights()]
        )
        members.append(m)
    spec = {"indices": [1, 4], "center": [0.5, 0.6], "scale": [0.2, 0.3]}
    return gn.coin_view(gn.combine_global(members), 2, spec, T, F)


def _save_folder(folder: Path, point, dist, model_type: str = "global") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    point.save(folder / "model.keras")
    dist.save(folder / "distribution.keras")
    meta = {
        "feature_names": [f"f{i}" for i in range(F)],
        "sequence_length": T,
        "forecast_days": K,
        "horizon_column": K - 1,
    }
    for name, obj in (
        ("features.json", meta),
        ("params.json", {}),
        ("summary.json", {"model_type": model_type, "log_target": True}),
    ):
        (folder / name).write_text(json.dumps(obj))
    return folder


@pytest.mark.parametrize(
    "cell, embedding_dim, channels, n_members",
    [
        ("gru", 4, None, 2),  # the default: GRU, coin embedding, all features, a seed mixture
        ("gru", 4, None, 1),  # one member kept
        ("lstm", 0, [0, 2, 3], 3),  # the other cell, no embedding, global_model.input_features
    ],
)
def test_numpy_view_equals_keras(tmp_path, cell, embedding_dim, channels, n_members):
    point, dist = _random_view(cell, embedding_dim, channels, n_members)
    view = load_forecaster(_save_folder(tmp_path / "m", point, dist))
    assert isinstance(view, NumpyView)
    X = np.random.default_rng(1).normal(size=(64, T, F)).astype("float32")
    np.testing.assert_allclose(
        view.predict_horizons(X), np.exp(point.predict(X, verbose=0)), rtol=1e-5
    )
    mu, s = view.predict_distribution(X)
    np.testing.assert_allclose(
        np.stack([mu, s], -1), dist.predict(X, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_other_models_fall_back_to_keras_with_one_line(tmp_path, caplog):
    point, dist = _random_view("gru", 4, None, 1)
    folder = _save_folder(tmp_path / "m", point, dist, model_type="advanced")
    with caplog.at_level(logging.INFO, logger="cryptovol"):
        tm = load_forecaster(folder)
    assert not isinstance(tm, NumpyView) and tm.model_type == "advanced"
    (line,) = [r.getMessage() for r in caplog.records if "forecasting with Keras" in r.getMessage()]
    assert "model type 'advanced'" in line
    with pytest.raises(UnsupportedModel, match="model type 'advanced'"):
        load_forecaster(folder, engine="numpy")
    graph, weights = keras_archive(folder / "model.keras")
    graph["layers"][-1]["class_name"] = "BatchNormalization"  # a layer the numpy pass lacks
    with pytest.raises(UnsupportedModel, match="BatchNormalization"):
        run_functional(graph, weights, [np.zeros((1, T, F))])


# ---------------------------------------------------------------- the command, cold
COLD = textwrap.dedent("""
    import json, sys
    from cryptovol.cli import main
    rc = main(["predict", "--crypto_symbol", "BTC-USD", "--output", sys.argv[1]])
    loaded = {m: m in sys.modules for m in ("tensorflow", "keras")}
    print("COLD " + json.dumps({"rc": rc, **loaded}))
""")


@pytest.fixture(scope="module")
def global_root(tmp_path_factory, mirror):
    "A project root with a tiny global model over BTC and ETH (one epoch, one seed)."
    import shutil
    import yaml
    from cryptovol.features import build_dataset

    root = tmp_path_factory.mktemp("predict_fast")
    for f in ("params.yaml", "settings.ini"):
        shutil.copy(REPO / f, root / f)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRYPTOVOL_ROOT", str(root))
        mp.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
        reset_params()
        p = with_overrides(
            None,
            **{
                "symbols": ["BTC-USD"],
                "universe": ["BTC-USD", "ETH-USD"],
                "global_model.epochs": 1,
                "global_model.seeds": 1,
                "global_model.units": 8,
                "global_model.dense_units": 8,
                "dataset.sequence_length": 20,
            },
        )
        (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        reset_params()
        for c in p["universe"]:
            build_dataset(c, p)
        gn.fit_universe(p, verbose=0)
        keras_table = forecast("BTC-USD", engine="keras")
        numpy_table = forecast("BTC-USD", engine="numpy")
    reset_params()
    return root, keras_table, numpy_table


def test_numpy_forecast_equals_keras_forecast(global_root):
    _, k, n = global_root
    assert list(n.columns) == list(k.columns) and {"vol_mean", "lo80", "hi95"} <= set(n.columns)
    assert (n.index == k.index).all() and (n.last_close == k.last_close).all()
    np.testing.assert_allclose(
        n.select_dtypes("number").to_numpy(float),
        k.select_dtypes("number").to_numpy(float),
        rtol=1e-5,
    )


def cold_predict(root: Path, mirror: Path, out: Path) -> tuple[dict, str]:
    "`cryptovol predict` in a fresh interpreter at `root`: ({rc, tensorflow, keras}, stderr)."
    env = {**os.environ, "CRYPTOVOL_ROOT": str(root), "CRYPTOVOL_DATA_DIR": str(mirror)}
    r = subprocess.run(
        [sys.executable, "-c", COLD, str(out)],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=120,
    )
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("COLD ")]
    return json.loads(line[5:]), r.stderr


def test_cold_predict_never_imports_tensorflow(global_root, mirror, tmp_path):
    root, _, numpy_table = global_root
    out = tmp_path / "forecast.csv"
    cold, err = cold_predict(root, mirror, out)
    assert cold == {"rc": 0, "tensorflow": False, "keras": False}, err[-3000:]
    assert "forecasting with Keras" not in err
    table = pd.read_csv(out, index_col="date", parse_dates=["date"])
    cols = list(numpy_table.select_dtypes("number").columns)
    np.testing.assert_allclose(
        table[cols].to_numpy(float), numpy_table[cols].to_numpy(float), atol=1e-6
    )  # the CSV's 6 decimals


def test_a_missing_model_is_refused_in_seconds_without_tensorflow(tmp_path, mirror):
    "`cryptovol predict` without a trained model: one line naming the folder and the fix, no TF."
    import shutil

    for f in ("params.yaml", "settings.ini"):
        shutil.copy(REPO / f, tmp_path / f)
    cold, err = cold_predict(tmp_path, mirror, tmp_path / "forecast.csv")
    assert cold == {"rc": 1, "tensorflow": False, "keras": False}, err[-2000:]
    assert f"model {tmp_path / 'models' / 'BTC-USD'} does not exist: train it with" in err
    assert "Traceback" not in err
