"""Market data stays out of git; it comes from $CRYPTOVOL_DATA_DIR, else data.mirror_dir, else the
live services.

When none of them can deliver, every command stops in one line naming the three ways. DVC sees the
data through data/manifest/ (one record per mirror file), so replacing a file re-runs exactly its
stages.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml
import yfinance as yf

from cryptovol import data
from cryptovol.config import ConfigError, load_params, mirror_dir, reset_params

REPO = Path(__file__).resolve().parents[1]
BESIDE = (REPO.parent / "shared" / "data").resolve()
MARKET_DATA = (
    ".csv",
    ".json",
    ".parquet",
    ".feather",
    ".gz",
    ".zip",
    ".pkl",
    ".pickle",
    ".h5",
    ".xlsx",
)
DEAD_PROXY = {
    v: "http://127.0.0.1:9"
    for v in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")
}
THREE_WAYS = ("CRYPTOVOL_DATA_DIR", "data.mirror_dir", "network")


def _git(*args) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def git_checkout():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to check in git")


def test_git_tracks_no_market_data(git_checkout):
    "No price, index or bar file is tracked anywhere (fixtures are built by the tests themselves)."
    tracked = [f for f in _git("ls-files").splitlines() if f.lower().endswith(MARKET_DATA)]
    assert tracked == [], (
        f"git tracks data files {tracked[:5]}: market data belongs in the mirror, never in "
        "git (git rm --cached them)"
    )
    under_data = _git("ls-files", "data").split()
    assert set(under_data) <= {"data/.gitkeep", "data/README.md"}, under_data


@pytest.mark.parametrize(
    "path",
    [
        "data/BTC-USD.csv",
        "data/raw/BTC-USD.csv",
        "data/snapshot/yahoo/ETH-USD.csv",
        "data/sentiment/fear_greed.json",
        "data/intraday/binance/BTCUSDT-1h.csv.gz",
        "data/x/bars.parquet",
        "data/x/bars.feather",
        "data/manifest/yahoo/BTC-USD.json",
    ],
)
def test_gitignore_covers_market_data_anywhere_under_data(git_checkout, path):
    r = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO)
    assert r.returncode == 0, f"{path} is not git-ignored: add it to .gitignore's market-data rules"


def test_default_mirror_is_the_folder_beside_the_checkout(monkeypatch):
    if not BESIDE.is_dir():
        pytest.skip(f"no offline mirror beside the checkout ({BESIDE}): nothing to find there")
    monkeypatch.delenv("CRYPTOVOL_DATA_DIR", raising=False)
    monkeypatch.delenv("CRYPTOVOL_ROOT", raising=False)
    monkeypatch.chdir(REPO)
    reset_params()
    try:
        p = load_params(REPO / "params.yaml")
        assert (p["data"]["source"], p["data"]["mirror_dir"]) == ("auto", "../shared/data")
        assert mirror_dir(p) == BESIDE
        btc = data.load_prices("BTC-USD", params=p)
        assert (btc.index[0], btc.index[-1]) == (
            pd.Timestamp("2014-09-17"),
            pd.Timestamp("2024-12-07"),
        )
    finally:
        reset_params()


def test_throwaway_root_finds_the_mirror_beside_the_checkout(tmp_path, monkeypatch):
    """A project root holding only params.yaml resolves ../shared/data against the checkout the
    package runs from."""
    if not BESIDE.is_dir():
        pytest.skip(f"no offline mirror beside the checkout ({BESIDE})")
    shutil.copy(REPO / "params.yaml", tmp_path)
    shutil.copy(REPO / "settings.ini", tmp_path)
    monkeypatch.setenv("CRYPTOVOL_ROOT", str(tmp_path))
    monkeypatch.delenv("CRYPTOVOL_DATA_DIR", raising=False)
    reset_params()
    try:
        assert mirror_dir() == BESIDE
    finally:
        reset_params()


def test_environment_variable_wins_and_a_wrong_one_is_an_error(monkeypatch, tmp_path, mirror):
    p = load_params(REPO / "params.yaml")
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    assert mirror_dir(p) == mirror
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="is not a folder"):
        mirror_dir(p)
    monkeypatch.delenv("CRYPTOVOL_DATA_DIR")
    p["data"]["mirror_dir"] = str(tmp_path / "nowhere")
    assert mirror_dir(p) is None  # a missing mirror_dir folder: the live services come next


def _project(tmp_path, **data_keys) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["data"].update(data_keys)
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    shutil.copy(REPO / "settings.ini", root)
    return root


def _offline_run(root: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CRYPTOVOL_DATA_DIR", "NO_PROXY", "no_proxy")
    } | DEAD_PROXY
    env["CRYPTOVOL_ROOT"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "cryptovol", *argv],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["download", "--crypto_symbol", "BTC-USD"],
        ["download", "--sentiment"],
        ["download"],
        ["pipeline", "--crypto_symbol", "BTC-USD"],
    ],
)
def test_no_data_anywhere_stops_in_one_line_naming_the_three_ways(tmp_path, argv):
    """No env var, no mirror folder, no network: exit 1 and one line on stderr naming all three
    ways; nothing half-written."""
    root = _project(tmp_path, mirror_dir="../no-such-mirror")
    r = _offline_run(root, *argv)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith(f"cryptovol {argv[0]}: error:"), lines[0]
    assert all(w in lines[0] for w in THREE_WAYS) and "../no-such-mirror" in lines[0], lines[0]
    assert (
        not any((root / "data" / "raw").glob("*.csv")) if (root / "data" / "raw").exists() else True
    )


@pytest.mark.parametrize(
    "argv",
    [["download", "--live", "--crypto_symbol", "BTC-USD"], ["download", "--live", "--sentiment"]],
)
def test_live_on_demand_offline_fails_in_one_line(tmp_path, argv, mirror):
    """--live with every connection refused: one line naming the three ways, even though a mirror
    exists."""
    root = _project(tmp_path, mirror_dir=str(mirror))
    r = _offline_run(root, *argv)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr[-3000:]
    assert ("Yahoo Finance" in lines[0] or "Fear & Greed" in lines[0]) and all(
        w in lines[0] for w in THREE_WAYS
    ), lines[0]


def test_manifest_records_the_mirror_files(project, mirror):
    recs = data.write_manifests(["BTC-USD", "ETH-USD"])
    assert list(recs) == ["yahoo/BTC-USD.csv", "yahoo/ETH-USD.csv", "sentiment/fear_greed.json"]
    import hashlib

    for rel, rec in recs.items():
        assert (
            rec["sha256"] == hashlib.sha256((mirror / rel).read_bytes()).hexdigest()
            and rec["last"] == "2024-12-07"
        )
        on_disk = json.loads(
            (project / "data" / "manifest" / Path(rel).with_suffix(".json")).read_text()
        )
        assert on_disk == rec and str(mirror) not in json.dumps(on_disk)  # no machine-specific path
    assert recs["yahoo/BTC-USD.csv"]["rows"] == len(pd.read_csv(mirror / "yahoo" / "BTC-USD.csv"))


def test_live_manifest_changes_once_a_day(project):
    live = data.live_params()
    a = data.source_manifest("BTC-USD", live, today="2024-12-08")
    assert (
        a
        == data.source_manifest("BTC-USD", live, today="2024-12-08")
        != data.source_manifest("BTC-USD", live, today="2024-12-09")
    )
    assert (
        data.source_manifest(None, live, today="2024-12-08")["service"] == live["data"]["fng_url"]
    )


def test_readme_names_the_data_its_tables_were_made_from(project, mirror):
    """README's data table is manifest_table() of the mirror: a user with another copy sees whether
    theirs is the same."""
    p = load_params()
    recs = {f"yahoo/{s}.csv": data.source_manifest(s, p) for s in p["universe"]}
    recs["sentiment/fear_greed.json"] = data.source_manifest(None, p)
    table = data.manifest_table(recs)
    assert table in (REPO / "README.md").read_text(), (
        f"README's data table differs from the data in {mirror}: either the data is another "
        f"copy, or re-paste `cryptovol manifest`:\n{table}"
    )


def _dvc(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "CRYPTOVOL_ROOT": str(root),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    r = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_replacing_a_mirror_file_reruns_exactly_its_download(tmp_path, mirror, monkeypatch):
    """dvc repro twice on a copy of the mirror: nothing re-runs; then one coin's file changes: only
    that coin's download re-runs."""
    if shutil.which("dvc", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("dvc is not installed beside this Python")
    copy = tmp_path / "mirror"
    shutil.copytree(mirror, copy, ignore=shutil.ignore_patterns("intraday"))
    root = tmp_path / "proj"
    root.mkdir()
    for f in ("params.yaml", "settings.ini", "dvc.yaml"):
        shutil.copy(REPO / f, root)
    (root / "cryptovol").symlink_to(REPO / "cryptovol")
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(copy))
    _dvc(root, "init", "--no-scm", "-q")
    targets = ["download@BTC-USD", "download@ETH-USD", "sentiment"]
    first = _dvc(root, "repro", *targets)
    assert (
        "Running stage 'download@BTC-USD'" in first and "Running stage 'download@ETH-USD'" in first
    )
    again = _dvc(root, "repro", *targets)
    assert "Running stage 'download@" not in again and "Running stage 'sentiment'" not in again, (
        again
    )
    eth = copy / "yahoo" / "ETH-USD.csv"
    # another copy of the data: one day shorter
    eth.write_text("\n".join(eth.read_text().splitlines()[:-1]) + "\n")
    third = _dvc(root, "repro", *targets)
    assert "Running stage 'download@ETH-USD'" in third, third
    assert (
        "Running stage 'download@BTC-USD'" not in third and "Running stage 'sentiment'" not in third
    ), third


