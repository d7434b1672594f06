"""Request and response bodies of the HTTP API (SPEC section 5), as pydantic v2 models.

Requests refuse unknown fields; text refuses control characters (tab and newline aside);
every number has bounds, so nothing a client sends can overflow a database column.
Cross-field rules of the data contract (a town inside its county, ages in order, a located
job) are checked afterwards by :func:`matcher.schema.parse_table`, the same code that checks
CSV files.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from matcher.errors import BIDI_CONTROLS
from matcher.schema import (CAPACITIES, DEMANDS, DISABILITIES, EDUCATION, FUNCTIONS, JOB_KINDS, NAME_MAX,
                            OUTCOMES, PHONE, SEXES, STATUSES, WANTS)

# Control characters (tab, newline and carriage return aside), lone surrogates, and the bidirectional
# overrides and isolates that make text display in another order than it is stored (U+202E...).
_BIDI = "".join(f"\\u{c:04x}" for c in BIDI_CONTROLS)
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff" + _BIDI + "]")
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f" + _BIDI + "]*$"


def plausible_id(value: str) -> bool:
    """Could be a stored id: 1-64 characters, none of them control characters (ids in paths)."""
    return 0 < len(value) <= 64 and not _BAD_CHARS.search(value)


def _no_control(v: str) -> str:
    if _BAD_CHARS.search(v):
        raise ValueError("contains a control character or a bidirectional override")
    return v


def _text(max_length: int, min_length: int = 0, **kw):
    return Annotated[str, Field(min_length=min_length, max_length=max_length,
                                json_schema_extra={"pattern": NO_CONTROL}, **kw), AfterValidator(_no_control)]


ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Id = Annotated[str, Field(pattern=ID_PATTERN, description="letters, digits and _ . : - (at most 64)")]


def _no_separator(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("a skill tag may not be blank")
    if ";" in v:
        raise ValueError("a skill tag may not contain ';'")
    return v


Tag = Annotated[str, Field(min_length=1, max_length=50, json_schema_extra={"pattern": r"^[^;\x00-\x1f\x7f]*\S[^;\x00-\x1f\x7f]*$"}),
                AfterValidator(_no_control), AfterValidator(_no_separator)]
County = Annotated[str, Field(pattern=r"^\d{6}$", description="6-digit county code")]
Town = Annotated[str, Field(pattern=r"^\d{9}$", description="9-digit town code")]
Village = Annotated[str, Field(pattern=r"^\d{12}$", description="12-digit village code")]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
Age = Annotated[int, Field(ge=0, le=120)]

JobKind = Literal[JOB_KINDS]  # type: ignore[valid-type]
Demand = Literal[DEMANDS]  # type: ignore[valid-type]
Function = Literal[FUNCTIONS]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]
# Why a referral did not end in a hire: a fixed list per outcome (SPEC section 7), with the words a page shows.
OUTCOME_REASONS: dict[str, dict[str, str]] = {
    "declined": {"wage": "工资太低", "distance": "路程太远", "hours": "工作时间不合适", "family_care": "需照顾家人",
                 "health": "身体原因", "not_interested": "不感兴趣", "found_other_work": "已找到其他工作",
                 "other": "其他"},
    "rejected": {"skills": "技能不符", "age": "年龄不符", "health": "身体原因", "position_filled": "岗位已招满",
                 "employer_choice": "用人单位另有人选", "other": "其他"},
    "no_show": {"unreachable": "联系不上", "family_care": "需照顾家人", "health": "身体原因",
                "found_other_work": "已找到其他工作", "other": "其他"},
}
# Every reason of any outcome (for filters and pickers); which outcome takes which is OUTCOME_REASONS.
REASONS = tuple(dict.fromkeys(r for reasons in OUTCOME_REASONS.values() for r in reasons))
Reason = Literal[REASONS]  # type: ignore[valid-type]

SERVER_KEPT = ("filled", "status", "owner")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- errors, health ----------------------------------------------------------------------------

class ErrorDetail(_Out):
    code: str
    message: str
    field: str | None


class ErrorBody(_Out):
    error: ErrorDetail


class Health(_Out):
    status: Literal["ok"]


class Ready(_Out):
    """Ready or not, and no more: which model is loaded is for tokens (GET /api/v1/model)."""

    status: Literal["ready"]
    database: Literal["ok"]
    model: Literal["loaded"]


# -- jobs --------------------------------------------------------------------------------------

class JobFields(_In):
    employer: _text(200, 1)
    title: _text(200, 1)
    kind: JobKind
    lat: Lat | None = None
    lon: Lon | None = None
    county_code: County | None = None
    town_code: Town | None = None
    village_code: Village | None = None
    skills: list[Tag] = Field(default_factory=list, max_length=50, description="required skill tags")
    min_age: Age = 16
    max_age: Age = 60
    physical_demand: Demand = "light"
    requires: list[Function] = Field(default_factory=list, max_length=4,
                                      description="functions the work needs")
    slots: int = Field(ge=1, le=1_000_000)
    monthly_wage: float = Field(ge=0, le=1_000_000, description="yuan")
    posted_on: dt.date | None = Field(None, ge=dt.date(1970, 1, 1), le=dt.date(2200, 12, 31),
                                      description="default: today")


class JobIn(JobFields):
    """A vacancy to post. `filled` and `status` are kept by the server: sending them is a 422."""

    job_id: Id | None = Field(None, description="default: a new id")


class JobPatch(_In):
    """The fields to change; those left out keep their value. Only the location and place codes
    can be set to null (an out-of-county job has none)."""

    employer: _text(200, 1) = None  # type: ignore[assignment]
    title: _text(200, 1) = None  # type: ignore[assignment]
    kind: JobKind = None  # type: ignore[assignment]
    lat: Lat | None = None
    lon: Lon | None = None
    county_code: County | None = None
    town_code: Town | None = None
    village_code: Village | None = None
    skills: list[Tag] = Field(None, max_length=50)  # type: ignore[assignment]
    min_age: Age = None  # type: ignore[assignment]
    max_age: Age = None  # type: ignore[assignment]
    physical_demand: Demand = None  # type: ignore[assignment]
    requires: list[Function] = Field(None, max_length=4)  # type: ignore[assignment]
    slots: int = Field(None, ge=1, le=1_000_000)  # type: ignore[assignment]
    monthly_wage: float = Field(None, ge=0, le=1_000_000)  # type: ignore[assignment]
    posted_on: dt.date = Field(None, ge=dt.date(1970, 1, 1), le=dt.date(2200, 12, 31))  # type: ignore[assignment]


class Job(_Out):
    job_id: str
    owner: str | None
    employer: str
    title: str
    kind: str
    lat: float | None
    lon: float | None
    county_code: str | None
    town_code: str | None
    village_code: str | None
    skills: list[str]
    min_age: int
    max_age: int
    physical_demand: str
    requires: list[str]
    slots: int
    filled: int
    monthly_wage: float
    posted_on: dt.date
    status: Status


class JobPage(_Out):
    items: list[Job]
    page: int
    per_page: int
    total: int


class JobsQuery(_In):
    model_config = ConfigDict(extra="ignore")
    county_code: County | None = None
    kind: JobKind | None = None
    status: Status | None = None
    mine: bool = Field(False, description="only the jobs this token posted")
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(20, ge=1, description="page size, capped at 100")


# -- matches -----------------------------------------------------------------------------------

class MatchQuery(_In):
    model_config = ConfigDict(extra="ignore")
    k: int = Field(10, ge=1, description="how many jobs (or candidates); capped at 100")


class MatchesQuery(MatchQuery):
    order: Literal["score", "plan"] = Field(
        "score", description="`score`: by predicted P(hire); `plan`: by `score - contention`, the stored "
                             "city-wide plan's price of a slot (the same as `score` until a plan is stored)")


CONTENTION = ("the latest stored city-wide plan's shadow price of one more slot at this job (the dual of its "
              "capacity), in the units of `score`: the expected hires the plan would add with one more slot; "
              "0 when the plan leaves a slot free. Present only once a plan is stored")
PLAN_ASSIGNED = "how many workers the latest stored plan sends to this job (present with `contention`)"


class MatchItem(_Out):
    job_id: str
    title: str
    employer: str
    kind: str
    tier: Literal["market", "public_welfare"]
    score: float
    distance_km: float | None
    monthly_wage: float
    subsidy_yuan: int
    reasons: list[str]
    retention_6m: float | None = None
    contention: float | None = Field(None, ge=0, description=CONTENTION)
    plan_assigned: int | None = Field(None, ge=0, description=PLAN_ASSIGNED)


class TrainingItem(_Out):
    skill: str
    unlocks: int


class ServiceCount(_Out):
    year: int
    job_offers: int = Field(description="referrals made in the year and job offers recorded at visits")
    guidance: int
    training_offers: int
    meets_311: bool = Field(description="3 job offers, 1 guidance and 1 training offer in the year")


FALLBACK_REASONS = ("no_market", "below_threshold", "failed_referrals")


class MemberMatches(_Out):
    worker_id: str
    matches: list[MatchItem]
    fallback: list[MatchItem]
    training: list[TrainingItem]
    notes: list[str]
    fallback_reason: Literal[FALLBACK_REASONS] | None = Field(  # type: ignore[valid-type]
        None, description="why public-welfare posts are offered: no market job within reach (no_market), none "
                          "likely enough (below_threshold), or market referrals ended without a hire at least "
                          "policy fallback.failed_referrals times in 12 months (failed_referrals); null: not offered")


class WorkerMatches(MemberMatches):
    model_version: str


class HouseholdMember(MemberMatches):
    service_standard: ServiceCount | None = Field(
        None, description="this year's services to the member (the 311 standard); null when not able and willing")


class PlanItem(_Out):
    worker_id: str
    route: Literal["job", "business"]
    job_id: str | None
    tier: str
    score: float | None
    subsidy_yuan: int
    reasons: list[str]
    title: str | None = None
    employer: str | None = None
    kind: str | None = None
    distance_km: float | None = None
    monthly_wage: float | None = None
    retention_6m: float | None = None
    contention: float | None = Field(None, ge=0, description=CONTENTION)
    plan_assigned: int | None = Field(None, ge=0, description=PLAN_ASSIGNED)


class HouseholdMatches(_Out):
    household_id: str
    model_version: str
    plan: list[PlanItem]
    members: list[HouseholdMember]


class SkillsFit(_Out):
    required: list[str]
    matched: list[str]
    coverage: float = Field(description="share of the required skills the person has (1 when none required)")


class Candidate(_Out):
    rank: int
    age_band: str
    distance_km: float | None
    skills_fit: SkillsFit
    score: float
    fallback_eligible: bool = Field(description="may take public-welfare posts (disabled, or 4050)")


class Candidates(_Out):
    job_id: str
    model_version: str
    candidates: list[Candidate]


# -- people ------------------------------------------------------------------------------------

PERSONAL_NOTE = "personal data: shown to the volunteer in scope and to admins only"
PersonName = _text(NAME_MAX)
Phone = Annotated[str, Field(pattern=f"^(?:{PHONE})$", description="a mobile 1XXXXXXXXXX (optionally +86) or a "
                                                                   "landline 0AREA-NUMBER")]


class HouseholdIn(_In):
    household_id: Id
    county_code: County
    town_code: Town
    village_code: Village | None = None
    lat: Lat
    lon: Lon
    head_name: PersonName | None = Field(None, description=f"户主姓名; {PERSONAL_NOTE}")
    phone: Phone | None = Field(None, description=PERSONAL_NOTE)


class Household(_Out):
    household_id: str
    county_code: str
    town_code: str
    village_code: str | None
    lat: float
    lon: float
    head_name: str | None = Field(None, description=PERSONAL_NOTE)
    phone: str | None = Field(None, description=PERSONAL_NOTE)


class WorkerIn(_In):
    worker_id: Id
    household_id: Id
    age: Age
    sex: Literal[SEXES]  # type: ignore[valid-type]
    disability: Literal[DISABILITIES] = "none"  # type: ignore[valid-type]
    disability_grade: int | None = Field(None, ge=1, le=4, description="1 is the most severe; empty when none")
    labour_capacity: Literal[CAPACITIES] = "full"  # type: ignore[valid-type]
    wants: Literal[WANTS] = "job"  # type: ignore[valid-type]
    skills: list[Tag] = Field(default_factory=list, max_length=50)
    education: Literal[EDUCATION] = "junior"  # type: ignore[valid-type]
    max_commute_km: float | None = Field(None, ge=0, le=20000, description="empty: the policy default")
    home_only: bool = False
    will_migrate: bool = False
    graduate: bool = False
    employed: bool = False
    name: PersonName | None = Field(None, description=PERSONAL_NOTE)


class Worker(_Out):
    worker_id: str
    household_id: str
    age: int
    sex: str
    disability: str
    disability_grade: int | None
    labour_capacity: str
    wants: str
    skills: list[str]
    education: str
    max_commute_km: float | None
    home_only: bool
    will_migrate: bool
    graduate: bool
    employed: bool
    name: str | None = Field(None, description=PERSONAL_NOTE)


class ImportResult(_Out):
    table: str
    inserted: int
    unchanged: int


# -- referrals ---------------------------------------------------------------------------------

class ReferralIn(_In):
    worker_id: Id
    job_id: Id


def _reasons_text() -> str:
    return "; ".join(f"{o}: {', '.join(r)}" for o, r in OUTCOME_REASONS.items())


class OutcomeIn(_In):
    outcome: Outcome
    reason: Reason | None = Field(None, description="why it did not work out: required unless hired, and one of its "
                                                    f"outcome's reasons ({_reasons_text()}); `other` needs a `note` "
                                                    "(GET /api/v1/referrals/reasons has the labels)")
    note: _text(500) | None = None
    retained_6m: bool | None = Field(None, description="for a hire: still in the job after six months")


class Referral(_Out):
    referral_id: str
    worker_id: str | None = Field(description="null in the answer to a job's owner (a recruiter)")
    job_id: str
    referred_on: dt.date
    outcome: Outcome | None
    reason: str | None
    note: str | None
    retained_6m: bool | None


class PendingQuery(_In):
    model_config = ConfigDict(extra="ignore")
    status: Literal["pending"] = Field(description="only `pending` (referrals awaiting an outcome) for now")
    limit: int = Field(50, ge=1, description="page size, capped at 200")
    offset: int = Field(0, ge=0, le=10_000_000)


class PendingReferral(_Out):
    """A referral awaiting its outcome. To a volunteer or an admin: who and where. To a recruiter, see
    :class:`RecruiterReferral`."""

    referral_id: str
    worker_id: str
    job_id: str
    referred_on: dt.date
    household_id: str
    worker_name: str | None = Field(None, description=PERSONAL_NOTE)
    job_title: str
    employer: str
    kind: str


class RecruiterReferral(_Out):
    """A referral to the recruiter's own job: nothing that names or places the worker."""

    referral_id: str
    job_id: str
    job_title: str
    referred_on: dt.date
    age: int
    sex: str
    skills_fit: list[str] = Field(description="the job's required skills the worker has")
    referred_by: str | None = Field(description="the referring volunteer's display name (the recruiter's contact)")


