"""The pages in a real browser: Debian's chromium driven by Playwright, against the service on a real
loopback port over a generated world.

Skipped when /usr/bin/chromium is missing outside CI; a failure in CI (``.ci/run`` installs it).
Screenshots of each page go to ``artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.request
from pathlib import Path

import pytest

from conftest import API_COUNTY, make_api

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=zh-CN"]
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
PHONE = {"width": 360, "height": 780}
WAIT_MS = 20_000


def _need(what: str, why: str):
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests need {what} in CI: {why}")
    pytest.skip(f"{what} unavailable: {why}")


@pytest.fixture(scope="module")
def playwright_modules():
    if not Path(CHROMIUM).exists():
        _need("Debian's chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from axe_playwright_python.sync_playwright import Axe
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        _need("playwright and axe-playwright-python", f"{exc} (pip install -e '.[test]')")
    expect.set_options(timeout=WAIT_MS)
    return sync_playwright, expect, Axe


@pytest.fixture(scope="module")
def live(tmp_path_factory, small_world_dir, prior_model_dir):
    """The whole service on a free loopback port, in a thread, over the small generated world."""
    from werkzeug.serving import make_server

    from matcher.schema import load_world
    tmp = tmp_path_factory.mktemp("live")
    world = load_world(small_world_dir)
    api = make_api(f"sqlite:///{tmp / 'live.db'}", tmp, prior_model_dir, world=world)
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.base = f"http://127.0.0.1:{server.server_port}"
    api.world = world
    yield api
    server.shutdown()
    thread.join(timeout=10)
    api.app.extensions["matcher"].dispose()


@pytest.fixture(scope="module")
def browser(playwright_modules, tmp_path_factory):
    sync_playwright, _, _ = playwright_modules
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai",
            env=dict(os.environ, LANG="zh_CN.UTF-8", LANGUAGE="zh_CN:zh"))
        context.set_default_timeout(WAIT_MS)
        yield context
        context.close()


@pytest.fixture
def expect(playwright_modules):
    return playwright_modules[1]


@pytest.fixture
def new_page(browser):
    """A fresh tab (its own sessionStorage), failing the test on any script error or 5xx answer."""
    pages, errors = [], []

    def make():
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
        page.on("response", lambda r: r.status >= 500 and errors.append(f"{r.status} {r.request.method} {r.url}"))
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.close()
    assert not errors, f"errors in the page: {errors}"


def shoot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def fits_the_phone(page) -> bool:
    """Nothing sticks out sideways on a 360 px screen."""
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def sign_in(page, base, path, token, expect):
    """Sign in with a token (scripts and tests); people sign in with an account, see the test below."""
    page.goto(base + path)
    page.locator("#token-signin summary").click()
    page.get_by_label("访问令牌").fill(token)
    page.get_by_role("button", name="使用令牌进入").click()
    expect(page.locator("#app")).to_be_visible()


def call_api(live, method, path, token, body=None):
    req = urllib.request.Request(live.base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def uncovered_seeker(world, nth: int = 0):
    """A member of a not-yet-covered household of the volunteers' county who can take a nearby workshop job
    (the nth such, by id: the tests that hire or refer one each take their own)."""
    h, w = world.households, world.workers
    covered = set(w.loc[w["employed"], "household_id"])
    seekers = w[(w["labour_capacity"] == "full") & (w["wants"] == "job") & ~w["employed"] & ~w["home_only"]
                & (w["disability"] == "none") & w["age"].between(22, 45) & ~w["household_id"].isin(covered)]
    seekers = seekers.merge(h, on="household_id")
    seekers = seekers[(seekers["county_code"] == API_COUNTY) & (seekers["village_code"] != "")]
    return seekers.sort_values("worker_id").iloc[nth]


def axe_check(Axe, page, name: str) -> list[str]:
    """Run axe-core on the page as it is; write every violation to artifacts/axe/NAME.json; return the
    violations of any impact."""
    violations = Axe().run(page).response["violations"]
    out = SHOTS.parent / "axe"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(
        [{"id": v["id"], "impact": v["impact"], "help": v["help"], "targets": [n["target"] for n in v["nodes"]]}
         for v in violations], ensure_ascii=False, indent=1))
    return [f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
            for v in violations]


# -- the story ---------------------------------------------------------------------------------------

def test_recruiter_posts_volunteer_refers_and_records_a_hire(playwright_modules, live, new_page, expect):
    Axe = playwright_modules[2]
    seeker = uncovered_seeker(live.world)
    title = "草柳编织工（浏览器测试）"

    # A recruiter posts a workshop vacancy through the form, at the seeker's village.
    rec = new_page()
    sign_in(rec, live.base, "/recruiter", live.tokens["recruiter"], expect)
    rec.get_by_label("用人单位").fill("惠家庄草柳编扶贫车间")
    rec.get_by_label("岗位名称").fill(title)
    rec.get_by_label("岗位类型").select_option("workshop_factory")
    rec.get_by_label("区县").select_option(seeker["county_code"])
    rec.get_by_label("乡镇（街道）").select_option(seeker["town_code"])
    rec.get_by_label("村（社区）").select_option(seeker["village_code"])
    expect(rec.get_by_label("纬度")).not_to_have_value("")          # filled from the village's point
    rec.get_by_label("纬度").fill(f"{seeker['lat']:.6f}")
    rec.get_by_label("经度").fill(f"{seeker['lon']:.6f}")
    rec.get_by_label("招聘人数").fill("3")
    rec.get_by_label("月工资（元）").fill("3200")
    rec.get_by_role("button", name="发布岗位").click()
    card = rec.locator("#jobs-list li.job-card", has_text=title)
    expect(card).to_be_visible()
    job_id = card.get_attribute("data-job")
    expect(card.locator("dd.free")).to_have_text("3人")
    expect(card).to_contain_text("3,200元")
    # The anonymised candidates are fetched for this vacancy only, when asked.
    asked = []
    rec.on("request", lambda r: "/candidates" in r.url and asked.append(r.url))
    card.get_by_role("button", name="查看符合条件的求职者").click()
    expect(card.locator("ol.candidates li").first).to_contain_text("岁")
    assert len(asked) == 1 and f"/jobs/{job_id}/candidates" in asked[0]
    shoot(rec, "recruiter-posted")
    job = call_api(live, "GET", f"/api/v1/jobs/{job_id}", live.tokens["recruiter"])
    assert (job["kind"], job["slots"], job["filled"], job["village_code"]) == \
        ("workshop_factory", 3, 0, seeker["village_code"])

    # A volunteer opens the household and finds the vacancy among the member's matches.
    vol = new_page()
    sign_in(vol, live.base, "/", live.tokens["volunteer"], expect)
    expect(vol.locator("#uncovered-list li").first).to_be_visible()
    uncovered_before = int(re.search(r"共([\d,]+)户", vol.locator("#uncovered-list").inner_text())[1].replace(",", ""))
    shoot(vol, "volunteer-signed-in")
    vol.get_by_label("乡镇（街道）").select_option(seeker["town_code"])
    vol.get_by_label("村（社区）").select_option(seeker["village_code"])
    vol.get_by_label("只看尚未覆盖的户").check()
    vol.get_by_role("button", name="按村查找").click()
    found = vol.locator("#village-results li", has_text=seeker["household_id"])
    expect(found).to_contain_text("未覆盖")
    vol.get_by_label("户编号").fill(seeker["household_id"])
    vol.get_by_role("button", name="查看该户").click()
    member = vol.locator(f"article.member[data-worker='{seeker['worker_id']}']")
    offer = member.locator(f"li.job-card[data-job='{job_id}']")
    expect(offer).to_be_visible()
    expect(offer).to_contain_text("厂房式扶贫车间")
    expect(offer).to_contain_text("月薪3,200元")
    expect(offer).to_contain_text("车间可获一次性补贴1,000元")          # the workshop's subsidy, said once
    assert offer.inner_text().count("3,200元") == 1
    expect(vol.locator("#coverage")).to_contain_text("未覆盖")
    vol.locator("#map-heading").click()                              # the map is one tap away, folded
    expect(vol.locator("svg.match-map .map-job").first).to_be_visible()
    shoot(vol, "volunteer-household")
    assert fits_the_phone(vol)

    # Refer the member; record the hire in place, where the referral was made.
    offer.get_by_role("button", name="推荐到此岗位").click()
    form = vol.locator(f"#household [data-job='{job_id}'] form.outcome-form")
    expect(form).to_have_count(1)
    shoot(vol, "volunteer-referred")
    form.get_by_label("结果").select_option("hired")
    form.get_by_role("button", name="保存结果").click()
    expect(vol.locator("#coverage")).to_contain_text("已覆盖")
    expect(vol.locator("#household-heading")).to_contain_text(seeker["household_id"])     # still on the household
    expect(vol.locator("#household details.history li.referral", has_text=title)).to_contain_text("已录用")
    expect(member.locator("h3")).to_contain_text("已就业")
    expect(vol.locator("#uncovered-list")).to_contain_text(f"共{uncovered_before - 1:,}户")
    shoot(vol, "volunteer-hired")
    problems = axe_check(Axe, vol, "volunteer-household")
    assert not problems, "volunteer page:\n" + "\n".join(problems)

    # The vacancy has one free slot fewer.
    rec.reload()
    card = rec.locator(f"#jobs-list li.job-card[data-job='{job_id}']")
    expect(card.locator("dd.filled")).to_have_text("1人")
    expect(card.locator("dd.free")).to_have_text("2人")
    shoot(rec, "recruiter-after-hire")
    assert fits_the_phone(rec)
    problems = axe_check(Axe, rec, "recruiter-jobs")
    assert not problems, "recruiter page:\n" + "\n".join(problems)
    household = call_api(live, "GET", f"/api/v1/households/{seeker['household_id']}", live.tokens["volunteer"])
    assert household["covered"] is True


def test_bad_form_shows_each_error_next_to_its_field(playwright_modules, live, new_page, expect):
    Axe = playwright_modules[2]
    call_api(live, "POST", "/api/v1/jobs", live.tokens["recruiter"],
             {"job_id": "J-TAKEN", "employer": "某车间", "title": "包装工", "kind": "enterprise",
              "lat": 35.5, "lon": 119.3, "slots": 1, "monthly_wage": 2000})
    page = new_page()
    page.goto(live.base + "/recruiter")
    # Keyboard order: skip link, the two page links, the login, the password, the sign-in button.
    for expected in (page.locator(".skip-link"), page.get_by_role("link", name="就业伙伴"),
                     page.get_by_role("link", name="招聘单位"), page.get_by_label("账号"), page.get_by_label("密码"),
                     page.get_by_role("button", name="登录", exact=True)):
        page.keyboard.press("Tab")
        expect(expected).to_be_focused()
    sign_in(page, live.base, "/recruiter", live.tokens["recruiter"], expect)
    form = page.locator("#job-form")

    # Checked in the page, as the API would: nothing is sent.
    page.get_by_label("用人单位").fill("惠家庄草柳编扶贫车间")
    page.get_by_label("招聘人数").fill("0")
    page.get_by_label("最低年龄（岁）").fill("50")
    page.get_by_label("最高年龄（岁）").fill("30")
    page.get_by_role("button", name="发布岗位").click()
    expect(page.locator("#title-error")).to_have_text("请填写岗位名称。")
    expect(page.locator("#slots-error")).to_contain_text("招聘人数须为1到1,000,000之间的整数")
    expect(page.locator("#min_age-error")).to_have_text("最低年龄不能高于最高年龄。")
    expect(page.locator("#monthly_wage-error")).to_have_text("请填写月工资。")
    expect(page.get_by_label("招聘人数")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("岗位名称")).to_be_focused()
    # Each message sits inside the field's own box, right under its input.
    slots_field = form.locator(".field", has=page.locator("#slots"))
    expect(slots_field.locator(".field-error")).to_contain_text("招聘人数须为")
    shoot(page, "recruiter-form-errors")
    problems = axe_check(Axe, page, "recruiter-form-errors")
    assert not problems, "recruiter page with errors:\n" + "\n".join(problems)

    # Refused by the API itself (a taken id is a 409 naming job_id): shown next to that field.
    page.get_by_label("岗位名称").fill("包装工")
    page.get_by_label("招聘人数").fill("2")
    page.get_by_label("最低年龄（岁）").fill("18")
    page.get_by_label("月工资（元）").fill("2500")
    page.get_by_label("区县").select_option(API_COUNTY)
    page.get_by_label("乡镇（街道）").select_option("371102107")
    page.get_by_label("岗位编号（可不填）").fill("J-TAKEN")
    page.get_by_role("button", name="发布岗位").click()
    expect(page.locator("#job_id-error")).to_have_text("该岗位编号已被使用，请换一个或留空。")
    expect(page.locator("#title-error")).to_be_hidden()
    expect(page.get_by_label("岗位编号（可不填）")).to_have_attribute("aria-invalid", "true")
    shoot(page, "recruiter-form-server-error")
    listed = call_api(live, "GET", "/api/v1/jobs?mine=true&per_page=100", live.tokens["recruiter"])
    assert [j["job_id"] for j in listed["items"] if j["title"] == "包装工"] == ["J-TAKEN"]

    # Closing a vacancy (after the browser's confirm dialog).
    page.once("dialog", lambda dialog: dialog.accept())
    taken = page.locator("#jobs-list li.job-card[data-job='J-TAKEN']")
    taken.get_by_role("button", name="关闭岗位").click()
    expect(page.locator("#jobs-list li.job-card[data-job='J-TAKEN']")).to_contain_text("已关闭")
    closed = page.locator("#jobs-list li.job-card[data-job='J-TAKEN']")
    expect(closed.get_by_role("button", name="关闭岗位")).to_have_count(0)
    expect(closed.get_by_role("button", name="重新开放")).to_be_visible()       # it has free slots
    assert call_api(live, "GET", "/api/v1/jobs/J-TAKEN", live.tokens["recruiter"])["status"] == "closed"


# -- people sign in (SPEC section 7) -------------------------------------------------------------------

PAIR_PASSWORD = "惠家庄结对-2026"
MOBILE = {"width": 390, "height": 844}


def paired_household(world):
    """A household of the volunteers' county with a village and a member whose name is not the head's."""
    w = world.workers.merge(world.households, on="household_id")
    w = w[(w["county_code"] == API_COUNTY) & (w["village_code"] != "") & (w["name"] != w["head_name"])]
    unique = w[~w["name"].isin(world.workers["name"].value_counts().loc[lambda c: c > 1].index)]
    return unique.sort_values("worker_id").iloc[0]


def test_a_volunteer_signs_in_stays_signed_in_offline_and_finds_a_household_by_a_members_name(
        playwright_modules, live, new_page, browser, expect):
    Axe = playwright_modules[2]
    member = paired_household(live.world)
    from matcher.store import make_engine
    from matcher.store.users import create_user
    engine = make_engine(live.app.config["DATABASE_URL"])
    create_user(engine, role="volunteer", login="hui.pair", password=PAIR_PASSWORD, display_name="惠家庄就业伙伴",
                county=API_COUNTY, villages=[member["village_code"]])
    engine.dispose()

    page = new_page()
    page.set_viewport_size(MOBILE)
    page.goto(live.base + "/")
    expect(page.locator("#signin")).to_be_visible()
    problems = axe_check(Axe, page, "volunteer-sign-in")
    assert not problems, "sign-in form:\n" + "\n".join(problems)
    page.get_by_label("账号").fill("hui.pair")
    page.get_by_label("密码").fill("not the password")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#signin-error")).to_have_text("账号或密码不正确。")
    page.get_by_label("密码").fill(PAIR_PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#who-text")).to_contain_text("惠家庄就业伙伴")

    # My households come first, most urgent first, as the API orders them.
    expect(page.locator("#app > section:visible").first).to_have_id("mine")
    first_row = page.locator("#mine-list li").first
    expect(first_row).to_be_visible()
    urgent = page.evaluate("fetch('/api/v1/me/households?per_page=10').then(r => r.json())")
    assert urgent["items"], urgent
    assert all(h["village_code"] == member["village_code"] for h in urgent["items"])
    expect(first_row.locator("button")).to_have_attribute("data-household", urgent["items"][0]["household_id"])
    shoot(page, "volunteer-my-households")
    assert page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"]

    # A reload keeps the sign-in (the cookie), and so does a network failure.
    page.reload()
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#signin")).to_be_hidden()
    expect(page.locator("#mine-list li").first).to_be_visible()
    browser.set_offline(True)
    try:
        page.get_by_label("户主或成员姓名").fill(member["name"])
        page.get_by_role("button", name="按姓名查找").click()
        expect(page.locator("#name-results")).to_contain_text("网络连接失败")
        expect(page.locator("#signin")).to_be_hidden()
        expect(page.locator("#app")).to_be_visible()
    finally:
        browser.set_offline(False)

    # Back online: find the household by a member's name (not the head's), still signed in.
    page.get_by_role("button", name="按姓名查找").click()
    found = page.locator("#name-results li", has_text=member["household_id"])
    expect(found).to_be_visible()
    expect(found).to_contain_text(member["head_name"])
    found.get_by_role("button").click()
    expect(page.locator("#household-heading")).to_contain_text(member["head_name"])
    expect(page.locator(f"article.member[data-worker='{member['worker_id']}'] h3")).to_contain_text(member["name"])
    shoot(page, "volunteer-found-by-name")
    assert page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"]
    problems = axe_check(Axe, page, "volunteer-my-households")
    assert not problems, "volunteer page signed in:\n" + "\n".join(problems)

    # Signing out is a write made with the cookie: it needs the CSRF token the page kept across reloads.
    page.reload()
    expect(page.locator("#app")).to_be_visible()
    page.get_by_role("button", name="退出登录").click()
    expect(page.locator("#signin")).to_be_visible()
    page.reload()
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()


# -- the working day at 390 px (SPEC section 7) ----------------------------------------------------------

def api_has(live, method: str, rule: str, role: str | None = None) -> bool:
    """Whether the service has this route (and lets this role use it): the working day's endpoints."""
    from matcher.api.openapi import OPERATIONS
    if not any(r.rule == rule and method in r.methods for r in live.app.url_map.iter_rules()):
        return False
    if role is None:
        return True
    flask_rule = rule.replace("/api/v1", "", 1)
    return any(op.method == method and role in (op.roles or ()) and (op.rule == flask_rule or rule.endswith(op.rule))
               for op in OPERATIONS)


