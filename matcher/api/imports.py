"""CSV imports of one table at a time: the same contract and checks as `matcher db import`.

A file is taken whole or not at all; the error names the file, the row and the column.
"""

from __future__ import annotations

from flask import Blueprint

from matcher.api.auth import audit
from matcher.api.errors import APIError
from matcher.api.openapi import endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import ImportResult
from matcher.errors import MatcherError, SchemaError
from matcher.schema import FILES, read_table
from matcher.store import import_world

bp = Blueprint("imports", __name__, url_prefix="/api/v1/import")
TABLES = ("households", "workers", "jobs")


def _import(table: str, data: bytes) -> dict:
    try:
        frame = read_table(table, data, file=FILES[table])
        result = import_world(runtime().engine, {table: frame})
    except SchemaError as exc:
        raise APIError(422, "invalid_data", str(exc), exc.column) from None
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, MatcherError):      # e.g. the store is unavailable: its own status (503)
            raise
        # e.g. a date pandas cannot hold (before 1677 or after 2262): still the file's fault.
        raise APIError(422, "invalid_data", f"{FILES[table]}: a value is out of range "
                                            f"({type(exc).__name__})") from None
    audit(f"import.{table}", table, None, 200)
    return {"table": table, "inserted": result.inserted.get(table, 0), "unchanged": result.unchanged.get(table, 0)}


def _view(table: str):
    def view(data: bytes):
        return _import(table, data)
    view.__name__ = f"import_{table}"
    return view


for _table in TABLES:
    endpoint(bp, f"/{_table}", "POST", summary=f"Import {FILES[_table]} (a CSV body, whole or nothing)",
             roles=("admin",), csv=True, response=ImportResult)(_view(_table))