@pytest.fixture
def cached_project(project, monkeypatch):
    """A throw-away root whose data/raw cache holds the mirror's BTC-USD and Fear & Greed (as after
    `make run`)."""
    data.cache_prices("BTC-USD")
    data.cache_fear_greed()
    monkeypatch.setattr(data.time, "sleep", lambda s: None)
    return project


def _warnings(name):
    msgs = []

    class H(logging.Handler):
        def emit(self, record):
            msgs.append(record.getMessage())

    logging.getLogger(name).addHandler(h := H(logging.WARNING))
    return msgs, lambda: logging.getLogger(name).removeHandler(h)


def test_predict_live_offline_falls_back_to_the_cache_in_one_line(cached_project, monkeypatch):
    from cryptovol.predict import forecast_inputs

    monkeypatch.setattr(
        yf.Ticker,
        "history",
        lambda self, **kw: (_ for _ in ()).throw(ConnectionError("Could not resolve host")),
    )
    msgs, done = _warnings("cryptovol")
    try:
        prices, fng, where = forecast_inputs("BTC-USD", load_params(), live=True)
    finally:
        done()
    assert (
        len(msgs) == 1
        and "live refresh failed" in msgs[0]
        and all(w in msgs[0] for w in THREE_WAYS)
    ), msgs
    assert (
        where.startswith("cache")
        and prices.index[-1] == pd.Timestamp("2024-12-07")
        and fng.index[-1] == pd.Timestamp("2024-12-07")
    )