class Taps:
    """Counts what the user does with a finger: a tap on a control, a choice in a list."""

    def __init__(self):
        self.n = 0

    def click(self, locator):
        self.n += 1
        locator.click()

    def select(self, locator, value):
        self.n += 1
        locator.select_option(value)

    def check(self, locator):
        self.n += 1
        locator.check()


def referable_household(live, token):
    """One of my households on the first page whose plan proposes a job the member can still be referred to."""
    mine = call_api(live, "GET", "/api/v1/me/households?per_page=10", token)["items"]
    for h in mine:
        hid = h["household_id"]
        detail = call_api(live, "GET", f"/api/v1/households/{hid}", token)
        taken = {(r["worker_id"], r["job_id"]) for r in detail["referrals"]}
        employed = {m["worker_id"] for m in detail["members_detail"] if m["employed"]}
        plan = call_api(live, "GET", f"/api/v1/households/{hid}/matches?k=10", token)["plan"]
        for p in plan:
            if p.get("job_id") and p["worker_id"] not in employed and (p["worker_id"], p["job_id"]) not in taken:
                return hid, p
    pytest.fail("no household on the first page of my households has a referable plan")


def stored_referral(live, token, household_id, worker_id, job_id):
    refs = call_api(live, "GET", f"/api/v1/households/{household_id}", token)["referrals"]
    return [r for r in refs if r["worker_id"] == worker_id and r["job_id"] == job_id]


