"""Screenshot of the supervisor page for the README, with Debian's Chromium.

.venv/bin/python tools/screenshot.py --key csk_... [--url http://127.0.0.1:8000]
                                      [--out docs/supervisor.png]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil

from playwright.async_api import async_playwright


async def main(args: argparse.Namespace) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.goto(f"{args.url}/supervisor")
        await page.fill("#key", args.key)
        await page.press("#key", "Enter")
        await page.wait_for_selector("#counties tbody tr")
        await page.wait_for_timeout(500)
        await page.screenshot(path=args.out, full_page=True)
        await browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--key", required=True, help="a supervisor API key")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default="docs/supervisor.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    asyncio.run(main(parser.parse_args()))
