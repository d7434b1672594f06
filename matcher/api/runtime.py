"""What one service process holds: its database engine, the policy, the model, the prepared jobs.

Everything here is per process. The engine is made lazily in the process that uses it (never
carried across gunicorn's fork). The prepared job arrays are rebuilt only when the jobs'
version in the database changes, so a vacancy posted through any worker process shows in
the next match request of every process. A model reload in one process is written to a
small file in the instance folder; the other processes see the file change and load the
same artifact before their next request.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from matcher.eligibility import JobArrays
from matcher.errors import ModelError
from matcher.policy import Policy, load_policy
from matcher.skills import SkillIndex

log = logging.getLogger("matcher.api")

SERVING_FILE = "serving-model.json"


@dataclass(frozen=True)
class LoadedModel:
    model: object
    manifest: dict
    path: str
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version") or getattr(self.model, "version", "") or "unknown")


class ModelHolder:
    """The model in use; swapped whole, so a request sees either the old model or the new one."""

    def __init__(self, models_dir: Path, instance_dir: Path):
        self.models_dir = Path(models_dir)
        self.serving_file = Path(instance_dir) / SERVING_FILE
        self.current: LoadedModel | None = None
        self.problem: str | None = "no model has been loaded yet"
        self._lock = threading.Lock()
        self._seen: tuple | None = None

    # -- loading --------------------------------------------------------------------------

    def resolve(self, path: str | None) -> Path:
        """A requested artifact or manifest path, which must lie inside the models folder."""
        from matcher import model as m
        if not path:
            p = m.production_path(self.models_dir)
            if p is None:
                raise ModelError(f"no model in {self.models_dir}: train one with `matcher train`")
            return Path(p)
        p = Path(path)
        if not p.is_absolute():
            p = self.models_dir / p
        root = self.models_dir.resolve()
        try:
            p.resolve().relative_to(root)
        except ValueError:
            raise ModelError(f"the model must be in the models folder {root}", field="path") from None
        return p

    def _load(self, path: Path) -> LoadedModel:
        from matcher import model as m
        model, manifest = m.load(path)
        return LoadedModel(model, manifest, str(m.manifest_path(path)))

    def load_at_start(self, path: str | None) -> None:
        """Load the configured model (or the production one); on failure stay without a model."""
        pointer = self._read_serving_file()
        try:
            target = Path(pointer) if pointer else (Path(path) if path else self.resolve(None))
            self.current = self._load(target)
            self.problem = None
            log.info("model %s loaded", self.current.version)
        except ModelError as exc:
            self.current, self.problem = None, str(exc)
            log.error("no model loaded: %s", exc)
        self._seen = self._stat()

    def reload(self, path: str | None) -> LoadedModel:
        """Load and swap in an artifact; on any failure keep the model in use and raise ModelError."""
        with self._lock:
            target = self.resolve(path)
            try:
                loaded = self._load(target)
            except ModelError as exc:
                log.error("model reload refused, keeping %s: %s",
                          self.current.version if self.current else "no model", exc)
                raise
            self.current, self.problem = loaded, None
            self._write_serving_file(loaded.path)
            log.info("model %s loaded by reload", loaded.version)
            return loaded

    # -- other processes ------------------------------------------------------------------

    def _stat(self):
        try:
            st = self.serving_file.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read_serving_file(self) -> str | None:
        try:
            return json.loads(self.serving_file.read_text(encoding="utf-8")).get("path") or None
        except (OSError, ValueError, AttributeError):
            return None

    def _write_serving_file(self, path: str) -> None:
        from matcher.model import _atomic_write
        try:
            _atomic_write(self.serving_file, json.dumps({"path": path}).encode("utf-8"))
            self._seen = self._stat()
        except OSError as exc:
            log.warning("could not record the reloaded model for other processes: %s", type(exc).__name__)

    def sync(self) -> None:
        """Follow a reload made by another process (one stat call when nothing changed)."""
        seen = self._stat()
        if seen == self._seen:
            return
        with self._lock:
            if seen == self._seen:
                return
            self._seen = seen
            path = self._read_serving_file()
            if not path or (self.current and self.current.path == path):
                return
            try:
                self.current, self.problem = self._load(Path(path)), None
                log.info("model %s loaded after a reload in another process", self.current.version)
            except ModelError as exc:
                log.error("model reload in another process refused here, keeping the current one: %s", exc)

    def require(self) -> LoadedModel:
        loaded = self.current
        if loaded is None:
            raise ModelError(f"no model is loaded, so there are no matches to give: {self.problem}. "
                             "An evaluator can load one with POST /api/v1/model/reload")
        return loaded


class JobsCache:
    """The open-and-closed jobs as prepared arrays, rebuilt only when the jobs' version changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._version = None
        self._arrays: JobArrays | None = None

    def get(self, engine: Engine) -> JobArrays:
        from matcher.store import queries
        from matcher.store.io import read_table
        version = queries.jobs_version(engine)
        arrays = self._arrays
        if arrays is not None and version == self._version:
            return arrays
        with self._lock:
            if self._arrays is not None and version == self._version:
                return self._arrays
            # The version is read before the rows, so the rows are at least as new as the key.
            arrays = JobArrays.build(read_table(engine, "jobs"), SkillIndex())
            self._arrays, self._version = arrays, version
            return arrays

    def invalidate(self) -> None:
        with self._lock:
            self._arrays, self._version = None, None


class Runtime:
    """The resources of one app in one process."""

    def __init__(self, app: Flask):
        cfg = app.config
        self.database_url: str = cfg["DATABASE_URL"]
        self.policy: Policy = load_policy(cfg["POLICY_PATH"])
        self.models = ModelHolder(Path(cfg["MODELS_DIR"]), Path(cfg["INSTANCE_DIR"]))
        self.jobs = JobsCache()
        self._engine: Engine | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """This process's engine, made on first use (and again in a forked child)."""
        pid = os.getpid()
        if self._engine is None or self._pid != pid:
            with self._lock:
                if self._engine is None or self._pid != pid:
                    from matcher.store import make_engine
                    self._engine, self._pid = make_engine(self.database_url), pid
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None


def init_app(app: Flask) -> Runtime:
    rt = Runtime(app)
    app.extensions["matcher"] = rt
    if app.config.get("LOAD_MODEL", True):
        rt.models.load_at_start(app.config.get("MODEL_PATH"))
    return rt


def runtime() -> Runtime:
    return current_app.extensions["matcher"]
