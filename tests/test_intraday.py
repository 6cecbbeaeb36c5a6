"""The hourly data layer: pairs, validation, mirror files, the cache and the ccxt path (no network).

`FakeExchange` stands in for a ccxt exchange: it answers `fetch_ohlcv` with ccxt's real shapes
(lists of `[ms, open, high, low, close, volume]`) and raises ccxt's real exception classes. Its
bars are SYNTHETIC and exist only inside these tests; the real-data checks read the offline
mirror through the `mirror` / `project` fixtures of conftest.py.
"""

import gzip
import logging

import ccxt
import numpy as np
import pandas as pd
import pytest

from cryptovol import intraday
from cryptovol.config import ConfigError, DataError, DataSourceError, get_params, with_overrides
from cryptovol.intraday import (
    HOUR_MS,
    CCXT_HEADER,
    bars_from_rows,
    cache_hourly,
    compare_daily_closes,
    daily_closes,
    fetch_hourly,
    hourly_cache_path,
    hourly_file_name,
    hourly_gaps,
    load_hourly_bars,
    make_exchange,
    pair_of,
    read_cached_hourly,
    read_hourly_csv,
    validate_hourly,
    write_hourly_csv,
)

START = 1_704_067_200_000  # 2024-01-01 00:00 UTC in ms


def synthetic_rows(n: int, start: int = START, seed: int = 0) -> list[list[float]]:
    "SYNTHETIC test bars in ccxt's shape: a random walk of closes, open = previous close."
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.r_[100.0, close[:-1]]
    return [
        [
            start + i * HOUR_MS,
            float(o),
            float(max(o, c) * 1.002),
            float(min(o, c) * 0.998),
            float(c),
            1.5,
        ]
        for i, (o, c) in enumerate(zip(opens, close))
    ]


class FakeExchange:
    "A ccxt exchange double: fetch_ohlcv pages through `rows`, after raising `failures` in turn."

    id = "binance"

    def __init__(self, rows, rate_limit: int = 50, enable_rate_limit: bool = True, failures=()):
        self.rows, self.rateLimit, self.enableRateLimit = rows, rate_limit, enable_rate_limit
        self.failures, self.calls = list(failures), []

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params={}):
        self.calls.append(
            {"symbol": symbol, "timeframe": timeframe, "since": since, "limit": limit}
        )
        if self.failures:
            err = self.failures.pop(0)
            if err is not None:
                raise err
        return [list(r) for r in self.rows if r[0] >= since][:limit]


@pytest.fixture
def sleeps():
    return []


def retries(n: int) -> dict:
    return with_overrides(get_params(), **{"data.retries": n})


def messages(level=logging.INFO):
    "(messages cryptovol.intraday logs at `level`+, detach); its logger does not reach caplog."
    msgs = []

    class H(logging.Handler):
        def emit(self, record):
            msgs.append(record.getMessage())

    logger = logging.getLogger("cryptovol.intraday")
    logger.addHandler(h := H(level))
    return msgs, lambda: logger.removeHandler(h)


# ---------------------------------------------------------------- pairs and files
@pytest.mark.parametrize(
    "symbol,pair,file",
    [
        ("BTC-USD", "BTC/USDT", "BTCUSDT-1h.csv.gz"),
        ("NEAR-USD", "NEAR/USDT", "NEARUSDT-1h.csv.gz"),
        ("UNI7083-USD", "UNI/USDT", "UNIUSDT-1h.csv.gz"),
    ],
)
def test_pair_and_file_of_a_yahoo_ticker(symbol, pair, file):
    assert pair_of(symbol) == pair and hourly_file_name(symbol) == file


def test_the_quote_is_configurable_and_bad_tickers_are_refused():
    assert pair_of("ETH-USD", quote="USDC") == "ETH/USDC"
    for bad in ("BTC-EUR", "btc-usd", "../x-USD", "", None):
        with pytest.raises(DataError, match="not a Yahoo USD ticker"):
            pair_of(bad)
    with pytest.raises(ConfigError, match="quote"):
        pair_of("BTC-USD", quote="US/DT")


