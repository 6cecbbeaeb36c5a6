"""The benchmarks' bookkeeping (no training): model selection ranks candidates on validation QLIKE
only."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
select_model = pytest.importorskip("select_model")


def _rec(sym, scores, best="har", best_q=0.5):
    return {
        "symbol": sym,
        "val_qlike": {c: list(v) for c, v in scores.items()},
        "validation": {"best_by_qlike": best, "metrics": {best: {"qlike": best_q}}},
    }


def test_selection_ranks_by_mean_validation_qlike_over_seeds():
    recs = [
        _rec("A", {"seed": [0.60, 0.70], "anchor": [0.45, 0.55]}),  # anchor 0.50 < seed 0.65
        _rec("B", {"seed": [0.40, 0.40], "anchor": [0.39, 0.45]}),  # seed 0.40 < anchor 0.42
        _rec("C", {"seed": [0.90, 0.90], "anchor": [0.30, 0.30]}, best_q=0.35),
    ]
    s = select_model.summarise(recs, ["seed", "anchor"])
    assert s["mean_rank"] == {"seed": pytest.approx(5 / 3), "anchor": pytest.approx(4 / 3)}
    assert s["chosen"] == "anchor"
    # B: seed 0.40 < 0.5; A: anchor 0.50 is not < 0.5; C: 0.30 < 0.35
    assert s["beats_best_baseline"] == {"seed": 1, "anchor": 2}
    assert s["by_symbol"]["A"]["candidates"]["seed"] == pytest.approx(0.65)
    md = select_model.markdown(
        {"summary": s, "candidates": ["seed", "anchor"], "model_type": "advanced", "seeds": [42, 7]}
    )
    assert "Chosen: **anchor**" in md and "| A |" in md and "test window not used" in md


def test_every_candidate_is_a_valid_params_override():
    from cryptovol.config import with_overrides, get_params

    for name, over in select_model.CANDIDATES.items():
        p = with_overrides(get_params(), **over)
        assert len(p["model"]["dropout"]) == len(p["model"]["lstm_units"]), name


def test_sweep_benchmark_finds_the_default_trial_and_reports_it():
    """benchmarks/sweep.py: the row of params.yaml's own configuration is found among the trials and
    compared with the best."""
    import json
    import pandas as pd

    pytest.importorskip("ray.tune")
    sweep_bench = pytest.importorskip("sweep")
    from cryptovol.sweep import SweepSpec, sweep_base_params

    spec = SweepSpec(
        name="b",
        symbol="BTC-USD",
        space={
            "training.learning_rate": {"loguniform": [1e-4, 1e-2]},
            "model.lstm_units": {"choice": [[32, 16], [128, 64, 32]]},
        },
    )
    base = sweep_base_params(spec)
    rows = [
        {
            "trial": "a",
            "training.learning_rate": 0.002,
            "model.lstm_units": "[32, 16]",
            "best_val_qlike": 0.50,
            "best_epoch": 3,
            "epochs": 6,
            "seconds": 60.0,
            "status": "finished",
            "params": json.dumps({"training.learning_rate": 0.002, "model.lstm_units": [32, 16]}),
        },
        {
            "trial": "d",
            "training.learning_rate": base["training"]["learning_rate"],
            "model.lstm_units": json.dumps(base["model"]["lstm_units"]),
            "best_val_qlike": 0.55,
            "best_epoch": 2,
            "epochs": 2,
            "seconds": 30.0,
            "status": "finished",
            "params": json.dumps(
                {
                    "training.learning_rate": base["training"]["learning_rate"],
                    "model.lstm_units": base["model"]["lstm_units"],
                }
            ),
        },
    ]
    table = pd.DataFrame(rows)
    d = sweep_bench.default_trial(table, spec, base)
    assert d is not None and d["trial"] == "d"
    r = {
        "summary": {
            "symbol": "BTC-USD",
            "search": "optuna",
            "asha": {"grace_period": 2, "reduction_factor": 3},
            "num_samples": 2,
            "max_epochs": 10,
            "wall_seconds_this_run": 600.0,
            "finished": 2,
            "epochs_run": 8,
            "trials_per_hour_this_run": 12.0,
            "best": {
                "trial": "a",
                "val_qlike": 0.50,
                "epoch": 3,
                "params": json.loads(rows[0]["params"]),
            },
        },
        "default": d,
        "space": list(spec.space),
        "table": table.drop(columns=["params"]).to_dict("records"),
        "command": "benchmarks/sweep.py",
        "machine": {
            "nproc": 2,
            "cpu_model": "x",
            "ram_gib": 1,
            "load_avg_1_5_15": [1, 1, 1],
            "python": "3.12",
            "env": {},
            "commit": "c",
            "date": "d",
        },
        "load_end": [2, 2, 2],
        "cpus_per_trial": 1,
        "dvc_command": "dvc exp run -S x=1",
        "wall_seconds_total": 600.0,
    }
    md = sweep_bench.markdown(r)
    assert "**12.0 trials/hour**" in md and "0.5500" in md and "9.1% lower" in md and "| a |" in md


def test_every_global_variant_is_a_valid_params_override():
    """benchmarks/select_global.py: every variant is a params override cryptovol accepts (the `data`
    key aside)."""
    select_global = pytest.importorskip("select_global")
    from cryptovol.config import with_overrides, get_params

    for name, over in select_global.VARIANTS.items():
        assert set(over) - {"data"} or name == "default" or over == {"data": "one_coin"}, name
        with_overrides(get_params(), **{k: v for k, v in over.items() if k != "data"})
    # size, data, learning rate
    assert {"default", "units_8", "units_64", "one_coin", "lr_1e-4", "lr_1e-3"} <= set(
        select_global.VARIANTS
    )


def test_select_model_hands_over_to_the_global_selection(capsys):
    with pytest.raises(SystemExit) as e:
        select_model.main(["--global", "--help"])
    assert e.value.code == 0 and "validation windows" in capsys.readouterr().out


def _run_benchmark(name: str, *args: str, mirror: Path) -> None:
    """Run benchmarks/`name` in a subprocess on the mirror; fail with its stderr's tail."""
    import os, subprocess

    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        [sys.executable, str(repo / "benchmarks" / name), *args],
        cwd=repo,
        env={**os.environ, "CRYPTOVOL_DATA_DIR": str(mirror)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]


