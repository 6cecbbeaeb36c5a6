"""Reliability (issue 8): the failure cases that test_data / test_features / test_train /
test_evaluate do not cover yet.

tests/README.md maps every failure case of issue 8 to the test that backs it (here or in the other
files). Real prices from the offline mirror ($CRYPTOVOL_DATA_DIR); everything is written into
throw-away project roots (CRYPTOVOL_ROOT), and every model is tiny (20-day windows, LSTM 8, 4
epochs) so the file runs in about a minute on 2 cores.
"""

import json, logging, os, shutil, subprocess, sys, zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cryptovol import config
from cryptovol.config import (
    ConfigError,
    DataError,
    ModelError,
    load_params,
    reset_params,
    save_json,
)

REPO = Path(__file__).resolve().parents[1]
SYMBOL = "BTC-USD"
# the tiny configuration every trained model here uses (written into each throw-away root's
# params.yaml)
TINY = {
    "symbols": [SYMBOL],
    "model.scope": "per_coin",
    "dataset.sequence_length": 20,
    "model.type": "simple",
    "model.lstm_units": [8],
    "model.dropout": [0.1],
    "model.dense_units": [8],
    "training.epochs": 4,
    "training.batch_size": 64,
    "evaluation.plots": False,
    "evaluation.permutation_repeats": 1,
    # rv_net small, so the twin pipeline below also checks it is reproducible across processes
    "rv_net.epochs": 3,
    "rv_net.seeds": 1,
}


# ---------------------------------------------------------------- helpers
def set_dotted(d: dict, key: str, value):
    *parents, last = key.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = value


def write_params(root: Path, **dotted) -> Path:
    """root/params.yaml = the repo's params.yaml with `dotted` keys replaced (e.g.
    `**{'target.horizon': -7}`)."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    for k, v in dotted.items():
        set_dotted(p, k, v)
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return root / "params.yaml"


def make_root(path: Path, **dotted) -> Path:
    "A fresh project root (tiny params.yaml + settings.ini) at `path`."
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "settings.ini", path / "settings.ini")
    write_params(path, **{**TINY, **dotted})
    return path


def cli_env(root: Path, mirror: Path) -> dict:
    env = {
        **os.environ,
        "CRYPTOVOL_ROOT": str(root),
        "CRYPTOVOL_DATA_DIR": str(mirror),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    env.pop("CRYPTOVOL_LOG_LEVEL", None)
    return env


def run_cli(args: list[str], root: Path, mirror: Path, **kw) -> subprocess.CompletedProcess:
    "`python -m cryptovol ARGS` in a subprocess with CRYPTOVOL_ROOT=root."
    return subprocess.run(
        [sys.executable, "-m", "cryptovol", *args],
        capture_output=True,
        text=True,
        cwd=root,
        env=cli_env(root, mirror),
        **kw,
    )


def error_lines(stderr: str, command: str) -> list[str]:
    return [l for l in stderr.splitlines() if l.startswith(f"cryptovol {command}: error:")]


def temp_files(folder: Path) -> list[Path]:
    """Leftovers of an interrupted write under `folder`: atomic_path's `.{stem}.XXXX.tmp{suffix}`,
    save_dataset's `.{name}.XXXX.tmp/`."""
    return [p for p in Path(folder).rglob(".*") if ".tmp" in p.name]


@pytest.fixture
def logged():
    """Messages at WARNING or above logged under the `cryptovol` logger (it does not propagate to
    caplog)."""
    msgs = []

    class H(logging.Handler):
        def emit(self, record):
            msgs.append(record.getMessage())

    h, logger = H(logging.WARNING), logging.getLogger("cryptovol")
    logger.addHandler(h)
    yield msgs
    logger.removeHandler(h)


