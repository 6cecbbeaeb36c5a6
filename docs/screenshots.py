"""Screenshots of the reports for README (`make screenshots`): docs/index.png and
docs/{COIN}_evaluate.png.

Run after `make run` (it reads reports/index.html and reports/{COIN}/html/05_evaluate.html).
Headless Chromium via Playwright, with Debian's chromium (`make browser`); network requests are
blocked, so the shots show the pages as they render offline.
"""

from __future__ import annotations

import argparse, os, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CRYPTOVOL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def shoot(
    pages: dict[Path, Path], width: int = 1366, height: int = 900, full_page: bool = True
) -> list[Path]:
    """Screenshot each HTML file (key) into its PNG path (value) at laptop width; only file:/data:
    requests are allowed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.route(
                "**/*",
                lambda r: (
                    r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
                ),
            )
            for src, png in pages.items():
                page.goto(src.resolve().as_uri(), wait_until="load")
                page.wait_for_timeout(800)
                png.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(png), full_page=full_page)
                print(f"screenshot: {png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}")
        finally:
            browser.close()
    return list(pages.values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--coin", default="BTC-USD", help="coin whose evaluate page is shot (default BTC-USD)"
    )
    ap.add_argument(
        "--reports", type=Path, default=ROOT / "reports", help="reports folder (default reports/)"
    )
    ap.add_argument(
        "--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default docs/)"
    )
    a = ap.parse_args(argv)
    pages = {
        a.reports / "index.html": a.out / "index.png",
        a.reports / a.coin / "html" / "05_evaluate.html": a.out / f"{a.coin}_evaluate.png",
    }
    missing = [str(p) for p in pages if not p.is_file()]
    if missing:
        print(
            f"screenshots: {', '.join(missing)} not found; run `make run` first (or pass "
            "--reports)",
            file=sys.stderr,
        )
        return 1
    if not os.path.exists(CHROMIUM):
        print(
            f"screenshots: no Chromium at {CHROMIUM}; run `make browser` or set CRYPTOVOL_CHROMIUM",
            file=sys.stderr,
        )
        return 1
    shoot(pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
