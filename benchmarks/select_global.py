"""Learning curves and selection of the global model on the VALIDATION window (the test window is
never predicted).

    .venv/bin/python benchmarks/select_global.py          # every variant below, one seed each
    .venv/bin/python benchmarks/select_global.py --variants default small_units --seeds 42 43
    .venv/bin/python benchmarks/select_model.py --global  # the same (select_model.py hands over)

Every universe coin's dataset is built once with params.yaml (one calendar split); each variant (a
named set of params overrides) trains `--seeds` members with `cryptovol.globalnet.train_global` and
is scored by QLIKE of sqrt(E[sigma^2]) at the target horizon on the validation windows of the
reported coins, beside the corrected pooled anchor alone (the untrained network). The per-epoch
validation QLIKE of every variant is drawn in `global_learning_curves.png`: against model size,
amount of data (one coin vs the universe), learning rate, inputs. Validation throughput (samples/s
per epoch) is recorded too.
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

VOL_INPUTS = [
    "rv_7",
    "rv_14",
    "rv_30",
    "parkinson_7",
    "parkinson_14",
    "parkinson_30",
    "garman_klass_7",
    "garman_klass_14",
    "garman_klass_30",
    "log_return_1",
    "log_return_7",
]
#: named overrides of params.yaml; `data: one_coin` trains on the first reported coin alone
VARIANTS = {
    "default": {},
    "units_8": {"global_model.units": 8, "global_model.dense_units": 8},
    "units_64": {"global_model.units": 64, "global_model.dense_units": 64},
    "one_coin": {"data": "one_coin"},
    "lr_1e-4": {"global_model.learning_rate": 1.0e-4},
    "lr_1e-3": {"global_model.learning_rate": 1.0e-3},
    "vol_features": {"global_model.input_features": VOL_INPUTS},
    "no_embedding": {"global_model.embedding_dim": 0},
    "vol_no_embedding": {
        "global_model.input_features": VOL_INPUTS,
        "global_model.embedding_dim": 0,
    },
    "dropout_0.3": {"global_model.dropout": 0.3},
    "lstm": {"global_model.cell": "lstm"},
}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="variants to compare",
    )
    ap.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[42],
        help="member seeds per variant (each trained alone, results averaged)",
    )
    ap.add_argument(
        "--windows",
        nargs="+",
        choices=("single", "folds"),
        default=["single", "folds"],
        help="validation windows: the single split's and/or every walk-forward fold's (default "
        "both; scores averaged)",
    )
    add_common_args(ap, "global_selection")
    return ap.parse_args(argv)


def score_variant(name: str, over: dict, datasets: dict, params: dict, seeds, work: Path) -> dict:
    """Train one member per seed for a variant; validation QLIKE (best epoch, and the anchor it
    started from) on the reported coins."""
    import numpy as np
    from cryptovol.config import with_overrides
    from cryptovol import globalnet as g

    over = dict(over)
    data = over.pop("data", "universe")
    p = with_overrides(params, **{**over, "global_model.seeds": 1})
    coins = [params["symbols"][0]] if data == "one_coin" else list(datasets)
    panel = g.build_panel(
        {c: datasets[c] for c in coins},
        p["global_model"]["anchor_features"],
        coins=params["universe"],
    )
    col, rows = int(p["target"]["horizon"]) - 1, []
    for seed in seeds:
        ps = with_overrides(p, **{"training.seed": int(seed)})
        t0 = time.perf_counter()
        res = g.train_global(panel, ps, work / f"{name}_{seed}", verbose=0, progress=False)
        rec = g.load_json(res.out / "history.json")["members"]
        fold = next(iter(rec.values()))
        hist = [float(v) for v in fold.get("val_loss", [])]
        anchor = g.fit_pooled_anchor(panel.splits["train"]["anchor"], panel.targets("train"))
        mu_a, s_a = g.pooled_anchor_forecast(anchor, panel.splits["val"]["anchor"])
        mu, s = g.predict_lognormal(res.model, panel.inputs("val"))
        Y = panel.targets("val")
        per = [c for c in params["symbols"] if c in coins]
        q = lambda m, sd: float(
            np.mean(
                [
                    g.qlike_of(
                        m[panel.rows_of("val", c)],
                        sd[panel.rows_of("val", c)],
                        Y[panel.rows_of("val", c)],
                        col,
                    )
                    for c in per
                ]
            )
        )
        rows.append(
            {
                "seed": seed,
                "val_qlike": q(mu, s),
                "val_qlike_anchor": q(mu_a, s_a),
                "kept_anchor": res.summary["members_kept_anchor"] == 1,
                "best_epoch": res.summary["best_epochs"][0],
                "epochs": res.summary["epochs_run"][0],
                "samples_per_s": res.summary["samples_per_s"],
                "n_params": res.summary["n_params_member"],
                "n_train": panel.n("train"),
                "curve": [fold["val_qlike_h_start"], *fold["val_qlike_h"]],
                "val_loss": hist,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    mean = lambda k: float(np.mean([r[k] for r in rows]))
    return {
        "variant": name,
        "overrides": over | ({"data": data} if data != "universe" else {}),
        "coins_scored": per,
        "val_qlike": mean("val_qlike"),
        "val_qlike_anchor": mean("val_qlike_anchor"),
        "kept_anchor": sum(r["kept_anchor"] for r in rows),
        "best_epoch": mean("best_epoch"),
        "samples_per_s": mean("samples_per_s"),
        "n_params": rows[0]["n_params"],
        "n_train": rows[0]["n_train"],
        "runs": rows,
    }


def validation_windows(params: dict, which) -> dict:
    """{name: (params, datasets)}: the single split's validation (`single`) and each walk-forward
    fold's (`fold_k`), never a test window."""
    from cryptovol.backtest import _read_inputs, fold_dataset, fold_params, global_folds
    from cryptovol.features import make_dataset
    from cryptovol import globalnet as g

    inputs = {c: _read_inputs(c, params) for c in params["universe"]}
    out = {}
    if "single" in which:
        out["single"] = (
            params,
            g.universe_datasets(params, build=lambda c: make_dataset(*inputs[c], params, c)),
        )
    if "folds" in which:
        for fold in global_folds(params, inputs):
            fp = fold_params(params, fold)
            out[f"fold_{fold.k}"] = (
                fp,
                g.universe_datasets(
                    fp, build=lambda c, fp=fp, fold=fold: fold_dataset(*inputs[c], fp, fold, c)
                ),
            )
    return out