# ================================================================ params.yaml rejected at load, key
# named
BAD_PARAMS = {  # case: (dotted edits, the key the message must name, more text it must contain)
    "unknown key (typo)": ({"training.epoch": 3}, "training.epoch", "unknown key"),
    "unknown section": ({"optimizer.name": "adam"}, "optimizer.name", "unknown key"),
    "missing key": ({"target": {"estimator": "close_to_close"}}, "target.horizon", "missing key"),
    "wrong type: text for int": ({"training.epochs": "ten"}, "training.epochs", "wrong type"),
    "wrong type: float for int": (
        {"dataset.sequence_length": 20.5},
        "dataset.sequence_length",
        "wrong type",
    ),
    "wrong type: bool for int": (
        {"training.batch_size": True},
        "training.batch_size",
        "wrong type",
    ),
    "wrong type: text for bool": (
        {"features.sentiment": "yes"},
        "features.sentiment",
        "wrong type",
    ),
    "wrong type: scalar for list": ({"model.lstm_units": 64}, "model.lstm_units", "wrong type"),
    "negative horizon": ({"target.horizon": -7}, "target.horizon", "not allowed"),
    "zero epochs": ({"training.epochs": 0}, "training.epochs", "not allowed"),
    "fraction above 1": ({"dataset.train_frac": 1.2}, "dataset.train_frac", "not allowed"),
    "no test split left": (
        {"dataset.train_frac": 0.9, "dataset.val_frac": 0.1},
        "dataset.val_frac",
        "test split",
    ),
    "unknown choice": ({"model.type": "transformer"}, "model.type", "not allowed"),
    "split dates out of order": (
        {
            "dataset.split": "date",
            "dataset.val_start": "2024-06-01",
            "dataset.test_start": "2024-01-01",
        },
        "dataset.val_start",
        "before dataset.test_start",
    ),
    "data dates out of order": (
        {"data.start": "2023-01-01", "data.end": "2022-01-01"},
        "data.start",
        "before data.end",
    ),
    "not a date": ({"data.start": "2020-13-01"}, "data.start", "YYYY-MM-DD"),
    "split date not a date": (
        {"dataset.split": "date", "dataset.val_start": "soon"},
        "dataset.val_start",
        "YYYY-MM-DD",
    ),
    "one dropout per layer": ({"model.dropout": [0.2]}, "model.dropout", "one rate per"),
}


@pytest.mark.parametrize("case", list(BAD_PARAMS))
def test_bad_params_rejected_at_load(case, tmp_path):
    edits, key, text = BAD_PARAMS[case]
    path = write_params(tmp_path, **edits)
    with pytest.raises(ConfigError) as e:
        load_params(path)
    msg = str(e.value)
    assert key in msg and text in msg and str(path) in msg, msg


def test_params_not_yaml_or_missing(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("training:\n  epochs: [3\n")
    with pytest.raises(ConfigError, match="not valid YAML") as e:
        load_params(bad)
    assert str(bad) in str(e.value)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_params(bad)


def test_unquoted_yaml_dates_are_accepted(tmp_path):
    """YAML reads `2023-01-01` without quotes as a date, not a string: that is a valid way to write
    a date."""
    path = write_params(tmp_path)
    path.write_text(
        path.read_text()
        .replace("'2023-01-01'", "2023-01-01")
        .replace("start: null", "start: 2020-01-01", 1)
    )
    p = load_params(path)
    assert p["dataset"]["val_start"] == "2023-01-01" and p["data"]["start"] == "2020-01-01"
    # ISO dates in order that are *not* in order as text (single-digit month) are accepted
    ok = load_params(
        path,
        {
            "dataset.split": "date",
            "dataset.val_start": "2023-09-01",
            "dataset.test_start": "2023-10-01",
        },
    )
    assert ok["dataset"]["split"] == "date"


def test_bad_override_rejected():
    with pytest.raises(ConfigError, match="training.epoch'"):
        load_params(REPO / "params.yaml", {"training.epoch": 3})
    with pytest.raises(ConfigError, match="target.horizon"):
        load_params(REPO / "params.yaml", {"target.horizon": -1})


def test_bad_params_via_cli_is_one_line(project, capsys):
    """A bad params.yaml stops every command before anything runs: one line naming the key, exit 1,
    no traceback."""
    from cryptovol.cli import main

    write_params(project, **{"target.horizon": -7})
    reset_params()
    assert main(["preprocess", "--crypto_symbol", SYMBOL]) == 1
    err = capsys.readouterr().err
    (line,) = error_lines(err, "preprocess")
    assert "target.horizon" in line and "Traceback" not in err
    assert not (project / "data" / "processed").exists()


# ================================================================ bad input: DataError and nothing
# written
def bad_mirror(tmp_path: Path, mirror: Path, how: str) -> Path:
    """A mirror folder whose yahoo/BTC-USD.csv is the real file damaged `how`; sentiment/ is the
    real one."""
    m = tmp_path / "bad_mirror"
    (m / "yahoo").mkdir(parents=True)
    (m / "sentiment").symlink_to(mirror / "sentiment")
    lines = (mirror / "yahoo" / f"{SYMBOL}.csv").read_text().splitlines()
    if how == "truncated":
        text = "\n".join(lines)[:-30]
    else:  # High < Low on one day in the middle of the history
        parts = lines[1000].split(",")
        parts[2] = "1.0"
        lines[1000] = ",".join(parts)
        text = "\n".join(lines) + "\n"
    (m / "yahoo" / f"{SYMBOL}.csv").write_text(text)
    return m


@pytest.mark.parametrize("how", ["truncated", "high_below_low"])
def test_bad_input_writes_nothing(how, project, mirror, tmp_path, monkeypatch):
    """A broken source file: DataError naming the symbol, the existing raw cache untouched, no
    dataset written."""
    from cryptovol.data import cache_prices
    from cryptovol.features import build_dataset

    cache = cache_prices(SYMBOL)
    before = cache.read_bytes()
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(bad_mirror(tmp_path, mirror, how)))
    with pytest.raises(DataError, match=SYMBOL):
        cache_prices(SYMBOL)
    assert cache.read_bytes() == before and not temp_files(cache.parent)
    # no cache: build_dataset reads the broken source itself
    cache.unlink()
    with pytest.raises(DataError, match=SYMBOL):
        build_dataset(SYMBOL, load_params(overrides={"dataset.sequence_length": 20}))
    assert not (project / "data" / "processed").exists()