def small_enough_taps(page, selector="#app button, #app select, #app summary, #app input, .site-header a, .who button"):
    """The visible controls less than 44 px tall (a checkbox counts its label's row)."""
    return page.evaluate("""sel => [...document.querySelectorAll(sel)].filter(e => e.getClientRects().length).map(e => {
        const box = (e.type === 'checkbox' || e.type === 'radio') ? e.closest('.field') : e;
        const r = box.getBoundingClientRect();
        return r.height < 43.5 ? `${e.tagName} ${e.id || e.name || e.textContent.trim().slice(0, 20)}: ${r.height}` : null;
      }).filter(Boolean)""", selector)


def test_the_volunteers_day_in_at_most_eight_taps_with_the_outcome_recorded_in_place(
        playwright_modules, live, new_page, expect):
    Axe = playwright_modules[2]
    token = live.tokens["volunteer"]
    household_id, proposal = referable_household(live, token)
    worker_id, job_id = proposal["worker_id"], proposal["job_id"]
    page = new_page()
    page.set_viewport_size(MOBILE)
    sign_in(page, live.base, "/", token, expect)
    expect(page.locator("#mine-list li").first).to_be_visible()
    assert not small_enough_taps(page), small_enough_taps(page)
    problems = axe_check(Axe, page, "day-signed-in")
    assert not problems, "signed in:\n" + "\n".join(problems)
    taps = Taps()

    # My households -> the household.
    taps.click(page.locator(f"#mine-list button[data-household='{household_id}']"))
    expect(page.locator("#household-heading")).to_contain_text(household_id)
    assert page.evaluate("location.hash") == f"#household={household_id}"
    height = page.evaluate("document.documentElement.scrollHeight")
    shoot(page, "day-household")
    assert fits_the_phone(page) or page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"]
    problems = axe_check(Axe, page, "day-household")
    assert not problems, "household:\n" + "\n".join(problems)
    assert not small_enough_taps(page), small_enough_taps(page)

    # Refer from the plan; the outcome form takes the refer button's place.
    row = page.locator(f"#household ol.plan li[data-worker='{worker_id}'][data-job='{job_id}']")
    refer = row.get_by_role("button", name="推荐到此岗位")
    refer.scroll_into_view_if_needed()
    y_refer = page.evaluate("scrollY")
    taps.click(refer)
    form = row.locator("form.outcome-form")
    expect(form).to_be_visible()
    assert len(stored_referral(live, token, household_id, worker_id, job_id)) == 1
    problems = axe_check(Axe, page, "day-referred")
    assert not problems, "referred:\n" + "\n".join(problems)
    taps.select(form.get_by_label("结果"), "declined")
    reason = form.get_by_label("原因")
    expect(reason.locator("option[value='distance']")).to_have_count(1)
    expect(reason.locator("option[value='skills']")).to_have_count(0 if api_has(live, "GET", "/api/v1/referrals/reasons") else 1)
    taps.select(reason, "distance")
    save = form.get_by_role("button", name="保存结果")
    save.scroll_into_view_if_needed()
    scrolled = abs(page.evaluate("scrollY") - y_refer)
    assert scrolled <= MOBILE["height"], f"{scrolled} px of scrolling between referring and recording"
    taps.click(save)
    expect(row).to_contain_text("已登记结果：婉拒")
    expect(page.locator("#household-heading")).to_contain_text(household_id)      # still on the household
    [ref] = stored_referral(live, token, household_id, worker_id, job_id)
    assert (ref["outcome"], ref["reason"]) == ("declined", "distance")
    shoot(page, "day-recorded")

    # A visit with guidance for the member; the 311 status counts it.
    if api_has(live, "POST", "/api/v1/households/<household_id>/visits"):
        standard = page.locator(f"#standard-{worker_id}")
        expect(standard).to_contain_text("职业指导0/1")
        taps.check(page.locator(f"fieldset.services[data-worker='{worker_id}']").get_by_label("职业指导"))
        taps.click(page.get_by_role("button", name="保存走访记录"))
        expect(standard).to_contain_text("职业指导1/1")
        visits = call_api(live, "GET", f"/api/v1/households/{household_id}/visits", token)["items"]
        assert [s for s in visits[0]["services"] if s["worker_id"] == worker_id] == [{"worker_id": worker_id, "kind": "guidance"}]
        problems = axe_check(Axe, page, "day-visited")
        assert not problems, "visit logged:\n" + "\n".join(problems)
    assert taps.n <= 8, f"{taps.n} taps"
    shoot(page, "day-done")

    # A reload comes back to the household.
    page.reload()
    expect(page.locator("#household-heading")).to_contain_text(household_id)
    expect(page.locator(f"#household ol.plan li[data-worker='{worker_id}']").first).to_be_visible()
    assert height < 9000, f"the household page is {height} px tall"


