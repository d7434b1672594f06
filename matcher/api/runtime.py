"""What one service process holds: its database engine, the policy, the model, the current snapshot.

Everything here is per process. The database engine is made lazily in the process that uses it
(never carried across gunicorn's fork). The world's arrays and scores are a snapshot
(:mod:`matcher.snapshot`) that follows the store's change log, so a vacancy posted through any worker
process shows in the next match request of every process. A model reload in one process is written to a
small file in the instance folder; the other processes see the file change and load the
same artifact before their next request. Audit entries are written by a background thread.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from matcher.errors import ModelError
from matcher.policy import Policy, load_policy

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

    def public(self, exc: ModelError) -> ModelError:
        """The error as a client may read it and a log may hold it: the models folder named as ``models/``,
        never by its place on the server, and control characters a client sent escaped."""
        from matcher.errors import loggable
        text = str(exc)
        for root in sorted({str(self.models_dir.resolve()), str(self.models_dir)}, key=len, reverse=True):
            text = text.replace(root + "/", "models/").replace(root, "models/")
        return ModelError(loggable(text), field=getattr(exc, "field", None))

    def resolve(self, path: str | None) -> Path:
        """A requested artifact or manifest path, which must lie inside the models folder."""
        from matcher import model as m
        if not path:
            p = m.production_path(self.models_dir)
            if p is None:
                raise ModelError("no model in the models folder: train one with `matcher train`")
            return Path(p)
        p = Path(path)
        if not p.is_absolute():
            p = self.models_dir / p
        root = self.models_dir.resolve()
        try:
            p.resolve().relative_to(root)
        except ValueError:
            raise ModelError("the model must be a file in the models folder (a path relative to it)",
                             field="path") from None
        return p

    def _load(self, path: Path) -> LoadedModel:
        """Load an artifact; whatever is wrong with the files is a ModelError, so the service still starts."""
        from matcher import model as m
        try:
            model, manifest = m.load(path)
        except ModelError:
            raise
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            # e.g. a manifest that is a folder, or JSON that is not an object
            raise ModelError(f"model manifest {m.manifest_path(path)} could not be read: {type(exc).__name__}") \
                from None
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
            self.current, self.problem = None, str(self.public(exc))
            log.error("no model loaded: %s", self.problem)
        self._seen = self._stat()

    def reload(self, path: str | None) -> LoadedModel:
        """Load and swap in an artifact; on any failure keep the model in use and raise ModelError."""
        with self._lock:
            try:
                loaded = self._load(self.resolve(path))
            except ModelError as exc:
                exc = self.public(exc)
                log.error("model reload refused, keeping %s: %s",
                          self.current.version if self.current else "no model", exc)
                raise exc from None
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
                log.error("model reload in another process refused here, keeping the current one: %s",
                          self.public(exc))

    def require(self) -> LoadedModel:
        loaded = self.current
        if loaded is None:
            raise ModelError(f"no model is loaded, so there are no matches to give: {self.problem}. "
                             "An evaluator can load one with POST /api/v1/model/reload")
        return loaded


class SnapshotHolder:
    """This process's current :class:`matcher.snapshot.Snapshot`, following the store and the model in use.

    Each request asks for the current snapshot once (:meth:`current`): one cheap query reads the store's
    revision (the newest row of its change log); when another write came since, from this process or
    any other, the changes since are read and applied to the snapshot (only the rows they name), so a
    write is in the very next answer of every process. Until every pair of a snapshot's line has been
    scored (by one background thread per process, then brought up to date with the changes made in the
    meantime), answers are scored on demand: the same answers, a little later.
    """

    # Every pair is scored in the background once no new line of snapshots has been wanted for this
    # long: a process that serves a request or two and goes (a test, a CLI check) never pays for it, and a
    # burst of whole rebuilds (an import) is scored once, for its last snapshot.
    SETTLE_SECONDS = 1.0

    def __init__(self, precompute: bool = True):
        self.precompute = precompute
        self._lock = threading.Lock()
        self._snap = None
        self._wanted = None               # the snapshot whose pairs the background thread should score
        self._wanted_at = 0.0             # when it was wanted (time.monotonic)
        self._closed = False
        self._wake = threading.Event()
        self._scorer_pid: int | None = None

    def peek(self):
        """The snapshot as it is, without asking the store (None before the first request)."""
        return self._snap

    def current(self, store: Engine, policy: Policy, loaded: "LoadedModel"):
        from matcher import snapshot
        from matcher.store import queries
        revision = queries.revision(store)
        snap = self._snap
        if snap is not None and snap.revision == revision and snap.loaded is loaded:
            return snap
        with self._lock:
            snap = self._snap
            if snap is None or revision < snap.revision:
                snap = snapshot.build(store, policy, loaded, revision)
            else:
                if snap.loaded is not loaded:
                    snap = snap.with_model(loaded)
                if revision > snap.revision:
                    rows = queries.changes_since(store, snap.revision, snapshot.MAX_CHANGES + 1)
                    if len(rows) > snapshot.MAX_CHANGES:
                        snap = snapshot.build(store, policy, loaded, revision)
                    elif rows:
                        snap = snap.changed(store, snapshot.Changes.of(rows, int(rows[-1]["id"])))
            self._snap = snap
            if snap.table is None and self.precompute:
                self._schedule(snap)
            return snap

    def _schedule(self, snap) -> None:
        """Have the snapshot's pairs scored in the background (one thread per process, one line at a time)."""
        wanted = self._wanted
        if wanted is not None and wanted.lineage == snap.lineage:
            return
        self._wanted, self._wanted_at = snap, time.monotonic()
        if self._scorer_pid != os.getpid():
            self._scorer_pid = os.getpid()
            threading.Thread(target=self._score_in_background, name="matcher-scores", daemon=True).start()
        self._wake.set()

    def _score_in_background(self) -> None:
        from matcher import snapshot
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            while (wanted := self._wanted) is not None and not self._closed:
                wait = self._wanted_at + self.SETTLE_SECONDS - time.monotonic()
                if wait > 0:
                    time.sleep(wait)       # then look again: a newer line may have replaced it
                    continue
                try:
                    table = snapshot.score_every_pair(wanted)
                except Exception as exc:  # noqa: BLE001 - on-demand scoring still works; say why, no data
                    log.error("scoring every pair in the background failed: %s", type(exc).__name__)
                    table = None
                with self._lock:
                    cur = self._snap
                    if table is not None and cur is not None and cur.table is None:
                        caught_up = cur.catch_up(table, wanted)
                        if caught_up is not None:
                            self._snap = cur.with_table(caught_up)
                    if self._wanted is wanted:
                        self._wanted = None

    def close(self) -> None:
        """No more background scoring (the process's service is being shut down)."""
        self._closed = True
        self._wake.set()

    def remember(self, snap, key: tuple, compute):
        """``compute(snap)`` (bytes), or its answer from before on the same snapshot.

        Answers live on the snapshot, which is made anew for every change of the store and the model,
        so a remembered answer is always the one a fresh computation would give.
        """
        answers = snap.answers
        hit = answers.get(key)
        if hit is not None:
            return hit
        value = compute(snap)
        if value is None:
            return None
        with self._lock:
            try:
                answers[key] = value
            except ValueError:          # larger than the whole cache: answered, not remembered
                pass
        return value


