"""The web pages: the volunteer's at ``/`` and the recruiter's at ``/recruiter``.

Server-rendered shells (Jinja, ``templates/``) with vanilla JavaScript (``static/``) that calls the
JSON API with the token the user typed, kept in ``sessionStorage``. No CDN, no tile server: the
household map is an SVG the page draws from the API's coordinates. Every label is Simplified
Chinese; the labels of the enums live here, once, and reach the scripts as JSON in the page.

The pages also need a few JSON reads that SPEC section 5's table lacks (who am I, households by
place, one household's members and referrals, job locations): they are in
:mod:`matcher.api.households_list`, registered under this blueprint so that ``create_app``'s
registration of ``pages.bp`` brings them along.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache

from flask import Blueprint, Response, render_template

from matcher import __version__
from matcher.api import households_list
from matcher.api.schemas import ID_PATTERN, REASONS, JobIn
from matcher.ranking import KIND_LABEL
from matcher.schema import (CAPACITIES, DEMANDS, DISABILITIES, EDUCATION, FUNCTIONS, JOB_KINDS, OUTCOMES,
                            STATUSES, WANTS)

bp = Blueprint("pages", __name__, template_folder="templates")
bp.register_blueprint(households_list.bp)

# Pages load only their own files: scripts, styles, images and API calls from this origin.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

LABELS = {
    "kind": dict(KIND_LABEL),
    "outcome": {"hired": "已录用", "declined": "婉拒", "rejected": "未录用", "no_show": "未到岗"},
    "reason": {"wage": "工资不合适", "distance": "路程太远", "hours": "工作时间不合适", "family_care": "需照顾家人",
               "health": "身体原因", "skills": "技能不符", "age": "年龄不符", "found_other_work": "已找到其他工作",
               "employer_choice": "用人单位未选中", "position_filled": "岗位已招满", "not_interested": "不感兴趣",
               "unreachable": "联系不上", "other": "其他原因"},
    "demand": {"light": "轻体力", "medium": "中等体力", "heavy": "重体力"},
    "function": {"sight": "视力", "hearing": "听力", "speech": "言语表达", "literacy": "读写能力"},
    "disability": {"none": "无残疾", "visual": "视力残疾", "hearing": "听力残疾", "speech": "言语残疾",
                   "physical": "肢体残疾", "intellectual": "智力残疾", "mental": "精神残疾", "multiple": "多重残疾"},
    "grade": {"1": "一级", "2": "二级", "3": "三级", "4": "四级"},
    "capacity": {"full": "完全劳动能力", "partial": "部分劳动能力", "none": "无劳动能力"},
    "wants": {"job": "希望就业", "business": "希望创业", "none": "暂无就业意愿"},
    "education": {"none": "未上学", "primary": "小学", "junior": "初中", "senior": "高中", "vocational": "中专/职高",
                  "college": "大专及以上"},
    "sex": {"F": "女", "M": "男"},
    "tier": {"market": "市场岗位", "public_welfare": "公益性岗位（托底安置）", "business": "自主创业"},
    "status": {"open": "招聘中", "closed": "已关闭"},
    "role": {"volunteer": "就业伙伴（志愿者）", "recruiter": "招聘单位", "evaluator": "评估员", "admin": "管理员"},
}

# Every enum the pages label must be labelled: a new value in the schema fails here, at import.
for _name, _values in (("kind", JOB_KINDS), ("outcome", OUTCOMES), ("reason", REASONS), ("demand", DEMANDS),
                       ("function", FUNCTIONS), ("disability", DISABILITIES), ("capacity", CAPACITIES),
                       ("wants", WANTS), ("education", EDUCATION), ("status", STATUSES)):
    assert set(LABELS[_name]) == set(_values), f"pages.LABELS[{_name!r}] must label exactly {_values}"


def job_constraints() -> dict[str, dict]:
    """The bounds of each field of ``POST /api/v1/jobs``, read from its pydantic model, so the form
    checks what the API checks (the page still places the API's own 422 next to its field)."""
    schema = JobIn.model_json_schema()
    out = {}
    for name, prop in schema["properties"].items():
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        c = dict(options[0]) if options else {}
        c["required"] = name in schema.get("required", ())
        if "items" in c:
            c["maxItems"] = c.get("maxItems")
            c["item"] = {k: v for k, v in c["items"].items() if k in ("minLength", "maxLength")}
        out[name] = {k: v for k, v in c.items()
                     if k in ("minimum", "maximum", "minLength", "maxLength", "pattern", "required", "maxItems",
                              "item", "type", "format")}
    out["job_id"]["pattern"] = ID_PATTERN
    for meta in JobIn.model_fields["posted_on"].metadata:
        if hasattr(meta, "ge"):
            out["posted_on"]["minimum"] = meta.ge.isoformat()
        if hasattr(meta, "le"):
            out["posted_on"]["maximum"] = meta.le.isoformat()
    return out


def _page(template: str, **context) -> Response:
    html = render_template(template, labels=LABELS, version=__version__, today=dt.date.today().isoformat(),
                           **context)
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


@bp.get("/")
def volunteer():
    return _page("volunteer.html", page="volunteer")


@bp.get("/recruiter")
def recruiter():
    return _page("recruiter.html", page="recruiter", rules=job_constraints())


@lru_cache(maxsize=1)
def _divisions_json() -> str:
    """Rizhao's counties, townships and villages with their (approximate) points; public reference data."""
    from matcher import divisions as d
    r = lambda x: round(float(x), 5)  # noqa: E731 - about a metre
    c, t, v = d.counties(), d.townships(), d.villages()
    return json.dumps({
        "counties": [[a, b, r(y), r(x)] for a, b, y, x in zip(c["county_code"], c["name"], c["lat"], c["lon"])],
        "towns": [[a, b, k, r(y), r(x)] for a, b, k, y, x in
                  zip(t["town_code"], t["name"], t["county_code"], t["lat"], t["lon"])],
        "villages": [[a, b, k, r(y), r(x)] for a, b, k, y, x in
                     zip(v["village_code"], v["short_name"], v["town_code"], v["lat"], v["lon"])],
    }, ensure_ascii=False, separators=(",", ":"))


@bp.get("/divisions.json")
def divisions_json():
    resp = Response(_divisions_json(), mimetype="application/json")
    resp.headers["Cache-Control"] = "public, max-age=86400"
    return resp
