// lim web console: the incident list, the incident page and the live actor
// tree, over lim's own HTTP API. No build step, no dependencies.
//
// * Every data request goes through api(): `Authorization: Bearer <token>`
//   when the operator entered one (kept in sessionStorage, this tab only),
//   and `X-Lim-Interface: web` so actions are attributed to the web console.
//   A 401 shows the token box.
// * Text from the API only ever reaches the page as textContent or an
//   attribute value (see h()): never parsed as HTML.
// * Views are hash routes: #/incidents?status=…, #/incidents/42, #/actors.
//   Each view polls while it is shown and stops when it is left.
// * Countdowns are computed here from each timer's absolute deadline and
//   redrawn every second by one ticker, corrected for the difference between
//   this machine's clock and the server's (estimated from the tree's `in_ms`).

const TOKEN_KEY = "lim.token";
const PAGE = 50;
const LIST_POLL_MS = 5000;
const INCIDENT_POLL_MS = 5000;
const TREE_POLL_MS = 2000;
// Incident actors per answer of /v1/actors: its default page and its maximum.
const TREE_PAGE = 100;
const MAX_TREE_PAGE = 1000;

// ---------------------------------------------------------------- DOM helpers

/** An element: attributes (class, data-*, on* handlers, …) and children
 * (strings become text nodes; null/false are skipped; arrays are flattened). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) {
        if (v !== null && v !== undefined) el.dataset[k] = String(v);
      }
    } else if (key === "value") {
      el.value = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

const $ = (selector, root = document) => root.querySelector(selector);

// ------------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", "X-Lim-Interface": "web" };
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    setConn("down", "unreachable");
    throw new ApiError(0, "unreachable", "lim is unreachable (" + e.message + ")");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401) {
    setConn("auth", "token needed");
    showTokenBox(
      t
        ? "The API refused that token (401). Enter a valid API token."
        : "The API needs a token (401). Enter an API token.",
    );
  } else if (response.status === 503) {
    setConn("down", "not ready");
  } else {
    setConn("up", "live");
  }
  if (!response.ok) {
    const err = data && data.error;
    throw new ApiError(
      response.status,
      (err && err.code) || "http_" + response.status,
      (err && err.message) || response.status + " " + response.statusText,
    );
  }
  return data;
}

function setConn(state, text) {
  const el = $("#conn");
  if (!el) return;
  el.dataset.state = state;
  el.textContent = text;
}

// ------------------------------------------------------------- the token box

function showTokenBox(message) {
  const form = $("#token-form");
  $("#token-msg").textContent = message;
  $("#token-forget").hidden = !token();
  if (form.hidden) {
    form.hidden = false;
    $("#token-input").focus();
  }
}

function hideTokenBox() {
  $("#token-form").hidden = true;
}

function setupTokenBox() {
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("#token-input").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("#token-input").value = "";
    hideTokenBox();
    flash("Token saved for this tab.", "ok");
    mountRoute();
  });
  $("#token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenBox("Token forgotten.");
    mountRoute();
  });
  $("#token-open").addEventListener("click", () => {
    const form = $("#token-form");
    if (form.hidden) showTokenBox(token() ? "A token is set; enter another to replace it." : "Enter an API token.");
    else hideTokenBox();
  });
}

// ------------------------------------------------------------------- flashes

let flashTimer = null;

function flash(message, kind = "error") {
  const el = $("#flash");
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => (el.hidden = true), kind === "error" ? 10000 : 4000);
}

/** Reports a failed request: a 401 already shows the token box. */
function report(err, what) {
  if (err instanceof ApiError && err.status === 401) return;
  flash((what ? what + ": " : "") + err.message, "error");
}

// -------------------------------------------------------------- time and text

// Server clock minus this machine's, in ms (from the actor tree's in_ms).
let skewMs = 0;

