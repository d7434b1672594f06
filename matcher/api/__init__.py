"""The HTTP service (SPEC section 5): a Flask application factory, one blueprint per area.

``create_app()`` reads the settings (:func:`matcher.config.load_settings`, the only reader of
the environment); tests pass ``test_config`` to override them. The database engine is made
lazily in each process, so gunicorn workers never share a connection made before the fork.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

import datetime as dt

from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider

from matcher.config import load_settings

log = logging.getLogger("matcher.api")
access = logging.getLogger("matcher.api.access")


def _settings_config() -> dict:
    s = load_settings()
    return {
        "DATABASE_URL": s.database_url,
        "MODEL_PATH": s.model_path,
        "MODELS_DIR": str(s.models_dir),
        "POLICY_PATH": str(s.policy_path),
        "INSTANCE_DIR": str(s.instance_dir),
        "REDIS_URL": s.redis_url,
        "RATE_LIMIT_PER_MINUTE": s.rate_limit_per_minute,
        "MAX_JSON_BYTES": s.max_json_bytes,
        "MAX_CSV_BYTES": s.max_csv_bytes,
        "LOG_LEVEL": s.log_level,
        "TRUST_PROXY": s.trust_proxy,
        "LOAD_MODEL": True,
        # Audit entries are written in batches this often (0: before each answer); see runtime.AuditWriter.
        "AUDIT_FLUSH_SECONDS": 0.25,
        # Score every eligible pair once per model, in the background; see runtime.SnapshotHolder.
        "PRECOMPUTE_SCORES": True,
    }


class JSONProvider(DefaultJSONProvider):
    """UTF-8 text as is, keys in the order the schemas give them, dates as ISO 8601."""

    ensure_ascii = False
    sort_keys = False

    @staticmethod
    def default(o):
        if isinstance(o, (dt.date, dt.datetime)):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


def _logging(level: str) -> None:
    logger = logging.getLogger("matcher")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    # werkzeug's own server (flask run, the browser tests) logs every request with its full path, which
    # carries ids of people; matcher.api.access logs each request by its route's template instead.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


# Answers that carry the session's CSRF token are never compressed: a secret in a compressed answer is
# what BREACH-style length attacks read. They are small anyway.
UNCOMPRESSED_ENDPOINTS = frozenset({"session.sign_in", "pages.households_list.me"})
COMPRESS_MIMETYPES = ["text/html", "text/css", "text/javascript", "application/javascript", "application/json",
                      "text/csv", "image/svg+xml"]


def _compression(app: Flask) -> None:
    """Compress text answers of 500 bytes or more (brotli, zstd or gzip, as the client accepts): a
    household and its matches is 5-10 times smaller on a village's slow network. Registered first, so
    it runs after every other after-request hook. A strong ETag gets the encoding appended
    (``"abc:br"``) and conditional requests are evaluated on the compressed answer."""
    from flask_compress import Compress

    class _Compress(Compress):
        def after_request(self, response):
            if request.endpoint in UNCOMPRESSED_ENDPOINTS:
                return response
            return super().after_request(response)

    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESS_MIMETYPES)
    app.config.setdefault("COMPRESS_MIN_SIZE", 500)
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "zstd", "gzip"])
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["br", "zstd", "deflate"])
    _Compress(app)


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.json = JSONProvider(app)
    app.config.from_mapping(_settings_config())
    if test_config:
        app.config.update(test_config)
    # Answers are checked against their response schema in tests (and when asked); in service the
    # schemathesis run in the test suite is what keeps them in line, and the check's cost is saved.
    app.config.setdefault("VALIDATE_RESPONSES", bool(app.config.get("TESTING")))
    Path(app.config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    # The hard ceiling; each endpoint gets its own limit (JSON or CSV) before its body is read.
    app.config["MAX_CONTENT_LENGTH"] = max(int(app.config["MAX_JSON_BYTES"]), int(app.config["MAX_CSV_BYTES"]))
    _logging(app.config["LOG_LEVEL"])

    _compression(app)

    @app.before_request
    def _start_clock():
        g.started = time.perf_counter()

    from matcher.api import auth, errors, runtime
    errors.init_app(app)
    runtime.init_app(app)
    auth.init_app(app)

    from matcher.api import (allocations, health, imports, jobs, modelctl, openapi, people, referrals, session,
                             sites, stats, visits)
    for module in (health, openapi, session, jobs, people, referrals, modelctl, stats, allocations, sites,
                   imports, visits):
        app.register_blueprint(module.bp)
    # The web pages (/ and /recruiter) live in matcher/api/pages.py when that module exists.
    if importlib.util.find_spec("matcher.api.pages") is not None:
        from matcher.api import pages
        app.register_blueprint(pages.bp)

    @app.after_request
    def _access_log(resp):
        # The route's template, never the path: paths carry ids of people.
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        started = g.get("started")
        ms = (time.perf_counter() - started) * 1000 if started else 0.0
        tok = g.get("token")
        access.info("%s %s %s %.1fms %s", request.method, rule, resp.status_code, ms,
                    ("token=" if tok.kind == "token" else "user=") + str(tok.id) if tok else "anonymous")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Cache-Control", "no-store")
        if request.method == "OPTIONS" and resp.status_code == 200 and not resp.get_data():
            # Flask's automatic OPTIONS answer is an empty text/html 200: say which methods, with no body
            resp.status_code = 204
            del resp.headers["Content-Type"]
        return resp

    return app
