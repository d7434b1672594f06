"""Ranking: top-k eligible jobs, reasons, subsidies, the public-welfare fallback, training
suggestions and the household plan.

The flow is one way: prepared arrays -> eligible pairs -> features -> scores -> ranked
items. Market jobs always rank above public-welfare posts, which are offered only to
fallback-eligible workers whose market options are empty or all below the policy's
viability threshold.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from matcher.eligibility import KIND, KIND_CODES, JobArrays, Pairs, WorkerArrays, candidate_pairs, job_pairs
from matcher.features import FEATURE_INDEX, skill_overlap
from matcher.model import MatchModel
from matcher.policy import Policy
from matcher.schema import World
from matcher.skills import SkillIndex, popcount

WELFARE = KIND["public_welfare"]
KIND_LABEL = {
    "workshop_factory": "厂房式扶贫车间",
    "workshop_home": "居家式扶贫车间",
    "enterprise": "企业岗位",
    "out_of_county": "县外务工",
    "public_welfare": "公益性岗位",
}
RECOMMEND_COLUMNS = ["worker_id", "rank", "job_id", "score", "tier", "distance_km", "subsidy_yuan", "reasons"]


@lru_cache(maxsize=1)
def _place_names() -> dict[str, str]:
    """Village and township names by code, from the shipped divisions."""
    from matcher.config import DATA_DIR
    names = {}
    for f in ("townships.csv", "villages.csv"):
        df = pd.read_csv(DATA_DIR / "rizhao" / f, dtype=str, keep_default_na=False)
        names.update(zip(df["code"], df["name"]))
    return names


def place_name(code: str) -> str:
    return _place_names().get(code, code)


@dataclass
class Scored:
    """Eligible pairs with their scores, sorted by worker then best first (market before welfare);
    ``retention`` (P(still employed after 6 months)) when asked for and the model has a retention scorer."""

    pairs: Pairs
    score: np.ndarray
    covered: np.ndarray
    retention: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def take(self, idx) -> "Scored":
        return Scored(self.pairs.take(idx), self.score[idx], self.covered[idx],
                      None if self.retention is None else self.retention[idx])

    @staticmethod
    def concat(parts: list["Scored"]) -> "Scored":
        parts = [p for p in parts if len(p)] or parts[:1]
        if not parts:
            return Scored(Pairs.concat([]), np.zeros(0), np.zeros(0, np.int64))
        retention = None if any(p.retention is None for p in parts) else np.concatenate([p.retention for p in parts])
        return Scored(Pairs.concat([p.pairs for p in parts]), np.concatenate([p.score for p in parts]),
                      np.concatenate([p.covered for p in parts]), retention)


def score_pairs(model: MatchModel, W: WorkerArrays, J: JobArrays, p: Pairs, threads: int = 1,
                retention: bool = False) -> Scored:
    """The one way from eligible pairs to scores: covered skills, the model's feature matrix, P(hire), and
    with ``retention`` P(retained 6 months) from the same matrix. Pairs keep their order. Ranking,
    allocation, the API and the service's score table all score through here."""
    covered, _ = skill_overlap(W, J, p)
    X = model.matrix(W, J, p, covered)
    s = model.score(X, threads=threads)
    r = None
    if retention and model.retain is not None:
        r = model.retention(X) if len(p) else np.zeros(0)
    return Scored(p, s, covered, r)


def order_scored(J, sc: Scored) -> Scored:
    """Pairs in the engine's order: by worker, market before welfare, best score first, job_id on ties."""
    p = sc.pairs
    welfare = J.kind[p.j] == WELFARE
    return sc.take(np.lexsort((J.id_rank[p.j], -sc.score, welfare, p.w)))


