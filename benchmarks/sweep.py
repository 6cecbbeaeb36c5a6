"""A real local hyperparameter sweep with Ray Tune (Optuna TPE + ASHA) on the validation window, and
what it costs.

    CRYPTOVOL_DATA_DIR=../shared/data .venv/bin/python benchmarks/sweep.py  # the repo's sweep.yaml
    CRYPTOVOL_DATA_DIR=../shared/data .venv/bin/python benchmarks/sweep.py --num-samples 4 \\
        --set training.epochs=3

Runs `cryptovol.sweep.run_sweep` on the repo's `sweep.yaml` (per-coin model, BTC-USD; the global
model of issue #13 does not exist yet) in a throw-away project root, on a local Ray node with this
machine's cores. Trial 1 is the current params.yaml configuration (`include_default`), so the best
configuration is compared with the default under the same epoch budget and early termination. Every
number is validation QLIKE: trials never see the test split. Writes
benchmarks/results/sweep.{json,md} and sweep_search.png (the search plot).
"""

from __future__ import annotations

import argparse, json, os, shutil, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    REPO,
    add_common_args,
    configure_env,
    fmt,
    machine_info,
    machine_markdown,
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
    ap.add_argument(
        "--config",
        default=str(REPO / "sweep.yaml"),
        help="the sweep to run (default: the repo's sweep.yaml)",
    )
    ap.add_argument(
        "--num-samples", type=int, help="trials (default: num_samples in the sweep file)"
    )
    ap.add_argument(
        "--search",
        choices=("optuna", "random"),
        help="search algorithm (default: the sweep file's)",
    )
    ap.add_argument(
        "--cpus-per-trial",
        type=float,
        default=1,
        help="CPUs Ray reserves per trial (default 1: two trials at once on 2 cores)",
    )
    add_common_args(ap, "sweep")
    return ap.parse_args(argv)


def default_trial(table, spec, base) -> dict | None:
    """The row of the trial that ran params.yaml's own values (trial 1 with include_default), or
    None."""
    from cryptovol.sweep import decode_config, default_point

    point = default_point(spec, base)
    if point is None:
        return None
    want = decode_config(spec, point)
    for row in table.to_dict("records"):
        if json.loads(row["params"]) == want:
            return row
    return None


def markdown(r: dict) -> str:
    s, best, dflt = r["summary"], r["summary"]["best"], r["default"]
    cols = [
        ("trial", "trial"),
        *[(k, k) for k in r["space"]],
        ("best_val_qlike", "best val QLIKE"),
        ("best_epoch", "at epoch"),
        ("epochs", "epochs run"),
        ("seconds", "seconds"),
        ("status", "status"),
    ]
    lines = [
        f"# Sweep benchmark: {s['symbol']}, {s['search']} search + ASHA {s['asha']}, "
        f"{s['num_samples']} trials, "
        f"at most {s['max_epochs']} epochs",
        "",
        f"`{r['command']}`",
        "",
        machine_markdown(r["machine"]),
        "",
        f"- wall time {fmt(r['wall_seconds_total'] / 60, 1)} min (Ray start, datasets and "
        "all trials), "
        f"{s['finished']} trials finished, {s['epochs_run']} epochs in all; "
        f"**{fmt(s['finished'] / r['wall_seconds_total'] * 3600, 1)} trials/hour** "
        f"with {r['cpus_per_trial']} CPU per trial on {r['machine']['nproc']} cores",
        "- the machine was shared with other jobs (load average "
        f"{r['machine']['load_avg_1_5_15']} at the start, "
        f"{r['load_end']} at the end), so the times are upper bounds for an idle 2-core machine",
        "- per-coin model (the global model of issue #13 does not exist yet); selected on "
        "validation QLIKE only, the test split is sealed",
        "",
    ]
    if dflt and dflt["trial"] == best["trial"]:
        lines += [
            f"**The default configuration (params.yaml, trial {best['trial']}) is the best "
            "trial**: validation QLIKE "
            f"**{best['val_qlike']:.4f}** (epoch {best['epoch']}); none of the other "
            f"{s['finished'] - 1} trials beat it on validation. "
            "Same epoch budget and ASHA for all; one seed per configuration.",
            "",
        ]
    elif dflt:
        gain = (dflt["best_val_qlike"] - best["val_qlike"]) / dflt["best_val_qlike"] * 100
        lines += [
            f"**Best** trial {best['trial']}: validation QLIKE **{best['val_qlike']:.4f}** "
            f"(epoch {best['epoch']}) with "
            + ", ".join(f"`{k}={json.dumps(v)}`" for k, v in best["params"].items())
            + ".",
            f"**Default** (params.yaml, trial {dflt['trial']}): "
            f"{dflt['best_val_qlike']:.4f} (epoch {dflt['best_epoch']}, "
            f"{dflt['epochs']} epochs run, status {dflt['status']}); the best is "
            f"{gain:.1f}% lower. "
            "Same epoch budget and ASHA for both; a single seed, so a difference of a few "
            "percent is within seed noise.",
            "",
        ]
    for row in r["table"]:
        row["seconds"] = round(row["seconds"])
    lines += [
        md_table(r["table"], cols),
        "",
        "The best configuration as params overrides: `" + r["dvc_command"] + "`",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = parse_set(args.set)
    root = make_root(args.workdir, {})
    shutil.copy(args.config, root / "sweep.yaml")
    configure_env(root, args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR"), args.verbose)
    try:
        from cryptovol.sweep import apply_best, load_sweep, run_sweep, sweep_base_params

        fixed_extra = {k: v for k, v in overrides.items()}
        spec = load_sweep(root / "sweep.yaml", num_samples=args.num_samples, search=args.search)
        spec.fixed.update(fixed_extra)
        base = sweep_base_params(spec)
        machine = machine_info(tensorflow=False)
        t0 = time.perf_counter()
        res = run_sweep(spec, cpus_per_trial=args.cpus_per_trial, verbose=1 if args.verbose else 0)
        wall = time.perf_counter() - t0
        best_file, cmd = apply_best(res)
        table = res.table.drop(columns=["params"]).to_dict("records")
        result = {
            "command": "benchmarks/sweep.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": machine,
            "load_end": [round(x, 2) for x in os.getloadavg()],
            "cpus_per_trial": args.cpus_per_trial,
            "wall_seconds_total": round(wall, 1),
            "summary": res.summary,
            "space": list(spec.space),
            "table": table,
            "default": default_trial(res.table, spec, base),
            "dvc_command": cmd,
            "best_params_yaml": best_file.read_text(),
        }
        name = args.name or "sweep"
        write_outputs(args.out, name, result, markdown(result))
        shutil.copy(res.path / "search.png", Path(args.out) / f"{name}_search.png")
    finally:
        release_root(root, args)
    return 0


if __name__ == "__main__":
    run_main(main, "sweep.py")
