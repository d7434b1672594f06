"""The hard rules of SPEC section 3, vectorised over (worker, job) pairs.

Eligibility is plain code driven by the policy file; the model only orders what passes
here. Workers and jobs are first turned into flat numpy arrays (:class:`WorkerArrays`,
:class:`JobArrays`); candidate pairs come from a spatial index, so a worker is compared
only with jobs within reach; then every rule is a boolean mask over the pairs, and a
pair is eligible when all masks hold. The same masks explain why a pair fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from matcher.geo import JobIndex, haversine_prepared, radians_and_cos
from matcher.policy import DEMAND_LEVELS, FUNCTIONS, Policy
from matcher.skills import SkillIndex, popcount

FUNCTION_BIT = {f: 1 << i for i, f in enumerate(FUNCTIONS)}
DEMAND_LEVEL = {d: i for i, d in enumerate(DEMAND_LEVELS)}
KIND_CODES = ("workshop_factory", "workshop_home", "enterprise", "out_of_county", "public_welfare")
KIND = {k: i for i, k in enumerate(KIND_CODES)}
EDUCATION_LEVEL = {e: i for i, e in enumerate(("none", "primary", "junior", "senior", "vocational", "college"))}

# Rule names, in the order a volunteer would check them; used in explanations.
RULES = ("job_open", "worker_available", "age", "functions", "physical_demand", "distance", "home_only",
         "migration", "public_welfare")
def place_keys(codes: np.ndarray) -> np.ndarray:
    """Division codes as int64 keys, so that pairs compare places as numbers, not strings: a code of digits
    (every valid town or village code) is its own number, an empty code is -1, anything else (never in
    valid data) a negative number from a stable hash, so it can only equal itself."""
    index, uniques = pd.factorize(pd.Series(np.asarray(codes, dtype=object), dtype=object))
    keys = np.full(len(uniques) + 1, -1, dtype=np.int64)          # the last: missing (index -1)
    for i, c in enumerate(uniques):                                # a few thousand places at most
        if isinstance(c, str) and c:
            keys[i] = int(c) if c.isdigit() and len(c) <= 18 else -2 - int.from_bytes(
                hashlib.blake2b(c.encode(), digest_size=7).digest(), "big")
    return keys[index]


def _prepared(arrays) -> None:
    arrays.rlat, arrays.rlon, arrays.coslat = radians_and_cos(arrays.lat, arrays.lon)
    arrays.town_key = place_keys(arrays.town)
    arrays.village_key = place_keys(arrays.village)


def _bits(tags, table) -> int:
    out = 0
    for t in tags:
        out |= table[t]
    return out


@dataclass
class WorkerArrays:
    """Workers as flat arrays, joined with their household's place."""

    frame: pd.DataFrame
    ids: np.ndarray
    household: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    county: np.ndarray
    town: np.ndarray
    village: np.ndarray
    age: np.ndarray
    female: np.ndarray
    disabled: np.ndarray
    grade: np.ndarray          # 0 when not disabled
    education: np.ndarray
    partial: np.ndarray
    available: np.ndarray      # capacity, wants a job, not employed
    wants_business: np.ndarray
    lost: np.ndarray           # bitmask of functions lost
    max_demand: np.ndarray     # heaviest demand level allowed
    commute_km: np.ndarray
    home_only: np.ndarray
    will_migrate: np.ndarray
    graduate: np.ndarray
    fallback: np.ndarray       # disabled or 4050: may take public-welfare posts
    skills: np.ndarray         # (n, words) uint64 masks over the jobs' skill index
    n_skills: np.ndarray
    home_delivery_km: float = 20.0
    # market referrals ended without a hire in the 12 months before the day (failed_market_referrals)
    failed_market: np.ndarray | None = None
    # derived once from the fields above (__post_init__), for the per-pair work
    rlat: np.ndarray = field(init=False, repr=False)
    rlon: np.ndarray = field(init=False, repr=False)
    coslat: np.ndarray = field(init=False, repr=False)
    town_key: np.ndarray = field(init=False, repr=False)
    village_key: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.failed_market is None:
            self.failed_market = np.zeros(len(self.ids), dtype=np.int64)
        _prepared(self)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, workers: pd.DataFrame, households: pd.DataFrame, policy: Policy,
              skill_index: SkillIndex, words: int, *, referrals: pd.DataFrame | None = None,
              jobs: pd.DataFrame | None = None, today: dt.date | None = None) -> "WorkerArrays":
        """``referrals`` (with the ``jobs`` they went to) give each worker's failed market referrals in
        the 12 months before ``today`` (default: today); without them every worker has none."""
        w = workers.reset_index(drop=True)
        h = households.set_index("household_id")
        place = h.reindex(w["household_id"])
        if place["lat"].isna().any():
            missing = w["household_id"][place["lat"].isna().to_numpy()].iloc[0]
            raise ValueError(f"worker's household {missing!r} is unknown")
        age = w["age"].to_numpy(np.int64)
        female = (w["sex"] == "F").to_numpy()
        disability = w["disability"].to_numpy(object)
        grade = w["disability_grade"].fillna(0).to_numpy(np.int64)
        capacity = w["labour_capacity"].to_numpy(object)
        education = w["education"].to_numpy(object)

        illiterate = np.isin(education, policy.literacy.illiterate_education)
        lost = np.where(illiterate, FUNCTION_BIT["literacy"], 0).astype(np.int64)
        max_demand = np.full(len(w), DEMAND_LEVEL["heavy"], dtype=np.int64)
        for rule in policy.disability:
            hit = (disability == rule.type) & np.isin(grade, rule.grades)
            lost[hit] |= _bits(rule.loses, FUNCTION_BIT)
            max_demand[hit] = np.minimum(max_demand[hit], DEMAND_LEVEL[rule.max_demand])
        partial = capacity == "partial"
        max_demand[partial] = np.minimum(max_demand[partial], DEMAND_LEVEL[policy.capacity.partial_max_demand])

        disabled = disability != "none"
        commute = w["max_commute_km"].to_numpy(float)
        commute = np.where(np.isnan(commute), policy.commute.default_max_km, commute)
        masks = skill_index.encode(w["skills"], words=words, grow=False)
        return cls(
            frame=w,
            ids=w["worker_id"].to_numpy(object),
            household=w["household_id"].to_numpy(object),
            lat=place["lat"].to_numpy(float), lon=place["lon"].to_numpy(float),
            county=place["county_code"].to_numpy(object), town=place["town_code"].to_numpy(object),
            village=place["village_code"].to_numpy(object),
            age=age, female=female, disabled=disabled, grade=grade,
            education=np.array([EDUCATION_LEVEL[e] for e in education], dtype=np.int64),
            partial=partial,
            available=available_mask(w),
            wants_business=(capacity != "none") & (w["wants"] == "business").to_numpy() & ~w["employed"].to_numpy(bool),
            lost=lost, max_demand=max_demand, commute_km=commute,
            home_only=w["home_only"].to_numpy(bool), will_migrate=w["will_migrate"].to_numpy(bool),
            graduate=w["graduate"].to_numpy(bool), fallback=fallback_eligible(age, female, disabled, policy),
            skills=masks, n_skills=popcount(masks), home_delivery_km=policy.commute.home_delivery_km,
            failed_market=(None if referrals is None or jobs is None else
                           failed_market_referrals(w["worker_id"], referrals, jobs, today)),
        )


