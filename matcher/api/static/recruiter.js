/* The recruiter's page: post a vacancy (checked as the API checks it), list own vacancies, close one. */
"use strict";

(() => {
  const { el, clear, label, api, explain, toast, busy } = M;
  const $ = (id) => document.getElementById(id);
  const RULES = JSON.parse($("job-rules").textContent);
  const form = $("job-form");
  const FIELDS = ["employer", "title", "kind", "county_code", "town_code", "village_code", "lat", "lon", "skills",
                  "min_age", "max_age", "physical_demand", "requires", "slots", "monthly_wage", "posted_on", "job_id"];
  const NAMES = { employer: "用人单位", title: "岗位名称", kind: "岗位类型", county_code: "区县", town_code: "乡镇（街道）",
                  village_code: "村（社区）", lat: "纬度", lon: "经度", skills: "技能要求", min_age: "最低年龄",
                  max_age: "最高年龄", physical_demand: "体力要求", requires: "身体功能", slots: "招聘人数",
                  monthly_wage: "月工资", posted_on: "发布日期", job_id: "岗位编号" };
  const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
  let places = { names: {}, points: {} };
  let counting = Promise.resolve();

  // -- reading and checking the form --------------------------------------------------------------

  const text = (id) => $(id).value.trim();
  const splitTags = (s) => s.split(/[,，、;；\n]+/).map((t) => t.trim()).filter(Boolean);

  function range(name, value) {
    const r = RULES[name] || {};
    if (r.minimum !== undefined && value < r.minimum) return false;
    if (r.maximum !== undefined && value > r.maximum) return false;
    return true;
  }

  /** The request body and the problems found, each {field, message}, in the form's order. */
  function read() {
    const body = {};
    const errors = [];
    const bad = (field, message) => errors.push({ field, message });
    for (const name of ["employer", "title"]) {
      const v = text(name);
      if (!v) bad(name, `请填写${NAMES[name]}。`);
      else if (v.length > RULES[name].maxLength) bad(name, `${NAMES[name]}最多${RULES[name].maxLength}个字。`);
      else if (CONTROL.test(v)) bad(name, `${NAMES[name]}含有不能使用的控制字符。`);
      else body[name] = v;
    }
    body.kind = $("kind").value;
    for (const name of ["county_code", "town_code", "village_code"]) if ($(name).value) body[name] = $(name).value;
    const latText = text("lat");
    const lonText = text("lon");
    for (const [name, t] of [["lat", latText], ["lon", lonText]]) {
      if (!t) continue;
      const v = Number(t);
      if (!Number.isFinite(v)) bad(name, `${NAMES[name]}须为数字，例如 35.42。`);
      else if (!range(name, v)) bad(name, `${NAMES[name]}须在${RULES[name].minimum}到${RULES[name].maximum}之间。`);
      else body[name] = v;
    }
    if (latText && !lonText) bad("lon", "纬度和经度须同时填写。");
    if (lonText && !latText) bad("lat", "纬度和经度须同时填写。");
    if (!latText && !lonText && body.kind !== "out_of_county") {
      bad("lat", "请选择乡镇（村）或填写坐标：只有县外务工岗位可以不填地点。");
    }
    if (body.kind === "public_welfare" && !body.town_code) bad("town_code", "公益性岗位须选择所服务的乡镇（街道）。");
    const tags = splitTags($("skills").value);
    const item = (RULES.skills.item || {});
    if (tags.length > RULES.skills.maxItems) bad("skills", `技能要求最多${RULES.skills.maxItems}项。`);
    else if (item.maxLength && tags.some((t) => t.length > item.maxLength)) bad("skills", `每项技能最多${item.maxLength}个字。`);
    else if (tags.some((t) => CONTROL.test(t))) bad("skills", "技能要求含有不能使用的控制字符。");
    else body.skills = tags;
    for (const name of ["min_age", "max_age"]) {
      const t = text(name);
      if (!t) continue;
      const v = Number(t);
      if (!Number.isInteger(v) || !range(name, v)) bad(name, `${NAMES[name]}须为${RULES[name].minimum}到${RULES[name].maximum}之间的整数。`);
      else body[name] = v;
    }
    if (body.min_age !== undefined && body.max_age !== undefined && body.min_age > body.max_age) {
      bad("min_age", "最低年龄不能高于最高年龄。");
    }
    body.physical_demand = $("physical_demand").value;
    body.requires = [...form.querySelectorAll('input[name="requires"]:checked')].map((c) => c.value);
    const slots = Number(text("slots"));
    if (!text("slots")) bad("slots", "请填写招聘人数。");
    else if (!Number.isInteger(slots) || !range("slots", slots)) {
      bad("slots", `招聘人数须为${M.num(RULES.slots.minimum)}到${M.num(RULES.slots.maximum)}之间的整数。`);
    } else body.slots = slots;
    const wage = Number(text("monthly_wage"));
    if (!text("monthly_wage")) bad("monthly_wage", "请填写月工资。");
    else if (!Number.isFinite(wage) || !range("monthly_wage", wage)) {
      bad("monthly_wage", `月工资须在${M.num(RULES.monthly_wage.minimum)}到${M.num(RULES.monthly_wage.maximum)}元之间。`);
    } else body.monthly_wage = wage;
    const posted = $("posted_on").value;
    if (posted) {
      if (posted < RULES.posted_on.minimum || posted > RULES.posted_on.maximum) {
        bad("posted_on", `发布日期须在${M.date(RULES.posted_on.minimum)}到${M.date(RULES.posted_on.maximum)}之间。`);
      } else body.posted_on = posted;
    }
    const jobId = text("job_id");
    if (jobId) {
      if (!new RegExp(RULES.job_id.pattern).test(jobId)) bad("job_id", "岗位编号只能用字母、数字和 _ . : -，最多64位，须以字母或数字开头。");
      else body.job_id = jobId;
    }
    return { body, errors };
  }

  function fieldInput(field) {
    if (field === "requires") return form.querySelector('input[name="requires"]');
    return $(field);
  }

  function clearErrors() {
    for (const f of FIELDS) {
      const e = $(f + "-error");
      if (e) e.textContent = "";
      const input = fieldInput(f);
      if (input) input.removeAttribute("aria-invalid");
    }
    $("form-error").textContent = "";
  }

  function showErrors(errors) {
    let first = null;
    const unplaced = [];
    for (const { field, message } of errors) {
      const box = field && $(field + "-error");
      if (!box) { unplaced.push(message); continue; }
      if (!box.textContent) box.textContent = message;
      const input = fieldInput(field);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        if (!first) first = input;
      }
    }
    $("form-error").textContent = unplaced.length ? unplaced.join(" ")
      : `有${errors.length}处需要修改，请查看标红的项目。`;
    if (first) first.focus();
  }

  /** The API's own error, next to the field it names (a 422's or 409's `field`). */
  function serverError(e) {
    const field = (e.field || "").split(".")[0];
    if (e.status === 409 && field === "job_id") return { field, message: "该岗位编号已被使用，请换一个或留空。" };
    if (e.status === 409 && field === "slots") return { field, message: "招聘人数不能少于已招人数。" };
    if (e.status === 422 && FIELDS.includes(field)) {
      return { field, message: `${NAMES[field]}不符合要求，请检查。` };
    }
    return { field: null, message: "发布失败：" + explain(e) };
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    const { body, errors } = read();
    if (errors.length) {
      showErrors(errors);
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    busy(button, true);
    try {
      const job = await api("POST", "/api/v1/jobs", body);
      toast(`已发布岗位“${job.title}”，招聘${job.slots}人。`);
      for (const id of ["title", "slots", "job_id"]) $(id).value = "";
      await loadJobs();
      const card = document.querySelector(`[data-job="${CSS.escape(job.job_id)}"] h3`);
      if (card) card.focus();
    } catch (e) {
      showErrors([serverError(e)]);
    } finally {
      busy(button, false);
    }
  });

  // -- own vacancies --------------------------------------------------------------------------------

  function placeText(job) {
    const parts = [job.county_code, job.town_code, job.village_code].filter(Boolean).map((c) => places.names[c] || c);
    return parts.length ? parts.join(" ") : job.kind === "out_of_county" ? "县外" : "—";
  }

  async function candidateCount(job, target) {
    if (job.status !== "open" || job.filled >= job.slots) {
      target.textContent = "—";
      return;
    }
    try {
      const data = await api("GET", `/api/v1/jobs/${encodeURIComponent(job.job_id)}/candidates?k=100`);
      const n = data.candidates.length;
      target.textContent = n >= 100 ? "100人以上" : `${n}人`;
    } catch (e) {
      target.textContent = e.status === 503 ? "暂不可用" : "—";
    }
  }

  async function closeJob(job, button) {
    if (!window.confirm(`确定关闭岗位“${job.title}”吗？关闭后不再向求职者推荐。`)) return;
    busy(button, true);
    try {
      await api("POST", `/api/v1/jobs/${encodeURIComponent(job.job_id)}/close`);
      toast(`岗位“${job.title}”已关闭。`);
      await loadJobs();
      $("mine-heading").focus();
    } catch (e) {
      busy(button, false);
      toast("关闭失败：" + explain(e, "岗位"));
    }
  }

  function jobCard(job) {
    const free = Math.max(0, job.slots - job.filled);
    const count = el("dd", { class: "candidates" }, "正在计算…");
    const card = el("li", { class: "job-card", "data-job": job.job_id },
      el("h3", { tabindex: "-1" }, `${job.title} · ${job.employer}`),
      el("p", { class: "tags" },
        el("span", { class: "badge kind-" + job.kind }, label("kind", job.kind)),
        el("span", { class: "badge " + (job.status === "open" ? "ok" : "") }, label("status", job.status))),
      el("dl", { class: "facts" },
        el("dt", {}, "岗位编号"), el("dd", {}, job.job_id),
        el("dt", {}, "地点"), el("dd", {}, placeText(job)),
        el("dt", {}, "月工资"), el("dd", {}, M.yuan(job.monthly_wage)),
        el("dt", {}, "招聘人数"), el("dd", { class: "slots" }, `${M.num(job.slots)}人`),
        el("dt", {}, "已招"), el("dd", { class: "filled" }, `${M.num(job.filled)}人`),
        el("dt", {}, "空缺"), el("dd", { class: "free" }, `${M.num(free)}人`),
        el("dt", {}, "附近符合条件的求职者"), count,
        el("dt", {}, "发布日期"), el("dd", {}, M.date(job.posted_on))),
      job.status === "open"
        ? el("button", { type: "button", class: "danger", "aria-label": `关闭岗位“${job.title}”`,
                         onclick: (ev) => closeJob(job, ev.currentTarget) }, "关闭岗位")
        : null);
    counting = counting.then(() => candidateCount(job, count));   // one at a time: each ranks every seeker
    return card;
  }

  async function loadJobs() {
    const target = $("jobs-list");
    try {
      const data = await api("GET", "/api/v1/jobs?mine=true&per_page=100");
      clear(target);
      if (!data.items.length) {
        target.append(el("p", {}, "您还没有发布岗位。"));
        return;
      }
      target.append(el("p", { class: "muted" }, `共${M.num(data.total)}个岗位` + (data.total > data.items.length ? `，显示最新的${data.items.length}个` : "")));
      target.append(el("ul", { class: "jobs" }, data.items.map(jobCard)));
    } catch (e) {
      clear(target).append(el("p", { class: "error-text" }, explain(e, "岗位")));
    }
  }

  // -- start ----------------------------------------------------------------------------------------

  function fillPoint(code) {
    const p = places.points[code];
    if (!p) return;
    $("lat").value = p[0].toFixed(5);
    $("lon").value = p[1].toFixed(5);
  }

  M.start(["recruiter", "admin"], async () => {
    places = await M.placePickers({ county: $("county_code"), town: $("town_code"), village: $("village_code"),
                                    onPick: fillPoint,
                                    anyText: { county: "不限（请选择）", town: "不限（请选择）", village: "不限（请选择）" } });
    await loadJobs();
  });
})();
