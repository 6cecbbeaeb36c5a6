"""The HTML reports in a real browser (headless Chromium through Playwright), built by a tiny real
pipeline run.

Checks the four things a reader would notice: no console errors, every image loads, the key table
and chart are there, and nothing is fetched from the network (every request is recorded; only file:
and data: URLs are allowed).
"""

import json, os, shutil

import numpy as np
import pandas as pd
import pytest

from test_e2e import _cli, _tiny_params

CHROMIUM = (
    os.environ.get("CRYPTOVOL_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
    or "/usr/bin/chromium"
)


def _playwright():
    "sync_playwright, or a skip that says what is missing and how to install it."
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: `pip install -e .[dev]` (make setup) installs it")
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium (apt-get "
            "install chromium), or set CRYPTOVOL_CHROMIUM to a Chromium binary"
        )
    return sync_playwright


def _backtest_from(rep, path):
    """A summary in `cryptovol backtest`'s shape built from the tiny run's real test-window
    predictions (one fold), to render that section."""
    from cryptovol.evaluate import qlike_loss

    m = json.loads((rep / "metrics.json").read_text())
    pred = pd.read_csv(rep / "predictions.csv", parse_dates=["date"], index_col="date")
    best = m["best_baseline"]
    fc = [c for c in pred if c != "actual"]
    per_year = {
        str(y): {f: float(np.mean(qlike_loss(g.actual.to_numpy(), g[f].to_numpy()))) for f in fc}
        for y, g in pred.groupby(pred.index.year)
    }
    q = m["forecasts"]
    coin = {
        "coin": "BTC-USD",
        "folds": 1,
        "days": m["n_test"],
        "start": m["test_start"],
        "end": m["test_end"],
        "best_classical": best,
        "best_classical_qlike": q[best]["qlike"],
        "model_qlike": q["model"]["qlike"],
        "ratio": q["model"]["qlike"] / q[best]["qlike"],
        "dm_qlike_p": m["dm"][best]["qlike_pvalue"],
        "dm_qlike_stat": m["dm"][best]["qlike_stat"],
        "mcs": ["model", best],
    }
    ranks = {
        "qlike": {f: float(i + 1) for i, f in enumerate(sorted(fc, key=lambda f: q[f]["qlike"]))}
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "coins": {"BTC-USD": coin},
                "per_year_qlike": {"BTC-USD": per_year},
                "mean_rank": ranks,
            }
        )
    )
    return coin


@pytest.fixture(scope="module")
def tiny_reports(tmp_path_factory, mirror):
    """A 1-coin, 2-epoch pipeline run in a throw-away project, its evaluate page and the index (with
    a backtest section)."""
    import cryptovol.config as config

    root = tmp_path_factory.mktemp("browser")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for f in ("params.yaml", "settings.ini"):
        shutil.copy(os.path.join(repo, f), root / f)
    (root / "nbs").symlink_to(os.path.join(repo, "nbs"))
    mp = pytest.MonkeyPatch()
    mp.setenv("CRYPTOVOL_ROOT", str(root))
    mp.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    config.reset_params()
    try:
        _tiny_params(root)
        _cli("pipeline", "--crypto_symbol", "BTC-USD", "--no_report", root=root)
        from cryptovol.report import build_index, build_report

        (page,) = build_report("BTC-USD", notebooks=["05_evaluate.ipynb"])
        coin = _backtest_from(
            root / "reports" / "BTC-USD", root / "reports" / "backtest" / "summary.json"
        )
        index = build_index(["BTC-USD"])
        yield {"index": index, "coin": page, "backtest": coin}
    finally:
        mp.undo()
        config.reset_params()


