"""Realized measures from hourly bars: hand-computed values, no look-ahead, outages flagged.

The constructed hourly series here are SYNTHETIC and exist only inside these tests (DESIGN.md: no
generated price ever reaches a path a user runs); the real-data checks read the offline mirror
through the `mirror` fixture of conftest.py.
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cryptovol.config import ConfigError, DataError
from cryptovol.realized import (
    MEASURE_COLUMNS,
    MU43,
    THETA,
    hourly_returns,
    realized_measures,
    realized_target,
    trailing_realized_vol,
)

PI2 = math.pi / 2


def bars_from_returns(start: str, returns, drop=()) -> pd.DataFrame:
    "SYNTHETIC hourly bars with close-to-close log returns `returns`, the hours `drop` removed."
    closes = 100 * np.exp(np.cumsum(np.r_[0.0, np.asarray(returns, dtype="float64")]))
    idx = pd.date_range(start, periods=len(closes), freq="h", unit="ns", name="timestamp")
    opens = np.r_[closes[0], closes[:-1]]
    bars = pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes) * 1.001,
            "low": np.minimum(opens, closes) * 0.999,
            "close": closes,
            "volume": 1.0,
        },
        index=idx,
    )
    return bars.drop(index=pd.DatetimeIndex(list(drop), dtype="datetime64[ns]"))


# 2024-01-01 23:00 (one bar), then three full days of returns:
#   Jan 2: +-0.01 alternating; Jan 3: +0.002 every hour, the 10:00 bar missing;
#   Jan 4: +-0.001 alternating with a jump of +0.05 into the 12:00 bar.
DAY1 = [0.01 * (-1) ** j for j in range(24)]
DAY2 = [0.002] * 24
DAY3 = [0.05 if j == 12 else 0.001 * (-1) ** j for j in range(24)]


@pytest.fixture(scope="module")
def constructed() -> pd.DataFrame:
    bars = bars_from_returns(
        "2024-01-01 23:00", DAY1 + DAY2 + DAY3, drop=[pd.Timestamp("2024-01-03 10:00")]
    )
    return realized_measures(bars, min_bars=20)


def test_the_calendar_and_the_counts(constructed):
    m = constructed
    assert tuple(m.columns) == MEASURE_COLUMNS and m.index.name == "Date"
    assert list(m.index) == list(pd.date_range("2024-01-01", "2024-01-04"))
    assert m.n_bars.tolist() == [1, 24, 23, 24]
    assert m.n_returns.tolist() == [0, 24, 22, 24]  # Jan 3: the 2-hour return into 11:00 is dropped
    assert m.n_gap_returns.tolist() == [0, 0, 1, 0]
    assert m.short_day.tolist() == [True, False, False, False]
    assert m.loc["2024-01-01"][["rv", "bpv", "rq", "jump"]].isna().all()  # no return: NaN, not 0


def test_a_complete_day_by_hand(constructed):
    d = constructed.loc["2024-01-02"]
    assert d.rv == pytest.approx(24 * 1e-4, rel=1e-12)
    assert d.rs_pos == pytest.approx(12 * 1e-4, rel=1e-12) and d.rs_neg == pytest.approx(
        12 * 1e-4, rel=1e-12
    )
    assert d.bpv == pytest.approx(PI2 * 24 / 23 * 23 * 1e-4, rel=1e-12)
    assert d.jump == 0.0  # BPV > RV: no jump part
    assert d.rq == pytest.approx(24 / 3 * 24 * 1e-8, rel=1e-12)
    assert d.tq == pytest.approx(24 * 24 / 22 * 22 * 1e-8 / MU43**3, rel=1e-12)
    z = (1 - d.bpv / d.rv) / math.sqrt(THETA / 24 * max(1, d.tq / d.bpv**2))
    assert d.jump_z == pytest.approx(z, rel=1e-12) and not d.jump_flag and d.jump_sig == 0.0


def test_a_day_with_a_missing_hour_by_hand(constructed):
    "22 valid returns of 0.002; adjacent pairs 00..09 (9) and 12..23 (11): m = 20; triples 8 + 10."
    d = constructed.loc["2024-01-03"]
    assert (
        d.rv == pytest.approx(22 * 4e-6, rel=1e-12)
        and d.rs_neg == 0
        and d.rs_pos == pytest.approx(d.rv)
    )
    assert d.bpv == pytest.approx(PI2 * 22 / 20 * 20 * 4e-6, rel=1e-12)
    assert d.rq == pytest.approx(22 / 3 * 22 * 0.002**4, rel=1e-12)
    assert d.tq == pytest.approx(22 * 22 / 18 * 18 * (0.002**3) ** (4 / 3) / MU43**3, rel=1e-12)


def test_a_jump_day_by_hand(constructed):
    d = constructed.loc["2024-01-04"]
    rv = 23 * 1e-6 + 0.05**2
    bpv = PI2 * 24 / 23 * (21 * 1e-6 + 2 * 0.05 * 0.001)  # 2 of 23 pairs touch the jump
    tq = 24 * 24 / 22 * (19 * 1e-12 + 3 * (0.05 * 1e-6) ** (4 / 3)) / MU43**3  # 3 of 22 triples do
    z = (1 - bpv / rv) / math.sqrt(THETA / 24 * max(1, tq / bpv**2))
    assert d.rv == pytest.approx(rv, rel=1e-12) and d.bpv == pytest.approx(bpv, rel=1e-12)
    assert d.rs_pos == pytest.approx(11 * 1e-6 + 0.05**2, rel=1e-12) and d.rs_neg == pytest.approx(
        12e-6
    )
    assert d.jump == pytest.approx(rv - bpv, rel=1e-12) and d.tq == pytest.approx(tq, rel=1e-12)
    assert d.jump_z == pytest.approx(z, rel=1e-12) and z > 3.09 and d.jump_flag
    assert d.jump_sig == pytest.approx(rv - bpv, rel=1e-12)
    assert d.rq == pytest.approx(24 / 3 * (23 * 1e-12 + 0.05**4), rel=1e-12)


def test_min_bars_and_drop_short():
    bars = bars_from_returns(
        "2024-01-01 23:00", DAY1 + DAY2 + DAY3, drop=[pd.Timestamp("2024-01-03 10:00")]
    )
    assert realized_measures(bars, min_bars=23).short_day.tolist() == [True, False, True, False]
    kept = realized_measures(bars, drop_short=True)
    assert list(kept.index) == list(pd.date_range("2024-01-02", "2024-01-04"))
    for bad in (0, 25, 2.5):
        with pytest.raises(ConfigError, match="min_bars"):
            realized_measures(bars, min_bars=bad)


def test_a_return_across_a_gap_spans_it_and_is_dropped():
    bars = bars_from_returns(
        "2024-01-01 00:00", [0.01] * 47, drop=pd.date_range("2024-01-01 22:00", periods=4, freq="h")
    )
    r = hourly_returns(bars)
    across = r.loc["2024-01-02 02:00"]
    assert across.span_h == 5 and not across.valid and across.r == pytest.approx(0.05)
    assert across.day == pd.Timestamp("2024-01-02")
    m = realized_measures(bars)
    assert m.n_returns.tolist() == [21, 21] and m.n_gap_returns.tolist() == [0, 1]


def test_an_outage_day_is_flagged_not_filled():
    rets = list(np.resize([0.004, -0.003, 0.002], 24 * 5))
    outage = pd.date_range("2024-01-03 03:00", periods=15, freq="h")  # Jan 3 keeps 9 bars
    bars = bars_from_returns("2024-01-01 00:00", rets, drop=outage)
    m = realized_measures(bars)
    day = m.loc["2024-01-03"]
    assert day.n_bars == 9 and day.short_day and day.n_gap_returns == 1
    r = hourly_returns(bars)
    valid = r.r[r.valid & (r.day == pd.Timestamp("2024-01-03"))]
    assert len(valid) == day.n_returns == 8
    assert day.rv == pytest.approx((valid**2).sum(), rel=1e-12)  # what was observed, not rescaled
    assert int(m.n_bars.sum()) == len(bars)  # no bar invented
    t = realized_target(m, 2)
    assert t.loc["2024-01-01":"2024-01-02"].isna().all() and t.loc["2024-01-03"] > 0
    assert trailing_realized_vol(m, 2).loc["2024-01-03":"2024-01-04"].isna().all()
    # a day with no bar at all is a row of NaN, flagged
    none = bars_from_returns(
        "2024-01-01 00:00", rets, drop=pd.date_range("2024-01-02 00:00", periods=24, freq="h")
    )
    gone = realized_measures(none).loc["2024-01-02"]
    assert gone.n_bars == 0 and gone.short_day and np.isnan(gone.rv) and np.isnan(gone.jump_sig)


def test_the_target_sums_the_next_h_days():
    rets = list(np.resize([0.004, -0.003, 0.002, 0.0], 24 * 6))
    m = realized_measures(bars_from_returns("2024-01-01 00:00", rets))
    t = realized_target(m, 3)
    assert t.loc["2024-01-02"] == pytest.approx(
        math.sqrt(365 / 3 * m.rv.loc["2024-01-03":"2024-01-05"].sum())
    )
    assert t.iloc[-3:].isna().all() and t.name == "realized_target"
    assert m.short_day.iloc[0] == False  # noqa: E712  (23 returns >= 20)
    with pytest.raises(ConfigError, match="horizon"):
        realized_target(m, 0)
    with pytest.raises(DataError, match="realized_measures"):
        realized_target(m.drop(columns="short_day"), 3)


def test_bad_bars_are_refused():
    bars = bars_from_returns("2024-01-01 00:00", [0.01] * 30)
    with pytest.raises(DataError, match="unsorted or repeated"):
        realized_measures(bars.iloc[::-1])
    with pytest.raises(DataError, match="close"):
        realized_measures(bars.drop(columns="close"))
    with pytest.raises(DataError, match="tz-naive"):
        realized_measures(bars.tz_localize("UTC"))
    with pytest.raises(DataError, match="whole hour"):
        realized_measures(bars.set_axis(bars.index + pd.Timedelta(minutes=30)))
    broken = bars.copy()
    broken.iloc[3, 3] = np.nan
    with pytest.raises(DataError, match="missing, infinite or <= 0"):
        realized_measures(broken)


# ---------------------------------------------------------------- no look-ahead (property)
N_DAYS = 4
returns_st = st.lists(
    st.floats(-0.05, 0.05, allow_nan=False, allow_subnormal=False),
    min_size=24 * N_DAYS,
    max_size=24 * N_DAYS,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=returns_st,
    other=returns_st,
    cut=st.integers(0, N_DAYS - 2),
    drop_before=st.sets(st.integers(1, 24 * N_DAYS - 1), max_size=6),
    drop_after=st.sets(st.integers(1, 24 * N_DAYS), max_size=30),
    extra_days=st.integers(-1, 2),
)
def test_changing_bars_after_day_t_leaves_every_measure_up_to_t_unchanged(
    base, other, cut, drop_before, drop_after, extra_days
):
    "Bars after the close of day t (any values, removed, more or fewer days) never move days <= t."
    k = 24 * (cut + 1)  # first bar position of day t+1
    n_after = max(0, 24 * (N_DAYS + extra_days) - k)
    changed = base[: k - 1] + (other * 2)[: n_after + 1]  # closes at positions < k are identical
    start = pd.Timestamp("2024-03-01 00:00")
    pos = lambda ps, lo, hi: [start + pd.Timedelta(hours=p) for p in ps if lo <= p < hi]
    a = bars_from_returns(str(start), base, drop=pos(drop_before, 1, k))
    b = bars_from_returns(
        str(start), changed, drop=pos(drop_before, 1, k) + pos(drop_after, k, k + n_after)
    )
    day_t = start + pd.Timedelta(days=cut)
    assert a.loc[: day_t + pd.Timedelta(hours=23)].equals(b.loc[: day_t + pd.Timedelta(hours=23)])
    ma, mb = realized_measures(a), realized_measures(b)
    pd.testing.assert_frame_equal(ma.loc[:day_t], mb.loc[:day_t], check_exact=True)
    pd.testing.assert_series_equal(
        trailing_realized_vol(ma, 2).loc[:day_t],
        trailing_realized_vol(mb, 2).loc[:day_t],
        check_exact=True,
    )


# ---------------------------------------------------------------- the real mirror
@pytest.fixture(scope="module")
def btc(mirror):
    from cryptovol.intraday import read_hourly_csv

    return read_hourly_csv(mirror / "intraday" / "binance" / "BTCUSDT-1h.csv.gz")


def test_btc_outages_are_flagged_not_filled(btc):
    m = realized_measures(btc)
    assert len(m) == (m.index[-1] - m.index[0]).days + 1 and int(m.n_bars.sum()) == len(btc)
    assert int(m.short_day.sum()) == 11 and int(m.n_gap_returns.sum()) == 27
    day = m.loc["2018-02-08"]  # the 34-hour outage: one bar left
    assert day.n_bars == 1 and day.n_returns == 1 and day.short_day and np.isnan(day.bpv)
    assert m.loc["2018-02-09"].short_day and m.loc["2018-02-09"].n_gap_returns == 1
    t = realized_target(m, 7)
    assert t.loc["2018-02-01":"2018-02-08"].isna().all() and t.loc["2018-01-31"] > 0


def test_btc_measures_are_consistent(btc):
    m = realized_measures(btc).dropna()
    np.testing.assert_allclose(m.rv, m.rs_neg + m.rs_pos, rtol=1e-12)
    assert (
        (m.jump >= 0).all()
        and (m.jump_sig <= m.jump).all()
        and (m.rq > 0).all()
        and (m.tq > 0).all()
    )
    assert (
        0.01 < m.jump_flag.mean() < 0.15
    )  # hourly data: many more rejections than alpha, far from all


def test_target_estimator_realized_trains_on_the_realized_target(project):
    """`target.estimator: realized`: the dataset's target is `realized_target` on every date both
    are defined, NaN (never filled) over a short day; without hourly variance it is refused."""
    from cryptovol.config import load_params, with_overrides
    from cryptovol.features import _read_inputs, build_dataset, forward_realized_vol, make_dataset
    from cryptovol.har import load_measures
    from cryptovol.realized import read_inputs

    p = with_overrides(load_params(), **{"target.estimator": "realized"})
    prices, fng = read_inputs("BTC-USD", p)
    # Yahoo's daily bars start in 2014, Binance's hourly ones in 2017-08: no target before
    assert "rv" in prices and prices.loc["2018":, "rv"].notna().mean() > 0.99
    assert prices.loc[:"2017-08-16", "rv"].isna().all()
    ds = make_dataset(prices, fng, p, "BTC-USD")
    h = p["target"]["horizon"]
    expect = realized_target(load_measures("BTC-USD", p), h)
    got = ds.frame["target"].astype("float64")
    both = pd.concat([got, expect.reindex(got.index)], axis=1).dropna()
    # the measures start with data.start; the one target before it reads days after it
    assert len(got.dropna()) - 1 <= len(both) > 1500
    np.testing.assert_allclose(both.iloc[:, 0], both.iloc[:, 1], rtol=1e-6)
    short = prices.index[prices["rv"].isna()]
    tgt = forward_realized_vol(prices, h, "realized")
    assert tgt.loc[short[-1] - pd.Timedelta(days=h) : short[-1] - pd.Timedelta(days=1)].isna().all()
    with pytest.raises(DataError, match="with_realized_variance"):
        forward_realized_vol(prices.drop(columns="rv"), h, "realized")
    # the daily inputs alone (no hourly variance) cannot make that target; build_dataset takes both
    with pytest.raises(DataError, match="realized variance from hourly bars"):
        build_dataset("BTC-USD", p)
    assert (
        build_dataset("BTC-USD", p, inputs=(prices, fng)).frame["target"].equals(ds.frame["target"])
    )
    assert "rv" not in _read_inputs("BTC-USD", p)[0]