# ---------------------------------------------------------------- validation (synthetic bars)
def frame(n=30, seed=0):
    return bars_from_rows(synthetic_rows(n, seed=seed), "test bars")


def test_rows_become_the_canonical_frame():
    f = frame()
    assert (
        list(f.columns) == ["open", "high", "low", "close", "volume"]
        and f.index.name == "timestamp"
    )
    assert (
        f.index[0] == pd.Timestamp("2024-01-01")
        and f.index.tz is None
        and (f.dtypes == "float64").all()
    )
    assert validate_hourly(f, "x").equals(f)


def _set(f, row, col, value):
    f = f.copy()
    f.iloc[row, f.columns.get_loc(col)] = value
    return f


@pytest.mark.parametrize(
    "make,what",
    [
        (lambda f: pd.concat([f.iloc[:5], f.iloc[4:6]]), "duplicated"),
        (lambda f: f.iloc[[0, 2, 1, 3]], "out of order"),
        (lambda f: _set(f, 3, "close", 0.0), "zero or negative price"),
        (lambda f: _set(f, 4, "high", f.low.iloc[4] * 0.9), "high < low"),
        (lambda f: _set(f, 5, "close", f.high.iloc[5] * 1.01), "do not bracket"),
        (
            lambda f: _set(f, 6, "low", min(f.open.iloc[6], f.close.iloc[6]) * 1.0001),
            "do not bracket",
        ),
        (lambda f: _set(f, 7, "open", np.nan), "NaN"),
        (lambda f: _set(f, 8, "volume", -1.0), "negative volume"),
        (lambda f: f.set_axis(f.index + pd.Timedelta(minutes=30)), "whole hour"),
    ],
)
def test_broken_bars_are_refused_naming_the_bar_and_the_fix(make, what):
    with pytest.raises(DataError, match=what) as e:
        validate_hourly(make(frame()), "BTCUSDT-1h.csv.gz")
    assert "BTCUSDT-1h.csv.gz" in str(e.value) and "reload" in str(e.value)


def test_empty_or_wrong_frames_are_refused():
    with pytest.raises(DataError, match="no bars"):
        validate_hourly(frame().iloc[:0], "x")
    with pytest.raises(DataError, match="expected a frame"):
        validate_hourly(frame().drop(columns="low"), "x")
    with pytest.raises(DataError, match="non-numeric"):
        bars_from_rows([[START, 1, 2, 0.5, "x", 3]])
    with pytest.raises(DataError, match="not ccxt OHLCV rows"):
        bars_from_rows([[START, 1, 2]])


def test_gaps_are_reported_never_filled():
    f = frame(48).drop(index=pd.date_range("2024-01-01 05:00", periods=3, freq="h"))
    f = f.drop(index=[pd.Timestamp("2024-01-01 20:00")])
    msgs, detach = messages()
    try:
        out = validate_hourly(f, "gappy")
    finally:
        detach()
    assert len(out) == 44 and out.equals(f)  # nothing filled in
    gaps = hourly_gaps(out)
    assert gaps.missing_hours.tolist() == [3, 1]
    assert gaps.first_missing.tolist() == [
        pd.Timestamp("2024-01-01 05:00"),
        pd.Timestamp("2024-01-01 20:00"),
    ]
    assert gaps.last_missing.iloc[0] == pd.Timestamp("2024-01-01 07:00")
    assert any("4 hour(s) missing in 2 gap(s); longest 3 h" in m for m in msgs), msgs


def test_csv_round_trip_is_exactly_ccxt_rows(tmp_path):
    f = frame(50)
    path = write_hourly_csv(f, tmp_path / "XUSDT-1h.csv.gz")
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == ",".join(CCXT_HEADER) and lines[1].split(",")[0] == str(START)
    assert read_hourly_csv(path).equals(f)
    assert (
        write_hourly_csv(f, tmp_path / "again.csv.gz").read_bytes() == path.read_bytes()
    )  # reproducible bytes


