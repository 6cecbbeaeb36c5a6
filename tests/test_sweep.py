"""Tests for cryptovol.sweep and `cryptovol sweep`: a tiny real Ray Tune sweep on BTC (3 trials x 2
epochs, short windows, a 4-unit LSTM) is interrupted with Ctrl-C (SIGINT) after its first trial and
resumed; the results table, `--apply`'s override file, the sealed test split inside trials and the
import-without-Ray promise are checked.

Real prices from the offline mirror ($CRYPTOVOL_DATA_DIR); everything is written into a throw-away
project root.
"""

import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("ray.tune", reason='Ray Tune not installed: pip install -e ".[sweep]"')
pytest.importorskip("optuna")

REPO = Path(__file__).resolve().parents[1]
SYMBOL = "BTC-USD"
TINY = {
    "name": "tiny",
    "symbol": SYMBOL,
    "search": "optuna",
    "num_samples": 3,
    "seed": 1,
    "max_concurrent": 1,
    "include_default": False,
    "asha": {"grace_period": 1, "reduction_factor": 2},
    "fixed": {
        "data.start": "2021-06-01",
        "dataset.sequence_length": 10,
        "model.dense_units": [4],
        "model.batch_norm": False,
        "training.epochs": 2,
        "training.batch_size": 64,
    },
    "space": {
        "training.learning_rate": {"loguniform": [1.0e-4, 1.0e-2]},
        "model.lstm_units": {"choice": [[4], [6, 3]]},
    },
}


def _finished_trials(exp: Path) -> dict[str, float]:
    "{trial id: best val_qlike} of the trials whose result.json has both epochs."
    out = {}
    for f in exp.glob("trial_*/result.json"):
        rows = [json.loads(l) for l in f.read_text().splitlines() if l.strip()]
        if len(rows) >= 2:
            out[f.parent.name.removeprefix("trial_")] = min(r["val_qlike"] for r in rows)
    return out


@pytest.fixture(scope="module")
def swept(tmp_path_factory, mirror):
    """Run the tiny sweep in a subprocess, Ctrl-C it once one trial has finished, then resume it
    in-process with --apply."""
    import cryptovol.config as config
    from cryptovol import cli

    root = tmp_path_factory.mktemp("cryptovol_sweep")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copy(REPO / "settings.ini", root / "settings.ini")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    mp = pytest.MonkeyPatch()
    mp.setenv("CRYPTOVOL_ROOT", str(root))
    mp.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    mp.delenv("RAY_ADDRESS", raising=False)
    config.reset_params()
    exp = root / "sweeps" / "tiny" / "trials"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryptovol", "sweep", "--config", str(root / "tiny.yaml")],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )
    before, deadline = {}, time.time() + 600
    while time.time() < deadline and proc.poll() is None and not before:
        time.sleep(1)
        before = _finished_trials(exp)
    assert before, (
        "no trial finished before the deadline / "
        f"exit:\n{proc.stdout.read() if proc.poll() is not None else ''}"
    )
    proc.send_signal(signal.SIGINT)  # Ctrl-C: Ray Tune saves the experiment state and stops
    try:
        first_out, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        first_out, _ = proc.communicate()
    interrupted = len(_finished_trials(exp)) < TINY["num_samples"]
    import io, contextlib

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = cli.main(["sweep", "--config", str(root / "tiny.yaml"), "--apply"])
    yield {
        "root": root,
        "dir": root / "sweeps" / "tiny",
        "before": before,
        "interrupted": interrupted,
        "status": status,
        "stdout": buf.getvalue(),
        "first_out": first_out,
    }
    import ray

    ray.shutdown()
    mp.undo()
    config.reset_params()


def test_interrupted_sweep_resumes_and_finishes(swept):
    assert swept["interrupted"], (
        "the sweep finished before Ctrl-C reached it, so resume was not exercised:\n"
        + swept["first_out"][-2000:]
    )
    assert swept["status"] == 0, swept["stdout"][-2000:]
    s = json.loads((swept["dir"] / "summary.json").read_text())
    assert (
        s["resumed"]
        and s["trials"] == 3
        and s["finished"] == 3
        and s["unfinished"] == 0
        and s["errors"] == 0
    )
    table = pd.read_csv(swept["dir"] / "results.csv")
    # no trial was run twice under a new id
    assert len(table) == 3 and table["trial"].is_unique
    # trials finished before Ctrl-C are kept as they were
    for tid, q in swept["before"].items():
        row = table[table["trial"].astype(str) == tid]
        assert len(row) == 1 and row["best_val_qlike"].iloc[0] == pytest.approx(q)


