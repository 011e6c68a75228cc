// The dashboard: health, published tables and recent sync jobs, each read from the API with the
// token of this tab. Admins see the detailed health and the sync jobs; other users see the
// public health and the tables they may query.

import {
  api,
  clearErrors,
  clearSession,
  el,
  formatDuration,
  formatNumber,
  formatTime,
  logIn,
  showError,
  token,
} from "./common.js";

const SHOWN_JOBS = 10;
const byId = (id) => document.getElementById(id);

async function load() {
  byId("page-error").hidden = true;
  const health = await api("GET", "/api/health");
  if (health.body && health.body.setup_required) {
    window.location.replace("/setup");
    return;
  }
  if (!token()) return showLogin(null);

  const [detailed, catalog, jobs] = await Promise.all([
    api("GET", "/api/health/detailed"),
    api("GET", "/api/catalog/tables"),
    api("GET", "/api/sync/jobs"),
  ]);
  if (catalog.status === 401) {
    clearSession();
    return showLogin({ message: "your session has ended", hint: "Log in again." });
  }
  byId("loading").hidden = true;
  byId("login").hidden = true;
  byId("panels").hidden = false;
  byId("logout").hidden = false;

  renderHealth(detailed.ok ? detailed.body : health.body, detailed.ok);
  if (catalog.ok) renderTables(catalog.body.tables);
  else showError(byId("page-error"), catalog.error);
  renderJobs(jobs);
  byId("updated").textContent = "Updated " + new Date().toLocaleTimeString();
}

function showLogin(error) {
  byId("loading").hidden = true;
  byId("panels").hidden = true;
  byId("logout").hidden = true;
  byId("login").hidden = false;
  const form = byId("login-form");
  clearErrors(form);
  if (error) showError(form.querySelector(".form-error"), error);
  byId("login-email").focus();
}

function fact(term, value) {
  return [el("dt", { text: term }), el("dd", { text: String(value) })];
}

function renderHealth(report, detailed) {
  if (!report || !report.status) {
    byId("health-status").textContent = "unknown";
    return;
  }
  const badge = byId("health-status");
  badge.textContent = report.status;
  badge.className = "badge " + report.status;

  const facts = [
    ...fact("Version", `${report.version} (${report.channel})`),
    ...fact("State schema", report.schema_version),
    ...fact("Checked", formatTime(report.timestamp)),
  ];
  const diagnostics = detailed ? report.diagnostics : null;
  if (diagnostics) {
    const admins = diagnostics.active_admins;
    const users = diagnostics.users;
    facts.push(
      ...fact(
        "Users",
        `${users ?? "–"} ${users === 1 ? "user" : "users"}, ` +
          `${admins ?? "–"} active ${admins === 1 ? "admin" : "admins"}`,
      ),
    );
    facts.push(...fact("Up for", formatDuration(diagnostics.uptime_seconds * 1000)));
    facts.push(...fact("Data directory", diagnostics.data_dir));
  }
  byId("health-facts").replaceChildren(...facts);

  // The detailed report gives each check a message; it is shown for checks that are not ok.
  const checks = Object.entries(report.checks || {}).map(([name, check]) =>
    el(
      "li",
      { class: check.status },
      el("span", { class: "badge " + check.status, text: check.status }),
      el("span", { class: "name", text: name.replaceAll("_", " ") }),
      check.message && check.status !== "ok"
        ? el("span", { class: "detail", text: check.message })
        : null,
    ),
  );
  byId("health-checks").replaceChildren(...checks);
}

function renderTables(tables) {
  byId("tables-count").textContent = String(tables.length);
  byId("tables-empty").hidden = tables.length > 0;
  const list = byId("tables-list");
  list.hidden = tables.length === 0;
  list.tBodies[0].replaceChildren(
    ...tables.map((table) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", text: table.name, title: table.description || "" }),
        el("td", { text: table.source }),
        el("td", { class: "number", text: formatNumber(table.rows) }),
        el("td", { class: "number", text: String(table.columns.length) }),
        el("td", { text: table.query_mode }),
        el("td", { text: formatTime(table.extracted_at) }),
      ),
    ),
  );
}

function renderJobs(result) {
  const note = byId("syncs-note");
  const list = byId("syncs-list");
  if (!result.ok) {
    list.hidden = true;
    note.hidden = false;
    note.textContent =
      result.status === 403 ? "Only admins see sync jobs." : "Sync jobs could not be read: " + result.error.message;
    return;
  }
  const jobs = result.body.jobs.slice(0, SHOWN_JOBS);
  note.hidden = jobs.length > 0;
  note.textContent = "No sync has run yet.";
  list.hidden = jobs.length === 0;
  list.tBodies[0].replaceChildren(
    ...jobs.map((job) => {
      const problems = [job.error, ...job.publication_errors].filter(Boolean);
      return el(
        "tr",
        {},
        el("td", { text: formatTime(job.created_at) }),
        el("td", {}, el("span", { class: "badge " + job.status, text: job.status })),
        el("td", { class: "number", text: job.published_tables ?? "–" }),
        el("td", { class: "number", text: formatDuration(job.duration_ms) }),
        el("td", { class: "small", text: problems.join("; ") || "none" }),
      );
    }),
  );
}

async function submitLogin(event) {
  event.preventDefault();
  if (await logIn(event.target)) await load();
}

byId("login-form").addEventListener("submit", submitLogin);
byId("refresh").addEventListener("click", load);
byId("logout").addEventListener("click", () => {
  clearSession();
  showLogin(null);
});
load();