class AuditWriter:
    """Audit entries, written by a background thread in batches (one transaction per batch).

    Each entry keeps the time of its request. With ``flush_seconds`` 0 every entry is written
    before the request is answered; otherwise entries wait at most that long (so a hard crash
    can lose the last fraction of a second of entries, never a record's data), which spares
    every read an fsync of its own. Pending entries are written at exit.
    """

    def __init__(self, rt: "Runtime", flush_seconds: float):
        self.rt, self.flush_seconds = rt, float(flush_seconds)
        self._pending: list[dict] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread_pid: int | None = None

    def record(self, **entry) -> None:
        from matcher.store import queries
        from matcher.store.models import utcnow
        entry.setdefault("at", utcnow())
        if self.flush_seconds <= 0:
            queries.write_audit(self.rt.engine, [entry])
            return
        with self._lock:
            self._pending.append(entry)
            if self._thread_pid != os.getpid():
                self._thread_pid = os.getpid()
                threading.Thread(target=self._run, name="matcher-audit", daemon=True).start()

    def flush(self) -> None:
        from matcher.store import queries
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            queries.write_audit(self.rt.engine, batch)
        except Exception as exc:  # noqa: BLE001 - keep the entries and try again later
            log.error("audit log write failed (%s); %d entries kept for the next try", type(exc).__name__, len(batch))
            with self._lock:
                self._pending[:0] = batch

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self.flush()


class Runtime:
    """The resources of one app in one process."""

    def __init__(self, app: Flask):
        cfg = app.config
        self.database_url: str = cfg["DATABASE_URL"]
        self.policy: Policy = load_policy(cfg["POLICY_PATH"])
        self.models = ModelHolder(Path(cfg["MODELS_DIR"]), Path(cfg["INSTANCE_DIR"]))
        self.snapshots = SnapshotHolder(precompute=bool(cfg.get("PRECOMPUTE_SCORES", True)))
        self._engine: Engine | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self.audit = AuditWriter(self, cfg.get("AUDIT_FLUSH_SECONDS", 0.25))
        atexit.register(self.audit.flush)

    @property
    def engine(self) -> Engine:
        """This process's engine, made on first use (and again in a forked child)."""
        pid = os.getpid()
        if self._engine is None or self._pid != pid:
            with self._lock:
                if self._engine is None or self._pid != pid:
                    from matcher.store import make_engine, normalise_url
                    # A file database cannot drop a pooled connection the way a server can: no ping.
                    sqlite = normalise_url(self.database_url).get_backend_name() == "sqlite"
                    self._engine = make_engine(self.database_url, **({"pool_pre_ping": False} if sqlite else {}))
                    self._pid = pid
        return self._engine

    def snapshot(self):
        """The current snapshot of the store and the model in use (ModelError when there is no model)."""
        return self.snapshots.current(self.engine, self.policy, self.models.require())

    def dispose(self) -> None:
        self.snapshots.close()
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
