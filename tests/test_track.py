"""The forecast log (cryptovol.track): idempotent, append-only, failure-safe, verified on open,
equal to the walk-forward engine, scored by hand; the live path against mocked services; the
dashboard in Chromium.

Real data from the offline mirror; a few coins, a few days and the cheap forecasters keep it fast.
"""

import os, shutil, sqlite3, subprocess, sys

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import require_data

require_data()

from cryptovol import track  # noqa: E402
from cryptovol.config import DataSourceError, get_params, reset_params  # noqa: E402

CHEAP = ["naive", "ewma", "har"]


def _set(root, **track_keys):
    "params.yaml of the project with `track` keys (and `symbols`) replaced."
    p = yaml.safe_load((root / "params.yaml").read_text())
    if "symbols" in track_keys:
        p["symbols"] = track_keys.pop("symbols")
    p["track"].update({"model": "off", "workers": 1, **track_keys})
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    reset_params()
    return get_params()


@pytest.fixture
def small(project):
    "One coin, the cheap forecasters, no network model."
    return project, _set(project, symbols=["BTC-USD"], forecasters=CHEAP)


def _replay(params, path, start="2024-06-01", end="2024-06-03", **kw):
    return track.replay(start, end, params, path, progress=False, models=kw.pop("models", {}), **kw)


def test_two_runs_the_same_day_give_one_set(small):
    root, p = small
    path = root / "data" / "track" / "replay.sqlite"
    first = _replay(p, path)
    assert first["written"] == 3 and first["forecasts"] == 9
    again = _replay(p, path)
    assert again["written"] == 0 and again["noop"] == 3
    frame = track.log(path)
    assert (
        len(frame) == 9
        and not frame.duplicated(["forecast_date", "coin", "forecaster", "horizon"]).any()
    )
    with pytest.raises(track.TrackLogError, match="backfill"):
        _replay(p, path, "2024-05-30", "2024-05-30")


def test_stored_forecasts_cannot_be_changed(small):
    root, p = small
    path = root / "log.sqlite"
    _replay(p, path)
    con = sqlite3.connect(path)
    for sql in (
        "UPDATE forecasts SET point = 1.0",
        "DELETE FROM forecasts WHERE id = 1",
        "UPDATE runs SET run_date = '2000-01-01'",
        "DELETE FROM runs",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)
    con.close()
    assert len(track.log(path)) == 9


def test_a_crash_before_the_index_leaves_the_file_identical(small, monkeypatch):
    root, p = small
    path = root / "log.sqlite"
    _replay(p, path, end="2024-06-02")
    before = path.read_bytes()

    def crash(*a, **k):
        raise RuntimeError("simulated crash after the forecasts, before the index")

    monkeypatch.setattr(track, "_insert_index", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _replay(p, path, "2024-06-03", "2024-06-03")
    assert path.read_bytes() == before
    monkeypatch.undo()
    assert track.log(path).forecast_date.max() == pd.Timestamp("2024-06-02")


def test_a_killed_process_mid_write_is_rolled_back(small):
    """The process dies (os._exit) between the forecasts and the index: the next open rolls the
    journal back."""
    root, p = small
    path = root / "log.sqlite"
    _replay(p, path, end="2024-06-02")
    before = path.read_bytes()
    code = (
        "import os, cryptovol.track as t\n"
        "t._insert_index = lambda *a, **k: os._exit(3)\n"
        "from cryptovol.config import get_params\n"
        f"t.replay('2024-06-03', '2024-06-03', get_params(), {str(path)!r}, models={{}}, "
        "progress=False)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=os.environ.copy(), capture_output=True, timeout=300
    )
    assert r.returncode == 3, r.stderr.decode()[-2000:]
    track.open_log(path).close()  # verified; a hot journal is rolled back here
    # (a leftover journal without a committed header is ignored by SQLite)
    assert path.read_bytes() == before
    # and the day can be run again
    assert _replay(p, path, "2024-06-03", "2024-06-03")["written"] == 1


def test_a_failed_first_run_creates_no_file(small, monkeypatch):
    root, p = small
    path = root / "new.sqlite"
    monkeypatch.setattr(
        track, "_insert_index", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))
    )
    with pytest.raises(RuntimeError):
        _replay(p, path, end="2024-06-01")
    assert not path.exists() and not list(root.glob(".new.*"))


