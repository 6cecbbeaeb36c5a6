"""End to end: the CLI pipeline for one coin with a tiny configuration, then its HTML report."""

import re, subprocess, sys

import yaml

from cryptovol.config import reset_params

TINY = {"symbols": ["BTC-USD"]}
TINY_SECTIONS = {
    "dataset": {"sequence_length": 20},
    # the global path: test_global.py
    "model": {
        "scope": "per_coin",
        "type": "simple",
        "lstm_units": [8],
        "dropout": [0.1],
        "dense_units": [8],
    },
    "training": {"epochs": 2, "batch_size": 64},
    "evaluation": {"permutation_repeats": 1},
    "rv_net": {"epochs": 2, "seeds": 1, "units": 4, "dense_units": 4},
}


def _tiny_params(root):
    p = yaml.safe_load((root / "params.yaml").read_text())
    p.update(TINY)
    for sec, kv in TINY_SECTIONS.items():
        p[sec].update(kv)
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    reset_params()


def _cli(*args, root):
    r = subprocess.run(
        [sys.executable, "-m", "cryptovol", *args],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=900,
    )
    assert r.returncode == 0, (
        f"cryptovol {' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    )
    return r


def test_pipeline_and_report_for_one_coin(project):
    _tiny_params(project)
    _cli("pipeline", "--crypto_symbol", "BTC-USD", "--no_report", root=project)
    rep = project / "reports" / "BTC-USD"
    metrics = yaml.safe_load((rep / "metrics.json").read_text())
    assert set(metrics["forecasts"]) >= {"model", "naive", "ewma", "garch", "har"}
    assert {"se_pvalue", "qlike_pvalue"} <= set(metrics["dm"]["har"])
    assert (rep / "predictions.csv").read_text().startswith("date,actual,model")
    assert len(list((rep / "figures").glob("*.png"))) >= 5

    from cryptovol.report import build_index, build_report

    (page,) = build_report("BTC-USD", notebooks=["05_evaluate.ipynb"])
    html = page.read_text()
    assert "<table" in html and "qlike" in html.lower(), (
        "the comparison table is missing from the report"
    )
    assert len(re.findall(r"data:image/png;base64", html)) >= 3, (
        "the report's figures are not embedded"
    )
    index = build_index(["BTC-USD"]).read_text()
    assert "BTC-USD/html/05_evaluate.html" in index and "<table" in index