def plot_curves(results: list, path: Path) -> None:
    "Validation QLIKE per epoch of every variant (first seed), the anchor as a dotted line."
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {
        "model size": ["default", "units_8", "units_64"],
        "data": ["default", "one_coin"],
        "learning rate": ["default", "lr_1e-4", "lr_1e-3"],
        "inputs": [
            "default",
            "vol_features",
            "no_embedding",
            "vol_no_embedding",
            "dropout_0.3",
            "lstm",
        ],
    }
    by = {r["variant"]: r for r in results}
    fig, axes = plt.subplots(1, 4, figsize=(18, 4), sharey=True)
    for ax, (title, names) in zip(axes, groups.items()):
        for n in names:
            if n not in by:
                continue
            # epoch 0 = the untrained network = the corrected pooled anchor
            c = by[n]["runs"][0]["curve"]
            ax.plot(range(len(c)), c, marker="o", ms=3, label=f"{n} ({by[n]['n_params']:,} w)")
        ax.axhline(
            by.get("default", results[0])["runs"][0]["curve"][0],
            ls=":",
            c="k",
            label="anchor alone (epoch 0)",
        )
        ax.set(title=f"validation QLIKE vs {title}", xlabel="epoch (0: the anchor)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(
        "QLIKE, h-day vol, all coins' validation windows\n(first validation window, first seed)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    import os

    root = make_root(args.workdir, parse_set(args.set))
    configure_env(root, args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR"), args.verbose)
    from cryptovol.config import load_params

    params = load_params(root / "params.yaml")
    t0 = time.perf_counter()
    windows = validation_windows(params, args.windows)
    results = []
    for name in args.variants:
        per = [
            score_variant(name, VARIANTS[name], ds, p, args.seeds, root / "work" / w)
            for w, (p, ds) in windows.items()
        ]
        r = {
            **per[0],
            "by_window": {
                w: {k: x[k] for k in ("val_qlike", "val_qlike_anchor", "kept_anchor", "best_epoch")}
                for w, x in zip(windows, per)
            },
        }
        for k in ("val_qlike", "val_qlike_anchor", "best_epoch", "samples_per_s"):
            r[k] = float(sum(x[k] for x in per) / len(per))
        r["kept_anchor"] = sum(x["kept_anchor"] for x in per)
        results.append(r)
        print(
            f"{name}: val QLIKE {r['val_qlike']:.4f} (anchor {r['val_qlike_anchor']:.4f}), "
            f"best epoch {r['best_epoch']:.1f}, "
            f"{r['samples_per_s']:.0f} samples/s; "
            + ", ".join(
                f"{w} {v['val_qlike']:.4f}/{v['val_qlike_anchor']:.4f}"
                for w, v in r["by_window"].items()
            ),
            file=sys.stderr,
            flush=True,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or "global_selection"
    plot_curves(results, out / f"{name}_curves.png")
    md = [
        f"# Global model: selection on validation (h = {params['target']['horizon']}, seeds "
        f"{args.seeds})",
        "",
        f"Validation windows: {', '.join(windows)} (`single`: the calendar split of "
        f"params.yaml, {params['dataset']['val_start']} to "
        f"{params['dataset']['test_start']}; `fold_k`: the "
        f"{params['backtest']['global_val_days']} days before walk-forward origin k). QLIKE "
        "of sqrt(E[sigma^2]) on the validation windows of the reported coins (mean over coins, "
        "then over windows; `one_coin`: the first "
        "reported coin alone); the anchor alone is the corrected pooled log-HAR the network "
        "starts from (epoch 0). `kept anchor`: "
        "windows x seeds whose every epoch scored worse than it, so the member is the anchor.",
        "",
        md_table(
            results,
            [
                ("variant", "variant"),
                ("val_qlike", "val QLIKE (selected)"),
                ("val_qlike_anchor", "anchor alone"),
                ("kept_anchor", "kept anchor"),
                ("best_epoch", "best epoch"),
                ("n_params", "weights"),
                ("n_train", "training windows"),
                ("samples_per_s", "samples/s"),
            ],
        ),
        "",
        f"Curves: `{name}_curves.png`. Total {time.perf_counter() - t0:.0f} s.",
    ]
    write_outputs(
        out,
        name,
        {"results": results, "machine": machine_info(), "params": params["global_model"]},
        "\n".join(md),
    )
    release_root(root, args)
    return 0


if __name__ == "__main__":
    run_main(main, "select_global.py")