# ================================================================ sentiment entirely missing for
# the requested range
# the Fear & Greed index starts 2018-02-01
PRE_SENTIMENT = {
    "data.start": "2015-01-01",
    "data.end": "2017-12-31",
    # a 2015-2017 history cannot reach the calendar split's 2023 validation
    "dataset.split": "fraction",
}


def test_sentiment_missing_for_range_is_an_error(project):
    p = load_params(overrides={**PRE_SENTIMENT, "features.on_missing_sentiment": "error"})
    with pytest.raises(DataError, match="on_missing_sentiment") as e:
        from cryptovol.features import build_dataset

        build_dataset(SYMBOL, p)
    # says which ranges do not meet
    assert "2015-01-01" in str(e.value) and "2018-02-01" in str(e.value)
    assert not (project / "data" / "processed").exists()  # nothing written


def test_sentiment_missing_for_range_disable_warns(project, logged):
    from cryptovol.features import build_dataset

    p = load_params(overrides={**PRE_SENTIMENT, "features.on_missing_sentiment": "disable"})
    ds = build_dataset(SYMBOL, p)
    assert any("sentiment features disabled" in m for m in logged), logged
    assert ds.feature_names and not [f for f in ds.feature_names if f.startswith("fng_")]
    assert "price_sentiment_proxy" in ds.feature_names  # the price-only stand-in is kept
    assert pd.Timestamp(ds.dates_train[0]) < pd.Timestamp("2015-06-01")
    assert (project / "data" / "processed" / SYMBOL / "windows.npz").is_file()


def test_sentiment_source_absent_is_an_error(project, mirror, tmp_path, monkeypatch, logged):
    """A mirror without sentiment/fear_greed.json and no cache: the error says how to get the series
    or turn it off."""
    from cryptovol.features import build_dataset

    only_prices = tmp_path / "mirror"
    (only_prices / "yahoo").mkdir(parents=True)
    (only_prices / "yahoo" / f"{SYMBOL}.csv").symlink_to(mirror / "yahoo" / f"{SYMBOL}.csv")
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(only_prices))
    p = load_params(overrides={"data.start": "2021-01-01"})
    with pytest.raises(DataError, match="cache_fear_greed") as e:
        build_dataset(SYMBOL, p)
    assert "on_missing_sentiment: disable" in str(e.value)
    assert any("Fear & Greed unavailable" in m and "fear_greed.json" in m for m in logged), logged
    assert not (project / "data" / "processed").exists()


