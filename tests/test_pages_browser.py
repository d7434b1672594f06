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


def uncovered_seeker(world):
    """A member of a not-yet-covered household of the volunteers' county who can take a nearby workshop job."""
    h, w = world.households, world.workers
    covered = set(w.loc[w["employed"], "household_id"])
    seekers = w[(w["labour_capacity"] == "full") & (w["wants"] == "job") & ~w["employed"] & ~w["home_only"]
                & (w["disability"] == "none") & w["age"].between(22, 45) & ~w["household_id"].isin(covered)]
    seekers = seekers.merge(h, on="household_id")
    seekers = seekers[(seekers["county_code"] == API_COUNTY) & (seekers["village_code"] != "")]
    return seekers.sort_values("worker_id").iloc[0]


def axe_check(Axe, page, name: str) -> list[str]:
    """Run axe-core on the page as it is; write every violation to artifacts/axe/NAME.json; return the
    serious and critical ones."""
    violations = Axe().run(page).response["violations"]
    out = SHOTS.parent / "axe"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(
        [{"id": v["id"], "impact": v["impact"], "help": v["help"], "targets": [n["target"] for n in v["nodes"]]}
         for v in violations], ensure_ascii=False, indent=1))
    return [f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
            for v in violations if v["impact"] in ("serious", "critical")]


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