def test_broken_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_hourly_csv(tmp_path / "nope.csv.gz")
    (tmp_path / "hdr.csv").write_text("Date,Open,High,Low,Close,Volume\n2024-01-01,1,1,1,1,1\n")
    with pytest.raises(DataError, match="timestamp,open,high,low,close,volume"):
        read_hourly_csv(tmp_path / "hdr.csv")
    good = write_hourly_csv(frame(200), tmp_path / "good.csv.gz").read_bytes()
    (tmp_path / "cut.csv.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_hourly_csv(tmp_path / "cut.csv.gz")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_hourly_csv(tmp_path / "empty.csv")


# ---------------------------------------------------------------- the ccxt path (mocked exchange)
def test_pagination_from_since_until_the_present(sleeps):
    rows = synthetic_rows(2500)
    ex = FakeExchange(rows)
    now = rows[-1][0] + HOUR_MS  # the last bar has just closed
    bars = fetch_hourly("BTC-USD", START, client=ex, now_ms=now, sleep=sleeps.append)
    assert [c["since"] for c in ex.calls] == [START, START + 1000 * HOUR_MS, START + 2000 * HOUR_MS]
    assert all(
        c["symbol"] == "BTC/USDT" and c["timeframe"] == "1h" and c["limit"] == 1000
        for c in ex.calls
    )
    assert (
        bars.equals(bars_from_rows(rows)) and sleeps == []
    )  # the client paces itself (enableRateLimit)


def test_an_empty_page_ends_the_pagination(sleeps):
    rows = synthetic_rows(2000)
    ex = FakeExchange(rows)
    bars = fetch_hourly(
        "BTC-USD", START, client=ex, now_ms=START + 10_000 * HOUR_MS, sleep=sleeps.append
    )
    assert len(ex.calls) == 3 and ex.calls[-1]["since"] == START + 2000 * HOUR_MS  # 3rd page: []
    assert len(bars) == 2000


def test_the_current_hour_is_not_kept():
    rows = synthetic_rows(10)
    bars = fetch_hourly(
        "BTC-USD", START, client=FakeExchange(rows), now_ms=rows[-1][0] + HOUR_MS // 2
    )
    assert len(bars) == 9 and bars.index[-1] == pd.Timestamp("2024-01-01 08:00")


def test_a_client_without_enableRateLimit_is_paced_by_its_rateLimit(sleeps):
    rows = synthetic_rows(2500)
    ex = FakeExchange(rows, rate_limit=250, enable_rate_limit=False)
    fetch_hourly("BTC-USD", START, client=ex, now_ms=rows[-1][0] + HOUR_MS, sleep=sleeps.append)
    assert sleeps == [0.25, 0.25]  # between the 3 pages


def test_make_exchange_paces_itself():
    ex = make_exchange("binance", timeout_s=5)  # no request is made
    assert (
        isinstance(ex, ccxt.binance)
        and ex.enableRateLimit
        and ex.timeout == 5000
        and ex.rateLimit > 0
    )
    with pytest.raises(ConfigError, match="unknown exchange"):
        make_exchange("nosuchexchange")


def test_transient_ccxt_errors_are_retried_with_exponential_backoff(sleeps):
    rows = synthetic_rows(1500)
    fails = [
        ccxt.NetworkError("binance GET https://api.binance.com/api/v3/klines"),
        ccxt.RateLimitExceeded("binance 429 Too Many Requests"),
        ccxt.ExchangeNotAvailable("binance 503 Service Unavailable"),
        None,  # page 1 on the 4th try
        ccxt.RequestTimeout("binance timed out"),
    ]  # page 2 on the 2nd
    ex = FakeExchange(rows, failures=fails)
    bars = fetch_hourly(
        "BTC-USD",
        START,
        client=ex,
        params=retries(4),
        now_ms=rows[-1][0] + HOUR_MS,
        sleep=sleeps.append,
    )
    assert len(bars) == 1500 and sleeps == [1.0, 2.0, 4.0, 1.0] and len(ex.calls) == 6


def test_no_network_is_one_line_naming_the_offline_folder(sleeps):
    fails = [ccxt.NetworkError("binance GET https://api.binance.com/api/v3/exchangeInfo")] * 3
    ex = FakeExchange(synthetic_rows(10), failures=fails)
    with pytest.raises(DataSourceError) as e:
        fetch_hourly(
            "BTC-USD",
            START,
            client=ex,
            params=retries(3),
            now_ms=START + 20 * HOUR_MS,
            sleep=sleeps.append,
        )
    msg = str(e.value)
    assert "\n" not in msg and "could not fetch hourly bars of BTC/USDT from binance" in msg
    assert "intraday/binance/BTCUSDT-1h.csv.gz (ccxt fetch_ohlcv rows)" in msg
    assert "CRYPTOVOL_DATA_DIR" in msg and "data.mirror_dir" in msg and "3 attempt(s)" in msg
    assert sleeps == [1.0, 2.0] and len(ex.calls) == 3


def test_the_overall_deadline_stops_the_retries():
    class Clock:
        t = 0.0

        def __call__(self):
            return self.t

        def sleep(self, s):
            self.t += s

    clock = Clock()
    ex = FakeExchange(synthetic_rows(10), failures=[ccxt.ExchangeNotAvailable("down")] * 10)
    with pytest.raises(DataSourceError, match="2 attempt"):
        fetch_hourly(
            "BTC-USD",
            START,
            client=ex,
            params=retries(10),
            now_ms=START + 20 * HOUR_MS,
            deadline_s=2.5,
            sleep=clock.sleep,
            clock=clock,
        )
    assert clock.t <= 2.5 and len(ex.calls) == 2


def test_a_bad_symbol_or_exchange_error_is_not_retried(sleeps):
    ex = FakeExchange([], failures=[ccxt.BadSymbol("binance does not have market symbol FOO/USDT")])
    with pytest.raises(DataError, match="binance has no market FOO/USDT"):
        fetch_hourly("FOO-USD", START, client=ex, now_ms=START + 5 * HOUR_MS, sleep=sleeps.append)
    ex = FakeExchange([], failures=[ccxt.ExchangeError("binance {'code': -1121}")])
    with pytest.raises(DataSourceError, match="refused BTC/USDT"):
        fetch_hourly("BTC-USD", START, client=ex, now_ms=START + 5 * HOUR_MS, sleep=sleeps.append)
    assert len(ex.calls) == 1 and sleeps == []


def test_broken_exchange_rows_are_refused():
    rows = synthetic_rows(5)
    rows[2][2] = rows[2][3] / 2  # high < low
    with pytest.raises(DataError, match="high < low"):
        fetch_hourly("BTC-USD", START, client=FakeExchange(rows), now_ms=START + 5 * HOUR_MS)


def test_the_cache_merges_new_bars_and_keeps_its_history(project, sleeps):
    p = get_params()
    rows = synthetic_rows(150)
    ex1 = FakeExchange(rows[:100])
    path = cache_hourly(
        "BTC-USD", p, source="live", client=ex1, now_ms=rows[100][0], sleep=sleeps.append
    )
    assert (
        path == project / "data" / "raw" / "intraday" / "BTCUSDT-1h.csv.gz"
        and len(read_cached_hourly("BTC-USD")) == 100
    )
    assert ex1.calls[0]["since"] == int(pd.Timestamp(intraday.LIVE_START).value // 1_000_000)
    # the exchange now answers only recent bars: the cached history must survive the merge
    ex2 = FakeExchange(rows[90:])
    cache_hourly(
        "BTC-USD", p, source="live", client=ex2, now_ms=rows[-1][0] + HOUR_MS, sleep=sleeps.append
    )
    assert ex2.calls[0]["since"] == rows[99][0]  # from the last cached bar on
    merged = read_cached_hourly("BTC-USD")
    assert len(merged) == 150 and merged.equals(bars_from_rows(rows))
    # nothing new (an empty page): the file is left as it is
    before = path.read_bytes()
    ex3 = FakeExchange(rows)
    cache_hourly(
        "BTC-USD",
        p,
        source="live",
        client=ex3,
        now_ms=rows[-1][0] + 3 * HOUR_MS,
        sleep=sleeps.append,
    )
    assert path.read_bytes() == before and len(ex3.calls) == 2
    # the exchange is down: a one-line error, and the cache is untouched
    ex4 = FakeExchange(rows, failures=[ccxt.NetworkError("down")] * 5)
    with pytest.raises(DataSourceError, match="intraday/binance/BTCUSDT-1h.csv.gz"):
        cache_hourly(
            "BTC-USD",
            p,
            source="live",
            client=ex4,
            now_ms=rows[-1][0] + 5 * HOUR_MS,
            sleep=sleeps.append,
        )
    assert path.read_bytes() == before
    assert sorted(f.name for f in path.parent.iterdir()) == [
        "BTCUSDT-1h.csv.gz"
    ]  # no temp file left


def test_load_hourly_bars_live_uses_the_exchange(project, sleeps):
    rows = synthetic_rows(30)
    bars = load_hourly_bars("BTC-USD", "live", get_params(), client=FakeExchange(rows))
    assert len(bars) == 30  # every synthetic bar lies in the past
    with pytest.raises(DataSourceError, match="no hourly bars"):
        load_hourly_bars("BTC-USD", "live", get_params(), client=FakeExchange([]))


# ---------------------------------------------------------------- the real mirror
def test_the_mirror_btc_file(mirror):
    msgs, detach = messages()
    try:
        btc = read_hourly_csv(mirror / "intraday" / "binance" / "BTCUSDT-1h.csv.gz")
    finally:
        detach()
    assert len(btc) == 60_670 and btc.index[0] == pd.Timestamp("2018-01-01")
    assert btc.index[-1] == pd.Timestamp("2024-12-07 23:00")
    gaps = hourly_gaps(btc)
    assert (len(gaps), int(gaps.missing_hours.sum()), int(gaps.missing_hours.max())) == (
        27,
        122,
        33,
    )
    assert int((btc.volume == 0).sum()) == 3
    assert any("122 hour(s) missing in 27 gap(s)" in m for m in msgs)


def test_every_universe_coin_loads_from_the_mirror(project):
    p = get_params()
    for s in p["universe"]:
        bars = load_hourly_bars(s, "mirror", p)
        assert bars.index.is_monotonic_increasing and len(bars) > 30_000, s


def test_a_coin_missing_from_the_mirror_names_the_three_ways(project):
    with pytest.raises(DataSourceError) as e:
        load_hourly_bars("FOO-USD", "mirror", get_params())
    assert "FOOUSDT-1h.csv.gz not found" in str(e.value) and "BTCUSDT-1h.csv.gz" in str(e.value)
    assert "CRYPTOVOL_DATA_DIR" in str(e.value)


def test_no_mirror_at_all(project, monkeypatch, tmp_path):
    monkeypatch.delenv("CRYPTOVOL_DATA_DIR")
    p = with_overrides(get_params(), **{"data.mirror_dir": str(tmp_path / "nowhere")})
    with pytest.raises(
        DataSourceError, match="no offline mirror.*intraday/binance/BTCUSDT-1h.csv.gz"
    ):
        load_hourly_bars("BTC-USD", "mirror", p)


def test_cache_from_the_mirror(project):
    path = cache_hourly("BTC-USD", get_params())  # data.source auto with a mirror
    assert path == hourly_cache_path("BTC-USD") and len(read_cached_hourly("BTC-USD")) == 60_670


def test_daily_closes_agree_with_yahoo_within_a_tenth_of_a_percent_at_the_median(project):
    from cryptovol.data import load_prices

    p = get_params()
    bars = load_hourly_bars("BTC-USD", params=p)
    closes = daily_closes(bars)
    assert closes.index[0] == pd.Timestamp("2018-01-01") and closes.iloc[0] == bars.close.iloc[23]
    cmp = compare_daily_closes(bars, load_prices("BTC-USD", params=p))
    assert len(cmp) == 2532
    assert abs(cmp.rel_diff.median()) < 0.001  # USDT vs USD: within 0.1% at the median
    assert cmp.rel_diff.abs().median() < 0.002  # a typical day: about 0.1% either way
