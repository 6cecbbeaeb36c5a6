"""rv_ridge (cryptovol.rvnet.RVRidge): the ridge on the residual of rv_net's anchor. No look-ahead,
the penalty chosen on validation only, an infinite penalty is the anchor times one factor, the
forecast's kind and spread, the memo, params and registration.

Real measures of four coins from the offline mirror (conftest's `mirror`), cut to 2020-09..2022-03
as in tests/test_rvnet.py, whose fixtures it reuses. No TensorFlow: every fit takes a second.
"""

import numpy as np
import pandas as pd
import pytest

from cryptovol.config import ConfigError
from test_rvnet import H, UNTIL, after_until_times_five, coin_data, tiny, universe  # noqa: F401


def spec(**kw):
    from cryptovol.rvnet import RVRidgeSpec

    return RVRidgeSpec(rows=tiny(), **kw)


def test_spec_from_params_reads_rv_nets_rows_and_its_own_penalties():
    from cryptovol.forecasters import FORECASTERS, make_forecasters
    from cryptovol.rvnet import ALPHAS, RVNetSpec, RVRidge, RVRidgeSpec

    assert FORECASTERS["rv_ridge"] is RVRidge and RVRidge.classical is False
    assert RVRidge.anchor == "rv_log_har_pool"
    p = {"rv_net": {"lookback": 20, "units": 64}, "rv_ridge": {"alphas": [1, 10]}}
    s = RVRidgeSpec.from_params(p)
    # only the rows' keys come over: rv_net's network size does not make a different ridge
    assert s.rows == RVNetSpec(lookback=20) and s.alphas == (1.0, 10.0)
    assert RVRidgeSpec.from_params({}).alphas == ALPHAS and len(ALPHAS) == 13
    with pytest.raises(ConfigError, match="unknown key"):
        RVRidgeSpec.from_params({"rv_ridge": {"alpha": 1}})
    with pytest.raises(ConfigError, match="penalties > 0"):
        RVRidgeSpec(alphas=(0.0,))
    with pytest.raises(ConfigError, match=">= 7"):
        RVRidgeSpec(rows=RVNetSpec(lookback=5))
    params = {"evaluation": {"forecasters": ["rv_ridge"]}}
    assert [type(x) for x in make_forecasters(params)] == [RVRidge]


def test_window_summaries_are_the_last_values_and_the_means():
    from cryptovol.rvnet import window_summaries

    X = np.arange(2 * 10 * 3, dtype="float32").reshape(2, 10, 3)
    F = window_summaries(X)
    assert F.shape == (2, 15) and F.dtype == np.float64
    np.testing.assert_array_equal(F[:, 0:3], X[:, -1])
    np.testing.assert_array_equal(F[:, 6:9], X[:, -3])
    np.testing.assert_allclose(F[:, 9:12], X[:, -7:].mean(axis=1))
    np.testing.assert_allclose(F[:, 12:15], X.mean(axis=1))


def test_the_fit_reads_nothing_after_until(universe):  # noqa: F811
    from cryptovol.rvnet import fit_rvridge

    a = fit_rvridge(universe, UNTIL, H, spec())
    b = fit_rvridge(after_until_times_five(universe), UNTIL, H, spec())
    assert a.summary == b.summary and a.shift == b.shift and a.spread == b.spread
    np.testing.assert_array_equal(a.model[-1].coef_, b.model[-1].coef_)
    fa = a.forecast(universe, "BTC-USD")
    fb = b.forecast(after_until_times_five(universe), "BTC-USD")
    pd.testing.assert_frame_equal(fa[fa.index <= UNTIL], fb[fb.index <= UNTIL])


def test_the_penalty_is_the_least_validation_qlike_and_refit_on_every_known_row(universe):  # noqa: F811
    from cryptovol.rvnet import _ridge, fit_rvridge, origin_rows, shifted_qlike, window_summaries

    alphas = (0.1, 10.0, 1e4)
    res = fit_rvridge(universe, UNTIL, H, spec(alphas=alphas))
    _, _, d, tr, va = origin_rows(universe, UNTIL, H, tiny())
    F = window_summaries(d.X)
    val = {a: shifted_qlike(d.z[va], _ridge(a).fit(F[tr], d.z[tr]).predict(F[va])) for a in alphas}
    best = min(val, key=lambda a: val[a][0])
    assert res.summary["alpha"] == best and res.summary["val_qlike"] == val[best][0]
    assert res.shift == val[best][1] and res.spread == val[best][2]
    # refitted on the training rows, the purged gap and validation: more rows than the two
    assert res.summary["n_refit"] > len(tr) + len(va)
    last = d.date[np.isfinite(d.z)].max()
    assert last + np.timedelta64(H, "D") <= np.datetime64(UNTIL, "ns")


