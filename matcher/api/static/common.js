/* Shared by both pages: labels, Chinese formatting, the API client, sign-in, place pickers. */
"use strict";

const M = (() => {
  const LABELS = JSON.parse(document.getElementById("labels").textContent);
  const PAGE = document.body.dataset.page;
  const TOKEN_KEY = "matcher.token." + PAGE;
  // Who signed in (name, role, scope, the session's CSRF token), so that a reload without network still
  // knows. The session itself is the HttpOnly cookie, which scripts never see.
  const ME_KEY = "matcher.me." + PAGE;

  // -- building the DOM ---------------------------------------------------------------------------

  /** el("p", {class: "x"}, "text", child): attributes set as attributes, children appended as text or nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else if (v === true) node.setAttribute(k, "");
      else node.setAttribute(k, String(v));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // -- Chinese conventions: 2,500元, 2026年11月29日, 3.2公里 -------------------------------------------

  function num(n, digits = 0) {
    if (n === null || n === undefined || Number.isNaN(Number(n))) return "—";
    const fixed = Number(n).toFixed(digits);
    const [int, frac] = fixed.split(".");
    const sign = int.startsWith("-") ? "-" : "";
    const grouped = int.replace("-", "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return sign + grouped + (frac ? "." + frac : "");
  }
  const yuan = (n) => (n === null || n === undefined ? "—" : num(Math.round(n)) + "元");
  const km = (d) => (d === null || d === undefined ? "—" : num(d, 1) + "公里");
  const pct = (p) => (p === null || p === undefined ? "—" : Math.round(p * 100) + "%");

  function date(iso) {
    if (!iso) return "—";
    const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso);
    return m ? `${Number(m[1])}年${Number(m[2])}月${Number(m[3])}日` : iso;
  }

  const label = (group, value) => (LABELS[group] && LABELS[group][value]) || value || "—";

  // -- the API ------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || "HTTP " + status);
      this.status = status;
      this.code = e.code || null;
      this.field = e.field || null;
    }
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  /** Calls the API; opts.headers adds headers (an Idempotency-Key), opts.cache a fetch cache mode. */
  async function api(method, path, body, opts = {}) {
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (token()) headers.Authorization = "Bearer " + token();
    else if (method !== "GET" && me && me.csrf_token) headers["X-CSRF-Token"] = me.csrf_token;
    const init = { method, headers, cache: opts.cache || "no-store", credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, { error: { message: "network" } });
    }
    if (opts.raw && resp.ok) return resp;
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      const err = new ApiError(resp.status, data);
      // Only the service saying "not signed in" signs out; a network failure never does.
      if (resp.status === 401) signOut("登录已失效（已退出、账号停用或密码已修改），请重新登录。");
      throw err;
    }
    return data;
  }

  /** A sentence a user can act on, for an API error. */
  function explain(err, what) {
    const s = err.status;
    if (s === 0) return "网络连接失败，请检查网络后重试。";
    if (s === 401) return "登录已失效，请重新登录。";
    if (s === 403) return "您的账号没有权限进行此操作。";
    if (s === 404) return (what || "记录") + "不存在，或不在您的管辖范围内。";
    if (s === 409) return conflictText(err);
    if (s === 413) return "提交的内容太大。";
    if (s === 422) return "填写的内容不符合要求，请检查后重试。";
    if (s === 429) return "操作过于频繁，请稍等一分钟再试。";
    if (s === 503) return "服务暂时不可用（模型未加载或数据库连接中断），请稍后再试。";
    return "系统出错了，请稍后再试。";
  }

  function conflictText(err) {
    const m = err.message || "";
    if (/full|closed|no free position/.test(m)) return "该岗位已招满或已关闭。";
    if (/already recorded/.test(m)) return "该推荐的结果已经登记过了。";
    if (/idempotency/.test(err.code || "")) return "这条记录已用同一编号提交过不同的内容。";
    if (/already open/.test(m)) return "该岗位已经在招聘中。";
    if (/employed already/.test(m)) return "该成员已经就业。";
    if (/exists already/.test(m)) return "编号已被使用，请换一个。";
    return "操作与当前数据冲突，请刷新后重试。";
  }

  // -- feedback -----------------------------------------------------------------------------------

  let toastTimer = null;
  function toast(text) {
    const t = document.getElementById("toast");
    t.textContent = text;
    t.classList.add("shown");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.remove("shown"), 6000);
  }

  function busy(button, on) {
    if (!button) return;
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  // -- sign-in ------------------------------------------------------------------------------------

  let onReady = null;
  let me = null;
  let allowed = [];

  function remember(who) {
    me = who;
    try { localStorage.setItem(ME_KEY, JSON.stringify(who)); } catch (e) { /* private mode: memory only */ }
  }

  function remembered() {
    try { return JSON.parse(localStorage.getItem(ME_KEY) || "null"); } catch (e) { return null; }
  }

  function showSignIn(message) {
    me = null;
    document.getElementById("app").hidden = true;
    document.getElementById("who").hidden = true;
    document.getElementById("signin").hidden = false;
    document.getElementById("signin-error").textContent = message || "";
    document.getElementById("password").value = "";
    document.getElementById("token").value = "";
  }

  /** Forget who is signed in here (the service already has, or is told by the caller). */
  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    try {
      localStorage.removeItem(ME_KEY);
      // The households kept for a bad network go with the sign-in; unsent writes (the outbox) stay, to be
      // sent at the next sign-in of the same user.
      for (const k of Object.keys(localStorage)) if (k.startsWith("matcher.cache.")) localStorage.removeItem(k);
    } catch (e) { /* nothing kept */ }
    showSignIn(message);
  }

  async function signOutClicked() {
    if (!token()) {
      try {
        await api("DELETE", "/api/v1/session");
      } catch (e) {
        if (e.status !== 401) {
          toast("未能退出登录：" + explain(e) + "（请联网后再试）");
          return;
        }
      }
    }
    signOut("");
    document.getElementById("login").focus();
  }

  async function start(allowedRoles, ready) {
    onReady = ready;
    allowed = allowedRoles;
    document.getElementById("sign-out").addEventListener("click", signOutClicked);
    document.getElementById("signin-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const login = document.getElementById("login");
      const password = document.getElementById("password");
      const err = document.getElementById("signin-error");
      const button = ev.currentTarget.querySelector("button");
      for (const input of [login, password]) input.removeAttribute("aria-invalid");
      if (!login.value.trim() || !password.value) {
        err.textContent = !login.value.trim() ? "请输入账号。" : "请输入密码。";
        const missing = !login.value.trim() ? login : password;
        missing.setAttribute("aria-invalid", "true");
        missing.focus();
        return;
      }
      busy(button, true);
      let who;
      try {
        const resp = await fetch("/api/v1/session", {
          method: "POST", cache: "no-store", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ login: login.value.trim(), password: password.value }) });
        const data = await resp.json().catch(() => null);
        if (!resp.ok) throw new ApiError(resp.status, data);
        who = data;
      } catch (e) {
        busy(button, false);
        err.textContent = e.status === 401 ? "账号或密码不正确。"
          : e.status === 429 ? "密码错误次数过多，请15分钟后再试。" : explain(e);
        password.setAttribute("aria-invalid", "true");
        password.focus();
        return;
      }
      busy(button, false);
      sessionStorage.removeItem(TOKEN_KEY);
      password.value = "";
      me = { csrf_token: who.csrf_token };
      await enter(true);
    });
    document.getElementById("token-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const input = document.getElementById("token");
      const err = document.getElementById("token-error");
      const value = input.value.trim();
      if (!value) {
        err.textContent = "请输入访问令牌。";
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      await enter(true);
    });
    window.addEventListener("online", () => { if (me && me.offline) enter(false); });
    const known = remembered();
    if (token() || known) {
      me = known;
      await enter(false);
    }
  }

  async function enter(typed) {
    let who;
    const viaToken = !!token();
    try {
      who = await api("GET", "/api/v1/me");
    } catch (e) {
      if (e.status === 401) {       // api() has shown the sign-in form
        if (viaToken) {
          document.getElementById("token-signin").open = true;
          document.getElementById("token-error").textContent = "令牌无效、已过期或已被停用，请检查后重新输入。";
          document.getElementById("token").setAttribute("aria-invalid", "true");
        }
        return;
      }
      const cached = me || remembered();
      if (cached && cached.role && e.status === 0) {
        // No network: still signed in, with what this phone knew; ask again when the network returns.
        me = Object.assign({}, cached, { offline: true });
        show(me);
        toast("网络连接失败：仍保持登录，网络恢复后自动刷新。");
        if (onReady) await onReady(me);
        return;
      }
      document.getElementById("signin-error").textContent = explain(e);
      return;
    }
    if (!allowed.includes(who.role)) {
      if (!token()) await api("DELETE", "/api/v1/session").catch(() => null);
      signOut(`此账号属于“${label("role", who.role)}”，不能使用本页面。`);
      return;
    }
    if (token()) me = who;
    else remember(who);
    document.getElementById("token-error").textContent = "";
    document.getElementById("token").removeAttribute("aria-invalid");
    document.getElementById("signin-error").textContent = "";
    show(who);
    if (onReady) await onReady(who);
    if (typed) document.getElementById("main").focus();
  }

  function show(who) {
    document.getElementById("signin").hidden = true;
    document.getElementById("app").hidden = false;
    const name = who.display_name || who.name;
    document.getElementById("who-text").textContent =
      `已登录：${name}（${label("role", who.role)}${who.county_name ? "，" + who.county_name : ""}）`;
    document.getElementById("who").hidden = false;
  }

  // -- places -------------------------------------------------------------------------------------

  // One county's places at a time (GET /api/v1/divisions, cached by the browser for a week under a URL
  // that names the release); names and points of every county loaded so far are kept together.
  const VERSION = document.body.dataset.version || "";
  const places = { counties: [], towns: [], villages: [], names: {}, points: {} };
  const loaded = new Map();
  function divisions(county) {
    const key = county || "";
    if (!loaded.has(key)) {
      const q = new URLSearchParams({ v: VERSION });
      if (county) q.set("county_code", county);
      loaded.set(key, api("GET", "/api/v1/divisions?" + q.toString(), undefined, { cache: "default" }).then((d) => {
        places.counties = d.counties;
        for (const [code, name, lat, lon] of d.counties) { places.names[code] = name; places.points[code] = [lat, lon]; }
        for (const t of d.towns) {
          if (!(t[0] in places.names)) places.towns.push(t);
          places.names[t[0]] = t[1]; places.points[t[0]] = [t[3], t[4]];
        }
        for (const v of d.villages) {
          if (!(v[0] in places.names)) places.villages.push(v);
          places.names[v[0]] = v[1]; places.points[v[0]] = [v[3], v[4]];
        }
        return places;
      }).catch(() => { loaded.delete(key); return places; }));
    }
    return loaded.get(key);
  }

  function fillSelect(select, rows, emptyText) {
    clear(select);
    select.append(el("option", { value: "" }, emptyText));
    for (const [code, name] of rows) select.append(el("option", { value: code }, name));
  }

  /** Cascading county -> town -> village selects; onPick(code) when a place is chosen. A county's towns
      and villages are fetched when that county is chosen (or at once for a fixed county). */
  async function placePickers({ county, town, village, fixedCounty, onPick, anyText }) {
    const d = await divisions(fixedCounty || null);
    const any = anyText || { county: "请选择区县", town: "请选择乡镇（街道）", village: "全部村（社区）" };
    const towns = () => d.towns.filter((t) => t[2] === (fixedCounty || (county && county.value)));
    const villages = () => d.villages.filter((v) => v[2] === town.value);
    if (county && !fixedCounty) {
      fillSelect(county, d.counties, any.county);
      county.onchange = async () => {
        if (county.value) await divisions(county.value);
        fillSelect(town, towns(), any.town);
        fillSelect(village, [], any.village);
        if (onPick) onPick(county.value);
      };
    }
    fillSelect(town, towns(), any.town);
    fillSelect(village, [], any.village);
    // Properties, not listeners: signing in again (another county) rewires instead of adding.
    town.onchange = () => {
      fillSelect(village, villages(), any.village);
      if (onPick) onPick(town.value);
    };
    village.onchange = () => { if (onPick) onPick(village.value || town.value); };
    return d;
  }

  /** A key made once for a write, so that sending it again (a retry) is answered, not repeated. */
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  }

  // Refusal reasons per outcome, as the API lists them (GET /api/v1/referrals/reasons), kept for offline use.
  const REASONS_KEY = "matcher.reasons";
  let reasonsPromise = null;
  function reasons() {
    if (!reasonsPromise) {
      reasonsPromise = api("GET", "/api/v1/referrals/reasons").then((r) => {
        try { localStorage.setItem(REASONS_KEY, JSON.stringify(r)); } catch (e) { /* memory only */ }
        return r;
      }).catch(() => {
        reasonsPromise = null;
        try {
          const kept = JSON.parse(localStorage.getItem(REASONS_KEY) || "null");
          if (kept) return kept;
        } catch (e) { /* nothing kept */ }
        // Not reachable and never seen: every reason for every outcome, with the page's labels.
        const all = Object.entries(LABELS.reason).map(([code, l]) => ({ code, label: l }));
        return { declined: all, rejected: all, no_show: all };
      });
    }
    return reasonsPromise;
  }

  return { LABELS, el, append, clear, num, yuan, km, pct, date, label, api, ApiError, explain, toast, busy,
           start, signOut, divisions, placePickers, newKey, reasons, me: () => me };
})();