# ================================================================ a crash mid-write leaves the
# previous file intact
def test_save_json_crash_keeps_previous(tmp_path, monkeypatch):
    path = save_json({"rmse": 0.1}, tmp_path / "metrics.json")
    before = path.read_bytes()
    # fails while serialising, after the temp file exists
    with pytest.raises(TypeError):
        save_json({"rmse": object()}, path)
    real = Path.write_text

    def crash(self, data, *a, **k):
        # half the JSON on disk, then the disk fills up
        real(self, data[: len(data) // 2], *a, **k)
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", crash)
    with pytest.raises(OSError, match="No space"):
        save_json({"rmse": 0.2, "pad": list(range(100))}, path)
    assert path.read_bytes() == before and not temp_files(tmp_path)


def crash_after_partial(monkeypatch, owner, name: str, when=lambda target: True):
    """Replace `owner.name` by a writer that writes half (or part) of its output to the real target
    and then raises."""
    real = getattr(owner, name)
    calls = []

    def crash(*args, **kwargs):
        target = next((a for a in args if isinstance(a, (str, Path)) or hasattr(a, "write")), None)
        if not when(target):
            return real(*args, **kwargs)
        calls.append(target)
        real(*args, **kwargs)
        # cut the file in half: a torn write
        if isinstance(target, (str, Path)) and Path(target).is_file():
            data = Path(target).read_bytes()
            Path(target).write_bytes(data[: len(data) // 2])
        raise OSError("simulated crash while writing")

    monkeypatch.setattr(owner, name, crash)
    return calls


@pytest.fixture(scope="module")
def small_datasets(tmp_path_factory, mirror):
    """Two real BTC datasets from 2021 on that differ in every file (standard vs minmax scaler),
    built once."""
    from cryptovol.features import make_dataset
    from cryptovol.data import load_prices, load_fear_greed

    mp = pytest.MonkeyPatch()
    mp.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    p = load_params(REPO / "params.yaml", {"dataset.sequence_length": 20})
    prices = load_prices(SYMBOL, start="2021-01-01", source="mirror", params=p)
    fng = load_fear_greed(source="mirror", params=p)
    a = make_dataset(prices, fng, p, SYMBOL)
    b = make_dataset(
        prices,
        fng,
        load_params(
            REPO / "params.yaml", {"dataset.sequence_length": 20, "dataset.scaler": "minmax"}
        ),
        SYMBOL,
    )
    mp.undo()
    return a, b


@pytest.mark.parametrize("victim", ["windows.npz", "frame.csv", "summary.json"])
def test_crash_mid_write_keeps_processed_dataset(victim, small_datasets, tmp_path, monkeypatch):
    """A crash while rewriting data/processed/{symbol}/ leaves the previous dataset loadable and
    unchanged (every file)."""
    from cryptovol.features import load_dataset, save_dataset

    old, new = small_datasets
    out = save_dataset(old, tmp_path / SYMBOL)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    stem = victim.split(".")[0]
    is_victim = lambda t: (
        t is not None and (Path(str(t)).name == victim or Path(str(t)).name.startswith(f".{stem}."))
    )
    # the archive dies after its first array: a torn zip in the temp file
    if victim == "windows.npz":
        real_write, n = np.lib.format.write_array, []

        def torn(fh, *a, **k):
            n.append(1)
            if len(n) > 1:
                raise OSError("simulated crash while writing")
            return real_write(fh, *a, **k)

        monkeypatch.setattr(np.lib.format, "write_array", torn)
    elif victim == "frame.csv":
        crash_after_partial(monkeypatch, pd.DataFrame, "to_csv", is_victim)
    else:
        crash_after_partial(monkeypatch, Path, "write_text", is_victim)
    with pytest.raises(OSError, match="simulated crash"):
        save_dataset(new, out)
    monkeypatch.undo()
    assert not temp_files(tmp_path)
    # the whole previous dataset
    assert {f.name: f.read_bytes() for f in out.iterdir() if not f.name.startswith(".")} == before
    back = load_dataset(SYMBOL, out)
    np.testing.assert_array_equal(back.X_train, old.X_train)
    assert back.scaler == old.scaler


# ================================================================ one tiny pipeline, run twice in
# two fresh roots
@pytest.fixture(scope="module")
def twin_roots(tmp_path_factory, mirror):
    """`python -m cryptovol pipeline` (download, preprocess, train, evaluate) for BTC-USD in two
    fresh project roots, as two separate processes started together. Root A is then reused
    (module-wide) by the tests below."""
    base = tmp_path_factory.mktemp("twins")
    roots = [make_root(base / n) for n in ("a", "b")]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cryptovol",
                "pipeline",
                "--crypto_symbol",
                SYMBOL,
                "--no_report",
            ],
            cwd=r,
            env=cli_env(r, mirror),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in roots
    ]
    for r, p in zip(roots, procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"pipeline failed in {r}:\n{err[-3000:]}"
    return roots


def test_same_seed_same_data_identical_metrics(twin_roots):
    """Same seed, data and params on CPU: byte-identical metrics.json, predictions and training
    history (no tolerance)."""
    a, b = twin_roots
    rel = Path("reports") / SYMBOL
    ma, mb = (r / rel / "metrics.json" for r in (a, b))
    assert json.loads(ma.read_text())["forecasts"]["model"]["n"] > 300
    assert ma.read_bytes() == mb.read_bytes()
    assert (a / rel / "predictions.csv").read_bytes() == (b / rel / "predictions.csv").read_bytes()
    assert (a / rel / "importance.csv").read_bytes() == (b / rel / "importance.csv").read_bytes()
    ha, hb = (json.loads((r / "models" / SYMBOL / "history.json").read_text()) for r in (a, b))
    assert (
        ha["loss"] == hb["loss"]
        and ha["val_loss"] == hb["val_loss"]
        and ha["epoch"] == [1, 2, 3, 4]
    )


@pytest.fixture
def root_a(twin_roots, monkeypatch, mirror):
    "Root A of the twin pipeline as the current project."
    monkeypatch.setenv("CRYPTOVOL_ROOT", str(twin_roots[0]))
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    reset_params()
    yield twin_roots[0]
    reset_params()


def test_crash_mid_write_keeps_metrics(root_a, monkeypatch):
    from cryptovol.evaluate import evaluate

    out = root_a / "reports" / SYMBOL
    before = (out / "metrics.json").read_bytes()
    calls = crash_after_partial(
        monkeypatch, Path, "write_text", lambda t: Path(t).name.startswith(".metrics.")
    )
    with pytest.raises(OSError, match="simulated crash"):
        evaluate(SYMBOL, importance=False)
    assert calls and (out / "metrics.json").read_bytes() == before and not temp_files(out)


def test_crash_mid_write_keeps_model(root_a, monkeypatch):
    """A crash while train() writes model.keras: the previous model file is intact, loads and
    predicts as before."""
    import keras
    from cryptovol.features import load_dataset
    from cryptovol.train import load_trained, model_inputs, train

    mdir = root_a / "models" / SYMBOL
    before = (mdir / "model.keras").read_bytes()
    ds = load_dataset(SYMBOL)
    old = load_trained(mdir)
    X = model_inputs(ds, "test", old)[:32]
    calls = crash_after_partial(
        monkeypatch,
        keras.Model,
        "save",
        lambda t: t is not None and Path(t).name.startswith(".model."),
    )
    with pytest.raises(OSError, match="simulated crash"):
        train(SYMBOL, epochs=1, verbose=0)
    monkeypatch.undo()
    assert calls and (mdir / "model.keras").read_bytes() == before and not temp_files(mdir)
    np.testing.assert_array_equal(load_trained(mdir).predict(X), old.predict(X))


# ================================================================ corrupt / truncated model files
def corrupt_copy(src_dir: Path, dest: Path, how: str) -> Path:
    """A copy of a trained model folder whose model file is damaged `how` (truncated | empty |
    not_zip | no_config)."""
    shutil.copytree(src_dir, dest, ignore=shutil.ignore_patterns("members"))
    f = dest / "model.keras"
    data = f.read_bytes()
    if how == "truncated":
        f.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        f.write_bytes(b"")
    elif how == "no_config":  # a valid zip that is not a Keras archive
        f.unlink()
        with zipfile.ZipFile(f, "w") as z:
            z.writestr("metadata.json", "{}")
    elif how == "h5_truncated":
        import keras

        f.unlink()
        m = keras.models.load_model(src_dir / "model.keras", compile=False)
        m.save(dest / "model.h5")
        h = (dest / "model.h5").read_bytes()
        (dest / "model.h5").write_bytes(h[: len(h) // 3])
        return dest / "model.h5"
    return f


@pytest.mark.parametrize("how", ["truncated", "empty", "no_config", "h5_truncated"])
def test_corrupt_model_reported_by_load_trained(root_a, tmp_path, how):
    from cryptovol.train import load_trained

    bad = corrupt_copy(root_a / "models" / SYMBOL, tmp_path / "bad", how)
    with pytest.raises(ModelError) as e:
        load_trained(bad.parent)
    assert str(bad) in str(e.value) and "retrain" in str(e.value)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_corrupt_model_reported_by_cli(command, twin_roots, mirror, tmp_path):
    """`python -m cryptovol predict|evaluate --model_path BAD`: one line naming the file, exit 1, no
    traceback, nothing written."""
    if command == "predict" and not (REPO / "cryptovol" / "predict.py").is_file():
        pytest.skip("cryptovol/predict.py (nbs/06_predict.ipynb) is not exported yet")
    root = twin_roots[0]
    bad = corrupt_copy(root / "models" / SYMBOL, tmp_path / "bad" / SYMBOL, "truncated")
    reports = root / "reports" / SYMBOL
    before = {f: f.stat().st_mtime_ns for f in reports.rglob("*")}
    r = run_cli(
        [command, "--model_path", str(bad), "--crypto_symbol", SYMBOL], root, mirror, timeout=120
    )
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    (line,) = error_lines(r.stderr, command)
    assert str(bad) in line and "could not load model" in line
    # the message is one line: nothing follows it
    assert r.stderr.rstrip().splitlines()[-1] == line
    assert {f: f.stat().st_mtime_ns for f in reports.rglob("*")} == before


# ================================================================ keras safe mode: no code from a
# model file
@pytest.mark.parametrize("fmt", [".keras", ".h5"])
def test_model_with_lambda_layer_is_refused(fmt, tmp_path):
    """A model file carrying a Python lambda is refused by load_trained (keras safe_mode) and its
    code never runs."""
    import keras

    marker = tmp_path / "code_ran"
    path = str(marker)
    inp = keras.Input((20, 3))
    # stands in for an attacker's payload
    x = keras.layers.Lambda(lambda t: (open(path, "w").close(), t)[1])(inp)
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(x)))
    folder = tmp_path / "evil"
    folder.mkdir()
    model.save(folder / f"model{fmt}")
    save_json({"feature_names": ["a", "b", "c"]}, folder / "features.json")
    save_json(load_params(REPO / "params.yaml"), folder / "params.json")
    marker.unlink()
    from cryptovol.train import load_trained

    with pytest.raises(ModelError, match="Lambda") as e:
        load_trained(folder)
    assert str(folder / f"model{fmt}") in str(e.value) and not marker.exists()
    # guard: unsafe loading does run it
    keras.models.load_model(folder / f"model{fmt}", compile=False, safe_mode=False)
    assert marker.exists()


# ================================================================ interrupted training resumes to
# the same epoch count
# train() writes params/features.json when a run starts, drops an earlier run's history.json, and
# saves the merged
# history after every epoch next to last.keras, so a killed run resumes from its own state.
def test_interrupted_training_resumes_to_same_epochs(project, twin_roots):
    """Train 4 epochs uninterrupted; then a fresh run in the same folder is killed after epoch 2's
    checkpoint and resumed for the missing epochs: it ends at epoch 4 too, with its own history (not
    the earlier run's)."""
    import cryptovol.train as tr
    from cryptovol.features import load_dataset

    ds = load_dataset(SYMBOL, twin_roots[0] / "data" / "processed" / SYMBOL)
    write_params(project, **TINY)
    reset_params()
    full = tr.train(SYMBOL, dataset=ds, verbose=0)
    assert full.history["epoch"] == [1, 2, 3, 4]
    mdir = project / "models" / SYMBOL
    real_begin = tr.EpochProgress.on_epoch_begin

    def killed(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill after epoch 2")
        return real_begin(self, epoch, logs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tr.EpochProgress, "on_epoch_begin", killed)
        with pytest.raises(KeyboardInterrupt):
            tr.train(SYMBOL, dataset=ds, verbose=0)
    steps = int(np.ceil(len(ds.y_train) / TINY["training.batch_size"]))
    done = int(tr.load_keras_model(mdir / "last.keras", compile=True).optimizer.iterations) // steps
    # the checkpoint holds the interrupted run's 2 epochs
    assert done == 2
    res = tr.train(SYMBOL, resume=mdir, additional_epochs=4 - done, dataset=ds, verbose=0)
    assert res.history["epoch"] == full.history["epoch"] == [1, 2, 3, 4]
    # its first two epochs are the same computation
    assert res.history["loss"][:2] == full.history["loss"][:2]
    assert config.load_json(mdir / "history.json")["epoch"] == [1, 2, 3, 4]


# ================================================================ a failing report notebook
def failing_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    params = nbformat.v4.new_code_cell('symbol = "BTC-USD"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("## Analysis for `symbol`"),
        nbformat.v4.new_code_cell("raise RuntimeError(f'broken report for {symbol}')"),
    ]
    nbformat.write(nb, path)
    return path


def test_failing_report_notebook_exits_nonzero_and_keeps_it(project, mirror):
    """`cryptovol report` (the DVC report stage's command) on a notebook that raises: exit 1, one
    line, executed notebook kept."""
    # the fixture links the repo's nbs/; use a private one
    (project / "nbs").unlink()
    (project / "nbs").mkdir()
    failing_notebook(project / "nbs" / "01_data.ipynb")  # the first of report.REPORT_NOTEBOOKS
    r = run_cli(["report", "--crypto_symbol", SYMBOL, "--no-index"], project, mirror, timeout=180)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    (line,) = error_lines(r.stderr, "report")
    assert r.stderr.rstrip().splitlines()[-1] == line
    kept = project / "reports" / SYMBOL / "html" / "executed" / "01_data.ipynb"
    assert str(kept) in line and "RuntimeError" in line and "cell" in line
    cells = json.loads(kept.read_text())["cells"]
    # error output kept for inspection
    assert any(o.get("ename") == "RuntimeError" for c in cells for o in c.get("outputs", []))
    # no half report
    assert not (project / "reports" / SYMBOL / "html" / "01_data.html").exists()


def test_report_notebook_without_analysis_section_is_named(project, mirror):
    """A report template without an '## Analysis' heading: one line naming the notebook, no
    traceback."""
    import nbformat

    (project / "nbs").unlink()
    (project / "nbs").mkdir()
    nb = nbformat.read(failing_notebook(project / "nbs" / "01_data.ipynb"), as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type == "code"]
    nbformat.write(nb, project / "nbs" / "01_data.ipynb")
    r = run_cli(["report", "--crypto_symbol", SYMBOL, "--no-index"], project, mirror, timeout=180)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    (line,) = error_lines(r.stderr, "report")
    assert "01_data.ipynb" in line and "## Analysis" in line


def test_hung_report_notebook_is_a_clear_failure(tmp_path):
    """A cell that hangs past the timeout: ReportError (one line for the CLI) and the partly
    executed notebook is kept."""
    import nbformat
    from cryptovol.report import ReportError, execute_notebook

    nb = failing_notebook(tmp_path / "hang.ipynb")
    book = nbformat.read(nb, as_version=4)
    book.cells[-1] = nbformat.v4.new_code_cell("import time; time.sleep(60)")
    nbformat.write(book, nb)
    with pytest.raises(ReportError, match="longer than 2 s") as e:
        execute_notebook(nb, tmp_path / "out" / "hang.ipynb", {"symbol": SYMBOL}, timeout=2)
    assert str(tmp_path / "out" / "hang.ipynb") in str(e.value) and "\n" not in str(e.value)
    assert (tmp_path / "out" / "hang.ipynb").is_file()


@pytest.mark.parametrize("command", [["preprocess"], ["train", "--epochs", "1"], ["evaluate"]])
def test_path_like_symbol_cannot_escape_project(project, command):
    """A symbol is a ticker, not a path: `--crypto_symbol ../../x` is refused before anything is
    written."""
    r = subprocess.run(
        [sys.executable, "-m", "cryptovol", *command, "--crypto_symbol", "../../escape"],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=300,
    )
    assert r.returncode == 1 and "invalid symbol" in r.stderr and "Traceback" not in r.stderr
    assert not (project.parent / "escape").exists() and not list(
        project.parent.parent.glob("escape*")
    )