function serverNow() {
  return Date.now() + skewMs;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function fmtSpan(ms) {
  let s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  s %= 86400;
  const hh = Math.floor(s / 3600);
  s %= 3600;
  const m = Math.floor(s / 60);
  s %= 60;
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${pad(m)}m`;
  if (m) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

function fmtTime(iso) {
  if (!iso) return "";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return String(iso);
  return (
    `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ` +
    `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`
  );
}

function countdownText(deadline) {
  const left = Date.parse(deadline) - serverNow();
  if (Number.isNaN(left)) return "";
  if (left > 0) return "in " + fmtSpan(left);
  if (left > -1000) return "now";
  return "overdue " + fmtSpan(-left);
}

function agoText(iso) {
  const ago = serverNow() - Date.parse(iso);
  if (Number.isNaN(ago)) return "";
  return ago < 1000 ? "just now" : fmtSpan(ago) + " ago";
}

/** A countdown to `deadline`, redrawn every second by the ticker. */
function countdown(deadline, attrs = {}) {
  return h("span", { ...attrs, class: "countdown " + (attrs.class || ""), dataset: { ...(attrs.dataset || {}), deadline }, title: fmtTime(deadline) }, countdownText(deadline));
}

/** "5m 02s ago", redrawn every second by the ticker. */
function ago(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: fmtTime(iso), dataset: { ago: iso } }, agoText(iso));
}

function tick() {
  for (const el of document.querySelectorAll("[data-deadline]")) {
    el.textContent = countdownText(el.dataset.deadline);
    el.classList.toggle("due", Date.parse(el.dataset.deadline) - serverNow() <= 0);
  }
  for (const el of document.querySelectorAll("[data-ago]")) {
    el.textContent = agoText(el.dataset.ago);
  }
}

function badge(kind, text, extra = "") {
  return h("span", { class: `badge ${kind} ${extra}`.trim() }, text);
}

function statusBadge(status) {
  return badge("st-" + status, status);
}

function severityBadge(severity) {
  if (!severity) return h("span", { class: "muted" }, "—");
  return badge("sev sev-" + String(severity).toLowerCase(), severity);
}

const SHOWN_ELSEWHERE = new Set(["alertname", "service", "severity"]);

function labelChips(labels, max = 4) {
  const entries = Object.entries(labels || {}).filter(([k]) => !SHOWN_ELSEWHERE.has(k));
  const chips = entries.slice(0, max).map(([k, v]) => h("span", { class: "chip", title: `${k}=${v}` }, h("span", { class: "chip-k" }, k), "=", v));
  if (entries.length > max) chips.push(h("span", { class: "chip more", title: entries.slice(max).map(([k, v]) => `${k}=${v}`).join("\n") }, `+${entries.length - max}`));
  return chips;
}

function incidentLink(id) {
  return h("a", { href: `#/incidents/${id}`, class: "mono" }, `INC-${id}`);
}

// ------------------------------------------------------------------- actions

// Who acts, when the API has no tokens to say so (with tokens, the server
// attributes every action to the token's user whatever this says).
const BY = "web";

const ACTIONS = {
  acknowledge: { label: "Acknowledge", path: "acknowledge", body: () => ({ by: BY }), done: "acknowledged" },
  resolve: { label: "Resolve", path: "resolve", body: () => ({ by: BY }), done: "resolved" },
  "snooze-30m": { label: "Snooze 30m", path: "snooze", body: () => ({ for: "30m", by: BY }), done: "snoozed for 30m" },
  "snooze-4h": { label: "Snooze 4h", path: "snooze", body: () => ({ for: "4h", by: BY }), done: "snoozed for 4h" },
  escalate: { label: "Escalate now", path: "escalate", body: () => ({ by: BY }), done: "escalated" },
};

function applicable(action, status) {
  switch (action) {
    case "acknowledge":
      return status === "triggered";
    case "resolve":
    case "snooze-30m":
    case "snooze-4h":
    case "escalate":
      return status !== "resolved";
    default:
      return false;
  }
}

/** Buttons for `incident`; `onDone(view)` gets the incident as answered. */
function actionButtons(incident, names, onDone) {
  const group = h("span", { class: "actions" });
  for (const name of names) {
    const action = ACTIONS[name];
    const enabled = applicable(name, incident.status);
    const button = h(
      "button",
      {
        type: "button",
        class: "act act-" + name,
        dataset: { action: name },
        disabled: !enabled,
        title: enabled ? `${action.label} INC-${incident.id}` : `Not while ${incident.status}`,
      },
      action.label,
    );
    button.addEventListener("click", async () => {
      for (const b of group.querySelectorAll("button")) b.disabled = true;
      group.classList.add("busy");
      try {
        const view = await api("POST", `/v1/incidents/${incident.id}/${action.path}`, action.body());
        flash(`INC-${incident.id} ${action.done}.`, "ok");
        onDone(view);
      } catch (err) {
        report(err, `${action.label} INC-${incident.id}`);
        for (const b of group.querySelectorAll("button")) b.disabled = !applicable(b.dataset.action, incident.status);
      } finally {
        group.classList.remove("busy");
      }
    });
    group.appendChild(button);
  }
  return group;
}

/** What happens next to an incident, with a live countdown. */
function nextUp(incident) {
  if (incident.status === "resolved") {
    return h("span", { class: "muted" }, "resolved", incident.resolved_by ? " by " + incident.resolved_by : "");
  }
  if (incident.status === "acknowledged") {
    const by = incident.acknowledged_by ? "ack by " + incident.acknowledged_by : "acknowledged";
    if (incident.ack_expires_at) return h("span", { title: by }, "re-triggers ", countdown(incident.ack_expires_at, { dataset: { timerKind: "ack_expiry" } }), h("span", { class: "muted" }, incident.acknowledged_by ? " · " + incident.acknowledged_by : ""));
    return h("span", { class: "muted" }, by);
  }
  const esc = incident.escalation || {};
  if (esc.exhausted) return h("span", { class: "warn" }, "escalation exhausted");
  if (esc.next_at) {
    const pass = (esc.repeat ?? 0) > 0 ? ` (pass ${esc.repeat + 1})` : "";
    return h("span", { title: "The next escalation step" }, `step ${(esc.step ?? 0) + 1}${pass} `, countdown(esc.next_at, { dataset: { timerKind: "escalation" } }));
  }
  return h("span", { class: "muted" }, "—");
}

// ------------------------------------------------------------ incidents view

const STATUSES = ["open", "triggered", "acknowledged", "resolved", "all"];
const SORTS = [
  ["created_desc", "newest first"],
  ["created_asc", "oldest first"],
  ["updated_desc", "recently changed"],
];

function listQuery(filters, limit, cursor) {
  const q = new URLSearchParams();
  if (filters.status && filters.status !== "all") q.set("status", filters.status);
  if (filters.service) q.set("service", filters.service);
  if (filters.severity) q.set("severity", filters.severity);
  for (const label of filters.labels) q.append("label", label);
  if (filters.sort && filters.sort !== "created_desc") q.set("sort", filters.sort);
  q.set("limit", String(limit));
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}

function filtersFrom(params) {
  return {
    status: params.get("status") || "open",
    service: params.get("service") || "",
    severity: params.get("severity") || "",
    labels: params.getAll("label").filter(Boolean),
    sort: params.get("sort") || "created_desc",
  };
}

function filtersToHash(filters) {
  const q = new URLSearchParams();
  if (filters.status !== "open") q.set("status", filters.status);
  if (filters.service) q.set("service", filters.service);
  if (filters.severity) q.set("severity", filters.severity);
  for (const label of filters.labels) q.append("label", label);
  if (filters.sort !== "created_desc") q.set("sort", filters.sort);
  const s = q.toString();
  return "#/incidents" + (s ? "?" + s : "");
}

function incidentsView(root, params) {
  const filters = filtersFrom(params);
  const rows = new Map(); // id -> { json, tr }
  let order = [];
  let nextCursor = null;
  let busy = 0;
  let timer = null;
  let stopped = false;

  const form = h(
    "form",
    { class: "filters", id: "filters" },
    h("label", {}, "Status ", h("select", { name: "status" }, STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)))),
    h("label", {}, "Service ", h("input", { name: "service", value: filters.service, placeholder: "any", size: 12, spellcheck: "false" })),
    h("label", {}, "Severity ", h("input", { name: "severity", value: filters.severity, placeholder: "any", size: 8, spellcheck: "false" })),
    h("label", { class: "grow" }, "Labels ", h("input", { name: "labels", value: filters.labels.join(" "), placeholder: "e.g. model=gpt-4o team=ml", spellcheck: "false" })),
    h("label", {}, "Sort ", h("select", { name: "sort" }, SORTS.map(([v, t]) => h("option", { value: v, selected: v === filters.sort }, t)))),
    h("button", { type: "submit" }, "Apply"),
    h("a", { href: "#/incidents", class: "quiet-link" }, "Reset"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = {
      status: data.get("status"),
      service: String(data.get("service") || "").trim(),
      severity: String(data.get("severity") || "").trim(),
      labels: String(data.get("labels") || "").split(/[\s,]+/).filter(Boolean),
      sort: data.get("sort"),
    };
    const hash = filtersToHash(next);
    if (location.hash === hash) refresh();
    else location.hash = hash;
  });

  const summary = h("span", { class: "summary", id: "list-summary" }, "loading…");
  const tbody = h("tbody", { id: "incident-rows" });
  const table = h(
    "table",
    { class: "grid incidents", id: "incidents" },
    h("thead", {}, h("tr", {}, ["ID", "Status", "Sev", "Title", "Service", "Labels", "Alerts", "Opened", "Next", ""].map((t) => h("th", {}, t)))),
    tbody,
  );
  table.hidden = true; // until the first answer
  const empty = h("div", { class: "empty", hidden: true }, "No incidents match these filters.");
  const more = h("button", { type: "button", id: "more", hidden: true, class: "quiet" }, "More");
  more.addEventListener("click", loadMore);

  root.replaceChildren(h("section", { class: "toolbar" }, form), h("div", { class: "listhead" }, summary), table, empty, h("div", { class: "pager" }, more));

  function renderRow(incident) {
    const json = JSON.stringify(incident);
    const known = rows.get(incident.id);
    if (known && known.json === json) return known.tr;
    const tr = h(
      "tr",
      { dataset: { incidentId: incident.id, status: incident.status }, class: "row st-" + incident.status },
      h("td", { class: "mono" }, incidentLink(incident.id)),
      h("td", { class: "status" }, statusBadge(incident.status)),
      h("td", {}, severityBadge(incident.severity)),
      h("td", { class: "title" }, h("a", { href: `#/incidents/${incident.id}`, title: incident.title }, incident.title)),
      h("td", {}, incident.service),
      h("td", { class: "labels" }, labelChips(incident.labels)),
      h("td", { class: "num", title: `${incident.alert_count} alerts, seen ${incident.seen_count} times` }, String(incident.alert_count), h("span", { class: "muted" }, " / " + incident.seen_count)),
      h("td", {}, ago(incident.created_at)),
      h("td", { class: "next" }, nextUp(incident)),
      h("td", { class: "row-actions" }, actionButtons(incident, ["acknowledge", "resolve", "snooze-30m", "snooze-4h"], (view) => replaceRow(view))),
    );
    rows.set(incident.id, { json, tr });
    return tr;
  }

  function replaceRow(incident) {
    const old = rows.get(incident.id);
    rows.delete(incident.id);
    const tr = renderRow(incident);
    if (old && old.tr.parentNode) old.tr.replaceWith(tr);
  }

  function show(incidents) {
    const seen = new Set();
    const trs = [];
    for (const incident of incidents) {
      seen.add(incident.id);
      trs.push(renderRow(incident));
    }
    for (const id of rows.keys()) if (!seen.has(id)) rows.delete(id);
    order = incidents.map((i) => i.id);
    tbody.replaceChildren(...trs);
    empty.hidden = order.length > 0;
    table.hidden = order.length === 0;
    more.hidden = !nextCursor;
    summary.textContent = `${order.length} incident${order.length === 1 ? "" : "s"}${nextCursor ? " shown, more below" : ""} · ${describe(filters)} · updated ${fmtTime(new Date().toISOString()).slice(11)}`;
  }

  async function refresh() {
    if (busy || stopped) return;
    busy++;
    try {
      const limit = Math.min(1000, Math.max(PAGE, order.length));
      const answer = await api("GET", "/v1/incidents?" + listQuery(filters, limit));
      if (stopped) return;
      nextCursor = answer.next_cursor;
      show(answer.incidents);
    } catch (err) {
      if (err.status === 401) summary.textContent = "Waiting for an API token.";
      else {
        summary.textContent = "Could not load incidents: " + err.message;
        if (err.status === 400) report(err, "Filters");
      }
    } finally {
      busy--;
    }
  }

  async function loadMore() {
    if (!nextCursor || busy) return;
    busy++;
    more.disabled = true;
    try {
      const answer = await api("GET", "/v1/incidents?" + listQuery(filters, PAGE, nextCursor));
      if (stopped) return;
      const known = order.map((id) => JSON.parse(rows.get(id).json));
      nextCursor = answer.next_cursor;
      show(known.concat(answer.incidents.filter((i) => !order.includes(i.id))));
    } catch (err) {
      report(err, "More incidents");
    } finally {
      more.disabled = false;
      busy--;
    }
  }

  refresh();
  timer = setInterval(refresh, LIST_POLL_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

function describe(filters) {
  const parts = [filters.status === "all" ? "any status" : filters.status];
  if (filters.service) parts.push("service " + filters.service);
  if (filters.severity) parts.push("severity " + filters.severity);
  for (const l of filters.labels) parts.push(l);
  return parts.join(", ");
}

// ------------------------------------------------------------- incident view

function targetText(t) {
  if (!t) return "";
  if (typeof t === "string") return t;
  return t.name !== undefined ? `${t.type}:${t.name}` : JSON.stringify(t);
}

function byVia(e) {
  return [e.by ? "by " + e.by : "", e.via ? "via " + e.via : ""].filter(Boolean).join(" ");
}

/** One timeline entry as [kind, description]. */
function timelineText(e) {
  if (e.notification !== undefined) {
    // A page's detail is "step S, pass P, TARGET", both from 0: shown from 1
    // like every other step and pass here.
    const page = /^step (\d+), pass (\d+), (.*)$/s.exec(e.detail || "");
    const detail = page ? `step ${Number(page[1]) + 1}, pass ${Number(page[2]) + 1}, ${page[3]}` : e.detail;
    const parts = [`${e.notification} ${detail}`, `→ ${e.recipient}`];
    if (e.attempts) parts.push(`${e.attempts} attempt${e.attempts === 1 ? "" : "s"}`);
    if (e.error) parts.push(`error: ${e.error}`);
    return ["delivery", parts.join(" · ")];
  }
  switch (e.type) {
    case "triggered":
      return ["state", `opened by alert ${e.alert}`];
    case "alert_added":
    case "alert_refired":
    case "alert_resolved":
    case "alert_expired":
      return ["alert", `alert ${e.alert}`];
    case "acknowledged":
    case "resolved":
    case "escalated":
      return ["state", byVia(e)];
    case "snoozed":
      return ["state", `${byVia(e)} until ${fmtTime(e.until)}`];
    case "note_added":
      return ["note", `${byVia(e)}: ${e.text}`];
    case "notified":
    case "nobody_to_notify":
      return ["page", `step ${e.step + 1}, pass ${e.repeat + 1} → ${(e.targets || []).map(targetText).join(", ") || "nobody"}`];
    case "ack_expired":
      return ["state", "the acknowledge expired; triggered again"];
    case "escalation_exhausted":
      return ["state", "every step and repeat has paged; nothing further is scheduled"];
    default: {
      const rest = { ...e };
      delete rest.seq;
      delete rest.at;
      delete rest.type;
      return ["other", Object.keys(rest).length ? JSON.stringify(rest) : ""];
    }
  }
}

function fact(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

function incidentView(root, id) {
  let timer = null;
  let stopped = false;
  let lastJson = "";
  const head = h("section", { class: "inc-head", id: "incident-head" }, h("span", { class: "muted" }, `Loading INC-${id}…`));
  const body = h("div", { class: "inc-body" });
  const lower = h("div", { class: "inc-body" });
  const noteText = h("textarea", { name: "text", rows: 2, placeholder: "Add a note to the timeline", maxlength: 10000 });
  const noteForm = h("form", { class: "note", id: "note-form" }, noteText, h("button", { type: "submit" }, "Add note"));
  noteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = noteText.value.trim();
    if (!text) return;
    try {
      await api("POST", `/v1/incidents/${id}/notes`, { text, by: BY });
      noteText.value = "";
      flash(`Note added to INC-${id}.`, "ok");
      load();
    } catch (err) {
      report(err, "Note");
    }
  });
  root.replaceChildren(h("nav", { class: "crumbs" }, h("a", { href: "#/incidents" }, "← Incidents")), head, body, noteForm, lower);

  function render(d) {
    head.replaceChildren(
      h(
        "div",
        { class: "inc-title", dataset: { incidentId: d.id, status: d.status } },
        h("span", { class: "mono inc-id" }, `INC-${d.id}`),
        statusBadge(d.status),
        severityBadge(d.severity),
        h("h1", {}, d.title),
      ),
      actionButtons(d, ["acknowledge", "resolve", "snooze-30m", "snooze-4h", "escalate"], () => load()),
    );
    const esc = d.escalation || {};
    const facts = h(
      "dl",
      { class: "facts" },
      fact("Service", d.service),
      fact("Opened", fmtTime(d.created_at), " (", ago(d.created_at), ")"),
      fact("Last change", fmtTime(d.updated_at)),
      fact("Last seen", fmtTime(d.last_seen)),
      fact("Alerts", `${d.alert_count} (seen ${d.seen_count} times)`),
      fact(
        "Escalation",
        esc.exhausted
          ? "exhausted: every step and pass has paged"
          : d.status === "triggered" && esc.next_at
            ? [`next: step ${(esc.step ?? 0) + 1}, pass ${(esc.repeat ?? 0) + 1} `, countdown(esc.next_at, { dataset: { timerKind: "escalation" } })]
            : h("span", { class: "muted" }, d.status === "resolved" ? "over" : "paused while acknowledged"),
      ),
      d.acknowledged_at ? fact("Acknowledged", `${fmtTime(d.acknowledged_at)} by ${d.acknowledged_by || "?"}`) : null,
      d.ack_expires_at ? fact("Re-triggers", fmtTime(d.ack_expires_at), " (", countdown(d.ack_expires_at, { dataset: { timerKind: "ack_expiry" } }), ")") : null,
      d.resolved_at ? fact("Resolved", `${fmtTime(d.resolved_at)} by ${d.resolved_by || "?"}`) : null,
      fact("Fingerprint", h("span", { class: "mono" }, d.fingerprint)),
    );
    const labels = h(
      "table",
      { class: "grid kv" },
      h("tbody", {}, Object.entries(d.labels || {}).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", { class: "mono" }, v)))),
    );
    const alerts = h(
      "table",
      { class: "grid alerts" },
      h("thead", {}, h("tr", {}, ["Received", "Status", "Source", "Fingerprint", "Annotations"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        (d.alerts || []).map((a) =>
          h(
            "tr",
            {},
            h("td", { class: "nowrap" }, fmtTime(a.received_at)),
            h("td", {}, badge("al-" + a.status, a.status)),
            h("td", {}, a.source),
            h("td", { class: "mono" }, a.fingerprint),
            h("td", { class: "annotations" }, Object.entries(a.annotations || {}).map(([k, v]) => h("div", {}, h("span", { class: "chip-k" }, k + ": "), v))),
          ),
        ),
      ),
    );
    const timeline = h(
      "table",
      { class: "grid timeline", id: "timeline" },
      h("thead", {}, h("tr", {}, ["Time", "Event", "Detail"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        (d.timeline || []).map((e) => {
          const [kind, text] = timelineText(e);
          return h("tr", { class: "tl-" + kind, dataset: { type: e.type, via: e.via } }, h("td", { class: "nowrap mono" }, fmtTime(e.at)), h("td", {}, badge("ev ev-" + kind, e.type)), h("td", { class: "detail" }, text));
        }),
      ),
    );
    body.replaceChildren(
      h("div", { class: "cols" }, h("section", {}, h("h2", {}, "Incident"), facts), h("section", {}, h("h2", {}, "Labels"), labels)),
      h("section", {}, h("h2", {}, `Timeline (${(d.timeline || []).length})`), timeline),
    );
    lower.replaceChildren(h("section", {}, h("h2", {}, `Alerts (${(d.alerts || []).length})`), alerts));
  }

  async function load() {
    try {
      const d = await api("GET", `/v1/incidents/${id}`);
      if (stopped) return;
      const json = JSON.stringify(d);
      if (json !== lastJson) {
        lastJson = json;
        render(d);
      }
    } catch (err) {
      if (stopped) return;
      if (err.status === 401) head.replaceChildren(h("span", { class: "muted" }, "Waiting for an API token."));
      else if (err.status === 404) head.replaceChildren(h("span", { class: "warn" }, `INC-${id} does not exist.`));
      else report(err, `INC-${id}`);
    }
  }

  load();
  timer = setInterval(load, INCIDENT_POLL_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

// ---------------------------------------------------------- actor tree view

// Collapsed nodes by key, kept across polls and view switches.
const collapsed = new Set();

function nodeKey(node, parentKey) {
  const own = node.kind === "incident" && node.state && node.state.incident_id !== undefined ? "incident:" + node.state.incident_id : node.name || `${node.kind}:${node.id}`;
  return parentKey + "/" + own;
}

function compact(value) {
  if (value === null) return "null";
  if (typeof value === "object") {
    const s = JSON.stringify(value);
    return s.length > 80 ? s.slice(0, 77) + "…" : s;
  }
  return String(value);
}

const TIMER_NAMES = { escalation: "escalation", ack_expiry: "ack expires", alert_expiry: "alert expires" };

function incidentSummary(node) {
  const s = node.state || {};
  const timers = (s.timers || []).map((t) =>
    h("span", { class: "timer", dataset: { timerKind: t.kind }, title: `${t.kind} at ${fmtTime(t.deadline)}` }, h("span", { class: "timer-k" }, (TIMER_NAMES[t.kind] || t.kind) + " "), countdown(t.deadline)),
  );
  return [
    h("a", { href: `#/incidents/${s.incident_id}`, class: "mono" }, `INC-${s.incident_id}`),
    statusBadge(s.status),
    s.severity ? severityBadge(s.severity) : null,
    h("span", { class: "node-title", title: s.title }, s.title),
    h("span", { class: "muted" }, s.service),
    h("span", { class: "facts-inline" }, `next step ${(s.step ?? 0) + 1} · pass ${(s.repeat ?? 0) + 1} · ${s.alerts ?? 0} alert${s.alerts === 1 ? "" : "s"} · seen ${s.seen_count ?? 0}`, s.restarts ? h("span", { class: "warn" }, ` · ${s.restarts} restart${s.restarts === 1 ? "" : "s"}`) : ""),
    timers.length ? h("span", { class: "timers" }, timers) : h("span", { class: "muted timers none" }, "no timers"),
  ];
}

function stateSummary(node) {
  const entries = Object.entries(node.state || {});
  if (!entries.length) return [];
  return [h("span", { class: "kvs" }, entries.map(([k, v]) => h("span", { class: "kv" }, h("span", { class: "chip-k" }, k), "=", compact(v))))];
}

function treeView(root) {
  let timer = null;
  let stopped = false;
  let paused = false;
  let lastSig = "";
  let lastTree = null;
  let limit = null;
  let inFlight = false;

  const summary = h("span", { class: "summary", id: "tree-summary" }, "loading…");
  const pause = h("button", { type: "button", class: "quiet", id: "tree-pause" }, "Pause");
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) poll();
  });
  const expandAll = h("button", { type: "button", class: "quiet", id: "tree-expand" }, "Expand all");
  expandAll.addEventListener("click", () => {
    collapsed.clear();
    redraw();
  });
  const collapseAll = h("button", { type: "button", class: "quiet", id: "tree-collapse" }, "Collapse all");
  collapseAll.addEventListener("click", () => {
    if (!lastTree) return;
    walk(lastTree, "", (node, key, depth) => {
      if (depth > 0 && (node.children || []).length) collapsed.add(key);
    });
    redraw();
  });
  const container = h("div", { class: "tree", id: "tree" });
  root.replaceChildren(
    h("section", { class: "toolbar" }, h("div", { class: "filters" }, h("strong", {}, "Actor tree"), summary, h("span", { class: "spacer" }), expandAll, collapseAll, pause)),
    container,
    h("p", { class: "legend muted" }, "Polled every 2 s. Countdowns are computed in this browser from each timer's deadline. ", h("span", { class: "dot s-running" }), " running ", h("span", { class: "dot s-other" }), " other ", h("span", { class: "dot s-unresponsive" }), " unresponsive"),
  );

  function walk(node, parentKey, fn, depth = 0) {
    const key = nodeKey(node, parentKey);
    fn(node, key, depth);
    for (const child of node.children || []) walk(child, key, fn, depth + 1);
  }

  function renderNode(node, parentKey) {
    const key = nodeKey(node, parentKey);
    const children = node.children || [];
    const total = node.children_total ?? children.length;
    const isCollapsed = collapsed.has(key);
    const status = String(node.status || "unknown");
    const statusClass = status === "running" ? "s-running" : status === "unresponsive" ? "s-unresponsive" : "s-other";
    const toggle = children.length
      ? h("button", { type: "button", class: "toggle", "aria-expanded": String(!isCollapsed), title: isCollapsed ? "Expand" : "Collapse", dataset: { key } }, isCollapsed ? "▸" : "▾")
      : h("span", { class: "toggle leaf" }, "·");
    if (children.length) {
      toggle.addEventListener("click", () => {
        if (collapsed.has(key)) collapsed.delete(key);
        else collapsed.add(key);
        redraw();
      });
    }
    const isIncident = node.kind === "incident";
    const s = node.state || {};
    const row = h(
      "div",
      { class: "node-row" },
      toggle,
      h("span", { class: "dot " + statusClass, title: status }),
      h("span", { class: "node-name" }, isIncident ? "incident" : node.name || node.kind),
      h("span", { class: "kind" }, node.kind),
      h("span", { class: "mono muted node-id", title: "actor id" }, node.id),
      status !== "running" ? badge("st-actor " + statusClass, status) : null,
      total > 0 ? h("span", { class: "muted count" }, `${total} child${total === 1 ? "" : "ren"}`) : null,
      isIncident ? incidentSummary(node) : stateSummary(node),
      isIncident ? restartButton(node) : null,
    );
    const li = h(
      "li",
      {
        class: `node k-${node.kind} ${statusClass}${isIncident ? " inc-" + s.status : ""}`,
        dataset: { key, kind: node.kind, actorId: node.id, status, incidentId: isIncident ? s.incident_id : null, incidentStatus: isIncident ? s.status : null },
      },
      row,
    );
    if (children.length && !isCollapsed) {
      const ul = h("ul", {}, children.map((c) => renderNode(c, key)));
      if (node.next_cursor || total > children.length) {
        if (children.length >= MAX_TREE_PAGE) {
          ul.appendChild(h("li", { class: "node more muted" }, `The first ${children.length} of ${total} are shown (the API's most per answer).`));
        } else {
          const moreButton = h("button", { type: "button", class: "quiet more-children" }, `Show more (${children.length} of ${total})`);
          moreButton.addEventListener("click", () => {
            limit = Math.min(MAX_TREE_PAGE, Math.max(limit || 0, children.length) + TREE_PAGE);
            poll();
          });
          ul.appendChild(h("li", { class: "node more" }, moreButton));
        }
      }
      li.appendChild(ul);
    } else if (isCollapsed) {
      li.classList.add("collapsed");
    }
    return li;
  }

  function restartButton(node) {
    const b = h("button", { type: "button", class: "quiet restart", title: "Restart this incident actor from its last snapshot" }, "restart");
    b.addEventListener("click", async () => {
      if (!confirm(`Restart the actor of INC-${node.state.incident_id}? It resumes from its last committed snapshot.`)) return;
      b.disabled = true;
      try {
        await api("POST", `/v1/actors/${encodeURIComponent(node.id)}/restart`);
        flash(`INC-${node.state.incident_id}'s actor restarted.`, "ok");
        poll();
      } catch (err) {
        report(err, "Restart");
        b.disabled = false;
      }
    });
    return b;
  }

  function redraw() {
    if (!lastTree) return;
    container.replaceChildren(h("ul", { class: "root" }, renderNode(lastTree, "")));
  }

  async function poll() {
    if (stopped || paused || inFlight) return;
    inFlight = true;
    try {
      const sent = Date.now();
      const answer = await api("GET", "/v1/actors" + (limit ? "?limit=" + limit : ""));
      if (stopped) return;
      const received = Date.now();
      estimateSkew(answer.tree, (sent + received) / 2);
      summary.textContent = `${answer.actors} actor${answer.actors === 1 ? "" : "s"} · took ${Number(answer.took_ms).toFixed(1)} ms · updated ${fmtTime(new Date().toISOString()).slice(11)}`;
      const sig = JSON.stringify(answer.tree, (k, v) => (k === "in_ms" ? undefined : v));
      lastTree = answer.tree;
      if (sig !== lastSig) {
        lastSig = sig;
        redraw();
      }
      tick();
    } catch (err) {
      if (stopped) return;
      summary.textContent = err.status === 401 ? "Waiting for an API token." : "Could not load the tree: " + err.message;
    } finally {
      inFlight = false;
    }
  }

  poll();
  timer = setInterval(poll, TREE_POLL_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/** Server-minus-local clock offset from the timers' `in_ms` (the server's
 * `deadline - now` when it answered), taken at the request's midpoint. */
function estimateSkew(tree, localMid) {
  const offsets = [];
  const visit = (node) => {
    for (const t of (node.state && node.state.timers) || []) {
      const deadline = Date.parse(t.deadline);
      if (!Number.isNaN(deadline) && typeof t.in_ms === "number") offsets.push(deadline - t.in_ms - localMid);
    }
    for (const c of node.children || []) visit(c);
  };
  visit(tree);
  if (!offsets.length) return;
  offsets.sort((a, b) => a - b);
  const median = offsets[Math.floor(offsets.length / 2)];
  // Ignore sub-second differences: they are request latency, not skew.
  skewMs = Math.abs(median) < 1000 ? 0 : median;
}

// -------------------------------------------------------------------- routing

let unmount = null;

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/incidents";
  const [path, query = ""] = raw.split("?");
  const params = new URLSearchParams(query);
  const m = path.match(/^\/incidents\/(\d+)$/);
  if (m) return { view: "incident", id: m[1], params };
  if (path === "/actors") return { view: "actors", params };
  return { view: "incidents", params };
}

function mountRoute() {
  if (unmount) unmount();
  const route = parseRoute();
  const root = $("#view");
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === (route.view === "actors" ? "actors" : "incidents"));
  }
  document.body.dataset.view = route.view;
  if (route.view === "incident") {
    document.title = `INC-${route.id} · lim`;
    unmount = incidentView(root, route.id);
  } else if (route.view === "actors") {
    document.title = "Actor tree · lim";
    unmount = treeView(root);
  } else {
    document.title = "Incidents · lim";
    unmount = incidentsView(root, route.params);
  }
}

setupTokenBox();
window.addEventListener("hashchange", mountRoute);
setInterval(tick, 1000);
mountRoute();
