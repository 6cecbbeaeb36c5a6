"""Wall time of `cryptovol track --replay START:END` (issue 23: the 190 days 2024-06-01..2024-12-07
in <= 10 min).

Runs in a throw-away project root (copies of params.yaml and settings.ini; CRYPTOVOL_ROOT points at
it), so the checkout's data/ and reports/ are never touched. `--models DIR` links a trained
`models/` folder in (e.g. the checkout's after `make run`), so the shipped network is replayed too;
without it the log has the classical forecasters only. Writes
benchmarks/results/track_replay.{json,md} and prints the Markdown.

    .venv/bin/python benchmarks/track_replay.py --data-dir ../shared/data --models models
"""

import argparse, json, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--replay",
        default="2024-06-01:2024-12-07",
        help="START:END (default: the issue's 190 days)",
    )
    ap.add_argument(
        "--data-dir", default=os.environ.get("CRYPTOVOL_DATA_DIR"), help="offline mirror"
    )
    ap.add_argument("--models", help="a trained models/ folder to replay the shipped network too")
    ap.add_argument("--keep", help="copy the replay log and page to this folder")
    a = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="track-bench-"))
    for f in ("params.yaml", "settings.ini"):
        shutil.copy(REPO / f, root / f)
    if a.models:
        (root / "models").symlink_to(Path(a.models).resolve())
    env = {
        **os.environ,
        "CRYPTOVOL_ROOT": str(root),
        **({"CRYPTOVOL_DATA_DIR": a.data_dir} if a.data_dir else {}),
    }
    load = os.getloadavg()[0]
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, "-m", "cryptovol", "track", "--replay", a.replay],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.time() - t0
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:], sep="\n")
        return r.returncode
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    res = {
        "replay": a.replay,
        "wall_seconds": round(wall, 1),
        "models": bool(a.models),
        "commit": commit,
        "cpus": os.cpu_count(),
        "load_at_start": load,
        "machine": platform.platform(),
        "summary": [line for line in r.stdout.splitlines() if line.startswith("replay ")],
    }
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "track_replay.json").write_text(json.dumps(res, indent=2) + "\n")
    md = (
        "| replay | network | wall time | cores | load at start | commit "
        "|\n|---|---|---|---|---|---|\n"
        f"| {a.replay} | {'yes' if a.models else 'no'} | {wall / 60:.1f} min ({wall:.0f} s) "
        f"| {os.cpu_count()} | "
        f"{load:.1f} | {commit} |\n\n{res['summary'][0] if res['summary'] else ''}\n"
    )
    (out / "track_replay.md").write_text(md)
    print(md)
    if a.keep:
        keep = Path(a.keep)
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "data" / "track" / "replay.sqlite", keep)
        shutil.copy(root / "reports" / "track.html", keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
