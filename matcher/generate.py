"""A synthetic Rizhao world: households, workers, jobs and a simulated referral history.

``generate_world(out_dir, households=None, seed=0)`` writes the four files of SPEC
section 2 and a README.md, and returns a summary of counts. Everything is drawn from
numpy Generators spawned from ``seed`` (one stream per stage): the same seed gives
byte-identical files, another seed another world. Division coordinates come from
:mod:`matcher.divisions` and never depend on the seed. Everything is vectorised over
people and referrals; the only Python loops run over skills, templates or chunks.

Calibration. The default world has ``DEFAULT_HOUSEHOLDS`` = 6,800 households (our
assumption: the article counts people, not households) and reproduces the article
exactly: 10,619 working-age poor people, 3,008 of them able (``labour_capacity !=
none``) and wanting work or a business, 233 of these wanting a business.
``households=N`` scales every count by ``N / 6,800``. Exact shares come from ranking a
propensity plus Gumbel noise and taking the top k, so they still follow age and
disability. docs/simulator.md gives every distribution.

The hidden hiring process (its latents are never written)
--------------------------------------------------------
For a referral of worker i to job j, ``s(x) = 1 / (1 + exp(-x))``, ``[.]`` is 1 when true:

* ``cov``: share of the job's required skills (canonical, via ``skills.normalise``) the
  worker has; 1 when the job requires none. ``need``: the job requires some skill.
* ``d``: great-circle km home -> job. ``d_eff = d`` for factory workshops, enterprises and
  welfare posts, ``0.25 d`` for home workshops (materials are delivered), 0 out of county.
  ``over = max(0, d - reach)``, ``reach`` = the worker's ``max_commute_km`` (policy
  default 15 km) or the policy's 20 km delivery radius for home workshops.
* ``w = clip((wage - r_i) / 1000, -3, 3)``, reservation wage
  ``r_i = 2300 + 300 [education >= senior] + 500 [graduate] - 900 [fallback-eligible]``
  (fallback-eligible: disabled, or women 40+ / men 50+, from the policy).
* ``age_out``: years outside ``[min_age, max_age]``; ``excess``: demand levels above what
  the worker may do; ``lacks``: required functions the worker lacks (both from the
  policy's disability table, ``partial`` capacity and ``literacy`` for no education).
* latents: motivation ``m_i ~ N(0, 1)`` per worker; attractiveness ``q_j ~ N(0, 0.4)``
  per job.

Three logistic stages::

    accept a = 1.7 + 1.2 w - 0.20 d_eff - 0.35 over + 0.4 m + 0.3 q
               - 2.5 [home_only, not a home workshop] - 2.5 [out of county, not will_migrate]
               - 0.8 [welfare post, not fallback-eligible]
    show   s = 2.2 - 0.08 d_eff - 0.15 over + 0.5 m - 0.5 [out of county]
    hire   h = H[kind] - B[kind] (1 - cov) - 0.25 age_out - 1.8 excess - 2.0 lacks + 0.5 q + 0.2 m
               - 0.05 max(0, age - 45) [enterprise or out of county]
               - 0.4 [disabled; enterprise or out of county] + 0.5 [disabled; welfare post]
               + 0.3 [education >= senior; job requires literacy]
               - 2.0 [welfare post, not fallback-eligible] - 1.5 [welfare post outside own town]
               - 0.5 [welfare post in own town, other village]

    kind              H    B
    workshop_factory  1.8  2.2
    workshop_home     1.8  1.8
    enterprise        1.8  3.0
    out_of_county     1.4  2.4
    public_welfare    1.8  0.4

``P(hire) = s(a) s(s) s(h)``, one uniform draw per stage: ``declined`` if the worker does
not accept, else ``no_show`` if they do not turn up, else ``rejected`` if the employer
says no, else ``hired``. Slots bind: a job's hires beyond its slots, the later by date,
become ``rejected`` (position filled).

Retention: a hire whose six months (183 days) ended by 2026-11-01 is retained with
probability ``s(r)``::

    r = 0.6 + 0.7 m + 0.6 cov need + 0.35 w - 0.05 d_eff - 0.5 excess + 0.5 q
          + 0.4 [workshop] + 0.8 [welfare post] - 0.5 [out of county]

``retained_6m`` is empty for recent hires and for non-hires.

The volunteers (who is referred where): referrals fall over 2024-11-01..2026-10-31,
``REFERRALS_PER_SEEKER`` (4.3) per worker able and wanting a job (activity ~ Gamma(2, 1)).
For each, the volunteer looks at 15 candidate jobs: 4 factory workshops, 3 home
workshops and 5 enterprises near home (a place p is drawn with probability
proportional to its jobs of that kind times ``exp(-d / 8 km)``), 1 out-of-county job,
1 welfare post of the worker's village (else town) and 1 job anywhere, and proposes
the best by ``3 feasible + 3 cov need + 0.5 [not need] - 0.04 d_eff + pref[kind] +
Gumbel`` (``feasible``: SPEC section 3 under the shipped policy, the job taken as open
then; ``pref``: 0.3 factory workshop, 0.2 out of county, -0.5 welfare post, else 0).
One time in five the volunteer proposes a candidate at random (volunteers are
imperfect), so about 17% of referrals break a rule. A worker is referred to a job at
most once; the referral date is 0-150 days after the job was posted. Workers'
attributes are today's (2026-11-01) for the whole history.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from matcher import divisions, names
from matcher import skills as skl
from matcher.geo import haversine_km
from matcher.policy import load_policy
from matcher.schema import World, write_world
from matcher import __version__

# -- calibration ----------------------------------------------------------------------------------

DEFAULT_HOUSEHOLDS = 6_800
ARTICLE_WORKERS = 10_619         # working-age poor people
ARTICLE_ABLE_WILLING = 3_008     # able and wanting work or a business
ARTICLE_BUSINESS = 233           # of these, wanting a business

HOUSEHOLD_SIZE_SHARES = {3: 0.10, 4: 0.03}    # the rest are 1 or 2, solved to hit the worker count
COUNTY_SHARE = {"371122": 0.34, "371121": 0.30, "371102": 0.22, "371103": 0.12, "371171": 0.02}
URBAN_VILLAGE_WEIGHT = 0.25       # 社区/居委会 hold fewer registered poor households than 村
NO_VILLAGE_SHARE = 0.01           # households registered at township level only

AGE_BANDS = ((16, 25), (25, 35), (35, 45), (45, 55), (55, 65))
AGE_BAND_P = (0.08, 0.10, 0.16, 0.30, 0.36)   # rural poor: skewed older
EDUCATION_BY_BAND = (             # none, primary, junior, senior, vocational, college
    (0.01, 0.05, 0.45, 0.22, 0.22, 0.05),
    (0.02, 0.10, 0.50, 0.18, 0.15, 0.05),
    (0.04, 0.25, 0.52, 0.12, 0.06, 0.01),
    (0.10, 0.42, 0.40, 0.06, 0.02, 0.00),
    (0.22, 0.50, 0.24, 0.04, 0.00, 0.00),
)
EDUCATION = ("none", "primary", "junior", "senior", "vocational", "college")
DISABLED_SHARE = 0.13
DISABILITY_TYPES = ("physical", "visual", "hearing", "speech", "intellectual", "mental", "multiple")
DISABILITY_TYPE_P = (0.36, 0.11, 0.12, 0.04, 0.14, 0.12, 0.11)
DISABILITY_GRADE_P = (0.14, 0.26, 0.30, 0.30)   # grades 1..4
GRADUATE_SHARE = 0.004
NO_CAPACITY_SHARE_OF_REST = 0.48  # of those not able-and-willing, share with no labour capacity
EMPLOYED_SHARE = {"seeker": 0.06, "idle": 0.45}
COMMUTE_GIVEN_SHARE = 0.22
COMMUTE_KM = (3, 5, 8, 10, 20, 30)
COMMUTE_KM_P = (0.12, 0.25, 0.23, 0.20, 0.12, 0.08)
SKILL_COUNT_P = {"young": (0.15, 0.35, 0.32, 0.18), "middle": (0.25, 0.40, 0.25, 0.10), "old": (0.40, 0.38, 0.17, 0.05)}
CANONICAL_FORM_P = 0.40           # a worker writes the canonical name, else a variant
ENGLISH_VARIANT_WEIGHT = 0.08     # relative to a Chinese variant
UNKNOWN_TAG_P = 0.03
UNKNOWN_TAGS = ("力气大", "吃苦耐劳", "搬运", "农活", "打零工", "做豆腐", "理发", "开挖掘机")
GRADUATE_SKILLS = ("计算机操作", "电子商务", "会计", "幼儿教育", "客服", "销售")

# Relative frequency of each canonical skill: women <40, women 40+, men <40, men 40+.
SKILL_WEIGHTS = {
    "缝纫": (10, 8, 1, .5), "服装加工": (5, 3, 1, .5), "手工编织": (4, 8, .5, 2), "农产品分拣": (6, 8, 3, 5),
    "农产品加工": (3, 5, 2, 4), "水产品加工": (3, 3, 2, 2), "茶叶加工": (2, 3, 1, 2), "食用菌种植": (1, 2, 1, 2),
    "蔬菜种植": (1, 4, 1, 5), "果树管理": (.5, 2, 1, 2), "畜禽养殖": (.5, 2, 1, 3), "水产养殖": (.5, 1, 1.5, 2),
    "包装": (5, 4, 4, 3), "电子装配": (6, 2, 6, 2), "焊接": (.2, 0, 4, 2), "电工": (.2, 0, 3, 1.5),
    "叉车": (.2, 0, 3, 1), "驾驶": (1, .2, 7, 3), "保洁": (3, 5, 1, 2), "绿化": (1, 2, 1.5, 3),
    "家政服务": (3, 3, .2, .2), "养老护理": (2, 2, .3, .3), "育婴": (2, 1, 0, 0), "烹饪": (3, 3, 2, 2),
    "面点": (2, 2, 1, 1), "保安": (.2, .2, 2, 3), "仓储": (1, .3, 2, 1), "快递分拣": (1, .3, 2, .5),
    "木工": (0, 0, 1.5, 2), "砌筑": (0, 0, 3, 4), "钢筋工": (0, 0, 2, 2), "电子商务": (2, .1, 1.5, .1),
    "收银": (2, .3, .5, .1), "销售": (2, .5, 1.5, .5), "客服": (1.5, .1, .5, 0), "计算机操作": (2, .1, 2, .1),
    "会计": (1, .1, .5, 0), "幼儿教育": (1, 0, 0, 0), "中药材种植": (.5, 2, .5, 2), "印刷": (.5, .2, 1, .5),
}

# -- jobs -----------------------------------------------------------------------------------------

TODAY = date(2026, 11, 1)
HISTORY_START = date(2024, 11, 1)
JOBS_PER_SCALE = {"workshop_factory": 130, "workshop_home": 70, "enterprise": 280, "out_of_county": 60,
                  "public_welfare": 300}
SLOTS = {"workshop_factory": (5, 31), "workshop_home": (10, 41), "enterprise": (1, 13), "out_of_county": (5, 41),
         "public_welfare": (1, 3)}          # integers in [lo, hi)
OPEN_FILLED_SHARE = 0.25
POSTING_AGE_MEAN_DAYS = 300
JOB_SKILL_DROP_P = {"workshop_factory": 0.25, "workshop_home": 0.30, "enterprise": 0.10, "out_of_county": 0.15,
                    "public_welfare": 0.55}
JOB_VARIANT_P = 0.30

# The three poverty-alleviation workshops of the article: fixed employers in fixed townships.
ARTICLE_WORKSHOPS = (
    dict(employer="东港区陈疃镇扶贫车间", town="371102107", kind="workshop_factory",
         rows=(("缝纫工", ("缝纫",), "light", ("sight",), 2400), ("锁边钉扣工", ("服装加工",), "light", ("sight",), 2200),
               ("成衣包装工", ("包装",), "light", (), 2000))),
    dict(employer="五莲县许孟镇扶贫车间（居家式）", town="371121104", kind="workshop_home",
         rows=(("柳编草编加工", ("手工编织",), "light", (), 1900), ("手工串珠", (), "light", ("sight",), 1800))),
    dict(employer="莒县夏庄镇扶贫车间", town="371122104", kind="workshop_factory",
         rows=(("花生分拣工", ("农产品分拣",), "light", (), 2100), ("地瓜干加工", ("农产品加工",), "medium", (), 2500),
               ("包装工", ("包装",), "medium", (), 2300))),
)
ARTICLE_SLOTS = (20, 46)

# (title, skills, physical_demand, requires, wage_lo, wage_hi, min_age, max_age, weight, employer suffix)
TEMPLATES = {
    "workshop_factory": (
        ("缝纫工", ("缝纫",), "light", ("sight",), 2000, 3000, 18, 60, 5, "服装加工车间"),
        ("服装锁边钉扣", ("服装加工",), "light", ("sight",), 1900, 2800, 18, 60, 3, "服装加工车间"),
        ("农产品分拣工", ("农产品分拣",), "light", (), 1800, 2500, 18, 65, 4, "农产品加工点"),
        ("花生地瓜加工", ("农产品加工",), "medium", (), 2000, 2800, 18, 60, 4, "农产品加工点"),
        ("海产品加工工", ("水产品加工",), "medium", (), 2200, 3000, 18, 58, 3, "海产品加工车间"),
        ("茶叶加工", ("茶叶加工",), "light", (), 2000, 2800, 18, 62, 2, "茶叶加工点"),
        ("电子元件组装", ("电子装配",), "light", ("sight",), 2200, 3000, 18, 50, 3, "电子配件加工车间"),
        ("包装工", ("包装",), "medium", (), 1800, 2600, 18, 60, 3, "包装加工点"),
        ("食用菌采收", ("食用菌种植",), "medium", (), 1900, 2600, 18, 62, 2, "食用菌基地车间"),
    ),
    "workshop_home": (
        ("居家手工编织", ("手工编织",), "light", (), 1800, 2400, 16, 70, 5, "居家来料加工点"),
        ("居家手缝", ("缝纫",), "light", ("sight",), 1800, 2500, 16, 70, 3, "居家来料加工点"),
        ("居家串珠饰品", (), "light", ("sight",), 1800, 2200, 16, 70, 2, "饰品居家加工点"),
        ("居家分拣挑拣", ("农产品分拣",), "light", (), 1800, 2300, 16, 70, 3, "农产品居家加工点"),
        ("居家包装折盒", ("包装",), "light", (), 1800, 2300, 16, 70, 2, "包装居家加工点"),
    ),
    "enterprise": (
        ("普工", ("电子装配",), "medium", (), 3200, 4500, 18, 50, 6, "电子有限公司"),
        ("焊工", ("焊接",), "heavy", ("sight",), 4200, 5000, 20, 55, 3, "机械制造有限公司"),
        ("叉车司机", ("叉车",), "medium", ("sight",), 3800, 4800, 20, 55, 2, "物流有限公司"),
        ("货车司机", ("驾驶",), "medium", ("sight", "literacy"), 4200, 5000, 22, 55, 2, "运输有限公司"),
        ("保安员", ("保安",), "light", ("sight", "hearing"), 3000, 3500, 18, 60, 3, "物业管理有限公司"),
        ("保洁员", ("保洁",), "medium", (), 3000, 3300, 18, 60, 4, "物业管理有限公司"),
        ("收银员", ("收银",), "light", ("sight", "speech", "literacy"), 3000, 3500, 18, 45, 2, "商贸有限公司"),
        ("客服专员", ("客服", "计算机操作"), "light", ("hearing", "speech", "literacy"), 3200, 4200, 18, 40, 2, "电子商务有限公司"),
        ("会计文员", ("会计", "计算机操作"), "light", ("literacy",), 3500, 5000, 20, 45, 1, "商贸有限公司"),
        ("仓库管理员", ("仓储",), "medium", ("literacy",), 3200, 4200, 20, 55, 2, "物流有限公司"),
        ("厨师帮厨", ("烹饪",), "medium", (), 3200, 4500, 18, 55, 3, "餐饮管理有限公司"),
        ("面点师", ("面点",), "medium", (), 3200, 4200, 18, 55, 1, "餐饮管理有限公司"),
        ("养老护理员", ("养老护理",), "medium", ("hearing", "speech"), 3000, 4000, 25, 58, 2, "养老服务中心"),
        ("家政服务员", ("家政服务",), "medium", (), 3000, 4500, 25, 58, 2, "家政服务有限公司"),
        ("建筑工", ("砌筑", "钢筋工"), "heavy", (), 4000, 5000, 20, 58, 3, "建筑工程有限公司"),
        ("维修电工", ("电工",), "medium", ("sight", "literacy"), 3800, 5000, 20, 55, 1, "机械制造有限公司"),
        ("电商运营", ("电子商务",), "light", ("literacy", "speech"), 3200, 4500, 18, 40, 2, "电子商务有限公司"),
        ("快递分拣员", ("快递分拣",), "medium", (), 3200, 4200, 18, 50, 2, "物流有限公司"),
        ("水产品加工工", ("水产品加工",), "medium", (), 3000, 4000, 18, 55, 3, "水产食品有限公司"),
        ("营业员", ("销售",), "light", ("hearing", "speech"), 3000, 3800, 18, 45, 2, "商贸有限公司"),
        ("幼儿园保育员", ("幼儿教育", "育婴"), "light", ("literacy", "hearing", "speech"), 3000, 4000, 20, 45, 1, "幼儿园"),
        ("茶叶加工工", ("茶叶加工",), "light", (), 3000, 3800, 18, 58, 1, "茶业有限公司"),
    ),
    "out_of_county": (
        ("电子厂普工", ("电子装配",), "medium", (), 4200, 6000, 18, 45, 5, "电子厂（劳务输出）"),
        ("建筑工", ("砌筑", "钢筋工"), "heavy", (), 5000, 7000, 20, 55, 3, "建筑公司（劳务输出）"),
        ("物流分拣员", ("快递分拣",), "medium", (), 4500, 5500, 18, 50, 3, "物流园（劳务输出）"),
        ("月嫂育婴员", ("家政服务", "育婴"), "medium", (), 5000, 7000, 25, 55, 2, "家政服务公司（劳务输出）"),
        ("焊工", ("焊接",), "heavy", ("sight",), 5500, 7000, 20, 50, 2, "造船厂（劳务输出）"),
        ("餐饮服务员", ("烹饪",), "medium", (), 4000, 5500, 18, 45, 2, "餐饮公司（劳务输出）"),
        ("货车司机", ("驾驶",), "medium", ("sight", "literacy"), 5000, 7000, 22, 50, 2, "运输公司（劳务输出）"),
        ("食品厂操作工", ("农产品加工",), "medium", (), 4000, 5200, 18, 50, 2, "食品厂（劳务输出）"),
    ),
    "public_welfare": (
        ("村庄保洁员", ("保洁",), "medium", (), 500, 800, 18, 65, 6, ""),
        ("村庄保绿员", ("绿化",), "medium", (), 500, 800, 18, 65, 4, ""),
    ),
}
# Seafood is processed on the coast: inland, these templates become their substitute.
COASTAL_COUNTIES = ("371102", "371103", "371171")
COASTAL_ONLY = {"海产品加工工": "花生地瓜加工", "水产品加工工": "普工"}
ENTERPRISE_NAMES = ("鑫源", "华泰", "海润", "瑞丰", "恒达", "金岭", "昌盛", "东晟", "岚海", "莲城", "浮来", "沭河",
                    "九仙", "阳光", "盛隆", "裕丰", "汇通", "港城", "利民", "宏远")
OUT_OF_COUNTY_PLACES = ("青岛黄岛区", "青岛城阳区", "潍坊", "临沂", "济南", "烟台", "苏州", "上海", "宁波",
                        "连云港", "天津")
PLACE_WEIGHT_ENTERPRISE = {"urban": 4.0, "rural": 1.0, "zone": 6.0}

# -- referrals and the hidden process -------------------------------------------------------------

REFERRALS_PER_SEEKER = 4.3
CHUNK = 100_000                   # referrals per vectorised batch
LOCAL_KINDS = ("workshop_factory", "workshop_home", "enterprise")
N_CANDIDATES = {"workshop_factory": 4, "workshop_home": 3, "enterprise": 5, "out_of_county": 1, "public_welfare": 1,
                "any": 1}
KERNEL_KM = 8.0
VOLUNTEER_RANDOM_P = 0.2
VOLUNTEER = dict(feasible=3.0, cov=3.0, no_need=0.5, dist=0.04, gumbel=1.0)
VOLUNTEER_PREF = {"workshop_factory": 0.3, "workshop_home": 0.0, "enterprise": 0.0, "out_of_county": 0.2,
                  "public_welfare": -0.5}
REFERRAL_LAG_DAYS = 150

KINDS = ("workshop_factory", "workshop_home", "enterprise", "out_of_county", "public_welfare")
HIRE_BASE = {"workshop_factory": 1.8, "workshop_home": 1.8, "enterprise": 1.8, "out_of_county": 1.4,
             "public_welfare": 1.8}
SKILL_WEIGHT = {"workshop_factory": 2.2, "workshop_home": 1.8, "enterprise": 3.0, "out_of_county": 2.4,
                "public_welfare": 0.4}
ACCEPT = dict(base=1.7, wage=1.2, dist=0.2, over=0.35, motivation=0.4, job=0.3, home_only=2.5, migrate=2.5,
              welfare_not_fallback=0.8)
SHOW = dict(base=2.2, dist=0.08, over=0.15, motivation=0.5, out_of_county=0.5)
HIRE = dict(age_out=0.25, excess=1.8, lacks=2.0, job=0.5, motivation=0.2, age_over_45=0.05,
            disabled_market=0.4, disabled_welfare=0.5, educated_literacy=0.3, welfare_not_fallback=2.0,
            welfare_other_town=1.5, welfare_other_village=0.5)
RETAIN = dict(base=0.6, motivation=0.7, cov=0.6, wage=0.35, dist=0.05, excess=0.5, job=0.5, workshop=0.4,
              welfare=0.8, out_of_county=0.5)
RETENTION_DAYS = 183
JOB_LATENT_SD = 0.4

DEMAND_LEVEL = {"light": 0, "medium": 1, "heavy": 2}
FUNCTION_BIT = {"sight": 1, "hearing": 2, "speech": 4, "literacy": 8}


# -- helpers --------------------------------------------------------------------------------------

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _gumbel(rng, shape):
    return -np.log(-np.log(rng.random(shape) + 1e-300) + 1e-300)


def _top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the k highest scores (ties by position: stable)."""
    mask = np.zeros(len(score), bool)
    if k > 0:
        order = np.argsort(-score, kind="stable")
        mask[order[:k]] = True
    return mask


