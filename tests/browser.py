"""What the browser tests share: Debian's Chromium (or CORESPOND_CHROMIUM), a mark that
skips a module without it, and where screenshots go (docs/ only with CORESPOND_SCREENSHOTS=1,
so that a test run changes no file of the repository)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from corespond.config import PROJECT_ROOT

CHROMIUM = os.environ.get("CORESPOND_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DOCS = PROJECT_ROOT / "docs"

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Chromium not found: install Debian's package (sudo apt-get install chromium) "
    "or set CORESPOND_CHROMIUM to its path",
)


def screenshots(tmp_path: Path) -> Path:
    """docs/ when screenshots are asked for, else a scratch folder."""
    return DOCS if os.environ.get("CORESPOND_SCREENSHOTS") else tmp_path
