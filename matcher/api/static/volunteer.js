/* The volunteer's page: find a household, read its plan and each member's jobs, refer, record outcomes. */
"use strict";

(() => {
  const { el, clear, label, api, explain, toast, busy } = M;
  const $ = (id) => document.getElementById(id);
  const PER_PAGE = 10;
  let current = null;           // the household shown: its id
  let uncoveredPage = 1;

  // -- finding households -------------------------------------------------------------------------

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

  function pager(page, total, go) {
    const pages = Math.max(1, Math.ceil(total / PER_PAGE));
    if (pages <= 1) return null;
    return el("nav", { class: "pager", "aria-label": "翻页" },
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

  async function listInto(target, params, page, go, emptyText, path = "/api/v1/households", row = householdRow) {
    const q = new URLSearchParams(Object.assign({}, params, { page, per_page: PER_PAGE }));
    clear(target).append(el("p", { class: "muted" }, "正在加载…"));
    try {
      const data = await api("GET", path + "?" + q.toString());
      clear(target);
      if (!data.items.length) {
        target.append(el("p", {}, emptyText));
        return;
      }
      target.append(el("p", { class: "muted" }, `共${M.num(data.total)}户`));
      target.append(el("ul", { class: "household-list" }, data.items.map(row)));
      const p = pager(page, data.total, go);
      if (p) target.append(p);
    } catch (e) {
      clear(target).append(el("p", { class: "error-text" }, explain(e, "户")));
    }
  }

  function loadMine(page) {
    return listInto($("mine-list"), {}, page, loadMine, "您的帮扶范围内还没有贫困户。", "/api/v1/me/households", urgentRow);
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
    const who = m.name ? `${m.name}（成员 ${m.worker_id}）` : `成员 ${m.worker_id}`;
    return [`${who}：${label("sex", m.sex)}，${m.age}岁`, " ", tags];
  }

  function facts(pairs) {
    return el("dl", { class: "facts" }, pairs.filter(Boolean).map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  // The city-wide plan's price of a slot (present only once a plan is stored): a job the plan already
  // fills, where one more slot would still be worth something, is one others are being sent to.
  function contentionNote(item) {
    if (typeof item.contention !== "number" || !(item.contention > 0)) return null;
    return el("p", { class: "badge contention" }, `此岗位竞争激烈：计划已安排${item.plan_assigned}人`);
  }

  function jobCard(member, item, mapNo, refs) {
    const pending = refs.find((r) => r.job_id === item.job_id && r.worker_id === member.worker_id && !r.outcome);
    const done = refs.find((r) => r.job_id === item.job_id && r.worker_id === member.worker_id && r.outcome);
    const canRefer = !member.employed && !pending && !done;
    const titleText = `${item.title} · ${item.employer}`;
    return el("li", { class: "job-card", "data-job": item.job_id },
      el("h5", {}, titleText),
      el("p", { class: "tags" },
        el("span", { class: "badge kind-" + item.kind }, label("kind", item.kind)),
        mapNo ? el("span", { class: "badge map-no" }, `图中${mapNo}号`) : null),
      facts([
        ["距离", item.kind === "out_of_county" ? "县外" : M.km(item.distance_km)],
        ["月工资", M.yuan(item.monthly_wage)],
        item.subsidy_yuan ? ["补贴", M.yuan(item.subsidy_yuan)] : null,
        ["录用可能性", M.pct(item.score)],
      ]),
      contentionNote(item),
      el("ul", { class: "reasons" }, item.reasons.map((r) => el("li", {}, r))),
      canRefer ? el("button", { type: "button", class: "primary refer",
                                "aria-label": `推荐到此岗位：${item.title}（成员${member.worker_id}）`,
                                onclick: (ev) => refer(member.worker_id, item, ev.currentTarget) }, "推荐到此岗位")
        : el("p", { class: "muted" }, pending ? "已推荐，等待结果" : done ? "已登记结果：" + label("outcome", done.outcome) : ""));
  }

  async function refer(workerId, item, button) {
    busy(button, true);
    try {
      await api("POST", "/api/v1/referrals", { worker_id: workerId, job_id: item.job_id });
      toast(`已推荐成员${workerId}到“${item.title}”。结果出来后请在“推荐记录”中登记。`);
      await openHousehold(current, { keepScroll: true, focus: "referrals-heading" });
    } catch (e) {
      busy(button, false);
      toast("推荐失败：" + explain(e, "成员或岗位"));
    }
  }

  function outcomeForm(ref) {
    const id = ref.referral_id;
    const outcome = el("select", { id: `outcome-${id}`, name: "outcome", required: true },
      el("option", { value: "" }, "请选择"),
      Object.entries(M.LABELS.outcome).map(([v, t]) => el("option", { value: v }, t)));
    const reason = el("select", { id: `reason-${id}`, name: "reason", "aria-describedby": `reason-${id}-error` },
      el("option", { value: "" }, "请选择"),
      Object.entries(M.LABELS.reason).map(([v, t]) => el("option", { value: v }, t)));
    const reasonField = el("div", { class: "field" },
      el("label", { for: `reason-${id}` }, "原因（未录用时必填）"), reason,
      el("p", { class: "field-error", id: `reason-${id}-error`, "aria-live": "polite" }));
    const note = el("input", { id: `note-${id}`, name: "note", maxlength: 500, autocomplete: "off" });
    const err = el("p", { class: "field-error", id: `outcome-${id}-error`, "aria-live": "polite" });
    outcome.setAttribute("aria-describedby", err.id);
    const form = el("form", { class: "outcome-form", "data-referral": id, novalidate: true },
      el("div", { class: "field" }, el("label", { for: outcome.id }, "结果"), outcome, err),
      reasonField,
      el("div", { class: "field" }, el("label", { for: note.id }, "备注（可不填）"), note),
      el("button", { type: "submit", class: "primary" }, "保存结果"));
    outcome.addEventListener("change", () => { reasonField.hidden = outcome.value === "hired"; });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      reasonField.querySelector(".field-error").textContent = "";
      if (!outcome.value) {
        err.textContent = "请选择结果。";
        outcome.setAttribute("aria-invalid", "true");
        outcome.focus();
        return;
      }
      if (outcome.value !== "hired" && !reason.value) {
        reasonField.querySelector(".field-error").textContent = "请选择原因。";
        reason.setAttribute("aria-invalid", "true");
        reason.focus();
        return;
      }
      const body = { outcome: outcome.value };
      if (outcome.value !== "hired") body.reason = reason.value;
      if (note.value.trim()) body.note = note.value.trim();
      const button = form.querySelector("button");
      busy(button, true);
      try {
        await api("PATCH", `/api/v1/referrals/${encodeURIComponent(id)}`, body);
        toast(`已登记：${label("outcome", outcome.value)}。`);
        await openHousehold(current, { keepScroll: true, focus: "household-heading", refreshList: true });
      } catch (e) {
        busy(button, false);
        const target = e.field === "reason" ? reasonField.querySelector(".field-error") : err;
        target.textContent = e.status === 422 && e.field === "reason" ? "请选择原因。" : explain(e, "推荐记录");
      }
    });
    return form;
  }

  function referralsSection(detail) {
    const refs = detail.referrals;
    const items = refs.map((r) => el("li", { class: "referral", "data-referral": r.referral_id },
      el("p", {}, el("strong", {}, r.title || r.job_id), r.employer ? ` · ${r.employer}` : "",
         r.kind ? el("span", { class: "badge kind-" + r.kind }, label("kind", r.kind)) : null),
      facts([["成员", r.worker_id], ["推荐日期", M.date(r.referred_on)],
             ["结果", r.outcome ? label("outcome", r.outcome) : "待登记"],
             r.reason ? ["原因", label("reason", r.reason)] : null, r.note ? ["备注", r.note] : null]),
      r.outcome ? null : outcomeForm(r)));
    return el("section", { class: "sub", "aria-labelledby": "referrals-heading" },
      el("h3", { id: "referrals-heading", tabindex: "-1" }, "推荐记录"),
      refs.length ? el("ul", { class: "referrals" }, items) : el("p", { class: "muted" }, "还没有推荐记录。"));
  }

  function planSection(matches, members, seekers) {
    const byId = Object.fromEntries(members.map((m) => [m.worker_id, m]));
    const rows = matches.plan.map((p) => el("li", {},
      el("strong", {}, `成员 ${p.worker_id}`), `（${label("tier", p.route === "business" ? "business" : p.tier)}）：`,
      p.route === "business" ? "自主创业" : `${p.title} · ${p.employer}，${M.km(p.distance_km)}，月薪${M.yuan(p.monthly_wage)}`
        + (p.subsidy_yuan ? `，补贴${M.yuan(p.subsidy_yuan)}` : ""),
      el("ul", { class: "reasons" }, p.reasons.map((r) => el("li", {}, r))),
      byId[p.worker_id] && byId[p.worker_id].employed ? el("span", { class: "badge ok" }, "已就业") : null));
    return el("section", { class: "sub", "aria-labelledby": "plan-heading" },
      el("h3", { id: "plan-heading" }, "家庭安置方案"),
      el("p", { class: "hint" }, "让全家至少一人就业的可能性最大的安排；特困家庭高校毕业生优先。"),
      rows.length ? el("ol", { class: "plan" }, rows)
        : el("p", { class: "muted" }, seekers ? "通勤范围内暂无可安排的岗位，可参考下方的培训建议。" : "家中没有正在求职的成员。"));
  }

  function mapSection(detail, numbered) {
    const jobs = [...numbered.values()];
    const placed = jobs.filter((j) => j.lat !== null && j.lat !== undefined);
    const village = detail.village_lat !== null && detail.village_lat !== undefined
      ? { lat: detail.village_lat, lon: detail.village_lon } : null;
    const svg = MatchMap.draw({
      home: { lat: detail.lat, lon: detail.lon }, village, jobs: placed,
      titleId: "map-title", descId: "map-desc",
      title: `户 ${detail.household_id} 及匹配岗位位置示意图`,
      desc: `以本户为中心，北在上。图中共${placed.length}个岗位，编号与下方列表一致。`,
    });
    const list = el("ol", { class: "map-list" }, jobs.map((j) => el("li", { value: j.n },
      `${j.title}（${label("kind", j.kind)}）`, j.lat === null || j.lat === undefined ? "，县外，不在图中" : `，${M.km(j.distance_km)}`)));
    return el("section", { class: "sub", "aria-labelledby": "map-heading" },
      el("h3", { id: "map-heading" }, "位置示意图"),
      el("figure", { class: "map" }, svg,
        el("figcaption", {},
          el("ul", { class: "legend" },
            el("li", {}, el("span", { class: "key home", "aria-hidden": "true" }), "本户"),
            village ? el("li", {}, el("span", { class: "key village", "aria-hidden": "true" }), `${detail.village_name || "村"}中心`) : null,
            el("li", {}, el("span", { class: "key market", "aria-hidden": "true" }), "市场岗位"),
            el("li", {}, el("span", { class: "key welfare", "aria-hidden": "true" }), "公益性岗位")))),
      list);
  }

  function memberSection(member, m, numbered, refs) {
    const body = [];
    body.push(facts([
      ["劳动能力", label("capacity", member.labour_capacity)],
      ["意愿", label("wants", member.wants)],
      ["文化程度", label("education", member.education)],
      ["技能", member.skills.length ? member.skills.join("、") : "无"],
      member.home_only ? ["工作方式", "只能居家工作"] : null,
      member.will_migrate ? ["外出务工", "愿意"] : null,
    ]));
    if (m && m.notes.length) body.push(el("ul", { class: "notes" }, m.notes.map((n) => el("li", {}, n))));
    if (m && m.matches.length) {
      body.push(el("h4", {}, "推荐岗位"),
        el("ol", { class: "jobs" }, m.matches.map((it) => jobCard(member, it, numbered.get(it.job_id).n, refs))));
    }
    if (m && m.fallback.length) {
      body.push(el("h4", {}, "公益性岗位（托底安置）"),
        el("ol", { class: "jobs" }, m.fallback.map((it) => jobCard(member, it, numbered.get(it.job_id).n, refs))));
    }
    if (m && m.training.length) {
      body.push(el("h4", {}, "建议参加的技能培训"),
        el("ul", { class: "training" }, m.training.map((t) => el("li", {}, `${t.skill}：学会后可多匹配${M.num(t.unlocks)}个岗位`))));
    }
    return el("article", { class: "member", "data-worker": member.worker_id, "aria-labelledby": `member-${member.worker_id}` },
      el("h3", { id: `member-${member.worker_id}` }, memberTitle(member)), body);
  }

  async function openHousehold(id, opts = {}) {
    const section = $("household");
    const body = $("household-body");
    const heading = $("household-heading");
    const y = window.scrollY;
    section.hidden = false;
    current = id;
    if (!opts.keepScroll) {
      heading.textContent = `户 ${id}`;
      clear(body).append(el("p", { class: "muted" }, "正在加载…"));
    }
    let detail;
    let matches;
    try {
      [detail, matches] = await Promise.all([
        api("GET", `/api/v1/households/${encodeURIComponent(id)}`),
        api("GET", `/api/v1/households/${encodeURIComponent(id)}/matches?k=10`),
      ]);
    } catch (e) {
      heading.textContent = `户 ${id}`;
      clear(body).append(el("p", { class: "error-text" }, explain(e, "该户")));
      heading.focus();
      return;
    }
    // Number each distinct job once, in the order the page shows them, and ask where they are.
    const numbered = new Map();
    for (const m of matches.members) {
      for (const it of [...m.matches, ...m.fallback]) {
        if (!numbered.has(it.job_id)) numbered.set(it.job_id, Object.assign({ n: numbered.size + 1 }, it));
      }
    }
    if (numbered.size) {
      try {
        const places = await api("GET", "/api/v1/job-places?ids=" + encodeURIComponent([...numbered.keys()].join(",")));
        for (const p of places.items) Object.assign(numbered.get(p.job_id), { lat: p.lat, lon: p.lon });
      } catch (e) { /* the map then shows the household alone; the lists still work */ }
    }
    const place = [detail.county_name, detail.town_name, detail.village_name].filter(Boolean).join(" ");
    heading.textContent = detail.head_name ? `${detail.head_name}家（户 ${detail.household_id}）` : `户 ${detail.household_id}`;
    const byWorker = Object.fromEntries(matches.members.map((m) => [m.worker_id, m]));
    clear(body).append(
      el("p", { class: "status-line" },
        detail.covered ? el("span", { class: "badge ok", id: "coverage" }, "已覆盖：已有成员就业")
          : detail.able_willing ? el("span", { class: "badge warn", id: "coverage" }, "未覆盖：尚无成员就业")
            : el("span", { class: "badge", id: "coverage" }, "无劳动能力或就业意愿"),
        " ", place),
      facts([detail.head_name ? ["户主", detail.head_name] : null, detail.phone ? ["联系电话", detail.phone] : null,
             ["家庭成员", `${detail.members}人`], ["正在求职", `${detail.seekers}人`], ["已就业", `${detail.employed}人`],
             ["模型版本", matches.model_version]]),
      planSection(matches, detail.members_detail, detail.seekers),
      mapSection(detail, numbered),
      el("section", { class: "sub", "aria-labelledby": "members-heading" },
        el("h3", { id: "members-heading", class: "visually-hidden" }, "家庭成员及匹配岗位"),
        detail.members_detail.map((mem) => memberSection(mem, byWorker[mem.worker_id], numbered, detail.referrals))),
      referralsSection(detail));
    if (opts.keepScroll) window.scrollTo(0, y);
    const focus = $(opts.focus || "household-heading");
    if (focus) focus.focus({ preventScroll: !!opts.keepScroll });
    if (!opts.keepScroll) section.scrollIntoView();
    if (opts.refreshList) {
      loadUncovered(uncoveredPage);
      loadMine(1);
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

  M.start(["volunteer", "admin"], async (me) => {
    $("household").hidden = true;
    $("village-results").replaceChildren();
    $("name-results").replaceChildren();
    const admin = me.role === "admin";
    $("county-field").hidden = !admin;
    await M.placePickers({ county: admin ? $("find-county") : null, town: $("find-town"), village: $("find-village"),
                           fixedCounty: admin ? null : me.county_code });
    $("uncovered-heading").textContent = admin ? "全市尚未覆盖的户" : `${me.county_name || "本县"}尚未覆盖的户`;
    await loadMine(1);
    await loadUncovered(1);
  });
})();