def test_pending_referrals_are_one_tap_away_and_recorded_there(playwright_modules, live, new_page, expect):
    if not api_has(live, "GET", "/api/v1/referrals"):
        pytest.skip("GET /api/v1/referrals?status=pending is the working-day API's (not on this branch yet)")
    Axe = playwright_modules[2]
    token = live.tokens["volunteer"]
    household_id, p = referable_household(live, token)
    made = call_api(live, "POST", "/api/v1/referrals", token, {"worker_id": p["worker_id"], "job_id": p["job_id"]})
    page = new_page()
    page.set_viewport_size(MOBILE)
    sign_in(page, live.base, "/", token, expect)
    page.get_by_role("button", name=re.compile("^待登记")).click()
    item = page.locator(f"#pending-list li[data-referral='{made['referral_id']}']")
    expect(item).to_be_visible()
    expect(page.locator("#go-pending")).to_contain_text(re.compile(r"（\d+）"))
    shoot(page, "day-pending")
    problems = axe_check(Axe, page, "day-pending")
    assert not problems, "pending list:\n" + "\n".join(problems)
    item.get_by_label("结果").select_option("no_show")
    item.get_by_label("原因").select_option("unreachable")
    item.get_by_role("button", name="保存结果").click()
    expect(page.locator(f"#pending-list li[data-referral='{made['referral_id']}']")).to_have_count(0)
    [ref] = stored_referral(live, token, household_id, p["worker_id"], p["job_id"])
    assert (ref["outcome"], ref["reason"]) == ("no_show", "unreachable")


