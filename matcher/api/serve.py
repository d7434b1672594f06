"""`matcher serve`: the service under gunicorn, several worker processes.

The app is made in each worker after the fork (no preloading), so every worker opens its
own database connections and loads its own copy of the model.
"""

from __future__ import annotations

import os
from pathlib import Path

from matcher.api.runtime import SERVING_FILE


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
        "worker_class": "gthread",
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