FAILED_OUTCOMES = ("declined", "rejected", "no_show")
FAILED_WINDOW_MONTHS = 12


def failed_market_referrals(worker_ids, referrals: pd.DataFrame, jobs: pd.DataFrame,
                            today: dt.date | None = None) -> np.ndarray:
    """How many referrals of each worker to a market job (any kind but public_welfare) ended without a
    hire (declined, rejected, no_show) within the 12 months before ``today`` (default: today), the day
    itself included. The one count behind policy ``fallback.failed_referrals`` (SPEC section 7)."""
    ids = pd.Index(np.asarray(worker_ids, dtype=object))
    out = np.zeros(len(ids), dtype=np.int64)
    if referrals is None or not len(referrals) or not len(ids):
        return out
    today = pd.Timestamp(today or dt.date.today())
    since = today - pd.DateOffset(months=FAILED_WINDOW_MONTHS)
    kind = referrals["job_id"].map(jobs.set_index("job_id")["kind"])
    on = pd.to_datetime(referrals["referred_on"])
    failed = (referrals["outcome"].isin(FAILED_OUTCOMES) & kind.notna() & (kind != "public_welfare")
              & (on > since) & (on <= today))
    counts = referrals.loc[failed.to_numpy(), "worker_id"].value_counts()
    rows = ids.get_indexer(counts.index)
    keep = rows >= 0
    out[rows[keep]] = counts.to_numpy()[keep]
    return out