def test_a_network_cut_while_recording_keeps_the_screen_and_sends_each_write_once(
        playwright_modules, live, new_page, browser, expect):
    token = live.tokens["volunteer"]
    household_id, p = referable_household(live, token)
    worker_id, job_id = p["worker_id"], p["job_id"]
    made = call_api(live, "POST", "/api/v1/referrals", token, {"worker_id": worker_id, "job_id": job_id})
    page = new_page()
    page.set_viewport_size(MOBILE)
    sign_in(page, live.base, "/", token, expect)
    page.get_by_label("户编号").fill(household_id)
    page.get_by_role("button", name="查看该户").click()
    row = page.locator(f"#household ol.plan li[data-worker='{worker_id}'][data-job='{job_id}']")
    form = row.locator("form.outcome-form")
    expect(form).to_be_visible()
    visits = api_has(live, "POST", "/api/v1/households/<household_id>/visits")
    sent = []
    page.on("request", lambda r: r.method in ("POST", "PATCH") and "/api/v1/" in r.url
            and sent.append((r.method, r.url.split("/api/v1/")[1], r.headers.get("idempotency-key"))))

    browser.set_offline(True)
    try:
        form.get_by_label("结果").select_option("declined")
        form.get_by_label("原因").select_option("wage")
        form.get_by_role("button", name="保存结果").click()
        expect(page.locator("#outbox")).to_have_text("1 条待发送")
        expect(row).to_contain_text("待发送")
        if visits:
            page.locator(f"fieldset.services[data-worker='{worker_id}']").get_by_label("技能培训").check()
            page.get_by_label("走访情况（可不填，最多500字）").fill("断网时记录")
            page.get_by_role("button", name="保存走访记录").click()
            expect(page.locator("#outbox")).to_have_text("2 条待发送")
            expect(page.locator("ul.visits")).to_contain_text("待发送")
        # A failed request keeps the household on screen: another household, then this one again.
        other = page.locator(f"#mine-list button[data-household]:not([data-household='{household_id}'])").first
        other.click()
        expect(page.locator("#toast")).to_contain_text("未能打开户")
        page.get_by_role("button", name="查看该户").click()
        expect(page.locator("#household-heading")).to_contain_text(household_id)
        expect(page.locator("#household .stale")).to_contain_text("网络不通")
        shoot(page, "day-offline")
        kept = page.evaluate("Object.keys(localStorage).filter(k => k.includes('outbox'))"
                             ".map(k => JSON.parse(localStorage.getItem(k))).flat()")
        assert len(kept) == (2 if visits else 1) and all(len(o["key"]) >= 16 for o in kept)
    finally:
        browser.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("#outbox")).to_be_hidden()
    expect(row).to_contain_text("已登记结果：婉拒")
    [ref] = stored_referral(live, token, household_id, worker_id, job_id)
    assert (ref["referral_id"], ref["outcome"], ref["reason"]) == (made["referral_id"], "declined", "wage")
    patches = [s for s in sent if s[0] == "PATCH"]
    keys = {k for m, path, k in sent if k}
    assert patches and len({k for _, _, k in patches}) == 1          # every try of the write carries its one key
    if visits:
        stored = call_api(live, "GET", f"/api/v1/households/{household_id}/visits", token)["items"]
        assert [v["note"] for v in stored].count("断网时记录") == 1
        assert len(keys) == 2
    shoot(page, "day-back-online")
    if not visits:
        return

    # An answer lost on its way back: the service stored the visit, the phone heard nothing. Sent again
    # with the same key, it is answered and not stored twice.
    lost = []

    def drop_the_answer(route):
        if route.request.method == "POST" and not lost:
            lost.append(route.request.headers.get("idempotency-key"))
            route.fetch()
            route.abort()
        else:
            route.continue_()

    page.route("**/api/v1/households/*/visits", drop_the_answer)
    page.get_by_label("走访情况（可不填，最多500字）").fill("回复丢失")
    page.get_by_role("button", name="保存走访记录").click()
    expect(page.locator("#outbox")).to_have_text("1 条待发送")
    page.get_by_role("button", name="立即发送").click()
    expect(page.locator("#outbox")).to_be_hidden()
    page.unroute("**/api/v1/households/*/visits")
    stored = call_api(live, "GET", f"/api/v1/households/{household_id}/visits", token)["items"]
    assert [v["note"] for v in stored].count("回复丢失") == 1
    assert lost[0] and [k for m, path, k in sent if path.endswith("/visits")].count(lost[0]) == 2


