"""The pipeline's wiring: dvc.yaml agrees with params.yaml, the CLI speaks the seed's flags."""

import subprocess, sys
from pathlib import Path

import pytest
import yaml

from cryptovol.cli import build_parser

REPO = Path(__file__).resolve().parent.parent


def test_summary_deps_match_symbols():
    "DVC cannot expand lists in deps: the summary stage must list every coin of params.yaml."
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    symbols = yaml.safe_load((REPO / "params.yaml").read_text())["symbols"]
    listed = [
        d.split("/")[1] for d in dvc["stages"]["summary"]["deps"] if d.endswith("metrics.json")
    ]
    assert listed == symbols, (
        "add/remove reports/{coin}/metrics.json in dvc.yaml's summary deps to match params.yaml "
        "symbols"
    )


def test_backtest_summary_deps_match_symbols():
    "Same rule for the backtest summary: one reports/backtest/{coin}.json per coin of params.yaml."
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    symbols = yaml.safe_load((REPO / "params.yaml").read_text())["symbols"]
    listed = [
        Path(d).stem
        for d in dvc["stages"]["backtest_summary"]["deps"]
        if d.startswith("reports/backtest/")
    ]
    assert listed == symbols, (
        "add/remove reports/backtest/{coin}.json in dvc.yaml's backtest_summary deps to match "
        "params.yaml symbols"
    )


def test_intraday_manifest_lists_the_universe_and_the_realized_har_depends_on_it():
    """The HAR family on realized measures reads hourly bars, the pooled ones those of every
    universe coin: evaluate and backtest depend on each universe coin's intraday record."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    universe = yaml.safe_load((REPO / "params.yaml").read_text())["universe"]
    man = dvc["stages"]["manifest_intraday"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in man["outs"]]
    records = [f"data/manifest/intraday/{c}.json" for c in universe]
    assert outs == records, "list data/manifest/intraday/{coin}.json per universe coin"
    assert man["always_changed"] is True
    for stage in ("evaluate", "backtest"):
        st = dvc["stages"][stage]
        deps = (st["do"] if "do" in st else st)["deps"]
        assert [d for d in deps if d.startswith("data/manifest/intraday/")] == records, stage
        assert {"cryptovol/har.py", "cryptovol/forecasters.py", "cryptovol/rvnet.py"} <= set(
            deps
        ), stage


def test_the_backtest_is_one_stage_over_the_symbols():
    """One stage backtests every reported coin, the global model included (what pools the coins is
    fitted once per origin, nothing is joined through a file): its raw-price deps are the universe,
    its outs the global model's folds and each coin of `symbols`; `parallel` is not a param (it
    changes no digit)."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    st = dvc["stages"]["backtest"]
    assert (
        "foreach" not in st
        and "--crypto_symbol" not in st["cmd"]
        and "backtest_global" not in dvc["stages"]
    )
    assert [
        Path(d).stem
        for d in st["deps"]
        if d.startswith("data/raw/") and d != "data/raw/fear_greed.csv"
    ] == p["universe"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in st["outs"]]
    want = ["models/backtest/global"] + [
        x
        for c in p["symbols"]
        for x in (
            f"models/backtest/{c}",
            f"reports/backtest/{c}.json",
            f"reports/backtest/{c}_predictions.csv",
        )
    ]
    assert outs == want, (
        "list models/backtest/global, then models/backtest/COIN, reports/backtest/COIN.json and "
        "COIN_predictions.csv per symbol"
    )
    assert {"rv_net", "universe", "symbols", "global_model"} <= set(
        st["params"]
    ) and "parallel" not in st["params"]


def test_global_stages_list_the_universe_and_the_symbols():
    """The train stage reads every universe coin's processed data and writes each reported coin's
    model."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    train = dvc["stages"]["train"]
    assert [d.split("/")[-1] for d in train["deps"] if d.startswith("data/processed/")] == p[
        "universe"
    ], "list data/processed/{coin} of every universe coin in dvc.yaml's train deps"
    assert [o.split("/")[-1] for o in train["outs"] if o != "models/global"] == p["symbols"], (
        "list models/{coin} of every symbol in dvc.yaml's train outs"
    )
    assert set(p["symbols"]) <= set(p["universe"])
    for stage in ("download", "featurize"):
        assert dvc["stages"][stage]["foreach"] == "${universe}"


def test_manifest_stage_records_every_universe_coin_and_downloads_depend_on_their_record():
    """Each download depends on its own data/manifest record, which the always-run manifest stage
    writes."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    man = dvc["stages"]["manifest"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in man["outs"]]
    assert outs == [f"data/manifest/yahoo/{c}.json" for c in p["universe"]] + [
        "data/manifest/sentiment/fear_greed.json"
    ], "list data/manifest/yahoo/{coin}.json of every universe coin in dvc.yaml's manifest outs"
    assert man["always_changed"] is True
    assert "data/manifest/yahoo/${item}.json" in dvc["stages"]["download"]["do"]["deps"]
    assert "data/manifest/sentiment/fear_greed.json" in dvc["stages"]["sentiment"]["deps"]
    every_dep = [d for st in dvc["stages"].values() for d in st.get("do", st).get("deps", [])]
    assert not [d for d in every_dep if d.startswith(("..", "/")) or "shared" in d], (
        "no stage may depend on a path outside the repository"
    )


def test_stage_params_are_known_sections():
    from cryptovol.config import get_params

    sections = set(get_params())
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        for p in body.get("params", []):
            assert p.split(".")[0] in sections, f"stage {name} tracks unknown params key {p}"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--model_type", "ensemble", "--epochs", "3"],
        ["train", "--model-type", "ensemble", "--epochs", "3"],
    ],
)
def test_both_flag_spellings(argv):
    args = build_parser().parse_args(argv)
    assert (args.model_type, args.epochs) == ("ensemble", 3)


def test_seed_commands_parse():
    for argv in (
        ["pipeline", "--model_type", "advanced", "--epochs", "100"],
        ["train", "--resume", "models/BTC-USD/last.keras", "--additional_epochs", "50"],
        ["evaluate", "--model_path", "models/BTC-USD/model.keras", "--no_plots"],
        [
            "predict",
            "--model_path",
            "models/BTC-USD/model.keras",
            "--crypto_symbol",
            "BTC-USD",
            "--forecast_days",
            "10",
        ],
    ):
        build_parser().parse_args(argv)


def test_error_is_one_line_not_a_traceback():
    r = subprocess.run(
        [sys.executable, "-m", "cryptovol", "train", "--resume", "models/X/last.keras"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "--additional_epochs" in r.stderr


def test_invalid_model_type_is_rejected():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--model_type", "transformer"])