def available_mask(workers: pd.DataFrame) -> np.ndarray:
    """Who seeks a job: labour capacity other than none, wants a job, not employed (SPEC section 3). The one
    copy of this notion: the engine's ``WorkerArrays.available`` and the people the 311 standard counts."""
    return ((workers["labour_capacity"] != "none") & (workers["wants"] == "job")).to_numpy(bool) \
        & ~workers["employed"].to_numpy(bool)


def fallback_eligible(age, female, disabled, policy: Policy) -> np.ndarray:
    """Who may take public-welfare posts: the disabled, and the 4050 ages of the policy (women from
    ``fallback.women_min_age``, men from ``fallback.men_min_age``). The one copy of this rule."""
    fb = policy.fallback
    age = np.asarray(age, dtype=np.int64)
    older = np.where(np.asarray(female, dtype=bool), age >= fb.women_min_age, age >= fb.men_min_age)
    return np.asarray(disabled, dtype=bool) | older


@dataclass
class JobArrays:
    """Jobs as flat arrays, with the spatial index and the skill index over them."""

    frame: pd.DataFrame
    ids: np.ndarray
    kind: np.ndarray           # index into KIND_CODES
    lat: np.ndarray
    lon: np.ndarray
    town: np.ndarray
    village: np.ndarray
    min_age: np.ndarray
    max_age: np.ndarray
    demand: np.ndarray
    requires: np.ndarray       # bitmask of functions needed
    free: np.ndarray           # slots - filled
    open: np.ndarray           # open with a free slot
    wage: np.ndarray
    skills: np.ndarray         # (n, words) uint64
    n_required: np.ndarray
    skill_index: SkillIndex
    words: int
    title: np.ndarray
    employer: np.ndarray
    # derived once from the fields above (__post_init__), for the per-pair work
    rlat: np.ndarray = field(init=False, repr=False)
    rlon: np.ndarray = field(init=False, repr=False)
    coslat: np.ndarray = field(init=False, repr=False)
    town_key: np.ndarray = field(init=False, repr=False)
    village_key: np.ndarray = field(init=False, repr=False)
    n_requires: np.ndarray = field(init=False, repr=False)     # functions needed, counted
    near_index: JobIndex = field(init=False, repr=False)       # located jobs but home work (commute reach)
    home_index: JobIndex = field(init=False, repr=False)       # home work (the delivery reach)
    id_rank: np.ndarray = field(init=False, repr=False)        # rank of job_id in string order (ties)

    def __post_init__(self) -> None:
        _prepared(self)
        self.n_requires = np.bitwise_count(np.asarray(self.requires, np.int64).astype(np.uint64)).astype(np.int64)
        self._index()

    def _index(self) -> None:
        """What is computed over every job at once: the two spatial indexes and the ranks of the ids."""
        home = np.asarray(self.kind) == KIND["workshop_home"]
        lat = np.where(np.asarray(self.kind) == KIND["out_of_county"], np.nan, self.lat)
        self.near_index = JobIndex(np.where(home, np.nan, lat), self.lon)
        self.home_index = JobIndex(np.where(home, lat, np.nan), self.lon)
        ids = np.asarray(self.ids).astype(str)
        self.id_rank = np.empty(len(ids), np.int64)
        self.id_rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, jobs: pd.DataFrame, skill_index: SkillIndex | None = None) -> "JobArrays":
        j = jobs.reset_index(drop=True)
        skill_index = skill_index or SkillIndex()
        masks = skill_index.encode(j["skills"])
        free = (j["slots"] - j["filled"]).to_numpy(np.int64)
        lat, lon = j["lat"].to_numpy(float), j["lon"].to_numpy(float)
        return cls(
            frame=j, ids=j["job_id"].to_numpy(object),
            kind=j["kind"].map(KIND).to_numpy(np.int64),
            lat=lat, lon=lon,
            town=j["town_code"].to_numpy(object), village=j["village_code"].to_numpy(object),
            min_age=j["min_age"].to_numpy(np.int64), max_age=j["max_age"].to_numpy(np.int64),
            demand=j["physical_demand"].map(DEMAND_LEVEL).to_numpy(np.int64),
            requires=np.fromiter((_bits(r, FUNCTION_BIT) for r in j["requires"]), np.int64, len(j)),
            free=free, open=(j["status"] == "open").to_numpy() & (free > 0),
            wage=j["monthly_wage"].to_numpy(float),
            skills=masks, n_required=popcount(masks), skill_index=skill_index,
            words=masks.shape[1],
            title=j["title"].to_numpy(object), employer=j["employer"].to_numpy(object),
        )


