"""Domain errors. Every one is a ValueError subclass; the API maps them to the error JSON."""

from __future__ import annotations


class MatcherError(ValueError):
    """Base of every error matcher raises on purpose.

    ``status`` and ``code`` are what the HTTP API answers with; ``field`` names the
    body field or query parameter at fault, when there is one.
    """

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class SchemaError(MatcherError):
    """A data file or record breaks the contract of SPEC section 2.

    Carries the file, the 1-based row as a spreadsheet shows it (the header is row 1)
    and the column, when known.
    """

    status = 422
    code = "invalid_data"

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        where = []
        if file:
            where.append(file)
        if row is not None:
            where.append(f"row {row}")
        if column:
            where.append(f"column {column!r}")
        text = f"{', '.join(where)}: {message}" if where else message
        super().__init__(text, field=column)
        self.file, self.row, self.column, self.detail = file, row, column, message


class PolicyError(MatcherError):
    """The policy file is missing a number, or a number is out of range."""

    code = "invalid_policy"


class ModelError(MatcherError):
    """No usable model: missing, tampered with, or built with other library versions."""

    status = 503
    code = "model_unavailable"


class NotFound(MatcherError):
    status = 404
    code = "not_found"


# The bidirectional marks, overrides and isolates (U+202E...): they make text display in another order
# than it is stored. Refused in text fields (matcher.schema, matcher.api.schemas), escaped in logs.
BIDI_CONTROLS = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))

_UNSAFE = {i: f"\\x{i:02x}" for i in (*range(0, 32), 127)} | {c: f"\\u{c:04x}" for c in BIDI_CONTROLS}


def loggable(text: str) -> str:
    """Text with control and bidi characters escaped (``\\x0a``), so what a client sent cannot forge or
    reorder a log line."""
    return str(text).translate(_UNSAFE)
