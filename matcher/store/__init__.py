"""The store: SQLAlchemy tables, engines and sessions, migrations, world import/export, API tokens.

SQLite by default (a file, no server), PostgreSQL when the URL says so; the same code and the
same migrations serve both.
"""

from matcher.store.db import (StoreUnavailable, dispose_after_fork, make_engine, normalise_url, safe_url,
                              session_scope, write_connection)
from matcher.store.io import (ImportResult, counts, export_world, frame_from_rows, import_world, read_table,
                              read_world, rows_from_frame)
from matcher.store.migrate import SchemaNotReady, check_schema, current_revision, head_revision, init_db
from matcher.store.tokens import TokenError, TokenInfo, create_token, hash_token, revoke_token, verify_token

__all__ = [
    "make_engine", "normalise_url", "safe_url", "session_scope", "write_connection", "dispose_after_fork",
    "StoreUnavailable",
    "init_db", "check_schema", "current_revision", "head_revision", "SchemaNotReady",
    "import_world", "export_world", "read_world", "read_table", "counts", "ImportResult",
    "rows_from_frame", "frame_from_rows",
    "create_token", "verify_token", "revoke_token", "hash_token", "TokenInfo", "TokenError",
]