def test_the_recruiters_day_answers_a_referral_with_a_reason_and_edits_a_vacancy(
        playwright_modules, live, new_page, expect):
    Axe = playwright_modules[2]
    token = live.tokens["recruiter"]
    seeker = uncovered_seeker(live.world, nth=1)
    job = call_api(live, "POST", "/api/v1/jobs", token, {
        "employer": "两城编织车间", "title": "编织工（招聘单位的一天）", "kind": "workshop_factory",
        "lat": float(seeker["lat"]), "lon": float(seeker["lon"]), "slots": 2, "monthly_wage": 2800})
    page = new_page()
    page.set_viewport_size(MOBILE)
    sign_in(page, live.base, "/recruiter", token, expect)
    card = page.locator(f"#jobs-list li.job-card[data-job='{job['job_id']}']")
    expect(card).to_be_visible()
    assert not small_enough_taps(page), small_enough_taps(page)

    # Edit the vacancy: more places, a higher wage.
    card.get_by_role("button", name="修改").click()
    edit = card.locator("form.edit-form")
    edit.get_by_label("招聘人数").fill("4")
    edit.get_by_label("月工资（元）").fill("3000")
    problems = axe_check(Axe, page, "recruiter-editing")
    assert not problems, "editing:\n" + "\n".join(problems)
    edit.get_by_role("button", name="保存修改").click()
    expect(card.locator("dd.slots")).to_have_text("4人")
    expect(card).to_contain_text("3,000元")
    stored = call_api(live, "GET", f"/api/v1/jobs/{job['job_id']}", token)
    assert (stored["slots"], stored["monthly_wage"]) == (4, 3000)
    shoot(page, "recruiter-edited")

    if api_has(live, "POST", "/api/v1/jobs/<job_id>/reopen"):
        call_api(live, "POST", f"/api/v1/jobs/{job['job_id']}/close", token)
        page.reload()
        expect(card).to_contain_text("已关闭")
        card.get_by_role("button", name="重新开放").click()
        expect(card).to_contain_text("招聘中")
        assert call_api(live, "GET", f"/api/v1/jobs/{job['job_id']}", token)["status"] == "open"

    if not api_has(live, "PATCH", "/api/v1/referrals/<referral_id>", role="recruiter"):
        pytest.skip("the owner's answer to a referral is the working-day API's (not on this branch yet)")
    made = call_api(live, "POST", "/api/v1/referrals", live.tokens["volunteer"],
                    {"worker_id": seeker["worker_id"], "job_id": job["job_id"]})
    page.reload()
    item = page.locator(f"#pending-list li[data-referral='{made['referral_id']}']")
    expect(item).to_contain_text("编织工（招聘单位的一天）")
    text = item.inner_text()
    assert seeker["name"] not in text and seeker["household_id"] not in text and seeker["worker_id"] not in text
    problems = axe_check(Axe, page, "recruiter-pending")
    assert not problems, "recruiter's pending referrals:\n" + "\n".join(problems)
    shoot(page, "recruiter-pending")
    item.get_by_label("不录用", exact=True).check()
    item.get_by_label("不录用的原因").select_option("position_filled")
    item.get_by_role("button", name="提交结果").click()
    expect(page.locator(f"#pending-list li[data-referral='{made['referral_id']}']")).to_have_count(0)
    ref = call_api(live, "GET", f"/api/v1/referrals/{made['referral_id']}", live.tokens["volunteer"])
    assert (ref["outcome"], ref["reason"]) == ("rejected", "position_filled")


