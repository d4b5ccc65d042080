"""An agency's name as it is compared: the same key in Python and in SQL."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func


def agency_key(name: str) -> str:
    """'Bluefield P.D.' and 'BLUEFIELD PD' alike: upper case, no punctuation, single spaces."""
    return " ".join(re.sub(r"[^A-Z0-9 ]+", "", name.upper()).split())


def agency_key_sql(column: Any) -> Any:
    """SQL of ``agency_key``: upper case, no punctuation, single spaces."""
    return func.btrim(
        func.regexp_replace(
            func.regexp_replace(func.upper(column), "[^A-Z0-9 ]+", "", "g"), " +", " ", "g"
        )
    )