def _open(url):
    """Load `url` in headless Chromium; return (console errors, non-local requests, image states,
    page html, locator counts)."""
    sync_playwright = _playwright()
    errors, requests, blocked = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
            page.on("request", lambda r: requests.append(r.url))

            def route(r):
                if r.request.url.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(url, wait_until="load")
            page.wait_for_timeout(500)  # let Plotly finish drawing
            images = page.evaluate(
                "Array.from(document.images).map(i => ({src: i.src.slice(0, 60), ok: "
                "i.complete && i.naturalWidth > 0}))"
            )
            info = page.evaluate(
                "() => ({plots: document.querySelectorAll('.js-plotly-plot').length,\n"
                "                                             "
                "tables: document.querySelectorAll('table').length, math: "
                "document.querySelectorAll('math').length,\n"
                "                                             "
                "mathText: Array.from(document.querySelectorAll('math')).filter(m => "
                "m.getBoundingClientRect().width > 0).map(m => m.textContent),\n"
                "                                             "
                "title: document.title, text: document.body.innerText,\n"
                "                                             "
                "emptyCells: Array.from(document.querySelectorAll('.jp-Cell')).filter(c => "
                "c.innerText.trim() === '' && !c.querySelector('img')).length})"
            )
        finally:
            browser.close()
    return (
        errors,
        [u for u in requests if not u.startswith(("file:", "data:"))] + blocked,
        images,
        info,
    )


def test_index_in_browser(tiny_reports):
    errors, remote, images, info = _open(tiny_reports["index"].as_uri())
    assert not errors, f"console errors on index.html: {errors}"
    assert not remote, f"index.html fetched from the network: {remote}"
    assert all(i["ok"] for i in images), (
        f"images that did not load: {[i for i in images if not i['ok']]}"
    )
    # the QLIKE-ratio chart, the rank heatmap, the per-year chart, the backtest rank and the coin's
    # forecast chart are drawn
    assert info["plots"] >= 5, f"expected >= 5 drawn Plotly charts, found {info['plots']}"
    text = info["text"]
    assert (
        "BTC-USD" in text
        and "best classical" in text
        and "Walk-forward backtest" in text
        and "QLIKE by year" in text
    )
    bt = tiny_reports["backtest"]
    assert f"{bt['start']} to {bt['end']}" in text, "the key table does not show the test window"
    assert "362.0000" not in text and ".0000" not in text, "numbers are not formatted"


def test_index_key_table_and_chart(tiny_reports):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(tiny_reports["index"].read_text(), "html.parser")
    table = soup.select_one("#overview table")
    assert table is not None, "the key table (#overview) is missing"
    head = [th.get_text(" ", strip=True) for th in table.select("thead th")]
    assert {"best classical", "model QLIKE", "ratio", "DM p (QLIKE)"} <= set(head), head
    row = {
        h: td.get_text(strip=True)
        for h, td in zip(head[1:], table.select("tbody tr")[0].select("td"))
    }
    m = json.loads((tiny_reports["index"].parent / "BTC-USD" / "metrics.json").read_text())
    best = m["best_baseline"]
    assert row["best classical"] == best
    assert row["days"] == str(m["n_test"]), "a count is not printed as an integer"
    assert (
        abs(float(row["ratio"]) - m["forecasts"]["model"]["qlike"] / m["forecasts"][best]["qlike"])
        < 5e-3
    )
    assert soup.select_one("#qlike-chart .plotly-graph-div") is not None, (
        "the QLIKE-ratio chart is missing"
    )
    assert soup.select("td.best"), "no best value is highlighted"
    assert soup.select_one('a[href="BTC-USD/html/05_evaluate.html"]') is not None


def test_coin_page_in_browser(tiny_reports):
    errors, remote, images, info = _open(tiny_reports["coin"].as_uri())
    assert not errors, f"console errors on the evaluate page: {errors}"
    assert not remote, (
        f"the evaluate page fetched from the network (MathJax/require.js from a CDN?): {remote}"
    )
    assert len(images) >= 3 and all(i["ok"] for i in images), f"images: {images}"
    assert any("λ" in t and "0.94" in t for t in info["mathText"]), (
        f"EWMA's λ = 0.94 is not rendered as MathML: {info['mathText']}"
    )
    assert "$\\lambda" not in info["text"] and "\\lambda" not in info["text"], (
        "LaTeX source is visible"
    )
    assert info["title"].startswith("BTC-USD · Evaluate") and "test window" in info["title"], info[
        "title"
    ]
    assert "Analysis for BTC-USD" in info["text"] and "`symbol`" not in info["text"]
    assert info["tables"] >= 2, "the comparison and DM tables are missing"
    assert info["emptyCells"] == 0, f"{info['emptyCells']} empty cells (gaps) on the page"
