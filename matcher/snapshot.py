"""The service's state for one store revision: the world's arrays, the model and its score table.

A :class:`Snapshot` is a value: a request takes the current one once and reads only it, so it never
sees half of a change. A write to the store (one job posted or changed, a referral's outcome, a hire,
a worker added) gives the next snapshot by :meth:`Snapshot.changed`: the touched rows are read again
and put into copies of the arrays, and only the pairs touching them are scored again. An import (many
rows at once) or a vocabulary of skills that would come out otherwise builds the next snapshot whole
(:func:`build`); a new model keeps the arrays and scores every pair anew (:meth:`Snapshot.with_model`).

Which rows a write touched comes from the store's change log (``changes``, see
:func:`matcher.store.queries.record_change`); :class:`matcher.api.runtime.SnapshotHolder` follows it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from cachetools import LRUCache
from sqlalchemy.engine import Engine as Store

from matcher.eligibility import JobArrays, WorkerArrays, with_rows
from matcher.policy import Policy
from matcher.ranking import Engine, ScoreTable
from matcher.skills import SkillIndex, normalise_tags
from matcher.store import io, queries

MAX_ANSWER_BYTES = 64 << 20     # remembered answers per snapshot (a household's is 5-30 kB)
# More changes than this since a snapshot's revision, or an import among them: build the next one whole.
MAX_CHANGES = 500

_lineages = itertools.count(1)


@dataclass(frozen=True)
class Changes:
    """What some writes touched, by id: worker and job rows to read again; ``whole`` when the world must
    be read whole (an import); ``plan`` when a city-wide plan was stored."""

    revision: int
    workers: frozenset = frozenset()
    jobs: frozenset = frozenset()
    whole: bool = False
    plan: bool = False

    @classmethod
    def of(cls, rows: list[dict], revision: int) -> "Changes":
        workers = {r["worker_id"] for r in rows if r["worker_id"]}
        jobs = {r["job_id"] for r in rows if r["job_id"]}
        whole = any(r["table_name"] == "world" for r in rows)
        plan = any(r["table_name"] == "allocations" for r in rows)
        return cls(revision, frozenset(workers), frozenset(jobs), whole, plan)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The world's arrays, the model (a loaded artifact: ``.model``, ``.version``) and, once every pair has
    been scored, the score table, at one revision of the store; and the newest stored plan's id.

    ``lineage`` names the arrays' line of descent from the last whole build or model change, ``touched``
    the (worker rows, job rows) changed in that line, so a table scored for an older snapshot of the line
    can be brought up to this one (:meth:`catch_up`).
    """

    revision: int
    W: WorkerArrays
    J: JobArrays
    loaded: object
    policy: Policy
    table: ScoreTable | None = None
    plan_id: int | None = None
    lineage: int = 0
    touched: tuple = ((), ())
    in_id_order: bool = True          # rows in id order, as a whole build makes them
    worker_rows: dict = field(default_factory=dict, repr=False)
    job_rows: dict = field(default_factory=dict, repr=False)
    job_tags: tuple = field(default=(), repr=False)   # each job's canonical skills, for the vocabulary check
    answers: LRUCache | None = field(default=None, repr=False)   # remembered answers (JSON bytes) by key
    ranker: Engine = field(init=False, repr=False)
    memo: dict = field(init=False, repr=False)         # values derived from this snapshot (a plan's prices)

    def __post_init__(self) -> None:
        if not self.worker_rows:
            object.__setattr__(self, "worker_rows", {str(w): i for i, w in enumerate(self.W.ids)})
        if not self.job_rows:
            object.__setattr__(self, "job_rows", {str(j): i for i, j in enumerate(self.J.ids)})
        if not self.job_tags:
            object.__setattr__(self, "job_tags", tuple(normalise_tags(t) for t in self.J.frame["skills"]))
        object.__setattr__(self, "ranker", Engine(self.W, self.J, self.loaded.model, self.policy, self.table,
                                                  rows=self.worker_rows, job_rows=self.job_rows))
        if self.answers is None:
            object.__setattr__(self, "answers", LRUCache(MAX_ANSWER_BYTES, getsizeof=len))
        object.__setattr__(self, "memo", {})

    @property
    def model(self):
        return self.loaded.model

    # -- the next snapshot --------------------------------------------------------------------

    def with_model(self, loaded) -> "Snapshot":
        """The same world with another model: its pairs are scored anew (the table comes later)."""
        return self._next(self.revision, self.W, self.J, table=None, loaded=loaded, lineage=next(_lineages),
                          touched=((), ()))

    def with_table(self, table: ScoreTable) -> "Snapshot":
        """The same snapshot reading its scores from ``table``: the same answers, so they are kept."""
        return self._next(self.revision, self.W, self.J, table=table, answers=self.answers)

    def changed(self, store: Store, changes: Changes) -> "Snapshot":
        """The snapshot after ``changes``: their rows read again from ``store`` and put in, only their pairs
        scored again; built whole when they are an import or would change the skills' vocabulary."""
        plan_id = queries.latest_allocation_id(store) if changes.plan else self.plan_id
        if changes.whole:
            return build(store, self.policy, self.loaded, changes.revision)
        J, job_rows, job_tags, jrows, in_order = self.J, self.job_rows, self.job_tags, [], self.in_id_order
        rescore: list[int] = []
        if changes.jobs:
            frame = io.read_rows(store, "jobs", sorted(changes.jobs))
            tags = [normalise_tags(t) for t in frame["skills"]]
            jrows = [job_rows.get(str(j), -1) for j in frame["job_id"]]
            added = iter(itertools.count(len(J)))
            jrows = [r if r >= 0 else next(added) for r in jrows]
            all_tags = list(job_tags) + [()] * (max(jrows, default=-1) + 1 - len(job_tags))
            for r, t in zip(jrows, tags):
                all_tags[r] = t
            ids = list(J.ids) + [None] * (len(all_tags) - len(J))
            for r, j in zip(jrows, frame["job_id"]):
                ids[r] = j
            if _vocabulary(ids, all_tags) != J.skill_index.names:
                return build(store, self.policy, self.loaded, changes.revision)
            sub = JobArrays.build(frame, J.skill_index)        # every skill is in the index already
            old_J = J
            J = with_rows(J, sub, np.array(jrows, np.int64))
            # a job whose pairs cannot have changed (a hire that leaves a slot free, a new title) is not
            # rescored: its free slots and its words are no part of a pair's eligibility or features
            rescore = [r for r in jrows if r >= len(old_J) or not _same_pairs(old_J, J, r)]
            job_rows = dict(job_rows)
            for r, j in zip(jrows, frame["job_id"]):
                job_rows[str(j)] = r
            in_order &= all(r < len(self.J) for r in jrows)
            job_tags = tuple(all_tags)
        W, worker_rows, wrows = self.W, self.worker_rows, []
        if changes.workers:
            frame = io.read_rows(store, "workers", sorted(changes.workers))
            households = io.read_rows(store, "households", sorted(set(frame["household_id"])))
            sub = WorkerArrays.build(frame, households, self.policy, J.skill_index, J.words,
                                     referrals=io.worker_referrals(store, list(frame["worker_id"])), jobs=J.frame)
            added = iter(itertools.count(len(W)))
            wrows = [worker_rows.get(str(w), -1) for w in frame["worker_id"]]
            wrows = [r if r >= 0 else next(added) for r in wrows]
            W = with_rows(W, sub, np.array(wrows, np.int64))
            worker_rows = dict(worker_rows)
            for r, w in zip(wrows, frame["worker_id"]):
                worker_rows[str(w)] = r
            in_order &= all(r < len(self.W) for r in wrows)
        table = self.table
        if table is not None and (wrows or rescore):
            table = table.changed(W, J, self.model, self.policy, np.array(wrows, np.int64),
                                  np.array(rescore, np.int64))
        # rows a table scored for an older snapshot of the line would miss (none once this one has a table)
        touched = self.touched if table is not None else \
            (self.touched[0] + tuple(wrows), self.touched[1] + tuple(rescore))
        return self._next(changes.revision, W, J, table=table, plan_id=plan_id, touched=touched,
                          in_id_order=in_order, worker_rows=worker_rows, job_rows=job_rows, job_tags=job_tags)

    def catch_up(self, table: ScoreTable, scored_for: "Snapshot") -> ScoreTable | None:
        """``table``, scored for the older snapshot ``scored_for`` of this line, brought up to this one;
        None when the line changed in between (a whole build or another model)."""
        if scored_for.lineage != self.lineage:
            return None
        k, m = len(scored_for.touched[0]), len(scored_for.touched[1])
        workers, jobs = self.touched[0][k:], self.touched[1][m:]
        if not workers and not jobs:
            return table
        return table.changed(self.W, self.J, self.model, self.policy, np.array(workers, np.int64),
                             np.array(jobs, np.int64))

    def _next(self, revision, W, J, **kw) -> "Snapshot":
        same_rows = W is self.W and J is self.J
        base = dict(revision=revision, W=W, J=J, loaded=self.loaded, policy=self.policy, table=self.table,
                    plan_id=self.plan_id, lineage=self.lineage, touched=self.touched, in_id_order=self.in_id_order,
                    worker_rows=self.worker_rows if same_rows else {}, job_rows=self.job_rows if same_rows else {},
                    job_tags=self.job_tags if same_rows else ())
        base.update(kw)
        return Snapshot(**base)


