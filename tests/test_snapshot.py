"""The data snapshot shipped in data/snapshot is the default source; live data only on demand, one line when offline."""
import hashlib
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
from cryptovol.config import load_params, mirror_dir, reset_params

REPO = Path(__file__).resolve().parents[1]
SNAP = REPO/"data"/"snapshot"
DEAD_PROXY = {v: "http://127.0.0.1:9" for v in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")}


def test_snapshot_files_match_their_checksums():
    sums = [l.split(maxsplit=1) for l in (SNAP/"SHA256SUMS").read_text().splitlines() if l.strip()]
    assert len(sums) == 15  # 14 coins + the Fear & Greed JSON
    for digest, name in sums:
        assert hashlib.sha256((SNAP/name.strip()).read_bytes()).hexdigest() == digest, f"data/snapshot/{name} changed"
    assert (SNAP/"README.md").is_file()


def test_snapshot_is_committed_not_ignored():
    if not (REPO/".git").exists(): pytest.skip("not a git checkout")
    for f in ("yahoo/BTC-USD.csv", "sentiment/fear_greed.json"):
        r = subprocess.run(["git", "check-ignore", "-q", f"data/snapshot/{f}"], cwd=REPO)
        assert r.returncode == 1, f"data/snapshot/{f} is git-ignored: a fresh clone would not have it"
    tracked = subprocess.run(["git", "ls-files", "data/snapshot"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert "data/snapshot/yahoo/BTC-USD.csv" in tracked and "data/snapshot/sentiment/fear_greed.json" in tracked


def test_every_default_coin_is_in_the_snapshot():
    for s in load_params(REPO/"params.yaml")["symbols"]:
        assert (SNAP/"yahoo"/f"{s}.csv").is_file(), f"{s} is in params.yaml symbols but not in data/snapshot/yahoo"


def test_default_source_is_the_snapshot(monkeypatch):
    "No environment variable: the project reads data/snapshot, and the env var still overrides it."
    monkeypatch.delenv("CRYPTOVOL_DATA_DIR", raising=False)
    monkeypatch.delenv("CRYPTOVOL_ROOT", raising=False)
    monkeypatch.chdir(REPO)
    reset_params()
    try:
        p = load_params(REPO/"params.yaml")
        assert p["data"]["source"] == "auto" and mirror_dir(p) == SNAP
        btc = data.load_prices("BTC-USD", params=p)
        assert (btc.index[0], btc.index[-1]) == (pd.Timestamp("2014-09-17"), pd.Timestamp("2024-12-07"))
        fng = data.load_fear_greed(params=p)
        assert fng.index[-1] == pd.Timestamp("2024-12-07")
        monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(REPO/"nbs"))
        assert mirror_dir(p) == REPO/"nbs"
    finally:
        reset_params()


def test_throwaway_root_still_finds_the_snapshot(tmp_path, monkeypatch):
    "A project root holding only a copy of params.yaml resolves data/snapshot in the checkout the package runs from."
    shutil.copy(REPO/"params.yaml", tmp_path); shutil.copy(REPO/"settings.ini", tmp_path)
    monkeypatch.setenv("CRYPTOVOL_ROOT", str(tmp_path)); monkeypatch.delenv("CRYPTOVOL_DATA_DIR", raising=False)
    reset_params()
    try: assert mirror_dir() == SNAP
    finally: reset_params()


def _yfinance_project(tmp_path, source="yfinance") -> Path:
    root = tmp_path/"proj"; root.mkdir()
    p = yaml.safe_load((REPO/"params.yaml").read_text()); p["data"]["source"] = source
    (root/"params.yaml").write_text(yaml.safe_dump(p, sort_keys=False)); shutil.copy(REPO/"settings.ini", root)
    return root


@pytest.mark.parametrize("source,argv", [("yfinance", ["download"]), ("yfinance", ["download", "--crypto_symbol", "ETH-USD"]),
                                         ("yfinance", ["pipeline", "--crypto_symbol", "BTC-USD"]),
                                         ("auto", ["download", "--live", "--crypto_symbol", "BTC-USD"])])
def test_offline_live_source_fails_in_one_line_naming_the_default(tmp_path, source, argv):
    "data.source: yfinance (or --live) with every connection refused: exit 1, one line on stderr naming the offline default."
    root = _yfinance_project(tmp_path, source)
    env = {k: v for k, v in os.environ.items() if k not in ("CRYPTOVOL_DATA_DIR", "NO_PROXY", "no_proxy")} | DEAD_PROXY
    env["CRYPTOVOL_ROOT"] = str(root)
    r = subprocess.run([sys.executable, "-m", "cryptovol", *argv], capture_output=True, text=True, cwd=root, env=env, timeout=120)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith(f"cryptovol {argv[0]}: error:") and ("Yahoo Finance" in lines[0] or "Fear & Greed" in lines[0])
    assert "data.source: auto" in lines[0] and "data/snapshot" in lines[0], lines[0]
    assert not (root/"data"/"raw").exists() or not any((root/"data"/"raw").glob("*.csv"))  # nothing half-written


@pytest.fixture
def cached_project(project, monkeypatch):
    "A throw-away root whose data/raw cache holds the snapshot's BTC-USD and Fear & Greed (as after `make run`)."
    data.cache_prices("BTC-USD"); data.cache_fear_greed()
    monkeypatch.setattr(data.time, "sleep", lambda s: None)
    return project


def _warnings(name):
    msgs = []

    class H(logging.Handler):
        def emit(self, record): msgs.append(record.getMessage())
    logging.getLogger(name).addHandler(h := H(logging.WARNING))
    return msgs, lambda: logging.getLogger(name).removeHandler(h)


def test_predict_live_offline_falls_back_to_the_cache_in_one_line(cached_project, monkeypatch):
    from cryptovol.predict import forecast_inputs
    monkeypatch.setattr(yf.Ticker, "history", lambda self, **kw: (_ for _ in ()).throw(ConnectionError("Could not resolve host")))
    p = load_params()
    msgs, done = _warnings("cryptovol")
    try: prices, fng, where = forecast_inputs("BTC-USD", p, live=True)
    finally: done()
    assert len(msgs) == 1 and "live refresh failed" in msgs[0] and "data/snapshot" in msgs[0], msgs
    assert where.startswith("cache") and prices.index[-1] == pd.Timestamp("2024-12-07") and fng.index[-1] == pd.Timestamp("2024-12-07")


def test_predict_live_merges_fresh_data_before_forecasting(cached_project, monkeypatch, mirror):
    "Mocked live services: the newer days are merged into data/raw/ (history kept) and used for the forecast inputs."
    from cryptovol.predict import forecast_inputs
    full = pd.read_csv(mirror/"yahoo"/"BTC-USD.csv", index_col="Date"); full.index = pd.to_datetime(full.index)
    newer = full.iloc[-5:].copy(); newer.index = newer.index + pd.Timedelta(days=5)
    monkeypatch.setattr(yf.Ticker, "history", lambda self, **kw: pd.concat([full, newer]))
    payload = yaml.safe_load((mirror/"sentiment"/"fear_greed.json").read_text())
    latest = dict(payload["data"][0]); latest["timestamp"] = str(int(latest["timestamp"]) + 5 * 86400)
    live_fng = dict(payload, data=[latest] + payload["data"])

    class Resp:
        def raise_for_status(self): pass
        def json(self): return live_fng
    monkeypatch.setattr(requests, "get", lambda url, timeout=None, **kw: Resp())
    prices, fng, where = forecast_inputs("BTC-USD", load_params(), live=True)
    assert prices.index[-1] == pd.Timestamp("2024-12-12") and len(prices) == len(full) + 5
    assert fng.index[-1] == pd.Timestamp("2024-12-12")
    cached = data.read_cached_prices("BTC-USD")
    assert cached.index[0] == pd.Timestamp("2014-09-17") and cached.index[-1] == pd.Timestamp("2024-12-12")
