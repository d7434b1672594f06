"""What one service process holds: its database engine, the policy, the model, the prepared jobs.

Everything here is per process. The database engine is made lazily in the process that uses it
(never carried across gunicorn's fork). The prepared arrays of every job and worker are rebuilt
only when the store's fingerprint changes, so a vacancy posted through any worker process shows
in the next match request of every process. A model reload in one process is written to a
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
from collections import OrderedDict
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


class WorldCache:
    """Every job and every worker as prepared arrays, and the ranking engine over them.

    Rebuilt only when the store's fingerprint changes (one cheap query per request: counts of
    households and workers, and the jobs' count, revisions, filled and open). A hire raises the
    job's revision, so the worker it employs is seen too. The engine is cached per model.
    """

    MAX_ANSWER_BYTES = 64 << 20     # remembered answers per process (a household's is 5-30 kB)
    # Every pair is scored in the background once the store has stayed unchanged this long, by one
    # thread per process: under a stream of posts and hires a new scoring per change (a second of
    # CPU each, none of them finished before the next change) starved the requests themselves.
    SETTLE_SECONDS = 1.0

    def __init__(self, precompute: bool = True):
        self.precompute = precompute
        self._lock = threading.Lock()
        self._state: tuple | None = None     # (version, (J, W)), replaced whole
        self._engines: dict = {}
        self._wanted: tuple | None = None    # (when it was made, the ranker to score in the background)
        self._wake = threading.Event()
        self._scorer_pid: int | None = None

    def arrays(self, engine: Engine, policy: Policy):
        from matcher.eligibility import WorkerArrays
        from matcher.store import queries
        from matcher.store.io import read_table
        version = queries.world_version(engine)
        state = self._state
        if state is not None and state[0] == version:
            return state
        with self._lock:
            state = self._state
            if state is not None and state[0] == version:
                return state
            # The version is read before the rows, so the rows are at least as new as the key.
            J = JobArrays.build(read_table(engine, "jobs"), SkillIndex())
            W = WorkerArrays.build(read_table(engine, "workers"), read_table(engine, "households"), policy,
                                   J.skill_index, J.words, referrals=read_table(engine, "referrals"), jobs=J.frame)
            self._engines = {}
            self._state = (version, (J, W))
            return self._state

    def engine(self, engine: Engine, policy: Policy, loaded: "LoadedModel"):
        version, (J, W) = self.arrays(engine, policy)
        key = (version, id(loaded.model))
        ranker = self._engines.get(key)
        if ranker is None:
            with self._lock:
                ranker = self._engines.get(key)
                if ranker is None:
                    ranker = make_ranker(W, J, loaded.model, policy)
                    self._engines = {key: ranker}
                    if self.precompute:
                        self._schedule(ranker)
        return ranker

    def _schedule(self, ranker) -> None:
        """Have the newest ranker's pairs scored in the background (one thread per process)."""
        self._wanted = (time.monotonic(), ranker)
        if self._scorer_pid != os.getpid():
            self._scorer_pid = os.getpid()
            threading.Thread(target=self._score_in_background, name="matcher-scores", daemon=True).start()
        self._wake.set()

    def _score_in_background(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while (wanted := self._wanted) is not None:
                wait = wanted[0] + self.SETTLE_SECONDS - time.monotonic()
                if wait > 0:
                    time.sleep(wait)       # then look again: a newer ranker may have replaced it
                    continue
                wanted[1].precompute(lambda: self._wanted is wanted)
                if self._wanted is wanted:
                    self._wanted = None

    def remember(self, engine: Engine, policy: Policy, loaded: "LoadedModel", key: tuple, compute):
        """``compute(ranker)`` (bytes), or its answer from before when nothing has changed since.

        Answers live on the ranker, which is made anew for every store fingerprint and model,
        so a remembered answer is always the one a fresh computation would give.
        """
        ranker = self.engine(engine, policy, loaded)
        answers = ranker.answers
        hit = answers.get(key)
        if hit is not None:
            return hit
        value = compute(ranker)
        if value is None:
            return None
        with self._lock:
            answers[key] = value
            ranker.answer_bytes += len(value)
            while ranker.answer_bytes > self.MAX_ANSWER_BYTES and answers:
                ranker.answer_bytes -= len(answers.popitem(last=False)[1])
        return value


def make_ranker(W, J, model, policy):
    """The ranking engine, able to score every pair once in the background and slice from then on."""
    import dataclasses

    import numpy as np

    from matcher.eligibility import Pairs
    from matcher.ranking import Engine as Ranker, Scored

    def _take(value, idx):
        if isinstance(value, Pairs):
            return value.take(idx)
        if isinstance(value, np.ndarray):
            return value[idx]
        return value

    class ServiceRanker(Ranker):
        """:class:`matcher.ranking.Engine` whose scores, once every pair is scored, come from that table.

        Until :meth:`precompute` has finished (or when it is not run), pairs are scored on demand
        exactly as the base class does; the table gives the same pairs in the same order, since
        the base class sorts by worker first and a worker's pairs do not depend on other workers.
        """

        _all: Scored | None = None
        _bounds: np.ndarray | None = None
        _retention: np.ndarray | None = None

        def __init__(self, *args):
            super().__init__(*args)
            self.answers: OrderedDict = OrderedDict()
            self.answer_bytes = 0

        def precompute(self, still_wanted=lambda: True) -> None:
            if not still_wanted():
                return
            try:
                sc = Ranker.score(self)
                retention = None
                if self.model.retain is not None and len(sc.pairs):
                    retention = self.model.retention(self.model.matrix(self.W, self.J, sc.pairs, sc.covered))
            except Exception as exc:  # noqa: BLE001 - on-demand scoring still works; say why, no data
                log.error("scoring every pair in the background failed: %s", type(exc).__name__)
                return
            bounds = np.searchsorted(sc.pairs.w, np.arange(len(self.W) + 1))
            self._bounds, self._retention, self._all = bounds, retention, sc

        def score(self, rows=None, threads: int = 1, ordered: bool = True):
            sc, bounds = self._all, self._bounds
            if sc is None or rows is None:
                return Ranker.score(self, rows, threads=threads, ordered=ordered)
            rows = np.unique(np.asarray(rows, dtype=np.int64))
            idx = np.concatenate([np.arange(bounds[r], bounds[r + 1]) for r in rows]) if len(rows) else \
                np.zeros(0, np.int64)
            out = Scored(**{f.name: _take(getattr(sc, f.name), idx) for f in dataclasses.fields(sc)})
            out._table_rows = idx
            return out

        def _add_retention(self, sc, members) -> None:
            table_rows = getattr(sc, "_table_rows", None)
            if self._retention is None or table_rows is None:
                return Ranker._add_retention(self, sc, members)
            for m in members:
                for key in ("matches", "fallback"):
                    for item in m[key]:
                        item["retention_6m"] = round(float(self._retention[table_rows[item.pop("_row")]]), 4)

    return ServiceRanker(W, J, model, policy)


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
        self.world = WorldCache(precompute=bool(cfg.get("PRECOMPUTE_SCORES", True)))
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