def test_predict_live_merges_fresh_data_before_forecasting(cached_project, monkeypatch, mirror):
    """Mocked live services: the newer days are merged into data/raw/ (history kept) and used for
    the forecast inputs."""
    from cryptovol.predict import forecast_inputs

    full = pd.read_csv(mirror / "yahoo" / "BTC-USD.csv", index_col="Date")
    full.index = pd.to_datetime(full.index)
    newer = full.iloc[-5:].copy()
    newer.index = newer.index + pd.Timedelta(days=5)
    monkeypatch.setattr(yf.Ticker, "history", lambda self, **kw: pd.concat([full, newer]))
    payload = yaml.safe_load((mirror / "sentiment" / "fear_greed.json").read_text())
    latest = dict(payload["data"][0])
    latest["timestamp"] = str(int(latest["timestamp"]) + 5 * 86400)
    live_fng = dict(payload, data=[latest] + payload["data"])

    class Resp:
        def raise_for_status(self):
            pass

        def json(self):
            return live_fng

    monkeypatch.setattr(requests, "get", lambda url, timeout=None, **kw: Resp())
    prices, fng, where = forecast_inputs("BTC-USD", load_params(), live=True)
    assert prices.index[-1] == pd.Timestamp("2024-12-12") and len(prices) == len(full) + 5
    assert fng.index[-1] == pd.Timestamp("2024-12-12")
    cached = data.read_cached_prices("BTC-USD")
    assert cached.index[0] == pd.Timestamp("2014-09-17") and cached.index[-1] == pd.Timestamp(
        "2024-12-12"
    )