# What a job's pairs depend on: eligibility (SPEC section 3), the pair features, the track-record features.
_PAIR_FIELDS = ("kind", "lat", "lon", "town", "village", "min_age", "max_age", "demand", "requires", "open", "wage",
                "employer", "n_required")


def _same_pairs(old: JobArrays, new: JobArrays, r: int) -> bool:
    """Whether job row ``r`` has the same pairs, with the same scores, in ``old`` and ``new``."""
    for name in _PAIR_FIELDS:
        a, b = getattr(old, name)[r], getattr(new, name)[r]
        if not (a == b or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))):
            return False
    return bool(np.array_equal(old.skills[r], new.skills[r]))


def _vocabulary(ids, tags) -> list[str]:
    """The skills in the order a whole build would number them: as they first appear in jobs by id."""
    order = sorted(range(len(ids)), key=lambda i: str(ids[i]))
    seen: dict[str, None] = {}
    for i in order:
        for t in tags[i]:
            seen.setdefault(t)
    return list(seen)


def build(store: Store, policy: Policy, loaded, revision: int | None = None) -> Snapshot:
    """The snapshot of the whole stored world at ``revision`` (read first, so the rows are at least as
    new as it), without its score table (:meth:`ScoreTable.build` scores every pair; it takes a while)."""
    if revision is None:
        revision = queries.revision(store)
    plan_id = queries.latest_allocation_id(store)
    J = JobArrays.build(io.read_table(store, "jobs"), SkillIndex())
    W = WorkerArrays.build(io.read_table(store, "workers"), io.read_table(store, "households"), policy,
                           J.skill_index, J.words, referrals=io.read_table(store, "referrals"), jobs=J.frame)
    return Snapshot(revision, W, J, loaded, policy, plan_id=plan_id, lineage=next(_lineages))


def score_every_pair(snap: Snapshot) -> ScoreTable:
    """The score table of ``snap`` (every eligible pair, with retention when the model has it)."""
    return ScoreTable.build(snap.W, snap.J, snap.model, snap.policy)


