"""The privacy guard of the test suite: nothing the service logs may hold the personal data it served.

For the whole session (installed from conftest.py):

- every log record that reaches the root logger, from any logger (``matcher.*``, werkzeug, gunicorn,
  SQLAlchemy, ...), is kept as its formatted message with its exception and stack text;
- every response that a Flask test client gets from ``/api/`` is read, and the personal data in it is
  collected: household, worker and referral ids, household coordinates, disability types, token
  holders' names and referral notes, people's names (a household's head, a member) and phone numbers,
  every bearer token the client sent and every session cookie the service set;
- log files of services started as processes (``matcher serve``) can be added with :func:`watch_file`.

At the end of the session :func:`leaks` greps the records and files for every collected value (as a
whole word: ``H-A`` does not match ``H-AB``) and the run fails if any is found (see conftest.py).
SECURITY.md says which data count as personal and why.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

# Values shorter than this are too common to grep for (an id like "H1" would match anything).
MIN_LENGTH = 3
# A Chinese name is often two characters: grepped as a whole word, that is specific enough.
MIN_NAME_LENGTH = 2
NAME_KEYS = ("head_name", "phone")             # anywhere in an answer
MEMBER_NAME_KEY = "name"                        # in a record with a worker_id
# Keys whose string values are personal wherever they appear in an answer.
ID_KEYS = ("household_id", "worker_id", "referral_id")
TEXT_KEYS = ("note",)
DISABILITIES = ("visual", "hearing", "speech", "physical", "intellectual", "mental", "multiple")


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self._fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record):
        try:
            self.lines.append(self._fmt.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is kept by its template
            self.lines.append(f"{record.name} {record.levelname} {record.msg!r} {record.args!r}")


class Guard:
    def __init__(self):
        self.capture = _Capture()
        self.values: dict[str, str] = {}       # value -> what it is
        self.files: list[Path] = []
        self._lock = threading.Lock()
        self._original_open = None

    # -- installing ------------------------------------------------------------------------------

    def install(self) -> None:
        logging.getLogger().addHandler(self.capture)
        from flask.testing import FlaskClient
        original = self._original_open = FlaskClient.open
        guard = self

        def open_and_collect(client, *args, **kwargs):
            resp = original(client, *args, **kwargs)
            try:
                guard.collect(resp)
            except Exception:  # noqa: BLE001 - the guard must never break a test by itself
                pass
            return resp

        FlaskClient.open = open_and_collect

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self.capture)
        if self._original_open is not None:
            from flask.testing import FlaskClient
            FlaskClient.open = self._original_open

    def watch_file(self, path: str | Path) -> None:
        self.files.append(Path(path))

    # -- collecting ------------------------------------------------------------------------------

    def _add(self, value, what: str, min_length: int = MIN_LENGTH) -> None:
        if isinstance(value, str) and len(value) >= min_length:
            with self._lock:
                self.values.setdefault(value, what)

    def collect(self, resp) -> None:
        request = resp.request
        if not request.path.startswith("/api/"):
            return
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            self._add(auth[7:].strip(), "a bearer token")
        for header in resp.headers.getlist("Set-Cookie"):
            value = header.split(";", 1)[0].partition("=")[2]
            self._add(value, "a session cookie")
        if resp.mimetype != "application/json" or resp.status_code >= 400:
            return
        body = json.loads(resp.get_data())
        if request.path == "/api/v1/me":
            self._add(body.get("name"), "a token holder's name")
            self._add(body.get("csrf_token"), "a CSRF token")
        if request.path == "/api/v1/session" and isinstance(body, dict):
            self._add(body.get("csrf_token"), "a CSRF token")
        self._walk(body)

    def _walk(self, node) -> None:
        if isinstance(node, list):
            for item in node:
                self._walk(item)
            return
        if not isinstance(node, dict):
            return
        for key in ID_KEYS:
            self._add(node.get(key), key)
        for key in TEXT_KEYS:
            self._add(node.get(key), key)
        for key in NAME_KEYS:
            self._add(node.get(key), f"a person's {key}", MIN_NAME_LENGTH)
        if "worker_id" in node:
            self._add(node.get(MEMBER_NAME_KEY), "a person's name", MIN_NAME_LENGTH)
        if node.get("disability") in DISABILITIES:
            self._add(node["disability"], "a disability")
        if "household_id" in node and "worker_id" not in node and "job_id" not in node:
            for key in ("lat", "lon"):       # where a household lives
                if isinstance(node.get(key), float):
                    self._add(repr(node[key]), "a household's coordinate")
        for value in node.values():
            if isinstance(value, (dict, list)):
                self._walk(value)

    # -- checking --------------------------------------------------------------------------------

    def texts(self):
        yield "log records", "\n".join(self.capture.lines)
        for path in self.files:
            if path.is_file():
                yield str(path), path.read_text(encoding="utf-8", errors="replace")

    def leaks(self, texts=None) -> list[str]:
        """'<what> <value> in <where>: <line>' for every personal value found in the logs."""
        with self._lock:
            values = dict(self.values)
        if not values:
            return []
        found = []
        for where, text in (texts if texts is not None else self.texts()):
            if not text:
                continue
            for chunk in _chunks(sorted(values, key=len, reverse=True), 500):
                pattern = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, chunk)) + r")(?![\w-]|\.\d)")
                for m in pattern.finditer(text):
                    start = text.rfind("\n", 0, m.start()) + 1
                    end = text.find("\n", m.end())
                    line = text[start:end if end >= 0 else len(text)]
                    found.append(f"{values[m.group(1)]} {m.group(1)!r} in {where}: {line[:200]}")
        return found


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


GUARD = Guard()