class PendingPage(_Out):
    items: list[PendingReferral | RecruiterReferral] = Field(
        description="oldest first; items are PendingReferral for volunteers and admins, RecruiterReferral for "
                    "recruiters")
    total: int


class ReasonItem(_Out):
    code: str
    label: str


class OutcomeReasons(_Out):
    declined: list[ReasonItem]
    rejected: list[ReasonItem]
    no_show: list[ReasonItem]


# -- visits and the 311 standard (SPEC section 7) -----------------------------------------------

SERVICE_KINDS = ("guidance", "training_offer", "job_offer")


class ServiceIn(_In):
    worker_id: Id
    kind: Literal[SERVICE_KINDS] = Field(description="guidance (职业指导), training_offer (培训), job_offer (a job "  # type: ignore[valid-type]
                                                     "proposed without a referral)")


class VisitIn(_In):
    visited_on: dt.date = Field(description="not in the future, not before 2015")
    note: _text(500) | None = None
    services: list[ServiceIn] = Field(default_factory=list, max_length=100,
                                      description="each worker a member of the household; a (worker, kind) once")


class Service(_Out):
    worker_id: str
    kind: str


class Visit(_Out):
    visit_id: str
    household_id: str
    visited_on: dt.date
    note: str | None
    services: list[Service]
    recorded_by: str | None = Field(description="the display name of who recorded it (null for a script's token)")


