"""The command line checks its arguments before any work (nbs/08_cli.ipynb: `check_args` and
friends).

Symbols are matched whatever their case or refused with the closest valid one (never one the command
would refuse in turn); every number is checked against its range; each refusal is one line,
`cryptovol COMMAND: error: ...`, exit status 1, and comes before TensorFlow or any data is touched.
"""

import json, os, subprocess, sys, time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from cryptovol import cli
from cryptovol.cli import UsageError, build_parser, check_args, check_symbol, main, valid_symbols
from cryptovol.config import get_params, reset_params

COMMANDS_WITH_SYMBOL = [
    "download",
    "manifest",
    "preprocess",
    "evaluate",
    "predict",
    "report",
    "backtest",
    "pipeline",
    "sweep",
]
REPORTED = ["evaluate", "predict", "report", "backtest", "pipeline"]


def write_params(root: Path, **dotted) -> None:
    "Set dotted keys (e.g. `data.source`) in root/params.yaml and forget the cached params."
    p = yaml.safe_load((root / "params.yaml").read_text())
    for key, value in dotted.items():
        *parents, last = key.split(".")
        d = p
        for k in parents:
            d = d[k]
        d[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    reset_params()


def check(*argv: str):
    return check_args(build_parser().parse_args(list(argv)))


def refused(capsys, *argv: str) -> str:
    "The one stderr line of a refused `cryptovol ARGV` (exit status 1, no traceback)."
    status = main(list(argv))
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert status == 1, (argv, status, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def suggestion(message: str) -> str | None:
    return message.split("did you mean ")[1].split("?")[0] if "did you mean " in message else None


@pytest.fixture
def no_command_runs(monkeypatch):
    "Replace every command by one that records its arguments: nothing heavy runs in these tests."
    ran = []
    for name in list(cli.COMMANDS):
        monkeypatch.setitem(cli.COMMANDS, name, lambda args: ran.append(args))
    return ran


# --- symbols ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS_WITH_SYMBOL)
@pytest.mark.parametrize("spelling", ["btc-usd", "Btc-Usd", "BTC-USD"])
def test_symbol_is_matched_case_insensitively(project, command, spelling):
    assert check(command, "--crypto_symbol", spelling).crypto_symbol == "BTC-USD"


def test_data_commands_take_universe_coins_whatever_their_case(project):
    for command in ("download", "manifest", "preprocess"):
        assert check(command, "--crypto_symbol", "ada-usd").crypto_symbol == "ADA-USD"


def test_canonical_symbol_reaches_the_command(project, no_command_runs):
    assert main(["predict", "--crypto_symbol", "eth-usd"]) == 0
    assert no_command_runs[0].crypto_symbol == "ETH-USD"


def test_typo_is_refused_with_the_closest_symbol(project, capsys):
    line = refused(capsys, "predict", "--crypto_symbol", "BTC-UDS")
    valid = ", ".join(sorted(get_params()["symbols"]))
    assert (
        line == "cryptovol predict: error: unknown symbol 'BTC-UDS'; did you mean BTC-USD? valid: "
        f"{valid}"
    )


def test_unknown_symbol_without_a_close_one_lists_the_valid_ones(project, capsys):
    line = refused(capsys, "report", "--crypto_symbol", "nope")
    assert (
        "did you mean" not in line
        and "valid: " + ", ".join(sorted(get_params()["symbols"])) in line
    )


def test_data_command_suggests_a_mirror_coin(project, mirror, capsys):
    line = refused(capsys, "download", "--crypto_symbol", "LNK-USD")
    # universe + mirror coins are valid
    assert "did you mean LINK-USD?" in line and "ADA-USD" in line


def test_unreported_coin_is_told_how_to_be_reported_not_offered_another(project, capsys):
    p = get_params()
    coin = next(c for c in p["universe"] if c not in p["symbols"])
    line = refused(capsys, "predict", "--crypto_symbol", coin.lower())
    assert f"add {coin} to symbols" in line and "did you mean" not in line


@pytest.mark.parametrize("command", COMMANDS_WITH_SYMBOL)
@pytest.mark.parametrize(
    "typo",
    [
        "BTC-UDS",
        "ETH",
        "doge-usdt",
        "AVAX-UDS",
        "LINK",
        "xrp_usd",
        "SOLUSD",
        "ADAUSD",
        "BNB-EUR",
        "Q",
    ],
)
def test_a_suggestion_is_always_valid_for_the_command(project, command, typo):
    try:
        check(command, "--crypto_symbol", typo)
        return
    except UsageError as e:
        guess = suggestion(str(e))
    if guess is not None:
        assert guess in valid_symbols(command), (command, typo, guess)
        # the suggestion runs
        assert check(command, "--crypto_symbol", guess).crypto_symbol == guess


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefxyz-0123456789", min_size=1, max_size=10),
    st.sampled_from(COMMANDS_WITH_SYMBOL),
)
def test_no_suggestion_is_ever_refused(typo, command):
    """Property: whatever the typo, a suggested symbol is accepted by the same command (project
    params)."""
    p = get_params()
    try:
        check_symbol(typo, command, p)
    except Exception as e:
        guess = suggestion(str(e))
        if guess is not None:
            assert check_symbol(guess, command, p) == guess, (typo, command, guess)


def test_path_like_symbol_is_refused_as_such(project, capsys):
    line = refused(capsys, "download", "--crypto_symbol", "../../escape")
    assert "invalid symbol" in line


def test_offline_mirror_refuses_other_tickers(project, capsys):
    line = refused(capsys, "download", "--crypto_symbol", "DOGE-EUR")
    assert "did you mean DOGE-USD?" in line and "--live" in line


def test_live_data_accepts_any_well_formed_ticker_for_download_and_preprocess(project, capsys):
    assert check("download", "--live", "--crypto_symbol", "doge-eur").crypto_symbol == "DOGE-EUR"
    write_params(project, **{"data.source": "yfinance"})
    for command in ("download", "preprocess"):
        assert check(command, "--crypto_symbol", "sui-usd").crypto_symbol == "SUI-USD"
    # the reported coins and the manifest stay closed
    for command in ("predict", "evaluate", "manifest"):
        with pytest.raises(UsageError, match="unknown symbol 'SUI-USD'"):
            check(command, "--crypto_symbol", "SUI-USD")


def test_no_mirror_means_live(project, monkeypatch):
    monkeypatch.delenv("CRYPTOVOL_DATA_DIR")
    write_params(project, **{"data.mirror_dir": "../no-such-mirror"})
    p = get_params()
    assert valid_symbols("download") == sorted(set(p["universe"]) | set(p["symbols"]))
    assert check("download", "--crypto_symbol", "sui-usd").crypto_symbol == "SUI-USD"


def test_preprocess_takes_a_coin_already_downloaded(project):
    (project / "data" / "raw").mkdir(parents=True)
    (project / "data" / "raw" / "SUI-USD.csv").write_text("Date,Close\n")
    assert check("preprocess", "--crypto_symbol", "sui-usd").crypto_symbol == "SUI-USD"
    with pytest.raises(UsageError):
        check("predict", "--crypto_symbol", "SUI-USD")


def test_global_train_takes_no_symbol_and_suggests_per_coin_only_for_a_reported_coin(
    project, capsys
):
    write_params(project, **{"model.scope": "global"})
    line = refused(capsys, "train", "--crypto_symbol", "btc-usd")
    assert "takes no --crypto_symbol" in line and "per_coin to train BTC-USD alone" in line
    p = get_params()
    coin = next(c for c in p["universe"] if c not in p["symbols"])
    line = refused(capsys, "train", "--crypto_symbol", coin)
    # per_coin would refuse it too
    assert "takes no --crypto_symbol" in line and "per_coin" not in line


def test_per_coin_train_takes_the_reported_coins(project, capsys):
    write_params(project, **{"model.scope": "per_coin"})
    assert check("train", "--crypto_symbol", "sol-usd").crypto_symbol == "SOL-USD"
    assert "did you mean SOL-USD?" in refused(capsys, "train", "--crypto_symbol", "SOL-UDS")


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, says",
    [
        (
            ["train", "--epochs", "0"],
            "argument --epochs: invalid value '0': expected an integer >= 1",
        ),
        (["train", "--epochs", "2.5"], "expected an integer >= 1"),
        (["pipeline", "--epochs", "-3"], "expected an integer >= 1"),
        (
            ["train", "--batch_size", "0"],
            "argument --batch_size/--batch-size: invalid value '0': expected an integer >= 1",
        ),
        (["train", "--learning-rate", "0"], "expected a number > 0"),
        (["train", "--learning_rate", "-0.01"], "expected a number > 0"),
        (["train", "--learning_rate", "nan"], "expected a number > 0"),
        (
            ["train", "--resume", "models/BTC-USD/last.keras", "--additional_epochs", "0"],
            "expected an integer >= 1",
        ),
        (
            ["predict", "--forecast_days", "0"],
            "argument --forecast_days/--forecast-days: invalid value '0': expected an integer >= 1",
        ),
        (["predict", "--forecast_days", "ten"], "expected an integer >= 1"),
        (
            ["sweep", "--num_samples", "0"],
            "argument --num_samples/--num-samples: invalid value '0': expected an integer >= 1",
        ),
        (["sweep", "--cpus_per_trial", "0"], "expected a number > 0"),
        (["sweep", "--gpus_per_trial", "-0.5"], "expected a number >= 0"),
    ],
)
def test_each_number_is_refused_outside_its_range_naming_it(
    project, capsys, no_command_runs, argv, says
):
    line = refused(capsys, *argv)
    assert line.startswith(f"cryptovol {argv[0]}: error: ") and says in line, line
    assert no_command_runs == []


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--epochs", "1", "--batch_size", "8", "--learning_rate", "1e-4"],
        ["sweep", "--num_samples", "1", "--cpus_per_trial", "0.5", "--gpus_per_trial", "0"],
        ["predict", "--forecast_days", "1"],
    ],
)
def test_numbers_in_range_are_accepted(project, no_command_runs, argv):
    assert main(argv) == 0 and len(no_command_runs) == 1