# -- page weight and a slow network ----------------------------------------------------------------------

BUDGET_FIRST_KB = 60
BUDGET_HOUSEHOLD_KB = 15
SLOW_3G = {"offline": False, "latency": 400, "downloadThroughput": 400_000 / 8, "uploadThroughput": 400_000 / 8}
BENCH = Path(__file__).resolve().parent.parent / "bench" / "pages.md"


class Wire:
    """Bytes received over the wire (headers and compressed bodies: CDP's encodedDataLength), per request."""

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.urls, self.sizes = {}, []
        self.cdp.on("Network.requestWillBeSent", lambda e: self.urls.__setitem__(e["requestId"], e["request"]["url"]))
        self.cdp.on("Network.loadingFinished",
                    lambda e: self.sizes.append((self.urls.get(e["requestId"], "?"), e["encodedDataLength"])))
        self.cdp.send("Network.enable")

    def take(self) -> list[tuple[str, int]]:
        out, self.sizes = self.sizes, []
        return out


def settle(page, ms=800):
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(ms)


def test_page_weight_and_the_time_to_a_household_on_slow_3g(live, new_page, expect):
    import time
    token = live.tokens["volunteer"]
    page = new_page()
    page.set_viewport_size(MOBILE)
    wire = Wire(page)
    wire.cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})

    # The first load: the page, its scripts and styles, signing in and the lists it shows (cold cache).
    sign_in(page, live.base, "/", token, expect)
    expect(page.locator("#mine-list li").first).to_be_visible()
    expect(page.locator("#uncovered-list li").first).to_be_visible()
    settle(page)
    first = wire.take()
    first_kb = sum(n for _, n in first) / 1024

    # One household: its detail, matches, job places and visits.
    rows = page.locator("#mine-list button[data-household]")
    target = rows.nth(1).get_attribute("data-household")
    rows.nth(1).click()
    expect(page.locator("#household-heading")).to_contain_text(target)
    expect(page.locator("#plan-heading")).to_be_visible()
    settle(page)
    household = wire.take()
    household_kb = sum(n for _, n in household) / 1024
    household_px = page.evaluate("document.getElementById('household').getBoundingClientRect().height")

    # Slow 3G (400 kbit/s both ways, 400 ms round trips), browser cache on as for a returning volunteer.
    wire.cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
    wire.cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    try:
        started = time.perf_counter()
        page.reload()
        expect(page.locator("#mine-list li").first).to_be_visible(timeout=60_000)
        reload_s = time.perf_counter() - started
        other = page.locator(f"#mine-list button[data-household]:not([data-household='{target}'])").nth(2)
        other_id = other.get_attribute("data-household")
        started = time.perf_counter()
        other.click()
        expect(page.locator("#household-heading")).to_contain_text(other_id, timeout=60_000)
        expect(page.locator("#plan-heading")).to_be_visible(timeout=60_000)
        expect(page.locator("#household-body .muted", has_text="正在加载")).to_have_count(0, timeout=60_000)
        household_s = time.perf_counter() - started
    finally:
        wire.cdp.send("Network.emulateNetworkConditions",
                      {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    def table(rows):
        by = {}
        for url, n in rows:
            if not url.startswith("http"):
                continue                        # data: images drawn by the browser itself
            path = url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
            key = "/" + (re.sub(r"/(H|J|W)[\w.:-]+", "/{id}", path))
            by[key] = by.get(key, 0) + n
        return "\n".join(f"| `{k}` | {v / 1024:.1f} |" for k, v in sorted(by.items(), key=lambda kv: -kv[1]))

    report = f"""# Page weight and a slow network (the volunteer's page, 390 px)

Measured by `tests/test_pages_browser.py::test_page_weight_and_the_time_to_a_household_on_slow_3g` in Debian's
chromium driven by Playwright, against the service on a loopback port over the small generated world (the prior
model). Bytes are what came over the wire: the sum of CDP's `Network.loadingFinished.encodedDataLength` (headers
and compressed bodies) of every request in the step, with the browser cache disabled (a first visit). The slow
network is CDP's `Network.emulateNetworkConditions` at 400 kbit/s down and up with 400 ms of latency, the browser
cache on (a returning volunteer). Budgets: first load <= {BUDGET_FIRST_KB} KB, a household <= {BUDGET_HOUSEHOLD_KB} KB.
Run with `MATCHER_WRITE_BENCH=1` to rewrite this file.

| step | over the wire | requests |
|---|---|---|
| first load (page, scripts, styles, sign-in, my households, pending, uncovered, places) | {first_kb:.1f} KB | {len(first)} |
| one household (detail, matches, job places, visits) | {household_kb:.1f} KB | {len(household)} |

The household section is {household_px:.0f} px tall at 390 px (the whole page with its lists is longer).
{"The pending referrals, the reasons and the visits are the service's real answers." if api_has(live, "GET", "/api/v1/referrals")
 else "The service measured lacks the pending referrals, reasons and visits: their error answers are counted."}

On slow 3G: a reload until my households show took {reload_s:.1f} s; a tap on a household until its plan shows
took {household_s:.1f} s.

## First load by request

| path | KB |
|---|---|
{table(first)}

## One household by request

| path | KB |
|---|---|
{table(household)}
"""
    out = BENCH if os.environ.get("MATCHER_WRITE_BENCH") else SHOTS.parent / "pages.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    assert first_kb <= BUDGET_FIRST_KB, report
    assert household_kb <= BUDGET_HOUSEHOLD_KB, report
    assert household_s < 15, report