class Visits(_Out):
    items: list[Visit]


class StandardQuery(_In):
    model_config = ConfigDict(extra="ignore")
    county_code: County | None = Field(None, description="default: every county in scope")
    year: int = Field(None, ge=2015, le=2200, description="default: the current year")  # type: ignore[assignment]
    below: bool = Field(False, description="only the people not meeting the standard")
    sort: Literal["worker_id", "household_id", "job_offers", "guidance", "training_offers"] | None = Field(
        None, description="default: least served first")
    format: Literal["json", "csv"] = "json"


class StandardItem(_Out):
    worker_id: str
    household_id: str
    village_code: str | None
    job_offers: int
    guidance: int
    training_offers: int
    meets_311: bool


class StandardTotals(_Out):
    people: int
    meets_311: int
    job_offers: int
    guidance: int
    training_offers: int


class ServiceStandard(_Out):
    year: int
    county_code: str | None
    items: list[StandardItem]
    totals: StandardTotals


# -- model, stats, allocations -----------------------------------------------------------------

class ModelInfo(_Out):
    model_version: str
    trained_at: str | None
    kind: str | None
    metrics: dict
    features: list[str]
    training_data_sha256: str | None
    retention_model: bool
    loaded_at: dt.datetime


class ReloadIn(_In):
    path: _text(1000, 1) | None = Field(None, description="artifact or manifest inside the models folder; "
                                                        "default: the production model")


