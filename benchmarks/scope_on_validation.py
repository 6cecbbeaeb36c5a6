"""Global or per-coin? Both scopes scored on the same VALIDATION windows (the test window is never
predicted).

    .venv/bin/python benchmarks/scope_on_validation.py  # -> results/scope_validation.{json,md}

With params.yaml's calendar split (validation 2023), every universe coin's dataset is built in a
throw-away project root; the global model is trained over the universe (`fit_universe`) and one
per-coin network per reported coin (`cryptovol.train.train`, `model.scope: per_coin` settings). Each
is scored by QLIKE of its point forecast on each reported coin's validation windows, beside the
validation-chosen best classical forecaster fitted on the training rows.
"""

from __future__ import annotations

import argparse, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    add_common_args,
    configure_env,
    machine_info,
    make_root,
    md_table,
    parse_set,
    release_root,
    run_main,
    write_outputs,
)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(ap, "scope_validation")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import os

    root = make_root(args.workdir, parse_set(args.set))
    configure_env(root, args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR"), args.verbose)
    import numpy as np
    from cryptovol.config import get_params, with_overrides
    from cryptovol.evaluate import (
        baseline_forecasts,
        best_baseline_on_validation,
        dataset_range_var,
        qlike_loss,
        training_end,
    )
    from cryptovol.features import build_dataset
    from cryptovol.globalnet import fit_universe
    from cryptovol.train import load_trained, model_inputs, train

    p = get_params()
    t0 = time.perf_counter()
    datasets = {c: build_dataset(c, p) for c in p["universe"]}
    res = fit_universe(p, verbose=0)
    rows = []
    for s in p["symbols"]:
        ds = datasets[s]
        yv = np.asarray(ds.y_val, "float64")
        glob = load_trained(root / "models" / s).predict(model_inputs(ds, "val"))
        t1 = time.perf_counter()
        per = train(
            s,
            with_overrides(p, **{"model.scope": "per_coin"}),
            verbose=0,
            out_dir=root / "per_coin" / s,
        )
        per_pred = per.trained.predict(model_inputs(ds, "val", per.trained))
        base = baseline_forecasts(
            ds.frame["log_return"],
            training_end(ds.frame.index, ds.dates_train[-1], ds.horizon),
            ds.horizon,
            p,
            ds.frame["target"],
            dataset_range_var(ds, p),
        )
        best = best_baseline_on_validation(ds, base)
        rows.append(
            {
                "coin": s,
                "global": float(np.mean(qlike_loss(yv, glob))),
                "per_coin": float(np.mean(qlike_loss(yv, per_pred))),
                "best_classical": best["best_baseline"],
                "best_classical_qlike": best["validation_qlike"][best["best_baseline"]],
                "per_coin_seconds": round(time.perf_counter() - t1, 1),
            }
        )
        print(
            f"{s}: validation QLIKE global {rows[-1]['global']:.4f}, per-coin "
            f"{rows[-1]['per_coin']:.4f}, "
            f"{rows[-1]['best_classical']} {rows[-1]['best_classical_qlike']:.4f}",
            file=sys.stderr,
            flush=True,
        )
    mean = {
        k: float(np.mean([r[k] for r in rows]))
        for k in ("global", "per_coin", "best_classical_qlike")
    }
    rows.append({"coin": "mean", **mean})
    md = [
        f"# Global vs per-coin on validation ({p['dataset']['val_start']} to "
        f"{p['dataset']['test_start']}, h = {p['target']['horizon']})",
        "",
        "QLIKE of each scope's point forecast on the reported coins' validation windows; "
        "the best classical forecaster is chosen "
        "and scored on the same windows (fitted on the training rows).",
        "",
        md_table(
            rows,
            [
                ("coin", "coin"),
                ("global", "global model"),
                ("per_coin", "per-coin network"),
                ("best_classical", "best classical"),
                ("best_classical_qlike", "its QLIKE"),
            ],
        ),
        "",
        f"Total {time.perf_counter() - t0:.0f} s; global model: "
        f"{res.summary['ensemble_size']} member(s) kept, best epochs {res.summary['best_epochs']}.",
    ]
    write_outputs(
        Path(args.out),
        args.name or "scope_validation",
        {"rows": rows, "machine": machine_info(), "global": res.summary},
        "\n".join(md),
    )
    release_root(root, args)
    return 0


if __name__ == "__main__":
    run_main(main, "scope_on_validation.py")