def _edited(path, sql):
    con = sqlite3.connect(path)
    con.executescript("DROP TRIGGER forecasts_no_update; DROP TRIGGER forecasts_no_delete;" + sql)
    con.close()


@pytest.mark.parametrize("how", ["value", "tail", "truncated", "garbage"])
def test_an_edited_or_truncated_log_is_refused_and_kept(small, how):
    root, p = small
    good = root / "good.sqlite"
    _replay(p, good)
    bad = root / "bad.sqlite"
    shutil.copy(good, bad)
    if how == "value":
        _edited(bad, "UPDATE forecasts SET point = point * 0.9 WHERE id = 2;")
    if how == "tail":
        _edited(bad, "DELETE FROM forecasts WHERE id = (SELECT MAX(id) FROM forecasts);")
    if how == "truncated":
        bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    if how == "garbage":
        bad.write_bytes(b"not a database" * 100)
    kept = bad.read_bytes()
    with pytest.raises(track.TrackLogError) as e:
        track.log(bad)
    msg = str(e.value)
    assert str(bad) in msg and "move it aside" in msg and "\n" not in msg
    with pytest.raises(track.TrackLogError):
        _replay(p, bad, "2024-06-04", "2024-06-04")
    assert bad.read_bytes() == kept  # refused, never changed


def test_replay_equals_walk_forward(project):
    from cryptovol.forecasters import Origin, walk_forward

    # the pooled ones (the panel log-HAR, rv_ridge) fit on every universe coin's measures
    names = ["naive", "ewma", "garch", "har", "har_log", "rv_har", "rv_log_har_pool", "rv_ridge"]
    p = _set(project, symbols=["BTC-USD", "ETH-USD"], forecasters=names)
    assert track.needs_universe(p)
    inputs = track.mirror_inputs(p["symbols"], p)
    assert all(sorted(i.universe) == sorted(p["universe"]) for i in inputs.values())
    path = project / "log.sqlite"
    _replay(p, path, "2024-06-01", "2024-06-04", inputs=inputs)
    frame = track.log(path)
    for coin in inputs:
        assert sorted(frame[frame.coin == coin].forecaster.unique()) == sorted(names)
    days = pd.date_range("2024-06-01", "2024-06-04")
    for coin, inp in inputs.items():
        data = inp.coin_data(7)  # all the mirror's data: the engine's fits read only what was known
        rec = walk_forward(
            track.track_forecasters(p),
            data,
            [Origin(i, track.fit_until(d), pd.DatetimeIndex([d])) for i, d in enumerate(days)],
        )
        for name, fc in rec.forecasts.items():
            got = frame[(frame.coin == coin) & (frame.forecaster == name)].set_index(
                "forecast_date"
            )
            assert list(got.index) == list(days)
            np.testing.assert_allclose(got.point, fc.vol.reindex(got.index), rtol=1e-12)
            np.testing.assert_allclose(got.mean_vol, fc.mean_vol().reindex(got.index), rtol=1e-12)
            lo, hi = fc.interval(0.8)
            np.testing.assert_allclose(got.lo80, lo.reindex(got.index), rtol=1e-12)
            np.testing.assert_allclose(got.hi80, hi.reindex(got.index), rtol=1e-12)