class Stats(_Out):
    households: dict[str, float]
    workers: dict[str, int]
    placements_by_kind: dict[str, int]
    subsidies_owed_yuan: dict[str, int]
    referrals: dict[str, int]
    jobs: dict[str, int]


class AllocationIn(_In):
    note: _text(200) | None = None


class AllocationRow(_Out):
    household_id: str
    worker_id: str
    job_id: str
    county_code: str | None
    score: float
    tier: str
    subsidy_yuan: float
    reasons: list[str]


class Allocation(_Out):
    """A stored plan. Who computed it is in the audit log, not in the answer (no answer names a token holder)."""

    allocation_id: int
    created_at: dt.datetime
    model_version: str | None
    summary: dict
    rows: list[AllocationRow]


# -- where to open the next workshop (SPEC section 8) ---------------------------------------------------------

class SitesIn(_In):
    kind: Literal["workshop_factory", "workshop_home", "enterprise", "public_welfare"] = Field(
        description="the kind of the new job (a site is at a village, so not out_of_county)")
    slots: int = Field(ge=1, le=10_000, description="slots of each new job")
    n: int = Field(ge=1, le=1_000, description="how many sites")


class Site(_Out):
    rank: int
    village_code: str
    town_code: str
    county_code: str
    lat: float
    lon: float
    households_covered: int = Field(description="households the plan covers in addition, with the sites ranked "
                                                "above this one already open (measured by re-solving the plan)")
    workers_placed: int = Field(description="workers the re-solved plan sends to this site")


class Sites(_Out):
    kind: str
    slots: int
    n: int
    method: str
    candidates: int
    candidates_that_could_gain: int
    households_covered_before: int
    households_covered_after: int
    seconds: float
    sites: list[Site]