def test_results_table_and_plot(swept):
    d = swept["dir"]
    table = pd.read_csv(d / "results.csv")
    assert list(table.columns) == [
        "trial",
        "training.learning_rate",
        "model.lstm_units",
        "best_val_qlike",
        "best_epoch",
        "epochs",
        "seconds",
        "status",
        "started",
        "params",
    ]
    assert (
        (table["status"] == "finished").all()
        and np.isfinite(table["best_val_qlike"]).all()
        and (table["best_val_qlike"] > 0).all()
    )
    assert table["best_val_qlike"].is_monotonic_increasing  # best first
    assert table["started"].notna().all() and table["started"].is_unique
    assert (
        table["epochs"].between(1, 2).all()
        and table["best_epoch"].between(1, 2).all()
        and (table["seconds"] > 0).all()
    )
    assert table["training.learning_rate"].between(1e-4, 1e-2).all() and set(
        table["model.lstm_units"]
    ) <= {"[4]", "[6, 3]"}
    curves = pd.read_csv(d / "epochs.csv")
    assert len(curves) == table["epochs"].sum()
    for tid, c in curves.groupby("trial"):
        assert c["val_qlike"].min() == pytest.approx(
            table.loc[table["trial"].astype(str) == str(tid), "best_val_qlike"].iloc[0]
        )
    md = (d / "results.md").read_text()
    assert all(str(t) in md for t in table["trial"]) and "| trial |" in md
    assert (d / "search.png").stat().st_size > 10_000
    assert str(table["trial"].iloc[0]) in swept["stdout"]


def test_apply_writes_an_override_that_config_accepts(swept):
    from cryptovol.config import load_params
    from cryptovol.sweep import load_override

    f = swept["dir"] / "best_params.yaml"
    over = load_override(f)
    best = json.loads(pd.read_csv(swept["dir"] / "results.csv")["params"].iloc[0])
    for k, v in {**TINY["fixed"], **best}.items():
        assert over[k] == pytest.approx(v) if isinstance(v, float) else over[k] == v
    p = load_params(swept["root"] / "params.yaml", overrides=over)
    assert p["model"]["lstm_units"] == best["model.lstm_units"] and len(
        p["model"]["dropout"]
    ) == len(best["model.lstm_units"])
    assert p["training"]["learning_rate"] == pytest.approx(best["training.learning_rate"])
    assert "dvc exp run -S" in swept["stdout"] and "-S training.epochs=2" in swept["stdout"]


def test_a_trial_cannot_read_the_test_split(swept):
    """Through the real path of a trial: the driver's sealed dataset in Ray's object store, fetched
    by trial_dataset on a worker."""
    import ray
    from cryptovol.sweep import build_trial_datasets, load_sweep, sweep_base_params, trial_dataset

    spec = load_sweep(swept["root"] / "tiny.yaml")
    base = sweep_base_params(spec)
    refs = {k: ray.put(ds) for k, ds in build_trial_datasets(spec, base).items()}

    @ray.remote
    def probe(refs, params):
        from cryptovol.train import model_inputs

        ds = trial_dataset(refs, params)
        seen = {}
        for what, read in {
            "X_test": lambda: ds.X_test,
            "y_test": lambda: ds.y_test,
            "Y_test": lambda: ds.Y_test,
            "split": lambda: ds.split("test"),
            "model_inputs": lambda: model_inputs(ds, "test"),
        }.items():
            try:
                read()
                seen[what] = "read"
            except Exception as e:
                seen[what] = type(e).__name__
        return (
            seen,
            len(ds.y_train),
            len(ds.y_val),
            str(ds.frame.index.max().date()),
            ds.summary["splits"]["val"]["end"],
        )

    seen, n_train, n_val, frame_end, val_end = ray.get(probe.remote(refs, base), timeout=300)
    assert set(seen.values()) == {"TestSplitSealed"}, seen
    assert n_train > 100 and n_val > 30 and frame_end == val_end


def test_resume_refuses_a_changed_spec(swept):
    from cryptovol.sweep import SweepError, load_sweep, run_sweep

    changed = swept["root"] / "changed.yaml"
    changed.write_text(yaml.safe_dump({**TINY, "num_samples": 4}))
    with pytest.raises(SweepError, match="different sweep.yaml"):
        run_sweep(load_sweep(changed))


def test_import_without_ray_stays_light():
    """`import cryptovol` (and the sweep and CLI modules) never import Ray or TensorFlow; without
    Ray installed a sweep says how to get it."""
    code = (
        "import sys, importlib.abc\n"
        "class NoRay(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.') or name == 'optuna': raise "
        "ImportError('no ' + name)\n"
        "sys.meta_path.insert(0, NoRay())\n"
        "import cryptovol, cryptovol.sweep, cryptovol.cli\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "try: cryptovol.sweep.require_ray()\n"
        "except cryptovol.sweep.SweepError as e: print('ERR', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    assert 'pip install -e ".[sweep]"' in out.stdout


def test_sweep_yaml_of_the_repo_is_valid(project):
    from cryptovol.sweep import dataset_variants, default_point, load_sweep, sweep_base_params

    spec = load_sweep(REPO / "sweep.yaml")
    assert spec.symbol in yaml.safe_load((REPO / "params.yaml").read_text())["symbols"]
    # the current default is trial 1 of the benchmark sweep
    assert default_point(spec, sweep_base_params(spec)) is not None
    assert 1 <= len(dataset_variants(spec)) <= 16