def test_forecast_days_beyond_the_models_horizons_is_refused(
    project, capsys, no_command_runs, tmp_path
):
    model = tmp_path / "models" / "BTC-USD"
    model.mkdir(parents=True)
    (model / "features.json").write_text(json.dumps({"forecast_days": 5}))
    line = refused(
        capsys, "predict", "--model_path", str(model / "model.keras"), "--forecast_days", "6"
    )
    assert f"the model in {model} forecasts 1..5 days ahead; ask for 1 to 5 days" in line
    assert main(["predict", "--model_path", str(model), "--forecast_days", "5"]) == 0


def test_forecast_days_without_a_model_uses_what_params_trains(project, capsys, no_command_runs):
    from cryptovol.features import forecast_days

    K = forecast_days(get_params())
    line = refused(capsys, "predict", "--crypto_symbol", "BTC-USD", "--forecast_days", str(K + 1))
    assert f"forecasts 1..{K} days ahead; ask for 1 to {K} days" in line
    assert main(["predict", "--crypto_symbol", "BTC-USD", "--forecast_days", str(K)]) == 0


# --- flag combinations and argparse's own refusals ------------------------------------------


def test_resume_and_additional_epochs_go_together(project, capsys, no_command_runs):
    assert "--resume needs --additional_epochs" in refused(
        capsys, "train", "--resume", "models/BTC-USD/last.keras"
    )
    assert "give it with --resume PATH" in refused(capsys, "train", "--additional_epochs", "5")
    assert no_command_runs == []


