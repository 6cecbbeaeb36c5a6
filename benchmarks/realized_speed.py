"""Speed of the realized measures: every coin of the universe, hourly mirror files to measures.

    .venv/bin/python benchmarks/realized_speed.py          # -> results/realized_speed.{json,md}
    .venv/bin/python benchmarks/realized_speed.py --repeats 5 --data-dir ../shared/data

Reads each coin's `intraday/binance/{BASE}USDT-1h.csv.gz` once
(`cryptovol.intraday.load_hourly_bars`, timed apart), then times
`cryptovol.realized.realized_measures` (and `realized_target`) over all coins, best of
`--repeats`. The goal (the hourly-data issue) is all coins in seconds on 2 CPU cores; the run
fails (exit 1) when they take longer than `--limit-s` (default 10 s, a generous bound: about
0.2 s is expected). Runs in a throw-away project root, so the checkout's data/ and logs/ are
never touched.
"""

from __future__ import annotations

import argparse, os, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    add_common_args,
    configure_env,
    machine_info,
    machine_markdown,
    make_root,
    md_table,
    parse_set,
    release_root,
    run_main,
    write_outputs,
)

LIMIT_S = 10.0  # all coins' measures, best of the repeats


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--repeats", type=int, default=3, help="timed repetitions (the best is reported)"
    )
    ap.add_argument(
        "--limit-s", type=float, default=LIMIT_S, help="fail when all coins take longer (seconds)"
    )
    ap.add_argument("--horizon", type=int, default=7, help="days of the forward realized target")
    add_common_args(ap, "realized_speed")
    return ap.parse_args(argv)


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    args = parse_args(argv)
    root = make_root(args.workdir, parse_set(args.set), prefix="cryptovol-realized-")
    configure_env(root, args.data_dir or os.environ.get("CRYPTOVOL_DATA_DIR"), args.verbose)
    try:
        from cryptovol.config import get_params
        from cryptovol.intraday import load_hourly_bars
        from cryptovol.realized import realized_measures, realized_target

        p = get_params()
        t0 = time.perf_counter()
        bars = {s: load_hourly_bars(s, params=p) for s in p["universe"]}
        read_s = time.perf_counter() - t0
        rows = [
            {
                "symbol": s,
                "bars": len(b),
                "measures_ms": 1000 * _best(lambda b=b: realized_measures(b), args.repeats),
            }
            for s, b in bars.items()
        ]
        every = lambda: [realized_target(realized_measures(b), args.horizon) for b in bars.values()]
        total = _best(every, args.repeats)
    finally:
        release_root(root, args)
    n_bars = sum(r["bars"] for r in rows)
    ok = total <= args.limit_s
    summary = {
        "coins": len(rows),
        "bars": n_bars,
        "read_s": read_s,
        "measures_and_target_s": total,
        "limit_s": args.limit_s,
        "within_limit": ok,
    }
    machine = machine_info(tensorflow=False)
    cols = [("symbol", "coin"), ("bars", "bars"), ("measures_ms", "measures (ms)")]
    title = f"# Realized measures: speed over {len(rows)} coins ({n_bars:,} hourly bars)"
    md = "\n".join(
        [
            title,
            "",
            f"- reading the gzipped mirror files: {read_s:.2f} s (once)",
            f"- `realized_measures` + `realized_target(h={args.horizon})`, all coins, "
            f"best of {args.repeats}: **{total:.3f} s** "
            f"(limit {args.limit_s:g} s: {'met' if ok else 'MISSED'})",
            "",
            md_table(rows, cols, digits=1),
            "",
            machine_markdown(machine),
        ]
    )
    write_outputs(
        args.out,
        args.name or "realized_speed",
        {"summary": summary, "coins": rows, "machine": machine},
        md,
    )
    if not ok:
        print(
            f"benchmarks/realized_speed.py: the measures of {len(rows)} coins took "
            f"{total:.2f} s, over the limit of {args.limit_s:g} s",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    run_main(main, "benchmarks/realized_speed.py")