@dataclass(frozen=True)
class ScoreTable:
    """Every eligible pair of a world scored once, grouped by worker row: worker ``w``'s pairs are
    ``scored`` rows ``bounds[w]:bounds[w + 1]`` (in no order within the worker; :meth:`rows` orders them).

    Built whole by :meth:`build`; :meth:`changed` gives the table of a world where some worker and job
    rows changed, rescoring only the pairs that touch them.
    """

    scored: Scored
    bounds: np.ndarray

    @classmethod
    def grouped(cls, sc: Scored, n_workers: int) -> "ScoreTable":
        sc = sc.take(np.argsort(sc.pairs.w, kind="stable"))
        return cls(sc, np.searchsorted(sc.pairs.w, np.arange(n_workers + 1)))

    @classmethod
    def build(cls, W: WorkerArrays, J: JobArrays, model: MatchModel, policy: Policy) -> "ScoreTable":
        p = candidate_pairs(W, J, policy)
        return cls.grouped(score_pairs(model, W, J, p, retention=True), len(W))

    def __len__(self) -> int:
        return len(self.scored)

    def rows(self, J: JobArrays, rows: np.ndarray) -> Scored:
        """The pairs of worker ``rows`` in the engine's order, as :meth:`Engine.score` gives them."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        b = self.bounds
        idx = np.concatenate([np.arange(b[r], b[r + 1]) for r in rows]) if len(rows) else np.zeros(0, np.int64)
        return order_scored(J, self.scored.take(idx))

    def changed(self, W: WorkerArrays, J: JobArrays, model: MatchModel, policy: Policy,
                workers: np.ndarray, jobs: np.ndarray) -> "ScoreTable":
        """The table over the new arrays W and J, in which worker rows ``workers`` and job rows ``jobs`` changed
        (or were added): their old pairs are dropped, their pairs in the new world scored and put in."""
        workers = np.unique(np.asarray(workers, dtype=np.int64))
        jobs = np.unique(np.asarray(jobs, dtype=np.int64))
        old = self.scored
        drop = np.isin(old.pairs.w, workers) | np.isin(old.pairs.j, jobs)
        kept = old.take(np.flatnonzero(~drop)) if drop.any() else old
        fresh = [candidate_pairs(W, J, policy, workers, ordered=False)] if len(workers) else []
        if len(jobs):
            p = job_pairs(W, J, policy, jobs)
            fresh.append(p.take(~np.isin(p.w, workers)))
        p = Pairs.concat(fresh)
        if not len(p):
            return ScoreTable(kept, np.searchsorted(kept.pairs.w, np.arange(len(W) + 1)))
        new = score_pairs(model, W, J, p, retention=old.retention is not None)
        new = new.take(np.argsort(new.pairs.w, kind="stable"))
        at = np.searchsorted(kept.pairs.w, new.pairs.w, side="right")
        ins = lambda a, b: np.insert(a, at, b)       # noqa: E731 - the same insertion for every column
        merged = Scored(Pairs(ins(kept.pairs.w, new.pairs.w), ins(kept.pairs.j, new.pairs.j),
                              ins(kept.pairs.distance_km, new.pairs.distance_km)),
                        ins(kept.score, new.score), ins(kept.covered, new.covered),
                        None if old.retention is None else ins(kept.retention, new.retention))
        return ScoreTable(merged, np.searchsorted(merged.pairs.w, np.arange(len(W) + 1)))


@dataclass
class Contention:
    """A stored city-wide plan's price of one more slot per job row (SPEC section 8): ``price`` in the
    units of a match's score (:meth:`matcher.allocation._Network.slot_prices`), ``assigned`` how many
    workers the plan sends there. Jobs the plan did not know (posted since) are 0 and 0."""

    price: np.ndarray
    assigned: np.ndarray

    @classmethod
    def of(cls, job_ids: np.ndarray, prices: dict[str, tuple[float, int]]) -> "Contention":
        """From ``{job_id: (contention, plan_assigned)}`` onto the rows of ``job_ids``."""
        got = [prices.get(str(j), (0.0, 0)) for j in job_ids]
        return cls(np.array([g[0] for g in got], float), np.array([g[1] for g in got], np.int64))


ORDERS = ("score", "plan")


def fallback_reasons(W: WorkerArrays, policy: Policy, n_market: np.ndarray, viable: np.ndarray,
                     rows: np.ndarray | None = None) -> np.ndarray:
    """Why each worker (of ``rows``, default all) needs the public-welfare fallback, or None when not:
    available and fallback-eligible, and no market job within reach (``no_market``), none viable
    (``below_threshold``), or at least ``fallback.failed_referrals`` market referrals ended without a hire
    in the last 12 months (``failed_referrals``). ``n_market`` and ``viable`` count each row's eligible
    and viable market jobs. The one copy of the rule: ranking, recommend and evaluation use it."""
    rows = np.arange(len(W)) if rows is None else np.asarray(rows, dtype=np.int64)
    n_market, viable = np.asarray(n_market), np.asarray(viable)
    may = W.available[rows] & W.fallback[rows]
    failed = W.failed_market[rows] >= policy.fallback.failed_referrals
    reason = np.select([n_market == 0, viable == 0, failed], ["no_market", "below_threshold", "failed_referrals"],
                       default="")
    return np.where(may & (reason != ""), reason, None).astype(object)


def failed_referrals_text(n: int) -> str:
    return f"近12个月{int(n)}次推荐市场岗位未成功，可安排公益性岗位"


class Engine:
    """Scores and ranks eligible jobs for workers of one world (or a slice of one)."""

    def __init__(self, workers: WorkerArrays, jobs: JobArrays, model: MatchModel, policy: Policy,
                 table: ScoreTable | None = None, rows: dict[str, int] | None = None,
                 job_rows: dict[str, int] | None = None):
        """``table``: every pair of these arrays already scored (:class:`ScoreTable`), read instead of scoring;
        ``rows`` and ``job_rows``: worker id -> row and job id -> row, when the caller has them."""
        self.W, self.J, self.model, self.policy, self.table = workers, jobs, model, policy, table
        self._subsidy = np.array([getattr(policy.subsidy, k) for k in KIND_CODES], dtype=np.int64)
        self._row = rows if rows is not None else {wid: i for i, wid in enumerate(workers.ids)}
        self._job_row = job_rows

    @classmethod
    def build(cls, world: World, model: MatchModel, policy: Policy, jobs: JobArrays | None = None,
              today=None) -> "Engine":
        """``today`` (default: today) is the day the world's failed market referrals are counted back from."""
        J = jobs or JobArrays.build(world.jobs, SkillIndex())
        W = WorkerArrays.build(world.workers, world.households, policy, J.skill_index, J.words,
                               referrals=world.referrals, jobs=world.jobs, today=today)
        return cls(W, J, model, policy)

    def row_of(self, worker_id: str) -> int | None:
        """The worker's row in the arrays, None when it is not one of them."""
        return self._row.get(worker_id)

    # -- scoring --------------------------------------------------------------------------

    def score(self, rows: np.ndarray | None = None, threads: int = 1, ordered: bool = True,
              retention: bool = False) -> Scored:
        """Every eligible pair of the rows with its score, in the engine's order (by worker; market before
        welfare; best score first; job_id on ties). ``ordered=False`` skips the ordering, for callers that
        need only the set (the exact city-wide plan); ``threads`` is for batch jobs (MatchModel.score);
        ``retention`` adds each pair's retention (when the model has a retention scorer). With a score
        table the pairs are read from it, not scored again."""
        if self.table is not None:
            if rows is not None:
                return self.table.rows(self.J, rows)
            return order_scored(self.J, self.table.scored) if ordered else self.table.scored
        p = candidate_pairs(self.W, self.J, self.policy, rows, ordered=ordered)
        sc = score_pairs(self.model, self.W, self.J, p, threads=threads, retention=retention)
        return order_scored(self.J, sc) if ordered else sc

    def subsidy(self, j: np.ndarray) -> np.ndarray:
        return self._subsidy[self.J.kind[j]]

    # -- one worker -----------------------------------------------------------------------

    def _items(self, sc: Scored, idx: np.ndarray, contention: Contention | None = None) -> list[dict]:
        items = [self._item(sc, int(i)) for i in idx]
        if contention is not None:
            for item, i in zip(items, idx):
                j = int(sc.pairs.j[i])
                item["contention"] = float(contention.price[j])
                item["plan_assigned"] = int(contention.assigned[j])
        if sc.retention is not None:
            for item, i in zip(items, idx):
                item["retention_6m"] = round(float(sc.retention[i]), 4)
        return items

    def _ordered(self, sc: Scored, idx: np.ndarray, contention: Contention | None, order: str) -> np.ndarray:
        """``idx`` (best score first) as shown: by ``score - contention`` for ``order="plan"`` once a plan is
        stored (rounded as the items show them, so the answer is ordered by its own numbers; job_id on ties)."""
        if order != "plan" or contention is None or len(idx) < 2:
            return idx
        j = sc.pairs.j[idx]
        shown = np.array([round(float(x), 4) for x in sc.score[idx]])
        return idx[np.lexsort((self.J.id_rank[j], -(shown - contention.price[j])))]

    def _item(self, sc: Scored, i: int) -> dict:
        W, J = self.W, self.J
        w, j = int(sc.pairs.w[i]), int(sc.pairs.j[i])
        d = sc.pairs.distance_km[i]
        kind = KIND_CODES[J.kind[j]]
        item = {
            "job_id": str(J.ids[j]),
            "title": str(J.title[j]),
            "employer": str(J.employer[j]),
            "kind": kind,
            "tier": "public_welfare" if kind == "public_welfare" else "market",
            "score": round(float(sc.score[i]), 4),
            "distance_km": None if np.isnan(d) else round(float(d), 2),
            "monthly_wage": float(J.wage[j]),
            "subsidy_yuan": int(self._subsidy[J.kind[j]]),
            "reasons": self.reasons(w, j, float(d), int(sc.covered[i]), float(sc.score[i])),
        }
        return item

    def reasons(self, w: int, j: int, distance: float, covered: int, score: float) -> list[str]:
        """Short phrases a volunteer can read aloud: what fits first, then what is missing."""
        J, W = self.J, self.W
        kind = KIND_CODES[J.kind[j]]
        need = J.skill_index.decode(J.skills[j])
        have = set(J.skill_index.decode(W.skills[w] & J.skills[j]))
        missing = [s for s in need if s not in have]
        out = []
        if need and not missing:
            out.append(f"技能对口：{'、'.join(need)}")
        elif have:
            out.append(f"部分技能对口：{'、'.join(s for s in need if s in have)}")
        elif not need:
            out.append("无技能要求" + ("，可在岗培训" if kind.startswith("workshop") else ""))
        if kind == "workshop_home":
            out.append(f"居家加工，材料送到家（车间距家{distance:.1f}公里）")
        elif kind == "out_of_county":
            out.append("县外务工，本人愿意外出")
        else:
            out.append(f"离家{distance:.1f}公里")
        out.append(f"月薪{J.wage[j]:,.0f}元")
        sub = int(self._subsidy[J.kind[j]])
        if sub:
            what = {"workshop_factory": "扶贫车间吸纳，车间可获一次性补贴",
                    "workshop_home": "扶贫车间吸纳，车间可获一次性补贴",
                    "out_of_county": "县外转移就业，可获职业介绍补贴",
                    "public_welfare": "公益性岗位补贴",
                    "enterprise": "企业吸纳补贴"}[kind]
            out.append(f"{what}{sub:,}元")
        if missing:
            out.append(f"缺少技能：{'、'.join(missing)}" + ("（车间可在岗培训）" if kind.startswith("workshop") else "（可参加技能培训）"))
        if kind not in ("out_of_county", "workshop_home") and np.isfinite(distance) \
                and distance > 0.75 * self.W.commute_km[w]:
            out.append("路程偏远，接近本人通勤上限")
        band = "较高" if score >= 0.5 else ("一般" if score >= self.policy.fallback.viability_threshold else "较低")
        out.append(f"录用可能性{band}（{score:.0%}）")
        return out

    def _slices(self, sc: Scored) -> dict[int, tuple[int, int]]:
        w = sc.pairs.w
        if not len(w):
            return {}
        starts = np.flatnonzero(np.r_[True, w[1:] != w[:-1]])
        ends = np.r_[starts[1:], len(w)]
        return {int(w[s]): (int(s), int(e)) for s, e in zip(starts, ends)}

    def worker_matches(self, worker_id: str, k: int = 10, contention: Contention | None = None,
                       order: str = "score") -> dict:
        """Ranked market jobs, fallback posts, training suggestions and notes for one worker; with a stored
        plan's ``contention`` each item carries its job's price, and ``order="plan"`` ranks by
        ``score - contention``."""
        w = self._row[worker_id]
        sc = self.score(np.array([w]), retention=True)
        return self._member(w, sc, k, contention, order)

    def _member(self, w: int, sc: Scored, k: int, contention: Contention | None = None,
                order: str = "score") -> dict:
        worker_id = str(self.W.ids[w])
        a, b = self._slices(sc).get(w, (0, 0))
        welfare = self.J.kind[sc.pairs.j[a:b]] == WELFARE
        market_idx = np.arange(a, b)[~welfare]
        welfare_idx = np.arange(a, b)[welfare]
        threshold = self.policy.fallback.viability_threshold
        viable = int((sc.score[market_idx] >= threshold).sum())
        notes: list[str] = []
        W = self.W
        if not W.available[w]:
            notes.append(self._unavailable_note(w))
        matches = self._items(sc, self._ordered(sc, market_idx, contention, order)[:k], contention)
        fallback: list[dict] = []
        why = fallback_reasons(W, self.policy, [len(market_idx)], [viable], np.array([w]))[0]
        if why is not None:
            fallback = self._items(sc, self._ordered(sc, welfare_idx, contention, order)[:k], contention)
            if why == "failed_referrals":
                text = failed_referrals_text(W.failed_market[w])
                for item in fallback:
                    item["reasons"] = [text] + item["reasons"]
            if not fallback:
                notes.append(self._no_post_note(w))
            elif why == "no_market":
                notes.append("附近没有合适的市场岗位，可安排公益性岗位托底")
            elif why == "below_threshold":
                notes.append("市场岗位录用可能性都较低，可安排公益性岗位托底")
            else:
                notes.append(failed_referrals_text(W.failed_market[w]) + "托底")
        elif W.available[w] and not len(market_idx):
            notes.append("通勤范围内暂无符合条件的岗位")
        training = []
        if W.available[w] and viable < self.policy.ranking.few_viable_matches:
            training = self.training_suggestions(w, sc, market_idx)
        if W.graduate[w]:
            notes.insert(0, "特困家庭高校毕业生，优先安排（应就尽就）")
        return {"worker_id": worker_id, "matches": matches, "fallback": fallback, "training": training,
                "notes": notes, "fallback_reason": why}

    def _unavailable_note(self, w: int) -> str:
        f = self.W.frame
        if bool(f.at[w, "employed"]):
            return "本人已就业"
        if f.at[w, "labour_capacity"] == "none":
            return "本人无劳动能力"
        if f.at[w, "wants"] == "business":
            return "本人希望自主创业：可申请创业担保贷款（全额贴息），经营满12个月可获一次性创业补贴"
        return "本人暂无就业意愿"

    def _no_post_note(self, w: int) -> str:
        village = self.W.village[w]
        if village:
            return f"{place_name(village)}（{village}）没有空缺的公益性岗位：请开发保洁、保绿等公益性岗位托底安置"
        town = self.W.town[w]
        return f"{place_name(town)}（{town}）没有空缺的公益性岗位：请开发保洁、保绿等公益性岗位托底安置"

    def training_suggestions(self, w: int, sc: Scored, market_idx: np.ndarray) -> list[dict]:
        """The skills that would make the most eligible jobs within reach viable, with how many."""
        if not len(market_idx):
            return []
        J = self.J
        p = sc.pairs.take(market_idx)
        threshold = self.policy.fallback.viability_threshold
        not_viable = sc.score[market_idx] < threshold
        missing_masks = J.skills[p.j] & ~self.W.skills[p.w]
        candidates = J.skill_index.decode(np.bitwise_or.reduce(missing_masks[not_viable], axis=0)) \
            if not_viable.any() else ()
        if not candidates:
            return []
        base_cov = sc.covered[market_idx]
        rows, Xs = [], []
        for skill in candidates:
            bit = J.skill_index.mask_of([skill], J.words)
            gains = popcount(J.skills[p.j] & bit[None, :]) > 0
            Xs.append(self.model.matrix(self.W, J, p, base_cov + gains))
            rows.append((skill, gains))
        scores = self.model.score(np.vstack(Xs)).reshape(len(candidates), len(p))
        out = []
        for (skill, gains), s in zip(rows, scores):
            unlocks = int((not_viable & gains & (s >= threshold)).sum())
            if unlocks:
                out.append({"skill": skill, "unlocks": unlocks})
        out.sort(key=lambda d: (-d["unlocks"], d["skill"]))
        return out[: self.policy.ranking.suggest_skills]

    # -- a household ----------------------------------------------------------------------

    def household_matches(self, household_id: str, k: int = 10, contention: Contention | None = None,
                          order: str = "score") -> dict:
        """Each member's matches and the plan: who goes where so that P(at least one hire) is
        highest, then expected hires, graduates of extremely poor families placed first;
        members who want a business get the entrepreneurship route instead of jobs. ``contention`` and
        ``order`` as for :meth:`worker_matches` (the plan then picks among the members' first options in
        that order)."""
        rows = np.flatnonzero(self.W.household == household_id)
        rows = rows[np.argsort(self.W.ids[rows].astype(str), kind="stable")]    # members by id, wherever added
        sc = self.score(rows, retention=True)
        members = [self._member(int(w), sc, k, contention, order) for w in rows]
        plan = self.plan(rows, members)
        return {"household_id": household_id, "plan": plan, "members": members}

    def plan(self, rows: np.ndarray, members: list[dict], options: int = 3) -> list[dict]:
        W, J = self.W, self.J
        plan: list[dict] = []
        seekers = []
        for w, m in zip(rows, members):
            if W.wants_business[w]:
                b = self.policy.business
                plan.append({"worker_id": m["worker_id"], "route": "business", "job_id": None, "tier": "business",
                             "score": None, "subsidy_yuan": b.startup_subsidy_yuan,
                             "reasons": [f"自主创业：可申请创业担保贷款（最高{b.guarantee_loan_yuan:,}元，全额贴息）",
                                         f"经营满{b.trading_months}个月，可获一次性创业补贴{b.startup_subsidy_yuan:,}元"]})
            elif W.available[w]:
                opts = (m["matches"] or m["fallback"])[:options]
                if opts:
                    seekers.append((w, m["worker_id"], opts))
        if seekers:
            if self._job_row is None:
                self._job_row = {str(jid): i for i, jid in enumerate(J.ids)}
            free = {}
            for _, _, opts in seekers:
                for o in opts:
                    free[o["job_id"]] = int(J.free[self._job_row[o["job_id"]]])
            best, best_key = None, None
            first = [0] * len(seekers)
            demand: dict[str, int] = {}
            for _, _, opts in seekers:
                demand[opts[0]["job_id"]] = demand.get(opts[0]["job_id"], 0) + 1
            # Each member's best option, when no two compete for a slot, maximises every
            # objective at once (all are increasing in each member's score).
            no_conflict = all(n <= free[jid] for jid, n in demand.items())
            choices = [list(range(-1, len(opts))) for _, _, opts in seekers]
            for combo in ([first] if no_conflict else itertools.product(*choices)):
                used: dict[str, int] = {}
                ok = True
                for (w, _, opts), c in zip(seekers, combo):
                    if c >= 0:
                        jid = opts[c]["job_id"]
                        used[jid] = used.get(jid, 0) + 1
                        if used[jid] > free[jid]:
                            ok = False
                            break
                if not ok:
                    continue
                ps = [opts[c]["score"] if c >= 0 else 0.0 for (_, _, opts), c in zip(seekers, combo)]
                grads = sum(1 for (w, _, _), c in zip(seekers, combo) if c >= 0 and W.graduate[w])
                p_any = 1.0 - float(np.prod([1.0 - p for p in ps]))
                market = sum(1 for (_, _, opts), c in zip(seekers, combo) if c >= 0 and opts[c]["tier"] == "market")
                key = (grads, round(p_any, 9), round(sum(ps), 9), market)
                if best_key is None or key > best_key:
                    best, best_key = combo, key
            for (w, wid, opts), c in zip(seekers, best):
                if c >= 0:
                    item = dict(opts[c], worker_id=wid, route="job")
                    if W.graduate[w]:
                        item["reasons"] = ["特困家庭高校毕业生，优先安排"] + item["reasons"]
                    plan.append(item)
        graduates_first = {str(W.ids[w]): bool(W.graduate[w]) for w in rows}
        plan.sort(key=lambda it: (not graduates_first.get(it["worker_id"], False), it["route"] != "job",
                                  -(it["score"] or 0)))
        return plan

    # -- the whole city --------------------------------------------------------------------

    def recommend(self, k: int = 10, progress: bool = False) -> pd.DataFrame:
        """Top-k market jobs per worker, then their fallback posts when they need them (SPEC section 4)."""
        sc = self.score()
        p = sc.pairs
        if not len(p):
            return pd.DataFrame(columns=RECOMMEND_COLUMNS)
        welfare = self.J.kind[p.j] == WELFARE
        starts = np.r_[True, (p.w[1:] != p.w[:-1]) | (welfare[1:] != welfare[:-1])]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(len(p)), 0))
        rank_in_group = np.arange(len(p)) - group_start
        threshold = self.policy.fallback.viability_threshold
        viable_market = np.zeros(len(self.W), dtype=np.int64)
        np.add.at(viable_market, p.w[~welfare], sc.score[~welfare] >= threshold)
        n_market = np.bincount(p.w[~welfare], minlength=len(self.W))
        why = fallback_reasons(self.W, self.policy, n_market, viable_market)
        needs_fallback = why != None  # noqa: E711 - elementwise over an object array
        keep = (rank_in_group < k) & (~welfare | needs_fallback[p.w])
        idx = np.flatnonzero(keep)
        rank = rank_in_group[idx] + 1 + np.where(welfare[idx], np.minimum(n_market[p.w[idx]], k), 0)
        from tqdm import tqdm
        def words(i: int) -> list[str]:
            w = int(p.w[i])
            out = self.reasons(w, int(p.j[i]), float(p.distance_km[i]), int(sc.covered[i]), float(sc.score[i]))
            if welfare[i] and why[w] == "failed_referrals":
                out = [failed_referrals_text(self.W.failed_market[w])] + out
            return out
        reasons = [" | ".join(words(int(i))) for i in tqdm(idx, desc="reasons", unit="row", disable=not progress,
                                                          leave=False)]
        d = p.distance_km[idx]
        return pd.DataFrame({
            "worker_id": self.W.ids[p.w[idx]],
            "rank": rank,
            "job_id": self.J.ids[p.j[idx]],
            "score": np.round(sc.score[idx], 4),
            "tier": np.where(welfare[idx], "public_welfare", "market"),
            "distance_km": np.where(np.isnan(d), np.nan, np.round(d, 2)),
            "subsidy_yuan": self.subsidy(p.j[idx]),
            "reasons": reasons,
        }, columns=RECOMMEND_COLUMNS)
