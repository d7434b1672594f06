/* The recruiter's page: answer the referrals to my vacancies, post a vacancy (checked as the API checks
   it), list, edit, close and reopen my vacancies, and see a vacancy's anonymised candidates when asked. */
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
  let postKey = M.newKey();       // one per vacancy posted: a retried submit is answered, not posted twice

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
      const job = await api("POST", "/api/v1/jobs", body, { headers: { "Idempotency-Key": postKey } });
      postKey = M.newKey();
      toast(`已发布岗位“${job.title}”，招聘${job.slots}人。`);
      for (const id of ["title", "slots", "job_id"]) $(id).value = "";
      await loadJobs();
      const card = document.querySelector(`[data-job="${CSS.escape(job.job_id)}"] h3`);
      if (card) card.focus();
    } catch (e) {
      if (e.status !== 0) postKey = M.newKey();     // the form will change: a new post, a new key
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

  /** The anonymised candidates of one vacancy, fetched only when asked (each ranks every seeker). */
  async function showCandidates(job, button, target) {
    if (!target.hidden && target.firstChild) {
      target.hidden = true;
      button.setAttribute("aria-expanded", "false");
      return;
    }
    busy(button, true);
    try {
      const data = await api("GET", `/api/v1/jobs/${encodeURIComponent(job.job_id)}/candidates?k=20`);
      const c = data.candidates;
      clear(target).append(c.length
        ? el("ol", { class: "candidates" }, c.map((x) => el("li", {},
            `${x.age_band}岁`, x.distance_km === null ? "" : `，距${M.km(x.distance_km)}`,
            x.skills_fit.required.length ? `，技能${x.skills_fit.matched.length}/${x.skills_fit.required.length}对口` : "",
            `，匹配度${M.pct(x.score)}`, x.fallback_eligible ? "（可托底安置）" : "")))
        : el("p", {}, "附近暂无符合条件的求职者。"),
        el("p", { class: "hint" }, "求职者信息已匿名处理；需要招用时请联系推荐人（就业伙伴）。"));
      target.hidden = false;
      button.setAttribute("aria-expanded", "true");
    } catch (e) {
      clear(target).append(el("p", { class: "error-text" }, e.status === 503 ? "暂不可用，请稍后再试。" : explain(e, "岗位")));
      target.hidden = false;
    } finally {
      busy(button, false);
    }
  }

  async function reopenJob(job, button) {
    busy(button, true);
    try {
      await api("POST", `/api/v1/jobs/${encodeURIComponent(job.job_id)}/reopen`, undefined, { headers: { "Idempotency-Key": M.newKey() } });
      toast(`岗位“${job.title}”已重新开放招聘。`);
      await loadJobs();
      const h = document.querySelector(`#jobs-list [data-job="${CSS.escape(job.job_id)}"] h3`);
      if (h) h.focus();
    } catch (e) {
      busy(button, false);
      toast("重新开放失败：" + (e.status === 409 ? "该岗位已招满或已在招聘中。" : explain(e, "岗位")));
    }
  }

  // The fields a vacancy's owner edits in place; each checked as the post form checks it.
  const EDITABLE = [["title", "岗位名称", "text"], ["slots", "招聘人数", "number"], ["monthly_wage", "月工资（元）", "number"],
                    ["skills", "技能要求", "text"], ["min_age", "最低年龄（岁）", "number"], ["max_age", "最高年龄（岁）", "number"]];

  function editForm(job, card) {
    const id = (f) => `edit-${job.job_id}-${f}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const value = (f) => (f === "skills" ? (job.skills || []).join("、") : job[f]);
    const form = el("form", { class: "edit-form", novalidate: true },
      EDITABLE.map(([f, text, type]) => el("div", { class: "field" },
        el("label", { for: id(f) }, text),
        el("input", { id: id(f), name: f, type, value: value(f) ?? "", inputmode: type === "number" ? "decimal" : null,
                      "aria-describedby": id(f) + "-error", autocomplete: "off" }),
        el("p", { class: "field-error", id: id(f) + "-error", "aria-live": "polite" }))),
      el("p", { class: "form-error", role: "alert" }),
      el("div", { class: "actions" },
        el("button", { type: "submit", class: "primary" }, "保存修改"),
        el("button", { type: "button", onclick: () => { form.remove(); card.querySelector("button.edit").hidden = false; } }, "取消")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {};
      const errors = [];
      for (const f of form.querySelectorAll(".field-error")) f.textContent = "";
      for (const i of form.querySelectorAll("input")) i.removeAttribute("aria-invalid");
      for (const [f, text, type] of EDITABLE) {
        const raw = form.elements[f].value.trim();
        if (f === "skills") {
          const tags = splitTags(raw);
          if (tags.join("、") !== (job.skills || []).join("、")) body.skills = tags;
          continue;
        }
        if (type === "text") {
          if (!raw) errors.push([f, `请填写${text}。`]);
          else if (raw !== job[f]) body[f] = raw;
          continue;
        }
        const v = Number(raw);
        const r = RULES[f] || {};
        if (!raw || !Number.isFinite(v) || (f !== "monthly_wage" && !Number.isInteger(v))
            || (r.minimum !== undefined && v < r.minimum) || (r.maximum !== undefined && v > r.maximum)) {
          errors.push([f, `${text.replace(/（.*）/, "")}须在${M.num(r.minimum)}到${M.num(r.maximum)}之间。`]);
        } else if (v !== job[f]) body[f] = v;
      }
      if (!errors.length && f2(body.slots, job.slots) < job.filled) errors.push(["slots", `招聘人数不能少于已招的${job.filled}人。`]);
      const show = (list) => {
        for (const [f, message] of list) {
          const box = form.querySelector(`#${id(f)}-error`);
          if (box) box.textContent = message;
          if (form.elements[f]) form.elements[f].setAttribute("aria-invalid", "true");
        }
        const first = list.length && form.elements[list[0][0]];
        if (first) first.focus();
      };
      if (errors.length) return show(errors);
      if (!Object.keys(body).length) {
        form.querySelector(".form-error").textContent = "没有修改任何内容。";
        return;
      }
      const button = form.querySelector('button[type="submit"]');
      busy(button, true);
      try {
        const saved = await api("PATCH", `/api/v1/jobs/${encodeURIComponent(job.job_id)}`, body);
        toast(`已保存岗位“${saved.title}”的修改。`);
        await loadJobs();
        const h = document.querySelector(`#jobs-list [data-job="${CSS.escape(job.job_id)}"] h3`);
        if (h) h.focus();
      } catch (e) {
        busy(button, false);
        const f = (e.field || "").split(".")[0];
        if (EDITABLE.some(([name]) => name === f)) show([[f, e.status === 409 ? `招聘人数不能少于已招的${job.filled}人。` : "不符合要求，请检查。"]]);
        else form.querySelector(".form-error").textContent = "保存失败：" + explain(e, "岗位");
      }
    });
    return form;
  }

  const f2 = (a, b) => (a === undefined ? b : a);

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
    const listId = `cands-${job.job_id}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const candidates = el("div", { class: "candidates-list", id: listId, hidden: true, "aria-live": "polite" });
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
        el("dt", {}, "发布日期"), el("dd", {}, M.date(job.posted_on))),
      el("div", { class: "actions" },
        job.status === "open" && free > 0
          ? el("button", { type: "button", class: "show-candidates", "aria-controls": listId, "aria-expanded": "false",
                           onclick: (ev) => showCandidates(job, ev.currentTarget, candidates) }, "查看符合条件的求职者") : null,
        el("button", { type: "button", class: "edit", "aria-label": `修改岗位“${job.title}”`,
                       onclick: (ev) => { ev.currentTarget.hidden = true; card.append(editForm(job, card)); card.querySelector(".edit-form input").focus(); } }, "修改"),
        job.status === "open"
          ? el("button", { type: "button", class: "danger", "aria-label": `关闭岗位“${job.title}”`,
                           onclick: (ev) => closeJob(job, ev.currentTarget) }, "关闭岗位")
          : free > 0 ? el("button", { type: "button", class: "reopen", "aria-label": `重新开放岗位“${job.title}”`,
                                      onclick: (ev) => reopenJob(job, ev.currentTarget) }, "重新开放") : null),
      candidates);
    return card;
  }

  // -- referrals to my vacancies, awaiting my answer ---------------------------------------------------

  function answerForm(ref, li) {
    const id = `r-${ref.referral_id}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const reason = el("select", { id: id + "-reason", name: "reason", "aria-describedby": id + "-reason-error" });
    const note = el("input", { id: id + "-note", name: "note", maxlength: 500, autocomplete: "off", "aria-describedby": id + "-note-error" });
    const reasonField = el("div", { class: "field", hidden: true },
      el("label", { for: reason.id }, "不录用的原因"), reason,
      el("p", { class: "field-error", id: id + "-reason-error", "aria-live": "polite" }));
    const form = el("form", { class: "answer-form", novalidate: true },
      el("fieldset", {}, el("legend", {}, "结果"),
        el("div", { class: "checks" }, [["hired", "录用"], ["rejected", "不录用"]].map(([v, t]) => el("div", { class: "field checkbox" },
          el("input", { type: "radio", name: "outcome", value: v, id: `${id}-${v}` }),
          el("label", { for: `${id}-${v}` }, t))))),
      reasonField,
      el("div", { class: "field" }, el("label", { for: note.id }, "备注（选“其他”时须填写）"), note,
         el("p", { class: "field-error", id: id + "-note-error", "aria-live": "polite" })),
      el("p", { class: "form-error", role: "alert" }),
      el("button", { type: "submit", class: "primary" }, "提交结果"));
    form.addEventListener("change", async (ev) => {
      if (ev.target.name !== "outcome") return;
      const rejected = ev.target.value === "rejected";
      if (rejected && reason.options.length === 0) {
        const list = (await M.reasons()).rejected || [];
        M.append(reason, [el("option", { value: "" }, "请选择"), list.map((r) => el("option", { value: r.code }, r.label))]);
      }
      reasonField.hidden = !rejected;
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const outcome = (form.querySelector('input[name="outcome"]:checked') || {}).value;
      const err = form.querySelector(".form-error");
      for (const e of form.querySelectorAll(".field-error, .form-error")) e.textContent = "";
      if (!outcome) { err.textContent = "请选择录用或不录用。"; form.querySelector('input[name="outcome"]').focus(); return; }
      if (outcome === "rejected" && !reason.value) {
        $(id + "-reason-error").textContent = "请选择原因。"; reason.setAttribute("aria-invalid", "true"); reason.focus(); return;
      }
      if (reason.value === "other" && outcome === "rejected" && !note.value.trim()) {
        $(id + "-note-error").textContent = "选“其他原因”时请写明备注。"; note.setAttribute("aria-invalid", "true"); note.focus(); return;
      }
      const body = { outcome };
      if (outcome === "rejected") body.reason = reason.value;
      if (note.value.trim()) body.note = note.value.trim();
      const button = form.querySelector('button[type="submit"]');
      busy(button, true);
      try {
        await api("PATCH", `/api/v1/referrals/${encodeURIComponent(ref.referral_id)}`, body);
        toast(outcome === "hired" ? `已录用，岗位“${ref.job_title}”已招人数加1。` : "已登记：不录用。");
        li.remove();
        await Promise.all([loadPending(), loadJobs()]);
        $("pending-heading").focus();
      } catch (e) {
        busy(button, false);
        err.textContent = e.field === "reason" ? "请选择原因。" : e.field === "note" ? "请写明备注。" : "提交失败：" + explain(e, "推荐记录");
      }
    });
    return form;
  }

  async function loadPending() {
    const target = $("pending-list");
    try {
      const data = await api("GET", "/api/v1/referrals?status=pending&limit=50");
      clear(target);
      $("pending-heading").textContent = data.total ? `待答复的推荐（${data.total}）` : "待答复的推荐";
      if (!data.items.length) {
        target.append(el("p", {}, "没有等待答复的推荐。"));
        return;
      }
      target.append(el("ul", { class: "referrals" }, data.items.map((r) => {
        const li = el("li", { class: "referral", "data-referral": r.referral_id },
          el("p", {}, el("strong", {}, r.job_title), `（岗位 ${r.job_id}）`),
          el("p", {}, `${label("sex", r.sex)}，${r.age}岁`, r.skills_fit && r.skills_fit.length ? `，对口技能：${r.skills_fit.join("、")}` : "",
             `；${M.date(r.referred_on)}由${r.referred_by || "就业伙伴"}推荐`));
        li.append(answerForm(r, li));
        return li;
      })));
    } catch (e) {
      clear(target).append(el("p", { class: "error-text" }, explain(e, "推荐记录")));
    }
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
    await Promise.all([loadPending(), loadJobs()]);
  });
})();