def test_scores_of_matured_forecasts_by_hand(small):
    from cryptovol.forecasters import forward_realized_vol_from_returns

    root, p = small
    path = root / "log.sqlite"
    _replay(p, path, "2024-06-01", "2024-06-25")
    frame = track.log(path)
    r = track.mirror_inputs(["BTC-USD"], p)["BTC-USD"].returns()
    target = forward_realized_vol_from_returns(r, 7)
    matured = frame[frame.realized.notna()]
    # 2024-06-18 + 7 = the last day
    assert set(matured.forecast_date) == set(pd.date_range("2024-06-01", "2024-06-18"))
    np.testing.assert_allclose(
        matured.realized, target.reindex(matured.forecast_date).to_numpy(), rtol=1e-12
    )
    sc = track.scores(frame, min_dm_days=10).set_index("forecaster")
    for name in CHEAP:
        g = matured[matured.forecaster == name]
        a, f = g.realized.to_numpy(), g.point.to_numpy()
        qlike = np.mean(a**2 / f**2 - np.log(a**2 / f**2) - 1)
        assert sc.loc[name, "qlike"] == pytest.approx(qlike, rel=1e-12)
        assert sc.loc[name, "se"] == pytest.approx(np.mean((g.mean_vol - a) ** 2), rel=1e-12)
        assert sc.loc[name, "cov80"] == pytest.approx(np.mean((g.lo80 <= a) & (a <= g.hi80)))
        assert sc.loc[name, "cov95"] == pytest.approx(np.mean((g.lo95 <= a) & (a <= g.hi95)))
        assert sc.loc[name, "matured"] == 18
    assert np.isfinite(sc.loc["naive", "dm_p"]) and np.isnan(sc.loc["har", "dm_p"])
    assert np.isnan(
        track.scores(frame, min_dm_days=30).set_index("forecaster").loc["naive", "dm_p"]
    )


class StubModel:
    """A shipped model's stand-in: horizons 1..K of a log-normal law (the real one: ShippedModel,
    nbs/17_track)."""

    sha256, cadence = "f" * 64, "as shipped (stub)"

    def forecast(self, inp, days):
        v = float(np.sqrt(365 / 30 * (inp.returns().iloc[-30:] ** 2).sum()))
        k = np.arange(1, days + 1)
        return pd.DataFrame(
            {
                "horizon": k,
                "point": v,
                "mean_vol": v * 0.97,
                "lo80": v * 0.6,
                "hi80": v * 1.5,
                "lo95": v * 0.45,
                "hi95": v * 2.0,
            }
        )


def test_the_network_logs_every_horizon(small):
    root, p = small
    path = root / "log.sqlite"
    _replay(p, path, models={"BTC-USD": StubModel()})
    m = track.log(path, forecaster="model")
    assert sorted(m.horizon.unique()) == list(range(1, p["predict"]["forecast_days"] + 1))
    assert (m.model_sha256 == "f" * 64).all() and (m.cadence == "as shipped (stub)").all()
    c = track.log(path, forecaster="har")
    assert (c.cadence == "refit every 1 day(s)").all() and c.fit_until.eq(
        c.forecast_date - pd.Timedelta(days=1)
    ).all()
    assert (
        c.data_sha256.nunique() == 3
        and c.last_close.gt(0).all()
        and c.git_commit.str.len().gt(6).all()
    )


def _fake_download(until):
    "cache_prices as if the live service answered with the mirror's rows up to `until`."
    from cryptovol.data import _write_csv, load_prices
    from cryptovol.config import raw_prices_path

    def fake(symbol, params=None):
        prices = load_prices(symbol, source="mirror").loc[:until]
        return _write_csv(prices, raw_prices_path(symbol))

    return fake


