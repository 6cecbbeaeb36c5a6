"""Ablation: the frozen log-HAR anchor alone (no network) on each coin's test window, beside the
full model.

    .venv/bin/python benchmarks/anchor_ablation.py          # -> results/anchor_ablation.{json,md}

The anchor is fitted exactly as `cryptovol.train` fits it (`cryptovol.backtest.anchor_forecast`: OLS
of the log forward vols on the log of `model.anchor_features` on the last day of each *training*
window) and read off at column h-1. The full model's test QLIKE is taken from
`results/accuracy.json` (run `benchmarks/accuracy.py` first) when present. The difference is what
the recurrent network adds on top of the anchor.
"""

from __future__ import annotations

import argparse, contextlib, io, json, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    release_root,
    run_main,
    RESULTS,
    add_common_args,
    configure_env,
    machine_info,
    make_root,
    md_table,
    parse_set,
    write_outputs,
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", nargs="+", help="coins (default: `symbols` in params.yaml)")
    ap.add_argument(
        "--accuracy-json",
        default=str(RESULTS / "accuracy.json"),
        help="accuracy.py results with the full model's QLIKE",
    )
    add_common_args(ap, "anchor_ablation")
    args = ap.parse_args(argv)
    import os

    root = make_root(args.workdir, parse_set(args.set))
    try:
        configure_env(root, args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR"), args.verbose)
        import numpy as np
        from cryptovol.config import get_params
        from cryptovol.evaluate import qlike_loss
        from cryptovol.features import build_dataset
        from cryptovol.backtest import anchor_forecast

        p = get_params()
        full = {}
        if Path(args.accuracy_json).is_file():
            for g in json.loads(Path(args.accuracy_json).read_text())["groups"]:
                full[g["symbol"]] = {
                    k: r["metrics"]["forecasts"]["model"]["qlike"] for k, r in g["runs"].items()
                }
                full[g["symbol"]]["best"] = (
                    g["runs"]["advanced"]["metrics"]["best_baseline"]
                    if "advanced" in g["runs"]
                    else None
                )
                if full[g["symbol"]]["best"]:
                    full[g["symbol"]]["best_qlike"] = g["runs"]["advanced"]["metrics"]["forecasts"][
                        full[g["symbol"]]["best"]
                    ]["qlike"]
        rows, records = [], []
        for sym in args.symbols or p["symbols"]:
            with contextlib.redirect_stdout(io.StringIO()):
                ds = build_dataset(sym, p)
            pred = anchor_forecast(ds, p["model"]["anchor_features"])
            q = float(np.mean(qlike_loss(np.asarray(ds.y_test, "float64"), pred)))
            f = full.get(sym, {})
            rec = {"symbol": sym, "anchor_only_qlike": q, "n_test": int(len(pred)), **f}
            records.append(rec)
            rows.append(
                {
                    "coin": sym,
                    "anchor": q,
                    "advanced": f.get("advanced"),
                    "hybrid": f.get("hybrid"),
                    "gain": (q - f["advanced"]) if "advanced" in f else None,
                    "best": f"{f['best']} {f['best_qlike']:.4f}" if f.get("best") else None,
                }
            )
        cols = [
            ("coin", "coin"),
            ("anchor", "anchor alone"),
            ("advanced", "advanced (anchor + LSTM)"),
            ("hybrid", "hybrid"),
            ("gain", "anchor − advanced"),
            ("best", "best baseline (validation-chosen)"),
        ]
        md = (
            "# Anchor-only ablation (test-window QLIKE, h = %d)\n\nCommand: `python "
            "benchmarks/anchor_ablation.py`\n\n"
            % p["target"]["horizon"]
            + md_table(rows, cols)
            + "\n\nPositive `anchor − advanced`: the network improves on its own anchor.\n"
        )
        write_outputs(
            args.out,
            args.name or "anchor_ablation",
            {"machine": machine_info(tensorflow=False), "records": records},
            md,
        )
    finally:
        release_root(root, args)
    return 0


if __name__ == "__main__":
    run_main(main, "anchor_ablation.py")