def test_argparse_refusals_are_one_line_too(project, capsys):
    assert "invalid choice: 'transformer'" in refused(
        capsys, "train", "--model_type", "transformer"
    )
    assert "one of download, manifest" in refused(capsys)
    assert "unrecognized arguments: --nope" in refused(capsys, "predict", "--nope")
    assert main(["predict", "--help"]) == 0 and "--forecast_days" in capsys.readouterr().out


# --- before any work --------------------------------------------------------------------------

PROBE = """
import sys, time
from cryptovol.cli import main
t0 = time.time()
status = main(sys.argv[1:])
print(status, round(time.time() - t0, 3), "tensorflow" in sys.modules, "keras" in sys.modules)
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "--crypto_symbol", "nope"],
        ["train", "--epochs", "0"],
        ["predict", "--forecast_days", "999"],
        ["evaluate", "--crypto_symbol", "BTC-UDS"],
        ["download", "--crypto_symbol", "NOPE-USD"],
    ],
)
def test_bad_argument_fails_fast_without_tensorflow(project, argv):
    env = {**os.environ, "CRYPTOVOL_ROOT": str(project)}
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, "-m", "cryptovol", *argv],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=60,
    )
    wall = time.time() - t0
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert (
        r.returncode == 1
        and len(lines) == 1
        and lines[0].startswith(f"cryptovol {argv[0]}: error:")
    ), r.stderr
    assert wall < 10, f"{argv} took {wall:.1f} s to be refused"
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=60,
    )
    status, seconds, tf, keras = r.stdout.split()
    assert (status, tf, keras) == ("1", "False", "False"), r.stdout + r.stderr
    assert float(seconds) < 5, seconds