@dataclass
class Pairs:
    """Candidate (worker row, job row) pairs with their great-circle distance (NaN out of county)."""

    w: np.ndarray
    j: np.ndarray
    distance_km: np.ndarray

    def __len__(self) -> int:
        return len(self.w)

    def take(self, mask_or_index) -> "Pairs":
        return Pairs(self.w[mask_or_index], self.j[mask_or_index], self.distance_km[mask_or_index])

    @staticmethod
    def concat(parts: list["Pairs"]) -> "Pairs":
        if not parts:
            return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, float))
        return Pairs(np.concatenate([p.w for p in parts]), np.concatenate([p.j for p in parts]),
                     np.concatenate([p.distance_km for p in parts]))


def pair_distance(W: WorkerArrays, J: JobArrays, w: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Great-circle km of each pair (:func:`matcher.geo.haversine_km`, to the bit, from prepared points)."""
    return haversine_prepared(W.rlat[w], W.rlon[w], W.coslat[w], J.rlat[j], J.rlon[j], J.coslat[j])


def rule_masks(W: WorkerArrays, J: JobArrays, p: Pairs, policy: Policy) -> dict[str, np.ndarray]:
    """One boolean array per rule of SPEC section 3: True where the pair passes it."""
    w, j, d = p.w, p.j, p.distance_km
    kind = J.kind[j]
    out_of_county = kind == KIND["out_of_county"]
    home_work = kind == KIND["workshop_home"]
    welfare = kind == KIND["public_welfare"]
    reach = np.where(home_work, policy.commute.home_delivery_km, W.commute_km[w])
    with np.errstate(invalid="ignore"):
        within = out_of_county | (np.isfinite(d) & (d <= reach))
    # a welfare post's place (its village, or its town when it names no village) against the worker's,
    # compared only where it matters
    same_place = np.zeros(len(p), dtype=bool)
    wi = np.flatnonzero(welfare)
    if len(wi):
        jv, ww = j[wi], w[wi]
        same_place[wi] = np.where(J.village_key[jv] != -1, J.village_key[jv] == W.village_key[ww],
                                  J.town_key[jv] == W.town_key[ww])
    return {
        "job_open": J.open[j],
        "worker_available": W.available[w],
        "age": (W.age[w] >= J.min_age[j]) & (W.age[w] <= J.max_age[j]),
        "functions": (J.requires[j] & W.lost[w]) == 0,
        "physical_demand": J.demand[j] <= W.max_demand[w],
        "distance": within,
        "home_only": ~W.home_only[w] | home_work,
        "migration": ~out_of_county | W.will_migrate[w],
        "public_welfare": ~welfare | (W.fallback[w] & same_place),
    }


def eligible_mask(W: WorkerArrays, J: JobArrays, p: Pairs, policy: Policy) -> np.ndarray:
    masks = rule_masks(W, J, p, policy)
    ok = np.ones(len(p), dtype=bool)
    for m in masks.values():
        ok &= m
    return ok


def candidate_pairs(W: WorkerArrays, J: JobArrays, policy: Policy, rows: np.ndarray | None = None,
                    ordered: bool = True) -> Pairs:
    """Every eligible pair for the given worker rows (default: all available workers), by worker then job
    (``ordered=False``: in no promised order).

    Located jobs come from a radius query (the larger of the worker's commute and the
    home-work delivery reach); out-of-county jobs are paired with willing migrants.
    """
    rows = np.flatnonzero(W.available) if rows is None else np.asarray(rows, dtype=np.int64)
    rows = rows[W.available[rows]]
    parts = []
    if len(rows):
        # home work within the delivery reach, other located work within the worker's commute: two
        # queries, so that neither returns pairs the distance rule is sure to drop
        q1, j1 = J.near_index.within(W.lat[rows], W.lon[rows], W.commute_km[rows])
        q2, j2 = J.home_index.within(W.lat[rows], W.lon[rows], policy.commute.home_delivery_km)
        q, j = np.concatenate([q1, q2]), np.concatenate([j1, j2])
        w = rows[q]
        keep = J.open[j]
        w, j = w[keep], j[keep]
        parts.append(Pairs(w, j, pair_distance(W, J, w, j)))
        ooc = np.flatnonzero(J.open & (J.kind == KIND["out_of_county"]))
        mig = rows[W.will_migrate[rows]]
        if len(ooc) and len(mig):
            ww = np.repeat(mig, len(ooc))
            jj = np.tile(ooc, len(mig))
            parts.append(Pairs(ww, jj, np.full(len(ww), np.nan)))
    p = Pairs.concat(parts)
    if not len(p):
        return p
    p = p.take(eligible_mask(W, J, p, policy))
    if not ordered:
        return p
    order = np.argsort(p.w * np.int64(len(J)) + p.j)     # by worker, then job: one int64 key
    return p.take(order)


def job_pairs(W: WorkerArrays, J: JobArrays, policy: Policy, jobs: np.ndarray) -> Pairs:
    """Every eligible pair of the given job rows, by job then worker: the same pairs
    :func:`candidate_pairs` finds from the workers' side (the same distances, the same masks).

    Each located job is compared with the available workers within the larger of their commute and
    the home-work delivery reach; an out-of-county job with every available worker.
    """
    avail = np.flatnonzero(W.available)
    parts = []
    for j in np.asarray(jobs, dtype=np.int64):
        if not J.open[j] or not len(avail):
            continue
        if J.kind[j] == KIND["out_of_county"]:
            parts.append(Pairs(avail, np.full(len(avail), j, np.int64), np.full(len(avail), np.nan)))
            continue
        if not (np.isfinite(J.lat[j]) and np.isfinite(J.lon[j])):
            continue
        d = pair_distance(W, J, avail, np.full(len(avail), j, np.int64))
        near = np.flatnonzero(d <= np.maximum(W.commute_km[avail], policy.commute.home_delivery_km) + 1e-6)
        parts.append(Pairs(avail[near], np.full(len(near), j, np.int64), d[near]))
    p = Pairs.concat(parts)
    return p.take(eligible_mask(W, J, p, policy)) if len(p) else p


def with_rows(arrays, sub, rows: np.ndarray):
    """``arrays`` (WorkerArrays or JobArrays) with rows ``rows`` replaced by the rows of ``sub`` (built the same
    way, one row per entry of ``rows``); a row equal to the length or beyond appends. Every per-row field is
    copied, never changed in place, so the arrays a request holds stay as they were. Fields computed over
    all rows at once (the jobs' spatial indexes, the id ranks) are computed again."""
    import copy
    import dataclasses
    rows = np.asarray(rows, dtype=np.int64)
    n_old = len(arrays)
    n_new = max(n_old, int(rows.max()) + 1) if len(rows) else n_old
    take = np.arange(n_new)          # positions in old rows followed by sub's rows
    take[rows] = n_old + np.arange(len(rows))
    out = copy.copy(arrays)
    for f in dataclasses.fields(arrays):
        v = getattr(arrays, f.name)
        if isinstance(v, pd.DataFrame):
            both = pd.concat([v, sub.frame], ignore_index=True)
            setattr(out, f.name, both.iloc[take].reset_index(drop=True))
        elif isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == n_old and f.name != "id_rank":
            setattr(out, f.name, np.concatenate([v, getattr(sub, f.name).astype(v.dtype, copy=False)])[take])
    if isinstance(out, JobArrays):
        out._index()
    return out


def explain(W: WorkerArrays, J: JobArrays, w: int, j: int, policy: Policy) -> list[str]:
    """Names of the rules one pair fails (empty when eligible)."""
    d = pair_distance(W, J, np.array([w]), np.array([j]))
    masks = rule_masks(W, J, Pairs(np.array([w]), np.array([j]), d), policy)
    return [name for name in RULES if not masks[name][0]]


def _fmt_km(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def broken_rules(W: WorkerArrays, J: JobArrays, w: int, j: int, policy: Policy,
                 skip: tuple[str, ...] = ()) -> list[str]:
    """Each rule of SPEC section 3 the pair (worker row ``w``, job row ``j``) breaks, in plain words with
    the values at fault (``age 61 is above the job's max_age 60``); empty when the pair is eligible.

    The same masks as :func:`rule_masks`: these words only say which values made a mask false.
    ``skip`` leaves out rules a caller answers otherwise (a full job or an employed worker: a conflict).
    """
    d = pair_distance(W, J, np.array([w]), np.array([j]))
    masks = rule_masks(W, J, Pairs(np.array([w]), np.array([j]), d), policy)
    kind = KIND_CODES[int(J.kind[j])]
    out: list[str] = []
    for rule in RULES:
        if rule in skip or masks[rule][0]:
            continue
        if rule == "job_open":
            out.append("the job is closed" if J.frame["status"].iloc[j] != "open" else
                       f"the job is full ({int(J.frame['filled'].iloc[j])} of {int(J.frame['slots'].iloc[j])} "
                       "slots filled)")
        elif rule == "worker_available":
            row = W.frame.iloc[w]
            if row["labour_capacity"] == "none":
                out.append("labour_capacity is none")
            if row["wants"] != "job":
                out.append(f"wants is {row['wants']}, not a job")
            if bool(row["employed"]):
                out.append("the worker is employed already")
        elif rule == "age":
            age = int(W.age[w])
            if age > J.max_age[j]:
                out.append(f"age {age} is above the job's max_age {int(J.max_age[j])}")
            else:
                out.append(f"age {age} is below the job's min_age {int(J.min_age[j])}")
        elif rule == "functions":
            lacking = [f for f in FUNCTIONS if J.requires[j] & W.lost[w] & FUNCTION_BIT[f]]
            out.append(f"the job requires {', '.join(lacking)}, which the worker lacks")
        elif rule == "physical_demand":
            out.append(f"physical_demand {DEMAND_LEVELS[int(J.demand[j])]} is above the worker's limit "
                       f"{DEMAND_LEVELS[int(W.max_demand[w])]}")
        elif rule == "distance":
            home = kind == "workshop_home"
            reach = policy.commute.home_delivery_km if home else float(W.commute_km[w])
            what = "the job's delivery reach (commute.home_delivery_km)" if home else "the worker's max_commute_km"
            dist = "unknown" if not np.isfinite(d[0]) else f"{_fmt_km(float(d[0]))} km"
            out.append(f"distance {dist} is beyond {what} {_fmt_km(reach)} km")
        elif rule == "home_only":
            out.append(f"the worker can work only at home (home_only) and the job is {kind}, not workshop_home")
        elif rule == "migration":
            out.append("the job is out_of_county and the worker is not willing to migrate (will_migrate false)")
        elif rule == "public_welfare":
            if not W.fallback[w]:
                fb = policy.fallback
                out.append(f"public_welfare posts are only for disabled or older workers (women {fb.women_min_age}+, "
                           f"men {fb.men_min_age}+); the worker is {'a woman' if W.female[w] else 'a man'} of "
                           f"{int(W.age[w])} with disability none")
            else:
                village = J.village[j] or ""
                place = f"village {village}" if village else f"town {J.town[j]}"
                out.append(f"the public_welfare post serves {place}, not the worker's")
    return out
