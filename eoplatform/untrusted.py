"""Limits that input from outside (query strings, bodies) must keep before it reaches the database, which would
otherwise fail on it with a 500."""

from __future__ import annotations

from typing import Any

# The largest id a row can have (DEFAULT_AUTO_FIELD is a BigAutoField). A larger number reaching a query fails in
# the database (PostgreSQL: bigint out of range; SQLite: Python int too large).
MAX_ID = 2**63 - 1


def is_row_id(value: int) -> bool:
    """Whether `value` can name a row: 1 to MAX_ID."""
    return 0 < value <= MAX_ID


def has_nul(value: Any) -> bool:
    """Whether JSON-like data holds a NUL character in any string or key: PostgreSQL refuses it in text and in
    jsonb (DRF's CharField refuses it already; a JSONField or DictField does not). Iterative: the JSON parser
    lets through nesting deep enough to exhaust Python's stack in a recursive walk."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False