def _categorical(rng, probs, n: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """Indices drawn from a probability vector, or per row from a matrix (probs[rows])."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 1:
        cdf = np.cumsum(probs / probs.sum())
        return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(rows))
    out = np.empty(len(rows), np.int64)
    for r in np.unique(rows):                # per row of the matrix (a handful), never per draw
        m = rows == r
        out[m] = np.searchsorted(cdf[r], u[m], side="right")
    return np.minimum(out, probs.shape[1] - 1)


def _ids(prefix: str, n: int) -> np.ndarray:
    width = max(6, len(str(n)))
    return _objects([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)])


def _disk(rng, n, radius_km):
    r = radius_km * np.sqrt(rng.random(n))
    a = rng.random(n) * 2 * np.pi
    return r * np.cos(a), r * np.sin(a)


def _jitter(rng, lat, lon, radius_km):
    """Points scattered uniformly within radius_km of (lat, lon), kept on land."""
    dn, de = _disk(rng, len(lat), radius_km)
    new_lat, new_lon = divisions.offset_km(lat, lon, dn, de)
    bad = ~divisions.on_land(new_lat, new_lon)
    new_lat[bad], new_lon[bad] = np.asarray(lat, float)[bad], np.asarray(lon, float)[bad]
    return np.round(new_lat, 6), np.round(new_lon, 6)


def _objects(values) -> np.ndarray:
    """A 1-d object array, even of tuples (np.array would make a 2-d array of equal-length tuples)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _days(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _dates(days: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[ns]"))


def _tags(cells: np.ndarray) -> pd.Series:
    """`;`-joined strings to the tag lists schema.write_world joins back (no empty tags inside)."""
    return pd.Series(cells, dtype=object).str.split(";")


class _Skills:
    """Surface forms of the canonical skills, and canonical skills as bits of a uint64.

    Bits come from ``skills.normalise`` of each form, so the hidden process compares
    skills the way the service does. The vocabulary plus the unknown tags fit 64 bits.
    """

    def __init__(self):
        self.names = [s.name for s in skl.VOCABULARY]
        self.bit: dict[str, int] = {}
        forms = []
        for s in skl.VOCABULARY:
            forms += [s.name, *s.variants]
        forms += list(UNKNOWN_TAGS)
        self.form_bits = {f: self._bit_of(f) for f in forms}

    def _bit_of(self, form: str) -> np.uint64:
        canon = skl.normalise(form)
        b = self.bit.setdefault(canon, len(self.bit))
        if b > 63:
            raise AssertionError("skill bits do not fit a uint64")
        return np.uint64(1) << np.uint64(b)

    def table(self, canonical_p: float, english_weight: float) -> "_FormTable":
        """Every skill's forms with the probability of writing each (canonical name first)."""
        forms, start, cdfs = [], [], []
        for s in skl.VOCABULARY:
            variants = [v for v in s.variants if english_weight > 0 or not v.isascii()]
            w = np.array([english_weight if v.isascii() else 1.0 for v in variants], float)
            p = np.concatenate([[canonical_p], (1 - canonical_p) * w / w.sum()]) if len(w) else np.ones(1)
            start.append(len(forms))
            forms += [s.name, *variants]
            cdfs.append(np.cumsum(p))
        extra = len(forms)
        forms += list(UNKNOWN_TAGS) + [""]
        bits = np.array([self.form_bits.get(f, np.uint64(0)) for f in forms], np.uint64)
        return _FormTable(np.array(forms, dtype=object), bits, np.array(start), cdfs, extra, len(forms) - 1)


class _FormTable:
    def __init__(self, forms, bits, start, cdfs, unknown_start, empty):
        self.forms, self.bits, self.start, self.cdfs = forms, bits, start, cdfs
        self.unknown_start, self.empty = unknown_start, empty

    def sample(self, rng, skill_idx: np.ndarray) -> np.ndarray:
        """A written form (row of the table) for each canonical skill index; -1 gives the empty form."""
        u = rng.random(len(skill_idx))
        out = np.full(len(skill_idx), self.empty, np.int64)
        for s in np.unique(skill_idx[skill_idx >= 0]):      # per canonical skill, never per row
            m = skill_idx == s
            cdf = self.cdfs[s]
            out[m] = self.start[s] + np.minimum(np.searchsorted(cdf, u[m] * cdf[-1], side="right"), len(cdf) - 1)
        return out

    def join(self, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`;`-joined text and the canonical mask of an (n, k) array of form rows."""
        mask = np.zeros(len(chosen), np.uint64)
        text = np.full(len(chosen), "", dtype=object)
        for col in range(chosen.shape[1]):
            f = chosen[:, col]
            mask |= self.bits[f]
            present = f != self.empty
            sep = np.where(present & (text != ""), ";", "").astype(object)
            text = text + sep + self.forms[f]
        return text, mask


# -- the world ------------------------------------------------------------------------------------

def _counts(households: int) -> dict:
    s = households / DEFAULT_HOUSEHOLDS
    workers = max(households, round(ARTICLE_WORKERS * s))
    able = min(workers, round(ARTICLE_ABLE_WILLING * s))
    business = min(able, round(ARTICLE_BUSINESS * s))
    return dict(scale=s, households=households, workers=workers, able=able, business=business)


def _household_sizes(rng, n_households: int, n_workers: int) -> np.ndarray:
    n4 = round(n_households * HOUSEHOLD_SIZE_SHARES[4])
    n3 = round(n_households * HOUSEHOLD_SIZE_SHARES[3])
    rest = n_households - n3 - n4
    rest_workers = n_workers - 3 * n3 - 4 * n4
    n2 = int(np.clip(rest_workers - rest, 0, rest))
    n1 = rest - n2
    sizes = np.concatenate([np.full(n1, 1), np.full(n2, 2), np.full(n3, 3), np.full(n4, 4)]).astype(np.int64)
    short = n_workers - int(sizes.sum())        # rounding in tiny worlds only
    if short > 0:
        sizes[np.arange(short) % len(sizes)] += 1                    # ones become twos
    elif short < 0:
        sizes[len(sizes) - 1 - np.arange(-short) % len(sizes)] -= 1  # fours become threes
    if sizes.min() < 1 or sizes.sum() != n_workers:
        raise ValueError(f"cannot give {n_households} households {n_workers} working-age members")
    return rng.permutation(sizes)


def _households(rng, n: int, vil: pd.DataFrame, towns: pd.DataFrame) -> pd.DataFrame:
    intensity = rng.lognormal(0.0, 0.6, len(vil))           # poverty concentrates in some villages
    base = np.where(vil["rural"].to_numpy(), 1.0, URBAN_VILLAGE_WEIGHT) * intensity
    county = vil["county_code"].to_numpy()
    w = np.zeros(len(vil))
    for code, share in sorted(COUNTY_SHARE.items()):
        m = county == code
        w[m] = share * base[m] / base[m].sum()
    v_idx = _categorical(rng, w, n)
    no_village = rng.random(n) < NO_VILLAGE_SHARE
    t_index = pd.Index(towns["town_code"])
    town_of = t_index.get_indexer(vil["town_code"].to_numpy()[v_idx])
    lat = np.where(no_village, towns["lat"].to_numpy()[town_of], vil["lat"].to_numpy()[v_idx])
    lon = np.where(no_village, towns["lon"].to_numpy()[town_of], vil["lon"].to_numpy()[v_idx])
    lat, lon = _jitter(rng, lat, lon, np.where(no_village, 3.0, 0.8))
    # place index: villages first, then townships (for households with no village)
    place = np.where(no_village, len(vil) + town_of, v_idx)
    order = np.lexsort((rng.random(n), place))             # ids run village by village
    df = pd.DataFrame({
        "household_id": _ids("H", n),
        "county_code": vil["county_code"].to_numpy()[v_idx][order],
        "town_code": vil["town_code"].to_numpy()[v_idx][order],
        "village_code": np.where(no_village, "", vil["village_code"].to_numpy()[v_idx])[order].astype(object),
        "lat": lat[order],
        "lon": lon[order],
    })
    df["_place"] = place[order]
    return df


def _workers(rng, c: dict, hh: pd.DataFrame, sk: _Skills) -> pd.DataFrame:
    n = c["workers"]
    sizes = _household_sizes(rng, len(hh), n)
    h_idx = np.repeat(np.arange(len(hh)), sizes)
    band = _categorical(rng, AGE_BAND_P, n)
    lo = np.array([b[0] for b in AGE_BANDS])[band]
    hi = np.array([b[1] for b in AGE_BANDS])[band]
    age = lo + (rng.random(n) * (hi - lo)).astype(np.int64)
    female = rng.random(n) < 0.5

    # graduates of extremely poor families: rare and young
    young = np.flatnonzero(age < 32)
    n_grad = min(len(young), round(GRADUATE_SHARE * n))
    graduate = np.zeros(n, bool)
    graduate[rng.permutation(young)[:n_grad]] = True
    age[graduate] = rng.integers(21, 28, graduate.sum())
    band = np.searchsorted([b[1] for b in AGE_BANDS], age, side="right")
    education = _categorical(rng, EDUCATION_BY_BAND, rows=band)
    education[graduate] = EDUCATION.index("college")

    # disability: more common with age; exact share
    disabled = _top_k(0.035 * age + _gumbel(rng, n) - 3.0 * graduate, round(DISABLED_SHARE * n))
    dtype = np.where(disabled, np.array(DISABILITY_TYPES, dtype=object)[_categorical(rng, DISABILITY_TYPE_P, n)], "none")
    grade = np.where(disabled, _categorical(rng, DISABILITY_GRADE_P, n) + 1, 0)
    severe = disabled & (grade <= 2)
    mild = disabled & (grade >= 3)

    # able and wanting work or a business: exact count, ranked by a propensity
    p_able = -0.045 * (age - 40) - 2.2 * severe - 0.9 * mild + 0.3 * ~female + 8.0 * graduate + _gumbel(rng, n)
    able = _top_k(p_able, c["able"])
    rest = np.flatnonzero(~able)
    p_unable = 0.05 * age[rest] + 3.0 * severe[rest] + 1.5 * mild[rest] + _gumbel(rng, len(rest))
    no_capacity = np.zeros(n, bool)
    no_capacity[rest[_top_k(p_unable, round(NO_CAPACITY_SHARE_OF_REST * len(rest)))]] = True

    partial = (severe | (mild & (rng.random(n) < 0.6)) | ((age >= 58) & (rng.random(n) < 0.4))) & ~graduate
    capacity = np.where(no_capacity, "none", np.where(partial, "partial", "full")).astype(object)

    edu_level = education.astype(float)
    able_idx = np.flatnonzero(able)
    p_business = (0.6 * ~female[able_idx] - 0.004 * (age[able_idx] - 38) ** 2 + 0.3 * edu_level[able_idx]
                  - 2.0 * severe[able_idx] + _gumbel(rng, len(able_idx)))
    business = np.zeros(n, bool)
    business[able_idx[_top_k(p_business, c["business"])]] = True
    wants = np.full(n, "none", dtype=object)
    wants[able] = "job"
    wants[business] = "business"
    wants[no_capacity & (rng.random(n) < 0.15)] = "job"       # want work but cannot

    seeker = able & (wants == "job")
    idle = ~able & ~no_capacity
    employed = (seeker & (rng.random(n) < EMPLOYED_SHARE["seeker"]) & ~graduate) | \
               (idle & (rng.random(n) < EMPLOYED_SHARE["idle"]))
    employed |= graduate & (rng.random(n) < 0.3)

    mobility = np.isin(dtype, ("physical", "multiple")) & (grade <= 2)
    carer = female & (age >= 25) & (age <= 55)
    p_home = np.where(mobility, 0.7, np.where(carer, 0.08, 0.01))
    home_only = (rng.random(n) < p_home) & ~no_capacity & ~graduate
    p_migrate = _sigmoid(-0.3 + 1.0 * ~female - 0.09 * (age - 30) - 1.5 * disabled + 1.0 * graduate)
    will_migrate = (rng.random(n) < p_migrate) & ~no_capacity & ~home_only

    commute = np.where(rng.random(n) < COMMUTE_GIVEN_SHARE,
                       np.array(COMMUTE_KM, float)[_categorical(rng, COMMUTE_KM_P, n)], np.nan)

    skills_text, mask = _worker_skills(rng, n, age, female, graduate, sk)
    w = pd.DataFrame({
        "worker_id": _ids("W", n),
        "household_id": hh["household_id"].to_numpy()[h_idx],
        "age": age.astype(np.int64),
        "sex": np.where(female, "F", "M").astype(object),
        "disability": dtype.astype(object),
        "disability_grade": pd.array(np.where(disabled, grade, 0), dtype="Int64"),
        "labour_capacity": capacity,
        "wants": wants,
        "skills": _tags(skills_text),
        "education": np.array(EDUCATION, dtype=object)[education],
        "max_commute_km": commute,
        "home_only": home_only,
        "will_migrate": will_migrate,
        "graduate": graduate,
        "employed": employed,
    })
    w.loc[~disabled, "disability_grade"] = pd.NA
    w["_h"] = h_idx
    w["_mask"] = mask
    w["_edu"] = education
    w["_grade"] = grade
    return w


def _worker_skills(rng, n, age, female, graduate, sk: _Skills):
    """Free-text skill tags as people write them, and the canonical mask behind them."""
    table = sk.table(CANONICAL_FORM_P, ENGLISH_VARIANT_WEIGHT)
    names = sk.names
    weights = np.array([SKILL_WEIGHTS[k] for k in names], float).T          # (4 groups, skills)
    group = 2 * (~female) + (age >= 40)
    age_class = np.where(age < 35, 0, np.where(age < 55, 1, 2))
    count_p = np.array([SKILL_COUNT_P["young"], SKILL_COUNT_P["middle"], SKILL_COUNT_P["old"]])
    k = np.where(graduate, np.maximum(_categorical(rng, count_p, rows=age_class), 1),
                 _categorical(rng, count_p, rows=age_class))
    grad_pool = np.array([names.index(g) for g in GRADUATE_SKILLS])

    chosen = np.full((n, 3), table.empty, np.int64)
    taken = np.full((n, 3), -1, np.int64)
    for slot in range(3):
        sk_idx = _categorical(rng, weights, rows=group)
        if slot == 0:
            sk_idx = np.where(graduate, grad_pool[rng.integers(0, len(grad_pool), n)], sk_idx)
        active = (k > slot) & ~(taken[:, :slot] == sk_idx[:, None]).any(axis=1)
        unknown = rng.random(n) < UNKNOWN_TAG_P
        form = np.where(unknown, table.unknown_start + rng.integers(0, len(UNKNOWN_TAGS), n),
                        table.sample(rng, sk_idx))
        chosen[:, slot] = np.where(active, form, table.empty)
        taken[:, slot] = np.where(active & ~unknown, sk_idx, -1)
    return table.join(chosen)


def _jobs(rng, c: dict, hh: pd.DataFrame, vil: pd.DataFrame, towns: pd.DataFrame, sk: _Skills) -> pd.DataFrame:
    """Vacancies of the five kinds (vectorised over jobs; templates in TEMPLATES)."""
    s = c["scale"]
    n_v = len(vil)
    table = sk.table(1.0 - JOB_VARIANT_P, 0.0)
    skill_no = {name: i for i, name in enumerate(sk.names)}
    hh_per_place = np.bincount(hh["_place"].to_numpy(), minlength=n_v + len(towns)).astype(float)
    start_day, end_day = _days(HISTORY_START), _days(TODAY) - 1
    v_lat, v_lon = vil["lat"].to_numpy(), vil["lon"].to_numpy()
    v_town = pd.Index(towns["town_code"]).get_indexer(vil["town_code"].to_numpy())
    town_name = towns["name"].to_numpy(dtype=object)
    v_county = vil["county_code"].to_numpy()
    t_county = towns["county_code"].to_numpy()

    def county_of_place(place):
        return np.where(place < 0, "", np.where(place < n_v, v_county[np.clip(place, 0, n_v - 1)],
                                                t_county[np.clip(place - n_v, 0, len(towns) - 1)]))
    parts = []

    # the three workshops of the article, in the village nearest their township's point
    art = []
    for ws in ARTICLE_WORKSHOPS:
        t = int(np.flatnonzero(towns["town_code"].to_numpy() == ws["town"])[0])
        in_town = np.flatnonzero(vil["town_code"].to_numpy() == ws["town"])
        d = haversine_km(towns["lat"].iat[t], towns["lon"].iat[t], v_lat[in_town], v_lon[in_town])
        v = int(in_town[np.argmin(d)])
        home = ws["kind"] == "workshop_home"
        for title, req, demand, requires, wage in ws["rows"]:
            art.append(dict(employer=ws["employer"], title=title, kind=ws["kind"], place=v, skills=req,
                            min_age=16 if home else 18, max_age=70 if home else 62, physical_demand=demand,
                            requires=requires, wage=float(wage)))
    n_art = len(art)
    lat, lon = _jitter(rng, v_lat[[a["place"] for a in art]], v_lon[[a["place"] for a in art]], 0.3)
    parts.append(pd.DataFrame({
        "employer": [a["employer"] for a in art], "title": [a["title"] for a in art],
        "kind": [a["kind"] for a in art], "lat": lat, "lon": lon,
        "_place": [a["place"] for a in art], "_skills": [a["skills"] for a in art],
        "min_age": [a["min_age"] for a in art], "max_age": [a["max_age"] for a in art],
        "physical_demand": [a["physical_demand"] for a in art], "requires": [";".join(a["requires"]) for a in art],
        "slots": rng.integers(*ARTICLE_SLOTS, n_art), "monthly_wage": [a["wage"] for a in art],
        "posted_on": rng.integers(start_day, end_day - 200, n_art), "_article": True,
    }))

    village_w = (hh_per_place[:n_v] + 0.2) * rng.lognormal(0.0, 0.8, n_v)
    town_kind = np.where(towns["county_code"].to_numpy() == divisions.DEV_ZONE, "zone",
                         np.where(towns["urban"].to_numpy(), "urban", "rural"))
    town_w = np.array([PLACE_WEIGHT_ENTERPRISE[k] for k in town_kind]) * rng.lognormal(0.0, 0.5, len(towns))
    for kind in KINDS:
        n = max(1, round(JOBS_PER_SCALE[kind] * s))
        tpl = TEMPLATES[kind]
        col = {name: _objects([t[i] for t in tpl]) for i, name in enumerate(
            ("title", "skills", "demand", "requires", "wage_lo", "wage_hi", "min_age", "max_age", "weight", "suffix"))}
        t = _categorical(rng, col["weight"].astype(float), n)
        titles = list(col["title"])
        if kind in ("workshop_factory", "workshop_home"):
            place = _categorical(rng, village_w, n)
            lat, lon = _jitter(rng, v_lat[place], v_lon[place], 0.5)
            vshort = vil["short_name"].to_numpy(dtype=object)[place]
            prefix = town_name[v_town[place]] + vshort
        elif kind == "public_welfare":
            p = hh_per_place[:n_v] / hh_per_place[:n_v].sum()
            place = rng.choice(n_v, size=n, replace=n > np.count_nonzero(p), p=p)
            lat, lon = _jitter(rng, v_lat[place], v_lon[place], 0.2)
            prefix = vil["name"].to_numpy(dtype=object)[place]
        elif kind == "enterprise":
            town = _categorical(rng, town_w, n)
            place = n_v + town
            lat, lon = _jitter(rng, towns["lat"].to_numpy()[town], towns["lon"].to_numpy()[town],
                              np.where(town_kind[town] == "rural", 1.5, 2.5))
            brand = np.array(ENTERPRISE_NAMES, dtype=object)[rng.integers(0, len(ENTERPRISE_NAMES), n)]
            prefix = "日照" + brand
        else:
            place = np.full(n, -1)
            lat = lon = np.full(n, np.nan)
            prefix = np.array(OUT_OF_COUNTY_PLACES, dtype=object)[rng.integers(0, len(OUT_OF_COUNTY_PLACES), n)]
        inland = ~np.isin(county_of_place(place), COASTAL_COUNTIES)
        swap = inland & np.isin(col["title"][t], tuple(COASTAL_ONLY))
        t = np.where(swap, [titles.index(COASTAL_ONLY.get(x, x)) for x in col["title"][t]], t)
        employer = prefix + col["suffix"][t]
        drop = rng.random(n) < JOB_SKILL_DROP_P[kind]
        lo, hi = col["wage_lo"][t].astype(float), col["wage_hi"][t].astype(float)
        vary = kind != "public_welfare"          # welfare posts keep their 18-65 range
        min_age = col["min_age"][t].astype(np.int64) + vary * rng.choice([0, 0, 2], n)
        max_age = col["max_age"][t].astype(np.int64) + vary * rng.choice([-5, 0, 0, 2], n)
        parts.append(pd.DataFrame({
            "employer": employer, "title": col["title"][t], "kind": kind, "lat": lat, "lon": lon, "_place": place,
            "_skills": np.where(drop, None, col["skills"][t]),
            "min_age": min_age, "max_age": np.maximum(max_age, min_age + 5),
            "physical_demand": col["demand"][t], "requires": [";".join(r) for r in col["requires"][t]],
            "slots": rng.integers(*SLOTS[kind], n), "monthly_wage": np.round(rng.uniform(lo, hi) / 100) * 100,
            "posted_on": np.maximum(start_day, end_day - rng.exponential(POSTING_AGE_MEAN_DAYS, n).astype(np.int64)),
            "_article": False,
        }))
    jobs = pd.concat(parts, ignore_index=True)
    n = len(jobs)

    # required skills, written canonical or as a Chinese variant
    req = jobs["_skills"].map(lambda r: tuple(r) if r else ()).to_numpy(dtype=object)
    chosen = np.full((n, 2), table.empty, np.int64)
    for k in range(2):
        idx = np.array([skill_no[r[k]] if len(r) > k else -1 for r in req])
        chosen[:, k] = table.sample(rng, idx)
    jobs["skills"], jobs["_mask"] = table.join(chosen)

    place = jobs["_place"].to_numpy()
    in_village = (place >= 0) & (place < n_v)
    in_town = place >= n_v
    town_of = np.where(in_village, v_town[np.clip(place, 0, n_v - 1)], np.where(in_town, place - n_v, -1))
    jobs["village_code"] = np.where(in_village, vil["village_code"].to_numpy()[np.clip(place, 0, n_v - 1)], "")
    jobs["town_code"] = np.where(town_of >= 0, towns["town_code"].to_numpy()[np.maximum(town_of, 0)], "")
    jobs["county_code"] = np.where(town_of >= 0, towns["county_code"].to_numpy()[np.maximum(town_of, 0)], "")

    age_days = _days(TODAY) - jobs["posted_on"].to_numpy()
    p_closed = np.where(age_days > 360, 0.55, np.where(age_days > 180, 0.2, 0.04))
    closed = (rng.random(n) < p_closed) & ~jobs["_article"].to_numpy(bool)
    slots = jobs["slots"].to_numpy()
    filled = np.where(closed, np.where(rng.random(n) < 0.7, slots, rng.binomial(slots, 0.7)),
                      rng.binomial(slots, OPEN_FILLED_SHARE))
    jobs["status"] = np.where(closed, "closed", "open")
    jobs["filled"] = np.minimum(filled, slots)
    jobs.insert(0, "job_id", _ids("J", n))
    return jobs


# -- referrals ------------------------------------------------------------------------------------

class _Candidates:
    """Where volunteers look for jobs: samplers of candidate jobs for arrays of workers.

    Local candidates of each market kind come from a place kernel: a job place p is drawn
    for a worker at place v with probability proportional to (jobs of that kind at p)
    times exp(-d(v, p) / KERNEL_KM), then a job uniformly among that place's. Welfare
    candidates come from the worker's own village, else town; out-of-county and "any"
    candidates uniformly from their pools.
    """

    def __init__(self, vil, towns, jobs, J):
        plat = np.concatenate([vil["lat"].to_numpy(), towns["lat"].to_numpy()])
        plon = np.concatenate([vil["lon"].to_numpy(), towns["lon"].to_numpy()])
        self.n_places = len(plat)
        decay = np.exp(-haversine_km(plat[:, None], plon[:, None], plat[None, :], plon[None, :]) / KERNEL_KM)
        kind = J["kind"]
        place = jobs["_place"].to_numpy()
        self.local = {}
        for k in LOCAL_KINDS:
            rows = np.flatnonzero(kind == KINDS.index(k))
            if not len(rows):
                continue
            counts = np.bincount(place[rows], minlength=self.n_places)
            cdf = np.cumsum(decay * counts[None, :], axis=1)
            cdf /= cdf[:, -1:]
            by_place = rows[np.argsort(place[rows], kind="stable")]
            self.local[k] = ((cdf + np.arange(self.n_places)[:, None]).ravel(), by_place, counts,
                             np.concatenate([[0], np.cumsum(counts)[:-1]]))
        del decay
        self.located = np.flatnonzero(kind != KINDS.index("out_of_county"))
        self.ooc = np.flatnonzero(kind == KINDS.index("out_of_county"))
        welfare = np.flatnonzero(kind == KINDS.index("public_welfare"))
        self.welfare = {}
        for key, n_keys in (("village", len(vil)), ("town", len(towns))):
            order = welfare[np.argsort(J[key][welfare], kind="stable")]
            counts = np.bincount(J[key][order], minlength=n_keys)
            self.welfare[key] = (order, counts, np.concatenate([[0], np.cumsum(counts)[:-1]]))

    def _uniform(self, rng, pool, n):
        pool = pool if len(pool) else self.located
        return pool[rng.integers(0, len(pool), n)]

    def local_jobs(self, rng, kind: str, place: np.ndarray) -> np.ndarray:
        if kind not in self.local:
            return self._uniform(rng, self.located, len(place))
        flat, by_place, counts, starts = self.local[kind]
        q = place + rng.random(len(place)) * (1 - 1e-12)
        order = np.argsort(q, kind="stable")            # sorted keys: searchsorted walks forward
        hit = np.empty(len(q), np.int64)
        hit[order] = np.searchsorted(flat, q[order], side="right")
        p = np.clip(hit - place * self.n_places, 0, self.n_places - 1)
        pick = starts[p] + (rng.random(len(place)) * counts[p]).astype(np.int64)
        return by_place[np.minimum(pick, len(by_place) - 1)]

    def welfare_jobs(self, rng, village: np.ndarray, town: np.ndarray) -> np.ndarray:
        n = len(village)
        out = self._uniform(rng, self.located, n)
        for key, idx in (("town", town), ("village", village)):        # the village wins when it has one
            order, counts, starts = self.welfare[key]
            ok = idx >= 0
            safe = np.where(ok, idx, 0)
            has = ok & (counts[safe] > 0)
            pick = starts[safe] + (rng.random(n) * np.maximum(counts[safe], 1)).astype(np.int64)
            out = np.where(has, order[np.minimum(pick, max(len(order) - 1, 0))] if len(order) else out, out)
        return out

    def draw(self, rng, W, wi: np.ndarray) -> np.ndarray:
        """(len(wi), K) candidate job rows."""
        n = len(wi)
        place = W["place"][wi]
        cand = []
        for k in LOCAL_KINDS:
            cand += [self.local_jobs(rng, k, place) for _ in range(N_CANDIDATES[k])]
        cand += [self._uniform(rng, self.ooc, n) for _ in range(N_CANDIDATES["out_of_county"])]
        cand += [self.welfare_jobs(rng, W["village"][wi], W["town"][wi]) for _ in range(N_CANDIDATES["public_welfare"])]
        cand += [self._uniform(rng, self.located, n) for _ in range(N_CANDIDATES["any"])]
        return np.stack(cand, axis=1)


class _Pairs:
    """Worker and job attributes gathered for arrays of (worker row, job row) pairs."""

    def __init__(self, W: dict, J: dict, wi: np.ndarray, ji: np.ndarray):
        self.wi, self.ji = wi, ji
        self.kind = J["kind"][ji]
        d = haversine_km(W["lat"][wi], W["lon"][wi], J["lat"][ji], J["lon"][ji])
        ooc = self.kind == 3
        home = self.kind == 1
        self.ooc, self.home, self.welfare = ooc, home, self.kind == 4
        self.d = np.where(ooc, 0.0, np.nan_to_num(d, nan=0.0))
        reach = np.where(home, W["delivery_km"], W["reach"][wi])
        self.over = np.where(ooc, 0.0, np.maximum(0.0, self.d - reach))
        self.d_eff = np.where(ooc, 0.0, np.where(home, 0.25 * self.d, self.d))
        need = J["mask"][ji]
        have = W["mask"][wi]
        n_need = np.bitwise_count(need).astype(float)
        self.need = n_need > 0
        self.cov = np.where(self.need, np.bitwise_count(need & have) / np.maximum(n_need, 1), 1.0)
        age = W["age"][wi]
        self.age = age
        self.age_out = np.maximum(0, J["min_age"][ji] - age) + np.maximum(0, age - J["max_age"][ji])
        self.excess = np.maximum(0, J["demand"][ji] - W["allowed"][wi])
        self.lacks = np.bitwise_count(J["requires"][ji] & W["lost"][wi]).astype(float)
        self.job_in_village = J["village"][ji] >= 0
        self.same_village = (W["village"][wi] == J["village"][ji]) & self.job_in_village
        self.same_town = W["town"][wi] == J["town"][ji]
        self.fallback = W["fallback"][wi]
        self.disabled = W["disabled"][wi]
        self.home_only = W["home_only"][wi]
        self.migrate = W["migrate"][wi]
        wage = J["wage"][ji]
        self.w = np.clip((wage - W["reservation"][wi]) / 1000.0, -3, 3)

    def feasible(self) -> np.ndarray:
        """SPEC section 3 under the shipped policy (jobs taken as open at the time)."""
        serves = np.where(self.job_in_village, self.same_village, self.same_town)
        welfare_ok = self.fallback & serves
        return ((self.age_out == 0) & (self.lacks == 0) & (self.excess == 0)
                & np.where(self.ooc, self.migrate, self.over <= 0)
                & (~self.home_only | self.home)
                & np.where(self.welfare, welfare_ok, True))


def _worker_arrays(w: pd.DataFrame, hh: pd.DataFrame, policy, vil, towns) -> dict:
    h = w["_h"].to_numpy()
    v_index = pd.Index(vil["village_code"])
    t_index = pd.Index(towns["town_code"])
    village = v_index.get_indexer(hh["village_code"].to_numpy()[h])
    town = t_index.get_indexer(hh["town_code"].to_numpy()[h])
    age = w["age"].to_numpy()
    female = (w["sex"] == "F").to_numpy()
    disabled = (w["disability"] != "none").to_numpy()
    lost = np.zeros(len(w), np.int64)
    allowed = np.full(len(w), DEMAND_LEVEL["heavy"], np.int64)
    dtype = w["disability"].to_numpy()
    grade = w["_grade"].to_numpy()
    for rule in policy.disability:
        m = (dtype == rule.type) & np.isin(grade, rule.grades)
        for f in rule.loses:
            lost[m] |= FUNCTION_BIT[f]
        allowed[m] = np.minimum(allowed[m], DEMAND_LEVEL[rule.max_demand])
    partial = (w["labour_capacity"] == "partial").to_numpy()
    allowed[partial] = np.minimum(allowed[partial], DEMAND_LEVEL[policy.capacity.partial_max_demand])
    illiterate = np.isin(w["education"].to_numpy(), policy.literacy.illiterate_education)
    lost[illiterate] |= FUNCTION_BIT["literacy"]
    fallback = disabled | (female & (age >= policy.fallback.women_min_age)) | (~female & (age >= policy.fallback.men_min_age))
    commute = w["max_commute_km"].to_numpy()
    edu = w["_edu"].to_numpy()
    graduate = w["graduate"].to_numpy()
    return dict(
        lat=hh["lat"].to_numpy()[h], lon=hh["lon"].to_numpy()[h], place=hh["_place"].to_numpy()[h],
        village=village, town=town, age=age, mask=w["_mask"].to_numpy(), lost=lost, allowed=allowed,
        fallback=fallback, disabled=disabled, home_only=w["home_only"].to_numpy(),
        migrate=w["will_migrate"].to_numpy(), reach=np.where(np.isnan(commute), policy.commute.default_max_km, commute),
        delivery_km=policy.commute.home_delivery_km,
        educated=edu >= EDUCATION.index("senior"),
        reservation=2300.0 + 300.0 * (edu >= EDUCATION.index("senior")) + 500.0 * graduate - 900.0 * fallback,
    )


def _job_arrays(jobs: pd.DataFrame, vil, towns) -> dict:
    v_index = pd.Index(vil["village_code"])
    t_index = pd.Index(towns["town_code"])
    req = np.zeros(len(jobs), np.int64)
    for f, bit in FUNCTION_BIT.items():
        req |= np.where(jobs["requires"].str.contains(f, regex=False).to_numpy(), bit, 0)
    return dict(
        kind=jobs["kind"].map({k: i for i, k in enumerate(KINDS)}).to_numpy(),
        lat=jobs["lat"].to_numpy(float), lon=jobs["lon"].to_numpy(float), mask=jobs["_mask"].to_numpy(np.uint64),
        min_age=jobs["min_age"].to_numpy(), max_age=jobs["max_age"].to_numpy(),
        demand=jobs["physical_demand"].map(DEMAND_LEVEL).to_numpy(), requires=req,
        village=np.where(jobs["village_code"].to_numpy() == "", -1, v_index.get_indexer(jobs["village_code"].to_numpy())),
        town=np.where(jobs["town_code"].to_numpy() == "", -2, t_index.get_indexer(jobs["town_code"].to_numpy())),
        wage=jobs["monthly_wage"].to_numpy(float), posted=jobs["posted_on"].to_numpy(), slots=jobs["slots"].to_numpy(),
    )


def _choose_jobs(rng, W, J, cands: _Candidates, wi: np.ndarray) -> np.ndarray:
    """The job each volunteer proposes to worker rows wi (vectorised over referrals x candidates)."""
    n = len(wi)
    cand = cands.draw(rng, W, wi)
    k = cand.shape[1]
    pr = _Pairs(W, J, np.repeat(wi, k), cand.ravel())
    pref = np.array([VOLUNTEER_PREF[x] for x in KINDS])[pr.kind]
    v = VOLUNTEER
    score = (v["feasible"] * pr.feasible() + v["cov"] * pr.cov * pr.need + v["no_need"] * ~pr.need
             - v["dist"] * pr.d_eff + pref + v["gumbel"] * _gumbel(rng, n * k)).reshape(n, k)
    best = np.argmax(score, axis=1)
    random_pick = rng.random(n) < VOLUNTEER_RANDOM_P
    best = np.where(random_pick, rng.integers(0, k, n), best)
    return cand[np.arange(n), best]


def _referrals(rng, rng_outcome, w, hh, jobs, vil, towns, policy, bar) -> tuple[pd.DataFrame, dict]:
    """The referral history: who volunteers referred where, and what came of it."""
    W = _worker_arrays(w, hh, policy, vil, towns)
    J = _job_arrays(jobs, vil, towns)
    pool = np.flatnonzero(((w["labour_capacity"] != "none") & (w["wants"] == "job")).to_numpy())
    target = round(REFERRALS_PER_SEEKER * len(pool))
    if target == 0 or len(jobs) == 0:
        return _empty_referrals(), dict(within_rules=0, _ji=np.zeros(0, np.int64), _hired=np.zeros(0, bool))
    cands = _Candidates(vil, towns, jobs, J)
    activity = rng.gamma(2.0, 1.0, len(pool))
    draw = int(target * 1.15) + 10
    wi = pool[_categorical(rng, activity, draw)]
    ji = np.empty(draw, np.int64)
    for lo in range(0, draw, CHUNK):
        hi = min(draw, lo + CHUNK)
        ji[lo:hi] = _choose_jobs(rng, W, J, cands, wi[lo:hi])
        bar.update(1)
    # one referral per (worker, job): keep the first drawn, then the target count
    key = wi.astype(np.int64) * len(jobs) + ji
    _, first = np.unique(key, return_index=True)
    keep = np.sort(first)[:target]
    wi, ji = wi[keep], ji[keep]
    n = len(wi)
    # The lag is drawn within the days the job has had before today, so recent jobs do
    # not pile their referrals onto the last day of the history.
    room = np.clip(_days(TODAY) - 1 - J["posted"][ji], 0, REFERRAL_LAG_DAYS)
    lag = np.floor(rng.random(n) * (room + 1)).astype(np.int64)
    day = J["posted"][ji] + lag
    order = np.lexsort((ji, wi, day))
    wi, ji, day = wi[order], ji[order], day[order]

    outcome, retained, pr = _hidden_process(rng_outcome, W, J, wi, ji, day, len(w), len(jobs))
    df = pd.DataFrame({
        "referral_id": _ids("R", n),
        "worker_id": w["worker_id"].to_numpy()[wi],
        "job_id": jobs["job_id"].to_numpy()[ji],
        "referred_on": _dates(day),
        "outcome": outcome,
        "retained_6m": retained,
    })
    diag = dict(within_rules=int(pr.feasible().sum()), _ji=ji, _hired=outcome == "hired")
    return df, diag


def _latents(rng, n_workers: int, n_jobs: int) -> tuple[np.ndarray, np.ndarray]:
    """The hidden process's latents: motivation m_i per worker row, attractiveness q_j per job row."""
    return rng.normal(0.0, 1.0, n_workers), rng.normal(0.0, JOB_LATENT_SD, n_jobs)


def _stage_logits(pr: "_Pairs", W, J, motivation: np.ndarray, q: np.ndarray):
    """Logits of the three stages (accept, show, hire) of pairs pr, latents given per pair."""
    wi, ji = pr.wi, pr.ji
    A, S, H = ACCEPT, SHOW, HIRE
    a = (A["base"] + A["wage"] * pr.w - A["dist"] * pr.d_eff - A["over"] * pr.over + A["motivation"] * motivation
         + A["job"] * q - A["home_only"] * (pr.home_only & ~pr.home) - A["migrate"] * (pr.ooc & ~pr.migrate)
         - A["welfare_not_fallback"] * (pr.welfare & ~pr.fallback))
    s = S["base"] - S["dist"] * pr.d_eff - S["over"] * pr.over + S["motivation"] * motivation - S["out_of_county"] * pr.ooc
    market = (pr.kind == 2) | pr.ooc
    base = np.array([HIRE_BASE[k] for k in KINDS])[pr.kind]
    beta = np.array([SKILL_WEIGHT[k] for k in KINDS])[pr.kind]
    h = (base - beta * (1.0 - pr.cov) - H["age_out"] * pr.age_out - H["excess"] * pr.excess - H["lacks"] * pr.lacks
         + H["job"] * q + H["motivation"] * motivation - H["age_over_45"] * np.maximum(0, pr.age - 45) * market
         - H["disabled_market"] * (pr.disabled & market) + H["disabled_welfare"] * (pr.disabled & pr.welfare)
         + H["educated_literacy"] * (W["educated"][wi] & ((J["requires"][ji] & FUNCTION_BIT["literacy"]) > 0))
         - H["welfare_not_fallback"] * (pr.welfare & ~pr.fallback)
         - H["welfare_other_town"] * (pr.welfare & ~pr.same_town)
         - H["welfare_other_village"] * (pr.welfare & pr.same_town & ~pr.same_village))
    return a, s, h


def _hidden_process(rng, W, J, wi, ji, day, n_workers, n_jobs):
    """Outcomes and retention of referrals: the documented hidden process (module docstring)."""
    m_all, q_all = _latents(rng, n_workers, n_jobs)
    motivation, q = m_all[wi], q_all[ji]
    pr = _Pairs(W, J, wi, ji)
    a, s, h = _stage_logits(pr, W, J, motivation, q)
    u = rng.random((3, len(wi)))
    outcome = np.where(u[0] >= _sigmoid(a), "declined",
                       np.where(u[1] >= _sigmoid(s), "no_show",
                                np.where(u[2] >= _sigmoid(h), "rejected", "hired"))).astype(object)
    # slots bind: hires beyond a job's slots, in date order, find the position filled
    hired = np.flatnonzero(outcome == "hired")
    order = hired[np.lexsort((hired, ji[hired]))]          # already date-sorted within a job
    job_of = ji[order]
    first = np.searchsorted(job_of, job_of, side="left")
    rank = np.arange(len(order)) - first
    outcome[order[rank >= J["slots"][job_of]]] = "rejected"

    R = RETAIN
    workshop = (pr.kind == 0) | (pr.kind == 1)
    r = (R["base"] + R["motivation"] * motivation + R["cov"] * pr.cov * pr.need + R["wage"] * pr.w
         - R["dist"] * pr.d_eff - R["excess"] * pr.excess + R["job"] * q + R["workshop"] * workshop
         + R["welfare"] * pr.welfare - R["out_of_county"] * pr.ooc)
    kept = rng.random(len(wi)) < _sigmoid(r)
    due = (day + RETENTION_DAYS) <= _days(TODAY)
    is_hired = outcome == "hired"
    retained = pd.array([None] * len(wi), dtype="boolean")
    retained[is_hired & due] = kept[is_hired & due]
    return outcome, retained, pr


def _empty_referrals() -> pd.DataFrame:
    return pd.DataFrame({"referral_id": pd.Series([], dtype=object), "worker_id": pd.Series([], dtype=object),
                         "job_id": pd.Series([], dtype=object), "referred_on": pd.Series([], dtype="datetime64[ns]"),
                         "outcome": pd.Series([], dtype=object), "retained_6m": pd.array([], dtype="boolean")})


# -- entry point ----------------------------------------------------------------------------------

def _readme(c: dict, seed: int, summary: dict) -> str:
    return f"""# Synthetic Rizhao world

Generated by `matcher generate` (matcher {__version__}), seed {seed}, {c['households']} households
(scale {c['scale']:.4g} of the default {DEFAULT_HOUSEHOLDS}). Every person, job and referral is synthetic.

- Divisions are real (2023 codes, see `matcher/data/SOURCES.md`); coordinates are not: only the city, its
  counties and 8 townships have public centroids. All other townships and every village are placed
  deterministically inside their county (see `matcher/divisions.py`), so **every household and job
  coordinate here is approximate** (a scatter around an approximate village or township point).
  371171 (经济技术开发区) is placed inside 东港区.
- Calibrated to 10,619 working-age poor people, 3,008 able and wanting work or a business, 233 wanting a
  business (scaled by the household count).
- Referral outcomes come from the hidden process documented in `docs/simulator.md`.

Counts: {', '.join(f'{k} {v}' for k, v in summary.items())}
"""


def generate_world(out_dir, households: int | None = None, seed: int = 0, progress: bool = False) -> dict:
    """Write a synthetic Rizhao world to out_dir and return its counts.

    Parameters
    ----------
    out_dir : path-like
        Folder to write households.csv, workers.csv, jobs.csv, referrals.csv and README.md to.
    households : int, optional
        Number of households; default ``DEFAULT_HOUSEHOLDS`` (calibrated to the article's figures).
    seed : int
        Random seed: the same seed gives byte-identical files.
    progress : bool
        Show a progress bar on standard error.
    """
    households = _household_count(households)
    c = _counts(households)
    n_chunks = -(-(int(REFERRALS_PER_SEEKER * c["able"] * 1.15) + 10) // CHUNK)
    with tqdm(total=6 + n_chunks, desc="generate", unit="step", disable=not progress, file=sys.stderr) as bar:
        pop = _Population(households, seed, bar)
        hh, w, jobs, vil, towns, policy = pop.hh, pop.w, pop.jobs, pop.vil, pop.towns, pop.policy
        ref, diag = _referrals(pop.rng_r, pop.rng_o, w, hh, jobs, vil, towns, policy, bar)
        # positions taken include the history's hires (slots bound them, see _hidden_process)
        hires = np.bincount(diag["_ji"][diag["_hired"]], minlength=len(jobs))
        jobs["filled"] = np.minimum(np.maximum(jobs["filled"].to_numpy(), hires), jobs["slots"].to_numpy())
        bar.update(1)

        is_open = (jobs["status"] == "open").to_numpy()
        free = int(((jobs["slots"] - jobs["filled"]).to_numpy() * is_open).sum())
        able = (w["labour_capacity"] != "none").to_numpy()
        seekers = able & (w["wants"] == "job").to_numpy() & ~w["employed"].to_numpy()
        summary = {
            "households": int(len(hh)),
            "workers": int(len(w)),
            "able_and_willing": int((able & w["wants"].isin(("job", "business")).to_numpy()).sum()),
            "want_business": int((able & (w["wants"] == "business").to_numpy()).sum()),
            "job_seekers": int(seekers.sum()),
            "graduates": int(w["graduate"].sum()),
            "disabled": int((w["disability"] != "none").sum()),
            "jobs": int(len(jobs)),
            "open_jobs": int(is_open.sum()),
            "free_slots": free,
            "referrals": int(len(ref)),
            "referrals_within_rules": diag["within_rules"],
            "hired": int((ref["outcome"] == "hired").sum()),
        }
        world = World(
            households=hh.drop(columns=["_place"]),
            workers=w.drop(columns=[col for col in w.columns if col.startswith("_")]),
            jobs=_job_frame(jobs),
            referrals=ref,
        )
        names.add_synthetic_names(world, w["_h"].to_numpy(), seed)
        out = Path(out_dir)
        write_world(world, out)
        (out / "README.md").write_text(_readme(c, seed, summary), encoding="utf-8")
        (out / GENERATOR_FILE).write_text(json.dumps(
            {"seed": int(seed), "households": households, "matcher_version": __version__}) + "\n", encoding="utf-8")
        bar.update(1)
    return summary


def _household_count(households: int | None) -> int:
    households = DEFAULT_HOUSEHOLDS if households is None else int(households)
    if households < 1:
        raise ValueError(f"households must be at least 1, got {households}")
    return households


class _Population:
    """Households, workers and jobs of a seed, with the random streams the history draws from next."""

    def __init__(self, households: int, seed: int, bar=None):
        c = _counts(households)
        streams = np.random.SeedSequence(int(seed) % 2**64).spawn(5)
        rng_h, rng_w, rng_j, self.rng_r, self.rng_o = (np.random.default_rng(s) for s in streams)
        tick = bar.update if bar is not None else (lambda n: None)
        self.policy = load_policy()
        self.vil, self.towns = divisions.villages(), divisions.townships()
        sk = _Skills()
        tick(1)
        self.hh = _households(rng_h, households, self.vil, self.towns)
        tick(1)
        self.w = _workers(rng_w, c, self.hh, sk)
        tick(1)
        self.jobs = _jobs(rng_j, c, self.hh, self.vil, self.towns, sk)
        tick(1)


# -- the truth ------------------------------------------------------------------------------------

GENERATOR_FILE = "generator.json"


class Truth:
    """The hidden process of a generated world: the true chance of a hire of any (worker, job) pair.

    Built by regenerating the world's households, workers and jobs from its seed and drawing
    the latents (motivation, attractiveness) from the same stream as the history did, so
    ``hire_probability`` gives exactly the P(hire) = s(a) s(s) s(h) the history's outcomes were
    drawn with (before slots bind), for any pair, eligible or not.
    """

    def __init__(self, households: int, seed: int):
        pop = _Population(households, seed)
        self.seed, self.households = int(seed), int(households)
        self._W = _worker_arrays(pop.w, pop.hh, pop.policy, pop.vil, pop.towns)
        self._J = _job_arrays(pop.jobs, pop.vil, pop.towns)
        self._motivation, self._q = _latents(pop.rng_o, len(pop.w), len(pop.jobs))
        self._workers = pd.Index(pop.w["worker_id"].to_numpy())
        self._jobs = pd.Index(pop.jobs["job_id"].to_numpy())

    @staticmethod
    def _rows(index: pd.Index, ids, what: str) -> np.ndarray:
        rows = index.get_indexer(np.asarray(ids, dtype=object))
        if (rows < 0).any():
            unknown = np.asarray(ids, dtype=object)[rows < 0][0]
            raise ValueError(f"{what} {unknown!r} is not in the generated world")
        return rows

    def hire_probability(self, worker_ids, job_ids) -> np.ndarray:
        """P(hire) of each pair (worker_ids[k], job_ids[k]) under the hidden process."""
        wi = self._rows(self._workers, worker_ids, "worker")
        ji = self._rows(self._jobs, job_ids, "job")
        if len(wi) != len(ji):
            raise ValueError(f"{len(wi)} worker ids but {len(ji)} job ids")
        pr = _Pairs(self._W, self._J, wi, ji)
        a, s, h = _stage_logits(pr, self._W, self._J, self._motivation[wi], self._q[ji])
        return _sigmoid(a) * _sigmoid(s) * _sigmoid(h)


def load_truth(world_dir) -> Truth | None:
    """The truth of a world folder written by ``matcher generate`` of this version, else None."""
    path = Path(world_dir) / GENERATOR_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        seed, households, version = int(meta["seed"]), int(meta["households"]), meta["matcher_version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if version != __version__ or households < 1:
        return None
    return Truth(households, seed)


def _job_frame(jobs: pd.DataFrame) -> pd.DataFrame:
    out = jobs.drop(columns=[col for col in jobs.columns if col.startswith("_")]).copy()
    out["skills"] = _tags(out["skills"].to_numpy(dtype=object))
    out["requires"] = _tags(out["requires"].to_numpy(dtype=object))
    out["posted_on"] = _dates(out["posted_on"].to_numpy())
    for col in ("slots", "filled", "min_age", "max_age"):
        out[col] = out[col].astype(np.int64)
    return out


__all__ = ["generate_world", "load_truth", "Truth", "GENERATOR_FILE", "DEFAULT_HOUSEHOLDS", "ARTICLE_WORKSHOPS"]