def test_live_run_then_a_failed_download_leaves_the_log_untouched(small, monkeypatch, capsys):
    import cryptovol.data as D
    from cryptovol.cli import main

    root, p = small
    path = track.log_path()
    # today's forming bar included
    monkeypatch.setattr(D, "cache_prices", _fake_download("2024-06-04"))
    res = track.run_live(p, today="2024-06-04")
    assert res["status"] == "written" and res["day"] == "2024-06-03" and res["forecasts"] == 3
    assert track.run_live(p, today="2024-06-04")["status"] == "noop"
    assert track.log().forecast_date.max() == pd.Timestamp("2024-06-03")
    before = path.read_bytes()

    def offline(symbol, params=None):
        raise DataSourceError(f"{symbol}: Yahoo Finance unreachable (no network)")

    monkeypatch.setattr(D, "cache_prices", offline)
    with pytest.raises(track.TrackRunError, match="unchanged"):
        track.run_live(p, today="2024-06-05")
    capsys.readouterr()
    assert main(["track", "--no_page"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unchanged" in err and "unreachable" in err
    assert path.read_bytes() == before


def test_live_refuses_a_day_without_its_close(small, monkeypatch):
    import cryptovol.data as D

    _, p = small
    monkeypatch.setattr(D, "cache_prices", _fake_download("2024-06-02"))
    with pytest.raises(track.TrackRunError, match="no daily bar yet"):
        track.run_live(p, today="2024-06-04")
    assert not track.log_path().exists()


def test_cli_checks_the_replay_range(small, capsys):
    from cryptovol.cli import main

    for bad, says in (
        ("2024-06-10:2024-06-01", "after END"),
        ("2024-06-01", "START:END"),
        ("2024-06-01:2025-01-01", "mirror prices run"),
        ("2024-02-30:2024-03-01", "calendar date"),
    ):
        assert main(["track", "--replay", bad]) == 1
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err


def test_cli_replay_writes_log_scores_and_page(small, capsys):
    from cryptovol.cli import main

    root, _ = small
    assert main(["track", "--replay", "2024-06-01:2024-06-10"]) == 0
    out = capsys.readouterr().out
    assert "10 days written" in out and "page ->" in out
    assert (root / "data" / "track" / "replay.sqlite").is_file() and (
        root / "reports" / "track.html"
    ).is_file()


CHROMIUM = os.environ.get("CRYPTOVOL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def test_dashboard_in_headless_chromium(small):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: `pip install -e .[dev]`")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: `make browser`")
    root, p = small
    path = root / "log.sqlite"
    _replay(p, path, "2024-06-01", "2024-07-15", models={"BTC-USD": StubModel()})
    page_path = track.dashboard(path, root / "reports" / "track.html", p, today="2024-07-17")
    errors, requests = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri())
            page.wait_for_timeout(500)
            plots = page.locator(".plotly-graph-div").count()
            text = page.inner_text("body")
        finally:
            browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    assert plots == 3 and "Live track record" in text and "replay" in text
    assert "model" in text and "har" in text and "age (days)" in text


def test_pooled_forecasters_read_the_universe_cut_at_the_day(project):
    """A pooled forecaster in track.forecasters loads every universe coin's measures; `until` cuts
    them all at the day, and the logged data hash covers them."""
    p = _set(project, symbols=["BTC-USD"], forecasters=["har", "rv_log_har_pool"])
    inp = track.mirror_inputs(p["symbols"], p)["BTC-USD"].until("2024-06-01")
    assert sorted(inp.universe) == sorted(p["universe"])
    assert all(m.index.max() == pd.Timestamp("2024-06-01") for m in inp.universe.values())
    assert inp.measures.equals(inp.universe["BTC-USD"])
    shifted = {**inp.universe, "ETH-USD": inp.universe["ETH-USD"] * 1.01}
    assert track.CoinInputs("BTC-USD", inp.prices, inp.measures, None, shifted).sha256() != (
        inp.sha256()
    )
    cheap = _set(project, forecasters=CHEAP)
    assert not track.needs_universe(cheap)
    assert track.mirror_inputs(["BTC-USD"], cheap)["BTC-USD"].universe is None


def test_live_inputs_refresh_every_universe_coin_for_a_pooled_forecaster(project, monkeypatch):
    """Live, a pooled forecaster in track.forecasters makes the run merge the hourly bars of every
    `universe` coin (here from a fake exchange that answers with the mirror's bars), not only of
    `symbols`; everything is cut at the close of the day."""
    import cryptovol.data as D
    import cryptovol.intraday as I

    p = _set(project, symbols=["BTC-USD"], forecasters=["har", "rv_log_har_pool"])
    refreshed = []

    def fake_hourly(symbol, params=None, source=None, **kw):
        assert source == "live"
        refreshed.append(symbol)
        bars = I.load_hourly_bars(symbol, source="mirror", params=p).loc[:"2024-06-03"]
        return I.write_hourly_csv(bars, I.hourly_cache_path(symbol))

    monkeypatch.setattr(D, "cache_prices", _fake_download("2024-06-03"))
    monkeypatch.setattr(I, "cache_hourly", fake_hourly)
    inp = track.live_inputs(p["symbols"], p, "2024-06-02")["BTC-USD"]
    assert sorted(refreshed) == sorted(p["universe"])
    assert sorted(inp.universe) == sorted(p["universe"]) and inp.last_date == pd.Timestamp(
        "2024-06-02"
    )
    assert all(m.index.max() == pd.Timestamp("2024-06-02") for m in inp.universe.values())
    assert inp.measures.equals(inp.universe["BTC-USD"])
