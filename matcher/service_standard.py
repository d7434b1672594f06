"""The "311" service standard (SPEC section 7): each person able and willing to work should receive, each
calendar year, 3 job offers (a referral counts), 1 guidance (职业指导) and 1 training offer (培训).

:func:`service_standard` is the one computation, over plain frames; the store's adapter
(:func:`matcher.store.visits.standard_frames`) reads them, and both ``GET /api/v1/service-standard``
and each member of a household's matches use it.
"""

from __future__ import annotations

import pandas as pd

from matcher.eligibility import available_mask

JOB_OFFERS, GUIDANCE, TRAINING_OFFERS = 3, 1, 1
COUNTS = ("job_offers", "guidance", "training_offers")
COLUMNS = ("worker_id", "household_id", "village_code", *COUNTS, "meets_311")
SORTS = ("worker_id", "household_id", *COUNTS)


def service_standard(workers: pd.DataFrame, referrals: pd.DataFrame, services: pd.DataFrame,
                     year: int) -> pd.DataFrame:
    """Per person the engine calls available (:func:`matcher.eligibility.available_mask`), this year's job
    offers (referrals made in ``year`` plus ``job_offer`` services at visits in ``year``), guidance and
    training offers, and whether the 311 standard is met; in ``COLUMNS`` order, by worker_id.

    ``workers``: worker_id, household_id, village_code, labour_capacity, wants, employed;
    ``referrals``: worker_id, referred_on; ``services``: worker_id, kind, visited_on.
    """
    people = workers.loc[available_mask(workers), ["worker_id", "household_id", "village_code"]]
    people = people.sort_values("worker_id").reset_index(drop=True)
    refs = referrals[pd.to_datetime(referrals["referred_on"]).dt.year == int(year)]
    given = services[pd.to_datetime(services["visited_on"]).dt.year == int(year)]

    def count(ids: pd.Series) -> pd.Series:
        return people["worker_id"].map(ids.value_counts()).fillna(0).astype(int)

    people["job_offers"] = count(refs["worker_id"]) + count(given.loc[given["kind"] == "job_offer", "worker_id"])
    people["guidance"] = count(given.loc[given["kind"] == "guidance", "worker_id"])
    people["training_offers"] = count(given.loc[given["kind"] == "training_offer", "worker_id"])
    people["meets_311"] = ((people["job_offers"] >= JOB_OFFERS) & (people["guidance"] >= GUIDANCE)
                           & (people["training_offers"] >= TRAINING_OFFERS))
    people["village_code"] = [v or None for v in people["village_code"]]
    return people[list(COLUMNS)]


def least_served_first(table: pd.DataFrame, sort: str | None = None) -> pd.DataFrame:
    """The rows in the order asked (``SORTS``, ascending, worker_id on ties), by default the least served
    first: those not meeting the standard, then by how far each is from it."""
    if sort is not None:
        keys = [sort] if sort == "worker_id" else [sort, "worker_id"]
        return table.sort_values(keys, kind="stable").reset_index(drop=True)
    progress = (table["job_offers"].clip(upper=JOB_OFFERS) + table["guidance"].clip(upper=GUIDANCE)
                + table["training_offers"].clip(upper=TRAINING_OFFERS))
    return (table.assign(_p=progress).sort_values(["meets_311", "_p", "worker_id"], kind="stable")
            .drop(columns="_p").reset_index(drop=True))


def totals(items: list[dict]) -> dict[str, int]:
    """People, how many meet the standard, and the sums of each count, over rows of :func:`service_standard`."""
    return {"people": len(items), "meets_311": sum(bool(i["meets_311"]) for i in items),
            **{c: sum(int(i[c]) for i in items) for c in COUNTS}}