def test_residual_learning_quick_run_checks_lookahead_and_scores_every_row(tmp_path, mirror):
    """benchmarks/residual_learning.py --quick (first coin, last fold): the no-look-ahead check
    passes, every row is scored."""
    import json

    pytest.importorskip("sklearn")
    _run_benchmark("residual_learning.py", "--quick", "--out", str(tmp_path), mirror=mirror)
    out = json.loads((tmp_path / "residual_learning_quick.json").read_text())
    assert out["quick"] and out["no_lookahead"]["passed"] and len(out["folds"]) == 1
    ((coin, days),) = out["days"].items()
    assert days > 300  # one 365/366-day fold, every forecast and both targets known
    assert all(
        f["n_train"] >= 200 and f["last_row"] < out["folds"][0]["start"] for f in out["fits"]
    )
    rows = out["rows"]
    assert {(r["anchor"], r["target"]) for r in rows} == {
        (a, t) for a in ("rv_harq", "har_log") for t in ("close_to_close", "realized")
    }
    assert all(r[coin] is not None and r[coin] > 0 for r in rows)
    assert "no look-ahead check" in (tmp_path / "residual_learning_quick.md").read_text()


def test_rvnet_residual_quick_run_rebuilds_the_anchor_and_chooses_on_validation(tmp_path, mirror):
    """benchmarks/rvnet_residual.py --quick --no-rvnet (last fold, the learners only): the anchor
    rebuilt from rv_net's rows equals the rv_log_har_pool Forecaster, the no-look-ahead check
    passes, every fit ends before the test fold and every row is scored."""
    import json

    pytest.importorskip("sklearn")
    args = ("--quick", "--no-rvnet", "--out", str(tmp_path))
    _run_benchmark("rvnet_residual.py", *args, mirror=mirror)
    out = json.loads((tmp_path / "rvnet_residual_quick.json").read_text())
    assert out["quick"] and out["no_lookahead"]["passed"] and len(out["folds"]) == 1
    assert out["anchor_check"] < 1e-6
    (fold,), (fit,) = out["folds"], out["fits"]
    assert fit["last_known_row"] < fit["until"] < fold["start"]
    assert fit["n_train"] > 1000 and fit["n_val"] > 300 and fit["gbm"]["trees"] >= 1
    assert all(d > 300 for d in out["days"].values())
    assert {(x["target"], x["row"]) for x in out["rows"]} == {
        (t, n) for t in ("realized", "close_to_close") for n in ("anchor", "const", "ridge", "gbm")
    }
    anchor = [x for x in out["rows"] if x["row"] == "anchor"]
    assert all(x["mean ratio"] == pytest.approx(1.0) for x in anchor)
    assert "no look-ahead check" in (tmp_path / "rvnet_residual_quick.md").read_text()


def test_interval_spread_all_rows_rule_is_the_forecasters_band(tmp_path, mirror):
    """benchmarks/interval_spread.py: its "all training rows" spread is `_log_spread` and its
    coverage is that of `Forecast.interval` (the band every report counts) on the fold's test days;
    every rule's coverage is a share and the 95% band covers at least what the 80% one does."""
    import json

    import numpy as np
    import pandas as pd

    from cryptovol.backtest import plan_folds, window_dates
    from cryptovol.config import get_params
    from cryptovol.data import load_fear_greed, load_prices
    from cryptovol.features import log_returns
    from cryptovol.forecasters import FORECASTERS, Forecast, _log_spread, classical_data

    _run_benchmark(
        "interval_spread.py", "--forecasters", "har", "--out", str(tmp_path), mirror=mirror
    )
    out = json.loads((tmp_path / "interval_spread.json").read_text())
    p = get_params()
    assert {row["coin"] for row in out["rows"]} == set(p["symbols"])
    for row in out["rows"]:
        for rule in ("all training rows", "last 365", "last 730", "EW half-life 365"):
            c = row[rule]
            assert 0 < c["80"] <= c["95"] <= 1 and c["s"] > 0
    btc = [row for row in out["rows"] if row["coin"] == "BTC-USD" and row["fold"] == 0][0]
    prices = load_prices("BTC-USD", params=p)
    fold = plan_folds(window_dates(prices, load_fear_greed(params=p), p), p)[0][0]
    data = classical_data(log_returns(prices["Close"]).dropna(), 7, symbol="BTC-USD")
    until = fold.start - pd.Timedelta(days=1)
    vol = FORECASTERS["har"].from_params(p).fit(data, until).series(data)
    s = _log_spread(data.target, vol, until, 7)
    assert btc["all training rows"]["s"] == pytest.approx(s, rel=1e-9)
    test = (vol.index >= fold.start) & (vol.index <= fold.end)
    actual = pd.Series(data.target).reindex(vol.index)[test]
    ok = actual.notna()
    band = Forecast("har", vol[test], pd.Series(s, index=vol.index[test]), 7, kind="point")
    lo, hi = band.interval(0.8)
    inside = ((actual > lo) & (actual < hi))[ok]
    assert btc["days"] == int(ok.sum())
    assert btc["all training rows"]["80"] == pytest.approx(float(np.mean(inside)), abs=1e-12)
