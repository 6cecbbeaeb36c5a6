"""Tests for cryptovol.data: real files from the offline mirror (CRYPTOVOL_DATA_DIR), mocks for
every network call.

Bad-input fixtures are small corrupted copies of the real BTC-USD file written into tmp_path;
nothing synthetic is ever served as prices outside these tests.
"""

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import yfinance as yf

from cryptovol import data
from cryptovol.config import DataError, DataSourceError, load_params, reset_params
from cryptovol.data import (
    PRICE_COLUMNS,
    cache_fear_greed,
    cache_prices,
    load_fear_greed,
    load_prices,
    merge_new_rows,
    min_history_days,
    parse_fear_greed,
    read_cached_fear_greed,
    read_cached_prices,
    validate_prices,
)

REPO = Path(__file__).resolve().parents[1]
from conftest import require_data  # noqa: E402

MIRROR = require_data()  # the offline mirror; without one this module skips with the reason
BTC_CSV = MIRROR / "yahoo" / "BTC-USD.csv"
FNG_JSON = MIRROR / "sentiment" / "fear_greed.json"
COINS = sorted(p.stem for p in (MIRROR / "yahoo").glob("*.csv"))
HEADER = "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits"


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def params():
    return load_params(REPO / "params.yaml")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An isolated project folder (params.yaml + settings.ini) so caches never touch the repo's
    data/raw."""
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root)
    (root / "settings.ini").touch()
    monkeypatch.setenv("CRYPTOVOL_ROOT", str(root))
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(MIRROR))
    reset_params()
    yield root
    reset_params()


@pytest.fixture
def warnings_seen():
    """Messages logged at WARNING or above by cryptovol.data (its logger does not propagate to
    caplog)."""
    msgs = []

    class H(logging.Handler):
        def emit(self, record):
            msgs.append(record.getMessage())

    h = H(logging.WARNING)
    logger = logging.getLogger("cryptovol.data")
    logger.addHandler(h)
    yield msgs
    logger.removeHandler(h)


@pytest.fixture
def no_sleep(monkeypatch):
    "Record back-off pauses instead of sleeping."
    pauses = []
    monkeypatch.setattr(data.time, "sleep", lambda s: pauses.append(s))
    return pauses


@pytest.fixture
def offline(monkeypatch, params):
    """No offline folder configured (no env var, data.mirror_dir: null): load_prices(source='auto')
    must go to yfinance."""
    monkeypatch.delenv("CRYPTOVOL_DATA_DIR", raising=False)
    assert params["data"]["mirror_dir"] == "../shared/data"  # the default, switched off here
    params["data"]["mirror_dir"] = None
    return params


def btc_lines():
    return BTC_CSV.read_text().splitlines()


def yfinance_frame(n=None):
    """The real BTC history in the exact shape yfinance's history() returns (tz-aware UTC index
    named Date)."""
    df = pd.read_csv(BTC_CSV, index_col="Date")
    df.index = pd.to_datetime(df.index)
    return df if n is None else df.iloc[-n:]


def write_mirror(tmp_path, monkeypatch, symbol, text):
    """A one-file offline mirror holding `text` as yahoo/{symbol}.csv; CRYPTOVOL_DATA_DIR points at
    it."""
    mirror = tmp_path / "mirror"
    (mirror / "yahoo").mkdir(parents=True, exist_ok=True)
    (mirror / "yahoo" / f"{symbol}.csv").write_text(text)
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    return mirror


def corrupted(rows=400, edit=None):
    "CSV text of the first `rows` real BTC rows after `edit(list_of_lines)` changed them in place."
    lines = btc_lines()[: rows + 1]
    if edit:
        edit(lines)
    return "\n".join(lines) + "\n"


def set_field(lines, row, col, value):
    "Set field `col` (0 = Date) of data row `row` (1-based like the file) to `value`."
    parts = lines[row].split(",")
    parts[col] = value
    lines[row] = ",".join(parts)


# ---------------------------------------------------------------- mirror
@pytest.mark.parametrize("symbol", COINS)
def test_mirror_loads_every_coin(symbol, params, monkeypatch):
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(MIRROR))
    df = load_prices(symbol, params=params)
    raw = pd.read_csv(MIRROR / "yahoo" / f"{symbol}.csv")
    assert list(df.columns) == PRICE_COLUMNS and all(df.dtypes == "float64")
    assert (
        isinstance(df.index, pd.DatetimeIndex) and df.index.name == "Date" and df.index.tz is None
    )
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert df.index[-1] == pd.Timestamp("2024-12-07")
    assert df.index[0] == pd.Timestamp(raw.Date.iloc[0][:10])
    assert len(df) == len(raw)
    np.testing.assert_array_equal(df.Close.to_numpy(), raw.Close.to_numpy())
    assert (df[["Open", "High", "Low", "Close"]] > 0).all().all() and (df.High >= df.Low).all()


def test_mirror_gap_is_reported_not_filled(params, monkeypatch, warnings_seen):
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(MIRROR))
    df = load_prices("AVAX-USD", params=params)
    # the real missing day stays missing
    assert (df.index.to_series().diff().dt.days > 1).sum() == 1
    assert any("calendar day(s) missing" in m for m in warnings_seen)


def test_date_range_slicing(params, monkeypatch):
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(MIRROR))
    df = load_prices("ETH-USD", start="2021-01-01", end="2021-12-31", params=params)
    assert (df.index[0], df.index[-1], len(df)) == (
        pd.Timestamp("2021-01-01"),
        pd.Timestamp("2021-12-31"),
        365,
    )


def test_unknown_symbol_lists_available(params, monkeypatch):
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(MIRROR))
    with pytest.raises(DataError, match="NOPE-USD") as e:
        load_prices("NOPE-USD", params=params)
    assert "BTC-USD" in str(e.value) and "ETH-USD" in str(e.value)


@pytest.mark.parametrize("bad", ["../etc/passwd", "", "BTC USD", "a/b"])
def test_invalid_symbol(bad, params):
    with pytest.raises(DataError, match="invalid symbol"):
        load_prices(bad, params=params)


def test_min_history_days_follows_params(params):
    base = min_history_days(params)
    assert base == 50 + 1 + 60 + 7 + 3 * 30
    longer = load_params(
        REPO / "params.yaml", overrides={"dataset.sequence_length": 90, "target.horizon": 14}
    )
    assert min_history_days(longer) == base + 30 + 7


# ---------------------------------------------------------------- yfinance (mocked)
def test_yfinance_path_matches_mirror(offline, monkeypatch):
    calls = []

    def history(self, **kw):
        calls.append((self.ticker, kw))
        return yfinance_frame()

    monkeypatch.setattr(yf.Ticker, "history", history)
    df = load_prices("BTC-USD", params=offline)
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(MIRROR))
    pd.testing.assert_frame_equal(df, load_prices("BTC-USD", source="mirror", params=offline))
    ((ticker, kw),) = calls
    assert (
        ticker == "BTC-USD"
        and kw["period"] == "max"
        and 0 < kw["timeout"] <= offline["data"]["timeout"]
    )


def test_yfinance_start_end_passed_and_inclusive(offline, monkeypatch):
    seen = {}

    def history(self, **kw):
        seen.update(kw)
        return yfinance_frame()

    monkeypatch.setattr(yf.Ticker, "history", history)
    df = load_prices(
        "BTC-USD", start="2020-01-01", end="2020-12-31", source="yfinance", params=offline
    )
    # yfinance's end is exclusive
    assert seen["start"] == "2020-01-01" and seen["end"] == "2021-01-01"
    assert df.index[0] == pd.Timestamp("2020-01-01") and df.index[-1] == pd.Timestamp("2020-12-31")


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionError("Could not resolve host: query2.finance.yahoo.com"),
        TimeoutError("timed out"),
        "empty",
        "none",
    ],
)
def test_yfinance_failure_raises_datasource_error(failure, offline, monkeypatch, no_sleep):
    calls = []

    def history(self, **kw):
        calls.append(kw)
        if isinstance(failure, Exception):
            raise failure
        return pd.DataFrame(columns=HEADER.split(",")[1:]) if failure == "empty" else None

    monkeypatch.setattr(yf.Ticker, "history", history)
    t0 = time.monotonic()
    with pytest.raises(DataSourceError) as e:
        load_prices("BTC-USD", params=offline)
    msg = str(e.value)
    assert "BTC-USD" in msg and "CRYPTOVOL_DATA_DIR" in msg
    # exponential back-off
    assert len(calls) == offline["data"]["retries"] and no_sleep == [1.0, 2.0]
    assert time.monotonic() - t0 < 5


def test_yfinance_recovers_after_transient_failure(offline, monkeypatch, no_sleep):
    attempts = iter([ConnectionError("reset"), None])

    def history(self, **kw):
        err = next(attempts)
        if err:
            raise err
        return yfinance_frame(500)

    monkeypatch.setattr(yf.Ticker, "history", history)
    assert len(load_prices("BTC-USD", params=offline)) == 500 and no_sleep == [1.0]


def test_real_yfinance_offline_fails_fast_with_clear_message(offline, monkeypatch):
    """The real yfinance client with every connection refused (dead proxy): DataSourceError well
    within 60 s."""
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    t0 = time.monotonic()
    with pytest.raises(DataSourceError) as e:
        load_prices("BTC-USD", params=offline)
    assert time.monotonic() - t0 < 60
    assert "BTC-USD" in str(e.value) and "CRYPTOVOL_DATA_DIR" in str(e.value)
    assert type(e.value) is DataSourceError  # not a raw curl/socket/yfinance exception


def test_backoff_is_exponential(no_sleep):
    with pytest.raises(data._Failed) as e:
        data._with_retries(lambda t: 1 / 0, "test", retries=4, timeout=5)
    assert no_sleep == [1.0, 2.0, 4.0] and len(e.value.errors) == 4


def test_retries_respect_total_deadline(no_sleep):
    timeouts = []

    def fetch(timeout):
        timeouts.append(timeout)
        time.sleep(0.2)
        raise ConnectionError("hang")

    t0 = time.monotonic()
    with pytest.raises(data._Failed):
        data._with_retries(fetch, "test", retries=50, timeout=30, deadline_s=1.5)
    assert time.monotonic() - t0 < 2.5 and all(t <= 1.5 for t in timeouts)


# ---------------------------------------------------------------- validation: one bad input per
# rule
BAD_FILES = {
    "empty file": ("", "empty"),
    "header only": (HEADER + "\n", "no price rows"),
    "truncated last line": (corrupted()[:-40], "truncated"),
    "wrong delimiter": (corrupted().replace(",", ";"), "delimiter"),
    "missing Close": (
        "\n".join(
            ",".join(p for i, p in enumerate(l.split(",")) if i != 4) for l in btc_lines()[:401]
        ),
        r"missing column\(s\) \['Close'\]",
    ),
    "missing Volume": (
        "\n".join(",".join(l.split(",")[:5] + l.split(",")[6:]) for l in btc_lines()[:401]),
        "'Volume'",
    ),
    "non-numeric": (
        corrupted(edit=lambda ls: set_field(ls, 20, 4, "abc")),
        "non-numeric value 'abc' in column 'Close'",
    ),
    "inf": (
        corrupted(edit=lambda ls: set_field(ls, 20, 2, "inf")),
        "infinite value in column 'High'",
    ),
    "zero price": (corrupted(edit=lambda ls: set_field(ls, 20, 3, "0")), "zero or negative"),
    "negative price": (corrupted(edit=lambda ls: set_field(ls, 30, 1, "-5.0")), "zero or negative"),
    "negative volume": (corrupted(edit=lambda ls: set_field(ls, 30, 5, "-1")), "negative Volume"),
    "High < Low": (corrupted(edit=lambda ls: set_field(ls, 20, 2, "1.0")), "High < Low"),
    "mixed timezones": (
        corrupted(
            edit=lambda ls: set_field(ls, 20, 0, ls[20].split(",")[0].replace("+00:00", "-05:00"))
        ),
        "mixes timezones",
    ),
    "naive and aware dates": (
        corrupted(edit=lambda ls: set_field(ls, 20, 0, ls[20].split(",")[0][:10])),
        "mixes timezones",
    ),
    "unparseable date": (
        corrupted(edit=lambda ls: set_field(ls, 20, 0, "yesterday")),
        "cannot read date 'yesterday'",
    ),
    "too short": (corrupted(rows=150), "only 150 daily rows"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_raises_data_error(case, tmp_path, monkeypatch, params):
    text, pattern = BAD_FILES[case]
    write_mirror(tmp_path, monkeypatch, "BAD-USD", text)
    with pytest.raises(DataError, match=pattern) as e:
        load_prices("BAD-USD", params=params)
    assert "BAD-USD" in str(e.value)  # names the input


def test_unsorted_dates_are_sorted_with_warning(tmp_path, monkeypatch, params, warnings_seen):
    lines = btc_lines()[:401]
    write_mirror(
        tmp_path, monkeypatch, "BTC-USD", "\n".join([lines[0], *lines[201:], *lines[1:201]])
    )
    df = load_prices("BTC-USD", params=params)
    assert df.index.is_monotonic_increasing and len(df) == 400
    assert any("not in order" in m for m in warnings_seen)


def test_duplicated_dates_keep_last_with_warning(tmp_path, monkeypatch, params, warnings_seen):
    lines = btc_lines()[:401]
    dup = lines[100].split(",")
    dup[4] = "12345.0"
    write_mirror(tmp_path, monkeypatch, "BTC-USD", "\n".join([*lines, ",".join(dup)]))
    df = load_prices("BTC-USD", params=params)
    assert df.index.is_unique and len(df) == 400
    assert df.loc[pd.Timestamp(dup[0][:10]), "Close"] == 12345.0
    assert any("1 duplicated date" in m for m in warnings_seen)


def test_nans_short_runs_filled_long_runs_dropped(tmp_path, monkeypatch, params, warnings_seen):
    def edit(ls):
        for r in (20, 21, 22):  # 3-day hole: forward-filled (max_ffill_days = 3)
            set_field(ls, r, 4, "")
        for r in range(50, 56):  # 6-day hole: dropped
            set_field(ls, r, 5, "")

    write_mirror(tmp_path, monkeypatch, "BTC-USD", corrupted(edit=edit))
    df = load_prices("BTC-USD", params=params)
    assert len(df) == 394 and not df.isna().any().any()
    assert df.Close.iloc[18] == df.Close.iloc[19] == df.Close.iloc[20] == df.Close.iloc[21]
    assert any(
        "9 row(s) with missing values" in m and "forward-filled 3" in m and "dropped 6" in m
        for m in warnings_seen
    )
    # the dropped days are reported as a gap
    assert any("6 calendar day(s) missing" in m for m in warnings_seen)


def test_validate_prices_accepts_yfinance_frame_and_drops_extras(params):
    df = validate_prices(yfinance_frame(), "BTC-USD", params)
    assert list(df.columns) == PRICE_COLUMNS and df.index.tz is None and df.index.name == "Date"


def test_validate_prices_rejects_mixed_tz_index(params):
    frame = yfinance_frame(300)
    idx = list(frame.index)
    idx[5] = idx[5].tz_convert("US/Eastern")
    frame.index = pd.Index(idx, dtype=object, name="Date")
    with pytest.raises(DataError, match="mixes timezones"):
        validate_prices(frame, "BTC-USD", params)


# ---------------------------------------------------------------- cache
def test_cache_prices_roundtrip(project):
    path = cache_prices("BTC-USD")
    assert path == project / "data" / "raw" / "BTC-USD.csv"
    pd.testing.assert_frame_equal(read_cached_prices("BTC-USD"), load_prices("BTC-USD"))
    assert not list(path.parent.glob(".*tmp*"))  # no temp files left behind


def test_cache_merge_keeps_history_and_new_rows_win(project, tmp_path, monkeypatch):
    full = btc_lines()
    # 1) a first cache from an older snapshot (all but the last 300 days)
    write_mirror(tmp_path, monkeypatch, "BTC-USD", "\n".join(full[:-300]))
    cache_prices("BTC-USD")
    first = read_cached_prices("BTC-USD")
    # 2) the source now only serves the last 400 days, with a revised Close on the overlap
    recent = [full[0]] + [
        ",".join(l.split(",")[:4] + [str(float(l.split(",")[4]) * 1.01)] + l.split(",")[5:])
        for l in full[-400:]
    ]
    write_mirror(tmp_path, monkeypatch, "BTC-USD", "\n".join(recent))
    cache_prices("BTC-USD")
    merged = read_cached_prices("BTC-USD")
    # old history kept, new days added
    assert len(merged) == len(full) - 1
    assert merged.index[0] == first.index[0] and merged.index[-1] == pd.Timestamp("2024-12-07")
    pd.testing.assert_frame_equal(merged.iloc[:100], first.iloc[:100])  # untouched old rows
    overlap = merged.index[-400]
    # new rows win
    assert merged.loc[overlap, "Close"] == pytest.approx(first.loc[overlap, "Close"] * 1.01)


def test_merge_new_rows_unit():
    old = yfinance_frame(10).iloc[:6]
    new = yfinance_frame(10).iloc[4:].assign(Close=1.0)
    m = merge_new_rows(old, new)
    assert (
        len(m) == 10
        and (m.Close.iloc[4:] == 1.0).all()
        and (m.Close.iloc[:4] == old.Close.iloc[:4]).all()
    )


def test_failed_download_leaves_cache_intact(project, monkeypatch, no_sleep):
    path = cache_prices("BTC-USD")
    before = path.read_bytes()
    monkeypatch.delenv("CRYPTOVOL_DATA_DIR")
    monkeypatch.setattr(
        yf.Ticker, "history", lambda self, **kw: (_ for _ in ()).throw(ConnectionError("offline"))
    )
    p = load_params(overrides={"data.source": "yfinance"})
    with pytest.raises(DataSourceError):
        cache_prices("BTC-USD", params=p)
    monkeypatch.setattr(yf.Ticker, "history", lambda self, **kw: pd.DataFrame())
    with pytest.raises(DataSourceError):
        cache_prices("BTC-USD", params=p)
    assert path.read_bytes() == before
    assert read_cached_prices("BTC-USD").index[-1] == pd.Timestamp("2024-12-07")


def test_crash_mid_write_leaves_cache_intact(project, monkeypatch):
    path = cache_prices("BTC-USD")
    before = path.read_bytes()
    real_to_csv = pd.DataFrame.to_csv

    def crash(self, target, *a, **k):
        real_to_csv(self.iloc[:10], target, *a, **k)  # half a file on disk, then the process dies
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(OSError, match="disk full"):
        cache_prices("BTC-USD")
    assert path.read_bytes() == before and not list(path.parent.glob(".*tmp*"))


def test_read_cached_prices_missing(project):
    with pytest.raises(DataError, match="cache_prices"):
        read_cached_prices("ETH-USD")


def test_corrupt_cache_is_reported(project):
    path = cache_prices("BTC-USD")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1] + [lines[-1][:15]]))  # the last line cut off mid-row
    with pytest.raises(DataError, match="truncated"):
        read_cached_prices("BTC-USD")


# ---------------------------------------------------------------- Fear & Greed
class FakeResponse:
    def __init__(self, payload, status=200):
        self.payload, self.status_code = payload, status

    def raise_for_status(self):
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code} Server Error")

    def json(self):
        return json.loads(self.payload) if isinstance(self.payload, str) else self.payload


def test_fear_greed_offline(params, monkeypatch):
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(MIRROR))
    fng = load_fear_greed(params=params)
    assert list(fng.columns) == ["fng_value", "fng_class"] and fng.index.name == "Date"
    assert (fng.index[0], fng.index[-1]) == (pd.Timestamp("2018-02-01"), pd.Timestamp("2024-12-07"))
    assert fng.fng_value.dtype == "float64" and fng.fng_value.between(0, 100).all()
    assert fng.index.is_monotonic_increasing and fng.index.is_unique
    assert pd.Timestamp("2018-04-15") not in fng.index  # the source's missing days stay missing
    assert fng.loc["2024-12-07"].tolist() == [75.0, "Greed"]


def test_fear_greed_online_mocked(offline, monkeypatch):
    calls = []

    def get(url, timeout=None, **kw):
        calls.append((url, timeout))
        return FakeResponse(FNG_JSON.read_text())

    monkeypatch.setattr(requests, "get", get)
    online = load_fear_greed(params=offline)
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(MIRROR))
    pd.testing.assert_frame_equal(online, load_fear_greed(source="mirror", params=offline))
    ((url, timeout),) = calls
    assert url == offline["data"]["fng_url"] and 0 < timeout <= offline["data"]["timeout"]


@pytest.mark.parametrize("failure", ["raise", "http500"])
def test_fear_greed_api_down(failure, offline, monkeypatch, no_sleep):
    def get(url, timeout=None, **kw):
        if failure == "raise":
            raise requests.ConnectionError("api.alternative.me unreachable")
        return FakeResponse("", status=500)

    monkeypatch.setattr(requests, "get", get)
    with pytest.raises(DataSourceError, match="CRYPTOVOL_DATA_DIR") as e:
        load_fear_greed(params=offline)
    assert "fear_greed.json" in str(e.value) and no_sleep == [1.0, 2.0]


def test_cache_fear_greed_uses_cache_when_api_down(project, monkeypatch, no_sleep, warnings_seen):
    path = cache_fear_greed()
    before = path.read_bytes()
    pd.testing.assert_frame_equal(read_cached_fear_greed(), load_fear_greed())
    monkeypatch.delenv("CRYPTOVOL_DATA_DIR")
    monkeypatch.setattr(
        requests, "get", lambda *a, **k: (_ for _ in ()).throw(requests.ConnectionError("down"))
    )
    live = load_params(overrides={"data.source": "yfinance"})  # the API, not the mirror
    assert cache_fear_greed(live) == path and path.read_bytes() == before
    assert any("using the cached series" in m for m in warnings_seen)
    path.unlink()
    with pytest.raises(DataSourceError, match="sentiment/fear_greed.json"):
        cache_fear_greed(live)


def test_cache_fear_greed_merges(project):
    path = cache_fear_greed()
    full = read_cached_fear_greed()
    older = pd.DataFrame(
        {"fng_value": [50.0], "fng_class": ["Neutral"]},
        index=pd.DatetimeIndex(["2017-12-31"], name="Date"),
    )
    pd.concat([older, full.iloc[:-10]]).to_csv(path, date_format="%Y-%m-%d")
    cache_fear_greed()
    merged = read_cached_fear_greed()
    assert (
        merged.index[0] == pd.Timestamp("2017-12-31")
        and merged.index[-1] == full.index[-1]
        and len(merged) == len(full) + 1
    )


BAD_FNG = {
    "top-level list": ("[1, 2]", "unexpected schema"),
    "data not a list": ('{"name": "x", "data": {"value": "3"}}', "unexpected schema"),
    "no data key": ('{"name": "x", "metadata": {"error": null}}', "unexpected schema"),
    "empty data": ('{"data": [], "metadata": {"error": null}}', "empty"),
    "missing field": (
        '{"data": [{"value": "30", "timestamp": "1517443200"}]}',
        "value_classification",
    ),
    "value out of range": (
        '{"data": [{"value": "130", "value_classification": "Greed", "timestamp": "1517443200"}]}',
        "entry 0",
    ),
    "bad timestamp": (
        '{"data": [{"value": "30", "value_classification": "Fear", "timestamp": "yesterday"}]}',
        "entry 0",
    ),
    "not json": ("<html>maintenance</html>", "not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_FNG))
def test_fear_greed_unexpected_schema(case):
    text, pattern = BAD_FNG[case]
    with pytest.raises(DataError, match=pattern):
        parse_fear_greed(text, "fear_greed.json")


def test_fear_greed_bad_mirror_file(tmp_path, monkeypatch, params):
    mirror = tmp_path / "mirror"
    (mirror / "sentiment").mkdir(parents=True)
    (mirror / "sentiment" / "fear_greed.json").write_text('{"fear": 1}')
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    with pytest.raises(DataError, match="fear_greed.json"):
        load_fear_greed(params=params)


def test_fear_greed_api_schema_change_is_data_error(offline, monkeypatch):
    monkeypatch.setattr(requests, "get", lambda *a, **k: FakeResponse({"data": [{"score": 3}]}))
    with pytest.raises(DataError, match="value"):
        load_fear_greed(params=offline)