def test_shifted_qlike_is_minimised_by_its_shift():
    from cryptovol.rvnet import shifted_qlike

    rng = np.random.default_rng(0)
    z, zhat = rng.normal(0.3, 0.5, 500), rng.normal(0, 0.1, 500)
    q, k, s = shifted_qlike(z, zhat)
    for dk in (-0.05, 0.05):
        e = z - zhat - (k + dk)
        assert np.mean(np.exp(e) - e - 1) > q
    assert s == pytest.approx(np.std(z - zhat))


def test_an_infinite_penalty_is_the_anchor_times_one_factor(universe):  # noqa: F811
    from cryptovol.rvnet import fit_rvridge

    res = fit_rvridge(universe, UNTIL, H, spec(alphas=(1e15,)))
    f = res.forecast(universe, "ETH-USD")
    ratio = f["mean_rv"] / f["anchor_rv"]
    assert ratio.std() < 1e-9 * ratio.mean() and ratio.notna().all()


def test_the_forecaster_gives_a_lognormal_forecast_and_one_fit_per_origin(universe):  # noqa: F811
    from cryptovol.forecasters import Origin, walk_forward
    from cryptovol.har import RVLogHARPooled
    from cryptovol.rvnet import RVRidge, clear_memo

    clear_memo()
    data = coin_data(universe)
    ridge = RVRidge(spec())
    fit = ridge.fit(data, UNTIL)
    assert ridge.fit(coin_data(universe, "ETH-USD"), UNTIL).res is fit.res  # memo: one fit
    assert set(fit.params) == {"alpha", "val_qlike", "val_qlike_anchor", "n_train", "spread_scale"}
    dates = pd.date_range(UNTIL + pd.Timedelta(days=1), "2022-03-20")
    fc = fit.forecast(data, dates)
    assert fc.kind == "lognormal" and len(fc.vol) == len(dates) and (fc.vol > 0).all()
    # half the spread of log RV, rescaled to the scored target
    np.testing.assert_allclose(fc.spread, fit.scale * fit.res.spread / 2)
    lo, hi = fc.interval(0.8)
    assert (lo < fc.vol).all() and (fc.vol < hi).all()
    rec = walk_forward([ridge, RVLogHARPooled()], data, [Origin(0, UNTIL, dates)])
    assert rec.forecasts["rv_ridge"].kind == "lognormal" and rec.losses().notna().all().all()


def test_target_scale_is_the_classical_band_for_a_constant_spread():
    from cryptovol.forecasters import _log_spread
    from cryptovol.rvnet import target_scale

    rng = np.random.default_rng(0)
    idx = pd.date_range("2021-01-01", periods=400)
    vol = pd.Series(np.exp(rng.normal(-0.5, 0.3, 400)), idx)
    target = vol * np.exp(rng.normal(0.0, 0.4, 400))
    until = idx[300]
    ones = pd.Series(1.0, idx)
    test = target_scale(target, vol, ones, until, H)
    assert test == pytest.approx(_log_spread(target, vol, until, H), rel=1e-12)
    # twice the errors, twice the factor; a spread twice as wide needs half the factor
    assert target_scale(vol * (target / vol) ** 2, vol, ones, until, H) == pytest.approx(2 * test)
    assert target_scale(target, vol, 2 * ones, until, H) == pytest.approx(test / 2)
    # only training rows count: the errors after `until` may be anything
    wild = target.where(idx <= until, target * 50)
    assert target_scale(wild, vol, ones, until, H) == pytest.approx(test)
    assert target_scale(target.where(idx > until), vol, ones, until, H) == 1.0  # no rows


def test_intervals_describe_the_scored_target_not_log_rv(universe):  # noqa: F811
    from dataclasses import replace

    from cryptovol.rvnet import RVRidge

    data = coin_data(universe)
    rng = np.random.default_rng(1)
    # a noisier target with the same mean variance, as close-to-close vol is to realized vol
    noisy = data.target * np.exp(rng.normal(-0.09, 0.3, len(data.target)))
    fit = RVRidge(spec()).fit(data, UNTIL)
    wide = RVRidge(spec()).fit(replace(data, target=noisy), UNTIL)
    assert wide.res is fit.res and wide.scale > 1.3 * fit.scale  # one fit, two bands
    assert wide.spread == pytest.approx(wide.scale * fit.res.spread / 2)  # what a record keeps
    fc = wide.forecast(replace(data, target=noisy))
    lo, hi = fc.interval(0.8)
    train = fc.vol.index <= UNTIL - pd.Timedelta(days=H)
    a = noisy[train]
    ok = a.notna() & lo[train].notna()
    inside = ((a >= lo[train]) & (a <= hi[train]))[ok].mean()
    assert 0.74 < inside < 0.86  # the training rows' 80% band covers about 80% of them
    pd.testing.assert_series_equal(fc.vol, fit.forecast(data).vol)  # the point is unchanged
