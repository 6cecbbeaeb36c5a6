"""Model selection on the VALIDATION window: which architecture/params to ship, decided without the
test window.

    .venv/bin/python benchmarks/select_model.py           # candidates below x default coins
    .venv/bin/python benchmarks/select_model.py --candidates seed anchor_small --seeds 42 7 \\
        --symbols BTC-USD
    .venv/bin/python benchmarks/select_model.py --global  # the global model (select_global.py)

For each coin the pipeline's dataset is built once (`build_dataset`, default params); each candidate
(a named set of params overrides) is trained with `cryptovol.train.train` and scored by QLIKE on the
validation windows, next to the four baselines fitted on the training rows only. Test arrays are
never predicted or scored here: the default in params.yaml is the candidate with the best mean
validation rank, and `benchmarks/accuracy.py` then reports its test numbers once.
"""

from __future__ import annotations

import argparse, contextlib, io, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    release_root,
    run_main,
    add_common_args,
    configure_env,
    machine_info,
    make_root,
    md_table,
    parse_set,
    write_outputs,
)
from accuracy import model_val_qlike, validation_baselines

SMALL = {"model.lstm_units": [32, 16], "model.dropout": [0.2, 0.2], "model.batch_norm": False}
# : named params overrides compared on the validation window (the first is the seed project's
# architecture)
CANDIDATES = {
    "seed": {
        "model.har_anchor": False,
        "model.lstm_units": [128, 64, 32],
        "model.dropout": [0.2, 0.2, 0.3],
        "model.batch_norm": True,
    },
    "small": {"model.har_anchor": False, **SMALL},
    "anchor": {
        "model.har_anchor": True,
        "model.lstm_units": [128, 64, 32],
        "model.dropout": [0.2, 0.2, 0.3],
        "model.batch_norm": True,
    },
    "anchor_small": {"model.har_anchor": True, **SMALL},
}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--symbols", nargs="+", help="coins (default: `symbols` in params.yaml)")
    ap.add_argument(
        "--candidates",
        nargs="+",
        choices=list(CANDIDATES),
        default=list(CANDIDATES),
        help="candidates to compare",
    )
    ap.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[42],
        help="training seeds per candidate (results averaged)",
    )
    ap.add_argument(
        "--model-type", default="advanced", choices=("simple", "advanced", "ensemble", "hybrid")
    )
    add_common_args(ap, "selection")
    return ap.parse_args(argv)


def summarise(records: list[dict], candidates: list[str]) -> dict:
    """Mean validation QLIKE per candidate and coin (over seeds), rank among candidates, and the gap
    to the best baseline."""
    import numpy as np

    table, ranks = {}, {c: [] for c in candidates}
    for rec in records:
        means = {c: float(np.mean(v)) for c, v in rec["val_qlike"].items() if v}
        for r, c in enumerate(sorted(means, key=means.get), 1):
            ranks[c].append(r)
        best_b = rec["validation"]["best_by_qlike"]
        table[rec["symbol"]] = {
            "candidates": means,
            "best_baseline": best_b,
            "best_baseline_qlike": rec["validation"]["metrics"][best_b]["qlike"],
        }
    mean_rank = {c: float(np.mean(r)) if r else None for c, r in ranks.items()}
    beats = {
        c: sum(t["candidates"].get(c, np.inf) < t["best_baseline_qlike"] for t in table.values())
        for c in candidates
    }
    ok = [c for c in candidates if mean_rank[c] is not None]
    return {
        "by_symbol": table,
        "mean_rank": mean_rank,
        "beats_best_baseline": beats,
        "chosen": min(ok, key=lambda c: (mean_rank[c], c)) if ok else None,
    }


def markdown(result: dict) -> str:
    s, cands = result["summary"], result["candidates"]
    cols = (
        [("coin", "validation QLIKE")]
        + [(c, c) for c in cands]
        + [("best", "best baseline (validation)")]
    )
    rows = [
        {
            "coin": sym,
            **t["candidates"],
            "best": f"{t['best_baseline']} {t['best_baseline_qlike']:.4f}",
        }
        for sym, t in s["by_symbol"].items()
    ]
    rows.append({"coin": "mean rank", **{c: s["mean_rank"][c] for c in cands}, "best": ""})
    rows.append(
        {
            "coin": "beats best baseline",
            **{c: f"{s['beats_best_baseline'][c]}/{len(s['by_symbol'])}" for c in cands},
            "best": "",
        }
    )
    lines = [
        f"Validation-window QLIKE (lower is better), {result['model_type']} model, seeds "
        f"{result['seeds']} averaged; "
        f"test window not used. Chosen: **{s['chosen']}**.",
        "",
        md_table(rows, cols),
        "",
        "Candidates (params overrides):",
        "",
    ]
    lines += [f"- `{c}`: `{CANDIDATES[c]}`" for c in cands]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # model.scope global: learning curves and selection of the global model
    # (benchmarks/select_global.py)
    if "--global" in argv:
        from select_global import main as select_global

        return select_global([a for a in argv if a != "--global"])
    args = parse_args(argv)
    import os

    root = make_root(args.workdir, parse_set(args.set))
    try:
        configure_env(root, args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR"), args.verbose)
        from tqdm.auto import tqdm
        from cryptovol.config import get_params, with_overrides
        from cryptovol.features import build_dataset
        from cryptovol.train import train

        base = get_params()
        symbols = args.symbols or base["symbols"]
        records, t0 = [], time.perf_counter()
        bar = tqdm(
            total=len(symbols) * len(args.candidates) * len(args.seeds),
            unit="run",
            desc="selection",
        )
        sink = (
            (lambda: contextlib.nullcontext())
            if args.verbose
            else (lambda: contextlib.redirect_stdout(io.StringIO()))
        )
        for sym in symbols:
            with sink():
                ds = build_dataset(sym, base)
            rec = {
                "symbol": sym,
                "validation": validation_baselines(ds, base),
                "val_qlike": {},
                "seconds": {},
            }
            for c in args.candidates:
                rec["val_qlike"][c], rec["seconds"][c] = [], []
                for seed in args.seeds:
                    bar.set_postfix_str(f"{sym} {c} (seed {seed})")
                    p = with_overrides(
                        base,
                        **{**CANDIDATES[c], "model.type": args.model_type, "training.seed": seed},
                    )
                    t = time.perf_counter()
                    with sink():
                        res = train(sym, p, dataset=ds, verbose=0)
                    rec["val_qlike"][c].append(model_val_qlike(res.trained, ds))
                    rec["seconds"][c].append(round(time.perf_counter() - t, 1))
                    bar.update(1)
            records.append(rec)
        bar.close()
        result = {
            "machine": machine_info(),
            "model_type": args.model_type,
            "seeds": args.seeds,
            "candidates": args.candidates,
            "records": records,
            "summary": summarise(records, args.candidates),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        write_outputs(args.out, args.name or "selection", result, markdown(result))
    finally:
        release_root(root, args)
    return 0


if __name__ == "__main__":
    run_main(main, "select_model.py")
