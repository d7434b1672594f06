"""Worlds in and out of the database.

A world goes in whole or not at all: one transaction, every check made before the first
insert, and a row whose id is already stored is either identical (skipped, so re-importing is
harmless) or refused. Reading gives the same typed frames as :func:`matcher.schema.load_world`,
sorted by id (code-point order, the same on both backends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from tqdm import tqdm

from matcher.errors import SchemaError
from matcher.schema import COLUMNS, FILES, ID_COLUMN, TABLES, World, write_world
from matcher.store.db import StoreUnavailable, write_connection
from matcher.store.models import TABLE_ORDER, Base
from matcher.store.queries import record_change

WORLD_TABLES = ("households", "workers", "jobs", "referrals")
# (child table, column, parent table, what the error calls the parent)
REFERENCES = (
    ("workers", "household_id", "households", "household"),
    ("referrals", "worker_id", "workers", "worker"),
    ("referrals", "job_id", "jobs", "job"),
)
INSERT_CHUNK = 5000
# Stays under SQLite's bound-parameter limit on old builds, and keeps PostgreSQL plans simple.
LOOKUP_CHUNK = 900
ANALYZE_AFTER = 1000


@dataclass
class ImportResult:
    """Rows per table that were inserted, and rows already stored with identical values."""

    inserted: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {name: {"inserted": self.inserted.get(name, 0), "unchanged": self.unchanged.get(name, 0),
                       "kept": self.kept.get(name, 0)}
                for name in WORLD_TABLES}


def _table(name: str) -> sa.Table:
    return Base.metadata.tables[name]


def _chunks(seq: list, size: int) -> Iterable[list]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


# -- frames <-> rows -----------------------------------------------------------------------------

def _is_missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def rows_from_frame(name: str, df: pd.DataFrame) -> list[dict]:
    """A typed frame (as schema.parse_table gives) as database rows of plain Python values."""
    cols: dict[str, list] = {}
    for col in TABLES[name]:
        s = df[col.name]
        if col.kind in ("str", "code", "enum"):
            vals = [str(v) for v in s.tolist()]
            cols[col.name] = vals if col.required else [v if v != "" else None for v in vals]
        elif col.kind == "list":
            cols[col.name] = [";".join(t) for t in s.tolist()]
        elif col.kind == "int":
            cols[col.name] = [None if _is_missing(v) else int(v) for v in s.tolist()]
        elif col.kind == "float":
            cols[col.name] = [None if _is_missing(v) else float(v) for v in s.tolist()]
        elif col.kind == "bool":
            cols[col.name] = [None if _is_missing(v) else bool(v) for v in s.tolist()]
        elif col.kind == "date":
            cols[col.name] = [None if _is_missing(v) else v.date() for v in s.tolist()]
        else:  # pragma: no cover - schema and store must learn a new kind together
            raise AssertionError(f"unknown column kind {col.kind}")
    names = COLUMNS[name]
    return [dict(zip(names, vals)) for vals in zip(*(cols[n] for n in names))]


def frame_from_rows(name: str, rows: Iterable[tuple]) -> pd.DataFrame:
    """Database rows (tuples in schema.COLUMNS order) as the typed frame schema.load_world gives."""
    rows = list(rows)
    columns = list(zip(*rows)) if rows else [() for _ in COLUMNS[name]]
    out = {}
    for col, vals in zip(TABLES[name], columns):
        if col.kind in ("str", "code", "enum"):
            out[col.name] = pd.Series(["" if v is None else v for v in vals], dtype=object)
        elif col.kind == "list":
            out[col.name] = pd.Series([tuple(t for t in (v or "").split(";") if t) for v in vals], dtype=object)
        elif col.kind == "int":
            if col.required:
                out[col.name] = pd.Series(np.asarray(vals, dtype=np.int64), dtype="int64")
            else:
                out[col.name] = pd.Series(pd.array(list(vals), dtype="Int64"))
        elif col.kind == "float":
            out[col.name] = pd.Series(np.asarray([np.nan if v is None else v for v in vals], dtype=float),
                                      dtype="float64")
        elif col.kind == "bool":
            if col.required:
                out[col.name] = pd.Series(np.asarray(vals, dtype=bool), dtype=bool)
            else:
                out[col.name] = pd.Series(pd.array(list(vals), dtype="boolean"))
        elif col.kind == "date":
            out[col.name] = pd.Series(pd.to_datetime(list(vals)), dtype="datetime64[ns]")
        else:  # pragma: no cover
            raise AssertionError(f"unknown column kind {col.kind}")
    return pd.DataFrame(out, columns=COLUMNS[name])


# -- reading -------------------------------------------------------------------------------------

def _select_world_rows(conn: Connection, name: str) -> list[tuple]:
    t = _table(name)
    stmt = sa.select(*(t.c[c] for c in COLUMNS[name]))
    if name == "referrals":
        stmt = stmt.where(t.c.outcome.is_not(None))  # pending referrals are not history yet
    rows = [tuple(r) for r in conn.execute(stmt)]
    rows.sort(key=lambda r: r[0])
    return rows


def _snapshot(engine: Engine):
    """A read-only connection that sees one consistent state of every table."""
    conn = engine.connect()
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def read_table(engine: Engine, name: str) -> pd.DataFrame:
    """One world table, typed as schema.load_world types it, sorted by id."""
    if name not in WORLD_TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {', '.join(WORLD_TABLES)}")
    with engine.connect() as conn:
        return frame_from_rows(name, _select_world_rows(conn, name))


def read_rows(engine: Engine, name: str, ids: list[str]) -> pd.DataFrame:
    """Some rows of a world table by id, typed as :func:`read_table` types them (ids not stored are left out)."""
    if name not in WORLD_TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {', '.join(WORLD_TABLES)}")
    with engine.connect() as conn:
        rows = sorted(_stored_rows(conn, name, list(ids)).values(), key=lambda r: r[0])
    return frame_from_rows(name, rows)


def worker_referrals(engine: Engine, worker_ids: list[str]) -> pd.DataFrame:
    """The referrals with an outcome of some workers, typed as :func:`read_table` types them."""
    t = _table("referrals")
    out = []
    with engine.connect() as conn:
        for chunk in _chunks(sorted(set(worker_ids)), 500):
            stmt = sa.select(*(t.c[c] for c in COLUMNS["referrals"])).where(t.c.worker_id.in_(chunk),
                                                                           t.c.outcome.is_not(None))
            out.extend(tuple(r) for r in conn.execute(stmt))
    return frame_from_rows("referrals", sorted(out, key=lambda r: r[0]))


def read_world(engine: Engine) -> World:
    """The stored world as validated frames; referrals without an outcome yet are left out."""
    with _snapshot(engine) as conn, conn.begin():
        return World(**{name: frame_from_rows(name, _select_world_rows(conn, name)) for name in WORLD_TABLES})


def export_world(engine: Engine, directory: str | Path, *, pseudonymise: bool = False) -> dict[str, int]:
    """Write the four CSVs of SPEC section 2; returns rows written per file.

    ``pseudonymise`` leaves out the personal columns (names, phones): what remains names people by id only.
    """
    world = read_world(engine)
    write_world(world, directory, personal=not pseudonymise)
    return {name: len(df) for name, df in world.tables().items()}


def counts(engine: Engine) -> dict[str, int]:
    """Rows per table, every table of the store."""
    with _snapshot(engine) as conn, conn.begin():
        return {name: conn.execute(sa.select(sa.func.count()).select_from(_table(name))).scalar_one()
                for name in TABLE_ORDER}


# -- importing -----------------------------------------------------------------------------------

def _stored_rows(conn: Connection, name: str, ids: list[str]) -> dict[str, tuple]:
    t = _table(name)
    id_col = t.c[ID_COLUMN[name]]
    cols = [t.c[c] for c in COLUMNS[name]]
    found: dict[str, tuple] = {}
    for chunk in _chunks(ids, LOOKUP_CHUNK):
        for row in conn.execute(sa.select(*cols).where(id_col.in_(chunk))):
            found[row[0]] = tuple(row)
    return found


def _stored_ids(conn: Connection, name: str, ids: list[str]) -> set[str]:
    id_col = _table(name).c[ID_COLUMN[name]]
    found: set[str] = set()
    for chunk in _chunks(ids, LOOKUP_CHUNK):
        found.update(conn.execute(sa.select(id_col).where(id_col.in_(chunk))).scalars())
    return found


def _split_new(conn: Connection, name: str, rows: list[dict],
               keep_stored: bool = False) -> tuple[list[dict], int, int]:
    """The rows not stored yet, how many are stored already with the same values, and how many
    are stored with other values and kept as stored (``keep_stored``).

    Without ``keep_stored``, raises SchemaError at the first row whose id is stored with different values.
    """
    id_name, names = ID_COLUMN[name], COLUMNS[name]
    stored = _stored_rows(conn, name, [r[id_name] for r in rows])
    new, same, kept = [], 0, 0
    for i, row in enumerate(rows):
        old = stored.get(row[id_name])
        if old is None:
            new.append(row)
            continue
        diff = [c for c, v in zip(names, old) if row[c] != v]
        if diff and keep_stored:
            kept += 1
            continue
        if diff:
            raise SchemaError(f"{id_name} {row[id_name]!r} is already in the database with different values "
                              f"(in {', '.join(diff)}); refusing to overwrite it",
                              file=FILES[name], row=i + 2, column=diff[0])
        same += 1
    return new, same, kept


def _check_references(conn: Connection, rows: Mapping[str, list[dict]]) -> None:
    """Every reference points at a record in the incoming world or already in the database."""
    for child, column, parent, what in REFERENCES:
        if not rows[child]:
            continue
        known = {r[ID_COLUMN[parent]] for r in rows[parent]}
        wanted = sorted({r[column] for r in rows[child]} - known)
        if not wanted:
            continue
        missing = set(wanted) - _stored_ids(conn, parent, wanted)
        if not missing:
            continue
        i = next(i for i, r in enumerate(rows[child]) if r[column] in missing)
        raise SchemaError(f"unknown {what} {rows[child][i][column]!r} (neither in {FILES[parent]} "
                          "nor in the database)", file=FILES[child], row=i + 2, column=column)


def _first_line(exc: BaseException) -> str:
    # Only the first line: PostgreSQL's DETAIL may quote a whole row, and rows hold personal data.
    orig = getattr(exc, "orig", exc)
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def import_world(engine: Engine, world: World | Mapping[str, pd.DataFrame], *,
                 progress: bool = False, keep_stored: bool = False) -> ImportResult:
    """Add a validated world (or some of its tables) to the database in one transaction.

    Tables missing from a mapping count as empty, so the API can import one file at a time.
    With ``keep_stored`` a row whose id is already stored with other values is left as stored
    (the service changed it since: a hire, a closed job) instead of refusing the import; this is
    how `make run` starts again on the same checkout without losing what the service recorded.
    Raises SchemaError, and leaves the database exactly as it was, when a reference points
    nowhere or an id is already stored with different values; StoreUnavailable when the database
    cannot take it (disk full, locked past its timeout, gone), likewise writing nothing.
    """
    tables = world.tables() if isinstance(world, World) else dict(world)
    unknown = set(tables) - set(WORLD_TABLES)
    if unknown:
        raise ValueError(f"unknown table(s) {', '.join(sorted(unknown))}")
    rows = {name: rows_from_frame(name, tables[name]) if tables.get(name) is not None else []
            for name in WORLD_TABLES}
    result = ImportResult()
    current = ""
    try:
        with write_connection(engine) as conn:
            _check_references(conn, rows)
            new = {}
            for name in WORLD_TABLES:
                current = name
                new[name], result.unchanged[name], result.kept[name] = _split_new(conn, name, rows[name],
                                                                                  keep_stored)
            total = sum(len(v) for v in new.values())
            with tqdm(total=total, unit="rows", desc="importing", disable=True if not progress else None,
                      leave=False) as bar:
                for name in WORLD_TABLES:
                    current = name
                    for chunk in _chunks(new[name], INSERT_CHUNK):
                        conn.execute(_table(name).insert(), chunk)
                        bar.update(len(chunk))
                    result.inserted[name] = len(new[name])
            if any(result.inserted.values()):
                record_change(conn, "world")
    except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
        raise SchemaError(f"the database refused the rows: {_first_line(exc)}",
                          file=FILES.get(current)) from None
    except sa.exc.OperationalError as exc:
        raise StoreUnavailable(f"the database could not take the import ({_first_line(exc)}); "
                               "nothing of it was written") from None
    _analyze(engine, [name for name, n in result.inserted.items() if n >= ANALYZE_AFTER])
    return result


def _analyze(engine: Engine, names: list[str]) -> None:
    """Refresh PostgreSQL's statistics after a big import.

    Until autovacuum gets to it the planner believes a freshly filled table is empty and
    scans it whole for every id lookup: re-importing 100k workers then takes minutes, not seconds.
    """
    if not names or engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for name in names:
            conn.exec_driver_sql(f"ANALYZE {_table(name).name}")
