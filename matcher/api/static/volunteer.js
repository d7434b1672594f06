/* The volunteer's page: my households, referrals awaiting an outcome, one household's plan and jobs
   (refer, record the outcome in place, log a visit, the 311 standard), and the county's people below
   the standard. On a bad network it keeps what it has shown and queues what it could not send. */
"use strict";

(() => {
  const { el, clear, label, api, explain, toast, busy } = M;
  const $ = (id) => document.getElementById(id);
  const PER_PAGE = 10;
  const SHOWN_JOBS = 3;         // each member's first jobs; the rest behind one tap
  const KEEP_HOUSEHOLDS = 30;   // households kept on the phone for a bad network
  const RETRY_MS = 20_000;
  const KINDS = { guidance: "职业指导", training_offer: "技能培训", job_offer: "岗位推荐" };
  let current = null;           // the household shown: its id
  let shown = null;             // what is on screen for it: {detail, matches, places, visits}
  let uncoveredPage = 1;
  const openMore = new Set();   // the members whose further jobs are unfolded, kept across redraws

  // -- what the phone keeps ---------------------------------------------------------------------------

  const who = () => { const m = M.me(); return (m && (m.name || m.display_name)) || "anon"; };
  const CACHE = () => `matcher.cache.${who()}.`;

  function keep(key, value) {
    try {
      localStorage.setItem(CACHE() + key, JSON.stringify(Object.assign({ at: Date.now() }, value)));
    } catch (e) {
      forgetOldest();
    }
  }

  function kept(key) {
    try { return JSON.parse(localStorage.getItem(CACHE() + key) || "null"); } catch (e) { return null; }
  }

  function forgetOldest() {
    const prefix = CACHE() + "household.";
    const keys = Object.keys(localStorage).filter((k) => k.startsWith(prefix));
    if (keys.length <= KEEP_HOUSEHOLDS) return;
    const at = (k) => { try { return JSON.parse(localStorage.getItem(k)).at || 0; } catch (e) { return 0; } };
    keys.sort((a, b) => at(a) - at(b)).slice(0, keys.length - KEEP_HOUSEHOLDS).forEach((k) => localStorage.removeItem(k));
  }

  // -- the outbox: writes not yet answered, each with the Idempotency-Key made when it was queued -----

  const OUTBOX = () => `matcher.outbox.${who()}`;
  let outbox = [];
  let flushing = null;
  const waiting = new Map();    // key -> resolve, for the write queued on this page load

  function loadOutbox() {
    try { outbox = JSON.parse(localStorage.getItem(OUTBOX()) || "[]"); } catch (e) { outbox = []; }
    showOutbox();
  }

  function saveOutbox() {
    try { localStorage.setItem(OUTBOX(), JSON.stringify(outbox)); } catch (e) { /* memory only */ }
    showOutbox();
  }

  function showOutbox() {
    const box = $("outbox");
    box.textContent = outbox.length ? `${outbox.length} 条待发送` : "";
    box.hidden = !outbox.length;
    $("outbox-send").hidden = !outbox.length;
  }

  /** Queue a write and try to send it now. Resolves {sent, result} or {sent: false, error, queued}. */
  function enqueue(item) {
    const entry = Object.assign({ key: M.newKey(), queued_at: new Date().toISOString() }, item);
    outbox.push(entry);
    saveOutbox();
    const answer = new Promise((resolve) => waiting.set(entry.key, resolve));
    flush();
    return answer;
  }

  /** Answers the page waiting on this write; false when none is (a write queued earlier, sent now). */
  function settle(entry, outcome) {
    const resolve = waiting.get(entry.key);
    waiting.delete(entry.key);
    if (resolve) resolve(outcome);
    else if (outcome.error && !outcome.queued) toast(`${entry.what}未能保存：${explain(outcome.error, "记录")}`);
    return !!resolve;
  }

  /** Send what is queued, oldest first, each once: stops at the first network failure (retried later). */
  function flush() {
    if (flushing) return flushing;
    flushing = (async () => {
      let later = 0;              // sent or refused with no page waiting: what is shown must be refreshed
      while (outbox.length) {
        const entry = outbox[0];
        try {
          const result = await api(entry.method, entry.path, entry.body, { headers: { "Idempotency-Key": entry.key } });
          outbox.shift();
          saveOutbox();
          if (!settle(entry, { sent: true, result })) later++;
        } catch (e) {
          if (e.status === 0 || e.status === 429 || e.status >= 500) {
            for (const o of outbox) settle(o, { sent: false, queued: true, error: e });
            break;
          }
          outbox.shift();          // refused: sending it again would be refused again
          saveOutbox();
          if (!settle(entry, { sent: false, error: e })) later++;
        }
      }
      if (later) {
        toast(`已发送离线保存的记录（${later}条）。`);
        if (current) await openHousehold(current, { keepScroll: true, quiet: true, refreshLists: true });
        loadPending();
      }
      return later;
    })().finally(() => { flushing = null; });
    return flushing;
  }

  window.addEventListener("online", () => { if (outbox.length) flush(); });
  setInterval(() => { if (outbox.length && navigator.onLine !== false) flush(); }, RETRY_MS);

  // -- lists of households ------------------------------------------------------------------------

  function householdRow(h) {
    const place = [h.town_name, h.village_name].filter(Boolean).join(" ");
    return el("li", { class: "household-row" },
      el("button", { type: "button", class: "link-button", "data-household": h.household_id,
                     onclick: () => openHousehold(h.household_id) },
         h.head_name ? `${h.head_name}家（户 ${h.household_id}）` : `户 ${h.household_id}`),
      el("span", { class: "muted" }, place),
      el("span", {}, `${h.members}人，求职${h.seekers}人`),
      h.covered ? el("span", { class: "badge ok" }, "已覆盖")
        : h.able_willing ? el("span", { class: "badge warn" }, "未覆盖") : el("span", { class: "badge" }, "无就业意愿"));
  }

  /** Pages of one list; each list's pager is its own landmark, named after its section ("我的农户翻页"). */
  function pager(page, total, go, name) {
    const pages = Math.max(1, Math.ceil(total / PER_PAGE));
    if (pages <= 1) return null;
    return el("nav", { class: "pager", "aria-label": `${name}翻页` },
      el("button", { type: "button", disabled: page <= 1, onclick: () => go(page - 1) }, "上一页"),
      el("span", {}, `第${page}页，共${pages}页`),
      el("button", { type: "button", disabled: page >= pages, onclick: () => go(page + 1) }, "下一页"));
  }

  function urgentRow(h) {
    const row = householdRow(h);
    const why = [];
    if (h.no_one_in_work) why.push(el("span", { class: "badge warn" }, "无人就业"));
    if (h.graduates) why.push(el("span", { class: "badge strong" }, `高校毕业生${h.graduates}人`));
    if (h.fallback_members) why.push(el("span", { class: "badge" }, `残疾或4050人员${h.fallback_members}人`));
    why.push(el("span", { class: "muted" }, h.last_contact ? `上次推荐：${M.date(h.last_contact)}` : "尚未推荐过"));
    row.append(el("span", { class: "tags" }, why));
    return row;
  }

  /** A failed request leaves what the list showed (or what the phone kept) and says why above it. */
  async function listInto(target, params, page, go, emptyText, path = "/api/v1/households", row = householdRow,
                          cacheKey = null) {
    const q = new URLSearchParams(Object.assign({}, params, { page, per_page: PER_PAGE }));
    const draw = (data) => {
      clear(target);
      if (!data.items.length) {
        target.append(el("p", {}, emptyText));
        return;
      }
      target.append(el("p", { class: "muted" }, `共${M.num(data.total)}户`));
      target.append(el("ul", { class: "household-list" }, data.items.map(row)));
      const section = target.closest("section");
      const heading = section && section.querySelector("h2, h3");
      const p = pager(page, data.total, go, heading ? heading.textContent.trim() : "");
      if (p) target.append(p);
    };
    if (!target.firstChild) target.append(el("p", { class: "muted" }, "正在加载…"));
    try {
      const data = await api("GET", path + "?" + q.toString());
      draw(data);
      if (cacheKey && page === 1) keep(cacheKey, { data });
    } catch (e) {
      const old = cacheKey && page === 1 && !target.querySelector("ul") ? kept(cacheKey) : null;
      if (old) draw(old.data);
      for (const p of target.querySelectorAll(".error-text")) p.remove();
      if (target.querySelector(".muted") && !target.querySelector("ul")) clear(target);
      target.prepend(el("p", { class: "error-text" }, explain(e, "户")));
    }
  }

  function loadMine(page) {
    return listInto($("mine-list"), {}, page, loadMine, "您的帮扶范围内还没有贫困户。", "/api/v1/me/households", urgentRow,
                    "mine");
  }

  function searchName(page) {
    return listInto($("name-results"), { q: $("name-query").value.trim() }, page, searchName,
                    "没有找到这个姓名或户编号的户（只查您帮扶范围内的户）。");
  }

  function loadUncovered(page) {
    uncoveredPage = page;
    return listInto($("uncovered-list"), { uncovered: "true" }, page, loadUncovered,
                    "本县有就业意愿的家庭都已至少有一人就业。");
  }

  function searchVillage(page) {
    const params = {};
    const county = $("find-county").value;
    if (county) params.county_code = county;
    if ($("find-town").value) params.town_code = $("find-town").value;
    if ($("find-village").value) params.village_code = $("find-village").value;
    if ($("find-uncovered").checked) params.uncovered = "true";
    return listInto($("village-results"), params, page, searchVillage, "没有找到符合条件的户。");
  }

  // -- recording an outcome (in place: on the plan, the job card, the pending list) ----------------------

  let formSeq = 0;

  /** The outcome form of a pending referral; onSaved(outcome) after the service (or the outbox) took it. */
  function outcomeForm(ref, onSaved) {
    const id = `o${++formSeq}`;
    const outcome = el("select", { id: `${id}-outcome`, name: "outcome", required: true,
                                   "aria-describedby": `${id}-outcome-error` },
      el("option", { value: "" }, "请选择"),
      Object.entries(M.LABELS.outcome).map(([v, t]) => el("option", { value: v }, t)));
    const reason = el("select", { id: `${id}-reason`, name: "reason", "aria-describedby": `${id}-reason-error` });
    const reasonError = el("p", { class: "field-error", id: `${id}-reason-error`, "aria-live": "polite" });
    const reasonField = el("div", { class: "field", hidden: true },
      el("label", { for: reason.id }, "原因"), reason, reasonError);
    const note = el("input", { id: `${id}-note`, name: "note", maxlength: 500, autocomplete: "off",
                               "aria-describedby": `${id}-note-error` });
    const noteError = el("p", { class: "field-error", id: `${id}-note-error`, "aria-live": "polite" });
    const err = el("p", { class: "field-error", id: `${id}-outcome-error`, "aria-live": "polite" });
    const button = el("button", { type: "submit", class: "primary" }, "保存结果");
    const form = el("form", { class: "outcome-form", "data-referral": ref.referral_id, novalidate: true },
      el("div", { class: "pair" },
        el("div", { class: "field" }, el("label", { for: outcome.id }, "结果"), outcome, err),
        reasonField),
      el("div", { class: "field" }, el("label", { for: note.id }, "备注（选“其他”时须填写）"), note, noteError),
      button);
    outcome.addEventListener("change", async () => {
      outcome.removeAttribute("aria-invalid");
      err.textContent = "";
      const list = outcome.value && outcome.value !== "hired" ? ((await M.reasons())[outcome.value] || []) : [];
      M.append(clear(reason), [el("option", { value: "" }, "请选择"), list.map((r) => el("option", { value: r.code }, r.label))]);
      reasonField.hidden = !list.length;
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      for (const e of [err, reasonError, noteError]) e.textContent = "";
      for (const i of [outcome, reason, note]) i.removeAttribute("aria-invalid");
      const bad = (box, input, text) => { box.textContent = text; input.setAttribute("aria-invalid", "true"); input.focus(); };
      if (!outcome.value) return bad(err, outcome, "请选择结果。");
      if (!reasonField.hidden && !reason.value) return bad(reasonError, reason, "请选择原因。");
      if (reason.value === "other" && !note.value.trim()) return bad(noteError, note, "选“其他原因”时请写明备注。");
      const body = { outcome: outcome.value };
      if (!reasonField.hidden) body.reason = reason.value;
      if (note.value.trim()) body.note = note.value.trim();
      busy(button, true);
      const r = await enqueue({ method: "PATCH", path: `/api/v1/referrals/${encodeURIComponent(ref.referral_id)}`, body,
                                what: "推荐结果", household_id: ref.household_id || current,
                                referral_id: ref.referral_id });
      busy(button, false);
      if (r.sent || r.queued || (r.error && r.error.status === 409)) {
        if (r.queued) toast(`网络不通：结果“${label("outcome", body.outcome)}”已保存在本机，联网后自动发送。`);
        else if (r.sent) toast(`已登记：${label("outcome", body.outcome)}。`);
        else toast(explain(r.error));
        await onSaved(body.outcome, r);
        return;
      }
      const e = r.error;
      if (e.status === 422 && e.field === "reason") bad(reasonError, reason, "请选择该结果对应的原因。");
      else if (e.status === 422 && e.field === "note") bad(noteError, note, "请写明备注。");
      else bad(err, outcome, explain(e, "推荐记录"));
    });
    return form;
  }

  const queuedOutcome = (referralId) => outbox.find((o) => o.method === "PATCH" && o.referral_id === referralId);
  const queuedReferral = (workerId, jobId) => outbox.find((o) => o.method === "POST" && o.body && o.body.job_id === jobId
                                                              && o.body.worker_id === workerId);

  // -- the pending list (待登记) -------------------------------------------------------------------------

  async function loadPending() {
    const target = $("pending-list");
    let data;
    try {
      data = await api("GET", "/api/v1/referrals?status=pending&limit=50");
      keep("pending", { data });
    } catch (e) {
      const old = kept("pending");
      if (!old) {
        if (!target.querySelector("ul")) clear(target).append(el("p", { class: "error-text" }, explain(e, "推荐记录")));
        return;
      }
      data = old.data;
    }
    const items = data.items.filter((r) => !queuedOutcome(r.referral_id));
    $("pending-count").textContent = items.length ? `（${data.total - (data.items.length - items.length)}）` : "";
    clear(target);
    if (!items.length) {
      target.append(el("p", {}, "没有等待登记结果的推荐。"));
      return;
    }
    target.append(el("ul", { class: "referrals" }, items.map((r) => {
      const li = el("li", { class: "referral", "data-referral": r.referral_id },
        el("p", {}, el("strong", {}, r.worker_name ? `${r.worker_name}（${r.worker_id}）` : `成员 ${r.worker_id}`),
           ` → ${r.job_title} · ${r.employer}`),
        el("p", { class: "muted" }, `推荐于${M.date(r.referred_on)} · `,
           el("button", { type: "button", class: "link-button", onclick: () => openHousehold(r.household_id) },
              `查看户 ${r.household_id}`)));
      li.append(outcomeForm(r, async () => {
        li.remove();
        loadPending();
        if (current === r.household_id) await openHousehold(current, { keepScroll: true, quiet: true, refreshLists: true });
      }));
      return li;
    })));
    if (data.total > data.items.length) target.append(el("p", { class: "muted" }, `共${data.total}条，显示最早的${data.items.length}条。`));
  }

  // -- one household --------------------------------------------------------------------------------

  function memberTitle(m) {
    const tags = [];
    if (m.graduate) tags.push(el("span", { class: "badge strong" }, "特困家庭高校毕业生"));
    if (m.fallback_eligible && m.disability === "none") tags.push(el("span", { class: "badge" }, "4050人员"));
    if (m.disability !== "none") {
      tags.push(el("span", { class: "badge" },
        label("disability", m.disability) + (m.disability_grade ? label("grade", String(m.disability_grade)) : "")));
    }
    if (m.employed) tags.push(el("span", { class: "badge ok" }, "已就业"));
    const name = m.name ? `${m.name}（成员 ${m.worker_id}）` : `成员 ${m.worker_id}`;
    return [`${name}：${label("sex", m.sex)}，${m.age}岁`, " ", tags];
  }

  const memberName = (m) => (m && m.name) || `成员 ${m ? m.worker_id : ""}`;

  function facts(pairs) {
    return el("dl", { class: "facts" }, pairs.filter(Boolean).map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  function contentionNote(item) {
    if (typeof item.contention !== "number" || !(item.contention > 0)) return null;
    return el("span", { class: "badge contention" }, `竞争激烈：计划已安排${item.plan_assigned}人`);
  }

  /** What to show where a referral for (worker, job) is acted on: a refer button, the outcome form (once
      per referral on the page), or what was recorded. */
  function action(ctx, member, item) {
    const refs = ctx.detail.referrals.filter((r) => r.job_id === item.job_id && r.worker_id === member.worker_id);
    const pending = refs.find((r) => !r.outcome && !queuedOutcome(r.referral_id));
    const done = refs.find((r) => r.outcome);
    const sentLater = refs.find((r) => queuedOutcome(r.referral_id));
    if (pending) {
      if (ctx.placed.has(pending.referral_id)) return el("p", { class: "muted" }, "已推荐，请在上方登记结果");
      ctx.placed.add(pending.referral_id);
      return el("div", { class: "in-place" }, el("p", { class: "badge warn" }, `已推荐（${M.date(pending.referred_on)}），待登记结果`),
        outcomeForm(pending, () => { loadPending(); return openHousehold(current, { keepScroll: true, quiet: true, refreshLists: true }); }));
    }
    if (sentLater) return el("p", { class: "badge warn" }, `结果“${label("outcome", queuedOutcome(sentLater.referral_id).body.outcome)}”待发送`);
    if (done) return el("p", { class: "muted" }, "已登记结果：" + label("outcome", done.outcome));
    if (queuedReferral(member.worker_id, item.job_id)) return el("p", { class: "badge warn" }, "推荐待发送（联网后自动发送）");
    if (member.employed) return null;
    return el("button", { type: "button", class: "primary refer",
                          "aria-label": `推荐到此岗位：${item.title}（${memberName(member)}）`,
                          onclick: (ev) => refer(member, item, ev.currentTarget) }, "推荐到此岗位");
  }

  function jobCard(ctx, member, item) {
    const n = ctx.numbered.get(item.job_id).n;
    return el("li", { class: "job-card", "data-job": item.job_id },
      el("h5", {}, `${item.title} · ${item.employer}`),
      el("p", { class: "tags" },
        el("span", { class: "badge kind-" + item.kind }, label("kind", item.kind)),
        n ? el("span", { class: "badge map-no" }, `图中${n}号`) : null, contentionNote(item)),
      el("p", { class: "reasons" }, item.reasons.join(" · ")),
      action(ctx, member, item));
  }

  function jobList(ctx, member, items) {
    const cards = items.map((it) => jobCard(ctx, member, it));
    const list = el("ol", { class: "jobs" }, cards.slice(0, SHOWN_JOBS));
    if (cards.length <= SHOWN_JOBS) return list;
    const key = member.worker_id + (items === ctx.fallbackOf[member.worker_id] ? ":fallback" : "");
    const more = el("details", { class: "more-jobs", open: openMore.has(key),
                                 ontoggle: () => (more.open ? openMore.add(key) : openMore.delete(key)) },
      el("summary", {}, `其余${cards.length - SHOWN_JOBS}个岗位`),
      el("ol", { class: "jobs", start: SHOWN_JOBS + 1 }, cards.slice(SHOWN_JOBS)));
    return [list, more];
  }

  async function refer(member, item, button) {
    busy(button, true);
    const r = await enqueue({ method: "POST", path: "/api/v1/referrals", body: { worker_id: member.worker_id, job_id: item.job_id },
                              what: "推荐", household_id: current });
    if (r.sent) toast(`已推荐${memberName(member)}到“${item.title}”。结果出来后在此登记。`);
    else if (r.queued) toast(`网络不通：推荐已保存在本机，联网后自动发送。`);
    else {
      busy(button, false);
      toast("推荐失败：" + explain(r.error, "成员或岗位"));
      return;
    }
    loadPending();
    await openHousehold(current, { keepScroll: true, quiet: true, anchor: button });
  }

  function standardLine(member, m) {
    const s = m && m.service_standard;
    if (!s) return null;
    const part = (name, n, goal) => el("span", { class: n >= goal ? "met" : "unmet" }, `${name}${n}/${goal}`);
    return el("p", { class: "standard", id: `standard-${member.worker_id}` },
      `${s.year}年“311”服务：`, part("岗位推荐", s.job_offers, 3), " · ", part("职业指导", s.guidance, 1), " · ",
      part("培训", s.training_offers, 1), " ",
      el("span", { class: "badge " + (s.meets_311 ? "ok" : "warn") }, s.meets_311 ? "已达标" : "未达标"));
  }

  function planSection(ctx, seekers) {
    const byId = Object.fromEntries(ctx.detail.members_detail.map((m) => [m.worker_id, m]));
    const rows = ctx.matches.plan.map((p) => {
      const member = byId[p.worker_id] || { worker_id: p.worker_id };
      const business = p.route === "business";
      const where = p.kind === "out_of_county" ? "县外务工" : M.km(p.distance_km);
      return el("li", { "data-worker": p.worker_id, "data-job": p.job_id || null },
        el("strong", {}, memberName(member)), `（${label("tier", business ? "business" : p.tier)}）：`,
        business ? "自主创业" : `${p.title} · ${p.employer}，${where}，月薪${M.yuan(p.monthly_wage)}`,
        business ? null : action(ctx, member, p));
    });
    return el("section", { class: "sub", "aria-labelledby": "plan-heading" },
      el("h3", { id: "plan-heading" }, "家庭安置方案"),
      el("p", { class: "hint" }, "让全家至少一人就业的可能性最大的安排；特困家庭高校毕业生优先。"),
      rows.length ? el("ol", { class: "plan" }, rows)
        : el("p", { class: "muted" }, seekers ? "通勤范围内暂无可安排的岗位，可参考下方的培训建议。" : "家中没有正在求职的成员。"));
  }

  function mapSection(ctx) {
    const { detail, numbered } = ctx;
    const jobs = [...numbered.values()];
    const placed = jobs.filter((j) => j.lat !== null && j.lat !== undefined);
    const village = detail.village_lat !== null && detail.village_lat !== undefined
      ? { lat: detail.village_lat, lon: detail.village_lon } : null;
    const svg = MatchMap.draw({
      home: { lat: detail.lat, lon: detail.lon }, village, jobs: placed,
      titleId: "map-title", descId: "map-desc",
      title: `户 ${detail.household_id} 及匹配岗位位置示意图`,
      desc: `以本户为中心，北在上。图中共${placed.length}个岗位，编号与列表一致。`,
    });
    const list = el("ol", { class: "map-list" }, jobs.map((j) => el("li", { value: j.n },
      `${j.title}（${label("kind", j.kind)}）`, j.lat === null || j.lat === undefined ? "，县外，不在图中" : `，${M.km(j.distance_km)}`)));
    return el("details", { class: "sub map-block" },
      el("summary", { id: "map-heading" }, `位置示意图（${jobs.length}个岗位）`),
      el("figure", { class: "map" }, svg,
        el("figcaption", {},
          el("ul", { class: "legend" },
            el("li", {}, el("span", { class: "key home", "aria-hidden": "true" }), "本户"),
            village ? el("li", {}, el("span", { class: "key village", "aria-hidden": "true" }), `${detail.village_name || "村"}中心`) : null,
            el("li", {}, el("span", { class: "key market", "aria-hidden": "true" }), "市场岗位"),
            el("li", {}, el("span", { class: "key welfare", "aria-hidden": "true" }), "公益性岗位")))),
      list);
  }

  function memberSection(ctx, member, m) {
    const body = [standardLine(member, m)];
    body.push(el("p", { class: "member-facts" },
      [label("capacity", member.labour_capacity), label("wants", member.wants), label("education", member.education),
       "技能：" + (member.skills.length ? member.skills.join("、") : "无"),
       member.home_only ? "只能居家工作" : null, member.will_migrate ? "愿意外出务工" : null].filter(Boolean).join(" · ")));
    if (m && m.notes.length) body.push(el("ul", { class: "notes" }, m.notes.map((n) => el("li", {}, n))));
    if (m && m.matches.length) body.push(el("h4", {}, "推荐岗位"), jobList(ctx, member, m.matches));
    if (m && m.fallback.length) body.push(el("h4", {}, "公益性岗位（托底安置）"), jobList(ctx, member, m.fallback));
    if (m && m.training.length) {
      body.push(el("h4", {}, "建议参加的技能培训"),
        el("ul", { class: "training" }, m.training.map((t) => el("li", {}, `${t.skill}：学会后可多匹配${M.num(t.unlocks)}个岗位`))));
    }
    return el("article", { class: "member", "data-worker": member.worker_id, "aria-labelledby": `member-${member.worker_id}` },
      el("h3", { id: `member-${member.worker_id}` }, memberTitle(member)), body);
  }

  function visitSection(ctx) {
    const { detail } = ctx;
    const today = document.body.dataset.today;
    const date = el("input", { type: "date", id: "visit-date", name: "visited_on", value: today, max: today,
                               min: "2015-01-01", required: true, "aria-describedby": "visit-date-error" });
    const note = el("textarea", { id: "visit-note", name: "note", maxlength: 500, rows: 2 });
    const err = el("p", { class: "form-error", id: "visit-error", role: "alert" });
    const members = detail.members_detail.filter((m) => m.labour_capacity !== "none");
    const form = el("form", { id: "visit-form", novalidate: true },
      el("div", { class: "field" }, el("label", { for: date.id }, "走访日期"), date,
         el("p", { class: "field-error", id: "visit-date-error", "aria-live": "polite" })),
      members.map((m) => el("fieldset", { class: "services", "data-worker": m.worker_id },
        el("legend", {}, `${memberName(m)}：本次提供的服务`),
        el("div", { class: "checks" }, Object.entries(KINDS).map(([kind, text]) => el("div", { class: "field checkbox" },
          el("input", { type: "checkbox", id: `svc-${m.worker_id}-${kind}`, name: "service", value: kind,
                        "data-worker": m.worker_id }),
          el("label", { for: `svc-${m.worker_id}-${kind}` }, text)))))),
      el("div", { class: "field" }, el("label", { for: note.id }, "走访情况（可不填，最多500字）"), note),
      err,
      el("button", { type: "submit", class: "primary" }, "保存走访记录"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      $("visit-date-error").textContent = "";
      date.removeAttribute("aria-invalid");
      if (!date.value || date.value > today || date.value < "2015-01-01") {
        $("visit-date-error").textContent = "请填写走访日期（不晚于今天）。";
        date.setAttribute("aria-invalid", "true");
        date.focus();
        return;
      }
      const services = [...form.querySelectorAll('input[name="service"]:checked')]
        .map((c) => ({ worker_id: c.dataset.worker, kind: c.value }));
      const body = { visited_on: date.value, note: note.value.trim() || null, services };
      const button = form.querySelector('button[type="submit"]');
      busy(button, true);
      const r = await enqueue({ method: "POST", path: `/api/v1/households/${encodeURIComponent(detail.household_id)}/visits`,
                                body, what: "走访记录", household_id: detail.household_id });
      busy(button, false);
      if (r.sent) toast("已保存走访记录。");
      else if (r.queued) toast("网络不通：走访记录已保存在本机，联网后自动发送。");
      else {
        err.textContent = "未能保存：" + (r.error.field === "services" ? "服务对象须为本户成员，同一服务不能重复。" : explain(r.error, "该户"));
        return;
      }
      await openHousehold(current, { keepScroll: true, quiet: true, focus: "visits-heading" });
    });
    const queued = outbox.filter((o) => o.method === "POST" && o.household_id === detail.household_id && /visits$/.test(o.path));
    const visits = (ctx.visits || []);
    const row = (v, waitingToSend) => el("li", { class: "visit" },
      el("strong", {}, M.date(v.visited_on)), waitingToSend ? el("span", { class: "badge warn" }, "待发送") : null,
      v.recorded_by ? el("span", { class: "muted" }, ` ${v.recorded_by}`) : null,
      v.services.length ? el("p", {}, v.services.map((s) => `${memberName(detail.members_detail.find((m) => m.worker_id === s.worker_id))}：${KINDS[s.kind] || s.kind}`).join("；")) : null,
      v.note ? el("p", { class: "muted" }, v.note) : null);
    return el("section", { class: "sub", "aria-labelledby": "visits-heading" },
      el("h3", { id: "visits-heading", tabindex: "-1" }, "走访记录"),
      form,
      queued.length || visits.length ? el("ul", { class: "visits" }, queued.map((o) => row(o.body, true)), visits.map((v) => row(v, false)))
        : el("p", { class: "muted" }, ctx.visits === null ? "走访记录暂时无法读取。" : "还没有走访记录。"));
  }

  function referralsSection(ctx) {
    const refs = ctx.detail.referrals;
    const items = refs.map((r) => {
      const pending = !r.outcome && !queuedOutcome(r.referral_id) && !ctx.placed.has(r.referral_id);
      if (pending) ctx.placed.add(r.referral_id);
      return el("li", { class: "referral", "data-referral": r.referral_id },
        el("p", {}, el("strong", {}, r.title || r.job_id), r.employer ? ` · ${r.employer}` : "", " ",
           r.kind ? el("span", { class: "badge kind-" + r.kind }, label("kind", r.kind)) : null),
        el("p", { class: "muted" }, [`成员 ${r.worker_id}`, `推荐于${M.date(r.referred_on)}`,
          r.outcome ? label("outcome", r.outcome) : queuedOutcome(r.referral_id) ? "结果待发送" : "待登记",
          r.reason ? label("reason", r.reason) : null, r.note].filter(Boolean).join(" · ")),
        pending ? outcomeForm(r, () => { loadPending(); return openHousehold(current, { keepScroll: true, quiet: true, refreshLists: true }); }) : null);
    });
    return el("details", { class: "sub history" },
      el("summary", { id: "referrals-heading" }, `推荐记录（${refs.length}条）`),
      refs.length ? el("ul", { class: "referrals" }, items) : el("p", { class: "muted" }, "还没有推荐记录。"));
  }

  function renderHousehold(data, staleAt) {
    const { detail, matches } = data;
    const body = $("household-body");
    // Number each distinct job once, in the order the page shows them, with where it is.
    const numbered = new Map();
    for (const m of matches.members) {
      for (const it of [...m.matches, ...m.fallback]) {
        if (!numbered.has(it.job_id)) numbered.set(it.job_id, Object.assign({ n: numbered.size + 1 }, it));
      }
    }
    for (const p of data.places || []) if (numbered.has(p.job_id)) Object.assign(numbered.get(p.job_id), { lat: p.lat, lon: p.lon });
    const ctx = { detail, matches, numbered, visits: data.visits, placed: new Set(),
                  fallbackOf: Object.fromEntries(matches.members.map((m) => [m.worker_id, m.fallback])) };
    const place = [detail.county_name, detail.town_name, detail.village_name].filter(Boolean).join(" ");
    $("household-heading").textContent = detail.head_name ? `${detail.head_name}家（户 ${detail.household_id}）` : `户 ${detail.household_id}`;
    const byWorker = Object.fromEntries(matches.members.map((m) => [m.worker_id, m]));
    const plan = planSection(ctx, detail.seekers);      // first: the plan's rows take the outcome forms first
    const members = detail.members_detail.map((mem) => memberSection(ctx, mem, byWorker[mem.worker_id]));
    M.append(clear(body), [
      staleAt ? el("p", { class: "badge warn stale", role: "status" }, `网络不通：显示的是${new Date(staleAt).toLocaleString("zh-CN")}保存的内容`) : null,
      el("p", { class: "status-line" },
        detail.covered ? el("span", { class: "badge ok", id: "coverage" }, "已覆盖：已有成员就业")
          : detail.able_willing ? el("span", { class: "badge warn", id: "coverage" }, "未覆盖：尚无成员就业")
            : el("span", { class: "badge", id: "coverage" }, "无劳动能力或就业意愿"),
        " ", place),
      facts([detail.head_name ? ["户主", detail.head_name] : null, detail.phone ? ["联系电话", detail.phone] : null,
             ["家庭成员", `${detail.members}人，求职${detail.seekers}人，已就业${detail.employed}人`]]),
      plan,
      el("section", { class: "sub", "aria-labelledby": "members-heading" },
        el("h3", { id: "members-heading", class: "visually-hidden" }, "家庭成员及匹配岗位"), members),
      visitSection(ctx),
      mapSection(ctx),
      referralsSection(ctx),
      el("p", { class: "model-version", title: matches.model_version }, "模型 ", shortVersion(matches.model_version))]);
  }

  const shortVersion = (v) => (v && v.length > 20 ? v.slice(0, 20) + "…" : v || "—");

  function setHash(id) {
    const want = "#household=" + encodeURIComponent(id);
    if (location.hash !== want) history.replaceState(null, "", want);
  }

  function hashHousehold() {
    const m = /^#household=(.+)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  async function fetchHousehold(id) {
    const enc = encodeURIComponent(id);
    const [detail, matches] = await Promise.all([
      api("GET", `/api/v1/households/${enc}`), api("GET", `/api/v1/households/${enc}/matches?k=10`)]);
    const ids = [...new Set(matches.members.flatMap((m) => [...m.matches, ...m.fallback].map((it) => it.job_id)))];
    const [places, visits] = await Promise.all([
      ids.length ? api("GET", "/api/v1/job-places?ids=" + encodeURIComponent(ids.join(","))).then((p) => p.items).catch(() => [])
        : Promise.resolve([]),
      api("GET", `/api/v1/households/${enc}/visits`).then((v) => v.items).catch(() => null)]);
    return { detail, matches, places, visits };
  }

  /** Show a household: from the service, else what the phone kept; a failure never wipes the screen. */
  async function openHousehold(id, opts = {}) {
    const section = $("household");
    const heading = $("household-heading");
    const y = window.scrollY;
    const anchorEl = opts.anchor && opts.anchor.closest("[data-job]");
    const anchor = anchorEl ? { sel: placeOf(anchorEl), top: anchorEl.getBoundingClientRect().top } : null;
    const same = current === id && shown;
    const old = kept("household." + id);
    const show = (data, staleAt) => {
      current = id;
      shown = data;
      setHash(id);
      section.hidden = false;
      renderHousehold(data, staleAt);
    };
    if (!same && old) show(old, old.at);
    else if (!same && !shown) {
      section.hidden = false;
      setHash(id);
      heading.textContent = `户 ${id}`;
      clear($("household-body")).append(el("p", { class: "muted" }, "正在加载…"));
    }
    let data;
    try {
      data = await fetchHousehold(id);
    } catch (e) {
      if (same || old) {
        show(shown, e.status === 0 && old ? old.at : null);    // the outbox may have changed what the cards say
        if (e.status !== 0) toast("未能刷新：" + explain(e, "该户"));
      } else if (shown && current !== id) {
        toast(`未能打开户 ${id}：${explain(e, "该户")}`);       // what was on screen stays
        return;
      } else {
        current = id;
        setHash(id);
        heading.textContent = `户 ${id}`;
        clear($("household-body")).append(el("p", { class: "error-text" }, explain(e, "该户")));
      }
      afterRender(section, heading, opts, y, anchor);
      return;
    }
    keep("household." + id, data);
    forgetOldest();
    show(data);
    afterRender(section, heading, opts, y, anchor);
    if (opts.refreshLists) {
      loadUncovered(uncoveredPage);
      loadMine(1);
    }
  }

  /** A selector that finds the same plan row or job card again after the household is drawn anew. */
  function placeOf(node) {
    const job = CSS.escape(node.dataset.job);
    if (node.closest("ol.plan")) return `#household ol.plan li[data-worker="${CSS.escape(node.dataset.worker)}"][data-job="${job}"]`;
    const member = node.closest("article.member");
    return `#household article.member[data-worker="${CSS.escape(member.dataset.worker)}"] li.job-card[data-job="${job}"]`;
  }

  function afterRender(section, heading, opts, y, anchor) {
    if (opts.keepScroll) {
      window.scrollTo(0, y);
      // Keep the row that was tapped where it was on the screen (its outcome form replaces its button).
      const now = anchor && document.querySelector(anchor.sel);
      if (now) window.scrollBy(0, now.getBoundingClientRect().top - anchor.top);
    }
    const focus = $(opts.focus || "household-heading");
    if (focus && !opts.quiet) focus.focus({ preventScroll: !!opts.keepScroll });
    if (!opts.keepScroll) section.scrollIntoView();
  }

  // -- the county's people below the 311 standard (supervisor list) ---------------------------------

  const STANDARD_COLUMNS = [["worker_id", "成员"], ["household_id", "户"], ["job_offers", "岗位推荐"],
                            ["guidance", "职业指导"], ["training_offers", "培训"]];
  let standardSort = null;

  function standardQuery(extra = {}) {
    const me = M.me() || {};
    const q = new URLSearchParams(Object.assign({ below: "true", year: $("standard-year").value }, extra));
    const county = me.role === "admin" ? $("find-county").value : null;
    if (county) q.set("county_code", county);
    if (standardSort) q.set("sort", standardSort);
    return q;
  }

  async function loadStandard() {
    const target = $("standard-list");
    let data;
    try {
      data = await api("GET", "/api/v1/service-standard?" + standardQuery().toString());
    } catch (e) {
      for (const p of target.querySelectorAll(".error-text")) p.remove();
      target.prepend(el("p", { class: "error-text" }, explain(e, "统计")));
      return;
    }
    const d = await M.divisions(null);
    const t = data.totals;
    const rows = data.items.slice(0, 200);
    M.append(clear(target), [
      el("p", {}, `${data.year}年：应服务${M.num(t.people)}人，已达标${M.num(t.meets_311)}人，未达标${M.num(t.people - t.meets_311)}人。`),
      rows.length ? el("div", { class: "table-wrap" }, el("table", { class: "standard-table" },
        el("caption", { class: "visually-hidden" }, "未达“311”服务标准的人员，点列名排序"),
        el("thead", {}, el("tr", {}, STANDARD_COLUMNS.map(([key, text]) => el("th", {
          scope: "col", "aria-sort": standardSort === key ? "ascending" : null },
          el("button", { type: "button", class: "sort", onclick: () => { standardSort = key; loadStandard(); } }, text))),
          el("th", { scope: "col" }, "村"))),
        el("tbody", {}, rows.map((r) => el("tr", { "data-worker": r.worker_id },
          el("td", {}, r.worker_id),
          el("td", {}, el("button", { type: "button", class: "link-button", onclick: () => openHousehold(r.household_id) }, r.household_id)),
          el("td", {}, `${r.job_offers}/3`), el("td", {}, `${r.guidance}/1`), el("td", {}, `${r.training_offers}/1`),
          el("td", {}, d.names[r.village_code] || r.village_code || "—")))))) : el("p", {}, "全部人员都已达到“311”服务标准。"),
      data.items.length > rows.length ? el("p", { class: "muted" }, `共${data.items.length}人，此处显示前${rows.length}人；导出的表格含全部人员。`) : null]);
  }

  async function exportStandard(button) {
    busy(button, true);
    try {
      const resp = await api("GET", "/api/v1/service-standard?" + standardQuery({ format: "csv" }).toString(), undefined,
                             { raw: true, headers: { Accept: "text/csv" } });
      const url = URL.createObjectURL(await resp.blob());
      const a = el("a", { href: url, download: `311-${$("standard-year").value}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      toast("导出失败：" + explain(e, "统计"));
    } finally {
      busy(button, false);
    }
  }

  // -- start ----------------------------------------------------------------------------------------

  $("by-id").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("household-id");
    const value = input.value.trim();
    if (!value) {
      $("household-id-error").textContent = "请输入户编号。";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    $("household-id-error").textContent = "";
    input.removeAttribute("aria-invalid");
    openHousehold(value);
  });
  $("by-village").addEventListener("submit", (ev) => { ev.preventDefault(); searchVillage(1); });
  $("by-name").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("name-query");
    if (!input.value.trim()) {
      $("name-query-error").textContent = "请输入户主或成员的姓名。";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    $("name-query-error").textContent = "";
    input.removeAttribute("aria-invalid");
    searchName(1);
  });
  for (const [button, target] of [["go-mine", "mine-heading"], ["go-pending", "pending-heading"], ["go-standard", "standard-heading"]]) {
    $(button).addEventListener("click", () => {
      const h = $(target);
      h.scrollIntoView();
      h.focus({ preventScroll: true });
      if (target === "pending-heading") loadPending();
      if (target === "standard-heading" && !$("standard-list").firstChild) loadStandard();
    });
  }
  $("outbox-send").addEventListener("click", () => flush());
  $("standard-load").addEventListener("click", () => loadStandard());
  $("standard-export").addEventListener("click", (ev) => exportStandard(ev.currentTarget));
  window.addEventListener("hashchange", () => { const id = hashHousehold(); if (id && id !== current) openHousehold(id); });

  M.start(["volunteer", "admin"], async (me) => {
    const reopen = hashHousehold();
    if (!reopen) $("household").hidden = true;
    $("village-results").replaceChildren();
    $("name-results").replaceChildren();
    const admin = me.role === "admin";
    $("county-field").hidden = !admin;
    loadOutbox();
    M.reasons();
    const year = new Date().getFullYear();
    M.append(clear($("standard-year")), [[0, 1, 2].map((k) => el("option", { value: year - k }, `${year - k}年`))]);
    const pickers = M.placePickers({ county: admin ? $("find-county") : null, town: $("find-town"), village: $("find-village"),
                                     fixedCounty: admin ? null : me.county_code });
    $("uncovered-heading").textContent = admin ? "全市尚未覆盖的户" : `${me.county_name || "本县"}尚未覆盖的户`;
    if (reopen) await openHousehold(reopen);
    await Promise.all([loadMine(1), loadPending(), pickers]);
    await loadUncovered(1);
    if (outbox.length) flush();
  });
})();
