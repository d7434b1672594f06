"""`matcher serve`: the service under gunicorn, several worker processes.

The app is made in each worker after the fork (no preloading), so every worker opens its
own database connections and loads its own copy of the model.
"""

from __future__ import annotations

import os
from pathlib import Path

from matcher.api.runtime import SERVING_FILE

try:
    from gunicorn.workers.gthread import ThreadWorker
except ImportError:                      # gunicorn runs on POSIX only; the app itself does not need it
    ThreadWorker = object


class JSONErrorWorker(ThreadWorker):
    """gunicorn's threaded worker, answering the requests it refuses itself (a request line or headers
    too large, a malformed request) with the error JSON of SPEC section 5 instead of an HTML page, and
    logging only what kind of request it was: a refused request line holds a path, and paths hold ids."""

    def handle_error(self, req, client, addr, exc):
        from gunicorn import http, util
        from gunicorn.http import errors as ge
        from matcher.api.errors import error_body
        if isinstance(exc, (ge.InvalidResponseHeader, ge.InvalidResponseHeaderName)) or \
                not isinstance(exc, http.errors.ParseException):
            return super().handle_error(req, client, addr, exc)
        status, code, reason, message = 400, "bad_request", "Bad Request", "the request is not valid HTTP"
        if isinstance(exc, ge.LimitRequestLine):
            status, code, reason = 414, "uri_too_long", "URI Too Long"
            message = f"the request line is longer than {self.cfg.limit_request_line} bytes"
        elif isinstance(exc, ge.LimitRequestHeaders):
            status, code, reason = 431, "headers_too_large", "Request Header Fields Too Large"
            message = (f"the request headers are too large (at most {self.cfg.limit_request_fields} fields of "
                       f"{self.cfg.limit_request_field_size} bytes each)")
        elif isinstance(exc, ge.UnsupportedTransferCoding):
            status, code, reason, message = 501, "not_implemented", "Not Implemented", "unsupported transfer coding"
        elif isinstance(exc, ge.ExpectationFailed):
            status, code, reason, message = 417, "expectation_failed", "Expectation Failed", "unsupported Expect"
        elif isinstance(exc, ge.ConfigurationProblem):
            status, code, reason, message = 500, "internal_error", "Internal Server Error", "server misconfigured"
        elif isinstance(exc, ge.ForbiddenProxyRequest):
            status, code, reason, message = 403, "forbidden", "Forbidden", "proxy request refused"
        self.log.warning("refused a request gunicorn could not take: %s (%d)", type(exc).__name__, status)
        body = error_body(code, message, None)
        head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
                f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n")
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except Exception:  # noqa: BLE001 - the client is gone; nothing to answer
            self.log.debug("could not send the error answer")


def default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2)))


def run(host: str = "127.0.0.1", port: int = 8000, workers: int | None = None, threads: int = 4,
        timeout: int = 120, instance_dir: str | Path | None = None) -> None:
    from gunicorn.app.base import BaseApplication

    if instance_dir is not None:
        # A reload recorded by an earlier run does not outlive it: start from the configured model.
        (Path(instance_dir) / SERVING_FILE).unlink(missing_ok=True)

    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers or default_workers(),
        "worker_class": "matcher.api.serve.JSONErrorWorker",
        "threads": threads,
        "timeout": timeout,
        "graceful_timeout": 30,
        "preload_app": False,
        "accesslog": None,
        "proc_name": "matcher",
        "control_socket_disable": True,
    }

    class Service(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            from matcher.api import create_app
            return create_app()

    Service().run()
