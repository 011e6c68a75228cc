// The setup wizard. Each step calls the same API as the headless setup. Every load finds the
// current step from the server's state, so a reload resumes at that step:
//
//   no admin yet                          -> 1 create the admin (POST /auth/bootstrap)
//   admin exists, no token in this tab    -> log in (POST /auth/token)
//   no source configured                  -> 2 choose a connector, 3 enter its settings
//   sources, but no registered table      -> 4 discover and register tables
//   tables, but no finished sync          -> 5 run the first sync and follow it
//   a sync published data                 -> done, then the dashboard

import {
  api,
  busy,
  clearErrors,
  clearSession,
  el,
  formatDuration,
  formatNumber,
  logIn,
  setToken,
  showError,
  showFieldError,
  token,
} from "./common.js";

const CONNECTOR_KEY = "agnes.setup.connector";
const POLL_MS = 400;
const REDIRECT_SECONDS = 5;

const byId = (id) => document.getElementById(id);
let connectors = null;
let redirectTimer = null;

// ---- navigation -------------------------------------------------------------------------------

function show(sectionId, step) {
  for (const section of document.querySelectorAll("section.step")) {
    section.hidden = section.id !== sectionId;
  }
  byId("loading").hidden = true;
  byId("logout").hidden = !token();
  for (const item of byId("steps").querySelectorAll("li")) {
    const number = Number(item.dataset.step);
    item.classList.toggle("done", step !== null && number < step);
    if (number === step) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
  const heading = byId(sectionId).querySelector("h2");
  heading.tabIndex = -1;
  heading.focus({ preventScroll: true });
}

function pageError(error) {
  byId("loading").hidden = true;
  showError(byId("page-error"), error);
}

/** Finds the current step from the server's state and shows it. */
async function resume() {
  byId("page-error").hidden = true;
  const health = await api("GET", "/api/health");
  if (!health.body || health.body.setup_required === undefined) {
    return pageError(health.error);
  }
  if (health.body.setup_required) {
    clearSession();
    return showAdmin();
  }
  if (!token()) return showLogin();

  const sources = await api("GET", "/api/admin/sources");
  if (!sources.ok) return apiFailure(sources);
  if (sources.body.sources.length === 0) {
    const chosen = sessionStorage.getItem(CONNECTOR_KEY);
    return chosen ? showCredentials(chosen) : showSource();
  }

  const registry = await api("GET", "/api/admin/registry");
  if (!registry.ok) return apiFailure(registry);
  if (registry.body.count === 0) return showTables(null);

  const status = await api("GET", "/api/sync/status");
  if (!status.ok) return apiFailure(status);
  if (status.body.running) return showSync(status.body.running.id, null);
  const last = status.body.last;
  if (last && (last.status === "succeeded" || last.status === "partial")) {
    return showDone(last, false);
  }
  return showSync(null, last);
}

/** Handles a failed call outside a form: an ended session goes back to the login form. */
function apiFailure(result) {
  if (result.status === 401) {
    clearSession();
    return showLogin({ message: "your session has ended", hint: "Log in again to continue." });
  }
  if (result.status === 403) {
    clearSession();
    return showLogin({
      message: "this account is not an admin",
      hint: "Log in with an admin account to change the setup.",
    });
  }
  return pageError(result.error);
}

// ---- log in and step 1: the admin -------------------------------------------------------------

function showLogin(error) {
  show("step-login", null);
  const form = byId("login-form");
  clearErrors(form);
  if (error) showError(form.querySelector(".form-error"), error);
}

async function submitLogin(event) {
  event.preventDefault();
  if (await logIn(event.target)) await resume();
}

function showAdmin() {
  show("step-admin", 1);
}

/** Returns the admin form's input that a bootstrap error code concerns, by its name. */
function adminField(code) {
  if (code.includes("email")) return "email";
  if (code.includes("password")) return "password";
  if (code.includes("name")) return "name";
  return null;
}

async function submitAdmin(event) {
  event.preventDefault();
  const form = event.target;
  clearErrors(form);
  const data = new FormData(form);
  const body = {
    email: String(data.get("email") || "").trim(),
    name: String(data.get("name") || "").trim(),
    password: String(data.get("password") || ""),
  };
  const result = await busy(form, "Creating the admin…", () =>
    api("POST", "/auth/bootstrap", body),
  );
  if (!result.ok) {
    if (result.error.code === "setup.already_done") return showLogin(result.error);
    return showFieldError(form, adminField(result.error.code), result.error);
  }
  setToken(result.body.access_token);
  form.reset();
  await resume();
}

// ---- steps 2 and 3: the source ----------------------------------------------------------------

async function loadConnectors() {
  if (connectors) return connectors;
  const result = await api("GET", "/api/admin/connectors");
  if (!result.ok) {
    apiFailure(result);
    return null;
  }
  connectors = result.body.connectors;
  return connectors;
}

async function showSource() {
  const list = await loadConnectors();
  if (!list) return;
  const chosen = sessionStorage.getItem(CONNECTOR_KEY) || list[0].data_source;
  const choices = list.map((connector) =>
    el(
      "label",
      { class: "choice" },
      el("input", {
        type: "radio",
        name: "data_source",
        value: connector.data_source,
        checked: connector.data_source === chosen,
      }),
      el(
        "span",
        { class: "choice-text" },
        el("span", { class: "choice-title", text: connector.title }),
        el("span", { class: "choice-help", text: connector.description }),
      ),
    ),
  );
  byId("source-choices").replaceChildren(...choices);
  clearErrors(byId("source-form"));
  show("step-source", 2);
}

function submitSource(event) {
  event.preventDefault();
  const form = event.target;
  const value = new FormData(form).get("data_source");
  if (!value) {
    showError(form.querySelector(".form-error"), {
      message: "no data source is chosen",
      hint: "Choose one of the connectors above.",
    });
    return;
  }
  sessionStorage.setItem(CONNECTOR_KEY, value);
  showCredentials(value);
}

/** Builds the input of one connector field, with its label, help and error slot. */
function fieldInput(field) {
  const id = "field-" + field.name;
  const describedBy = id + "-help " + id + "-error";
  const label = [field.label, field.required ? null : el("span", { class: "optional", text: " (optional)" })];
  const help = el("p", { id: id + "-help", class: "help", text: field.help });
  const error = el("p", { id: id + "-error", class: "field-error", role: "alert", hidden: true });

  if (field.input === "choice") {
    const options = field.choices.map((choice) =>
      el(
        "label",
        { class: "choice compact" },
        el("input", {
          type: "radio",
          name: field.name,
          value: choice.value,
          checked: choice.value === field.default,
          "aria-describedby": describedBy,
        }),
        el(
          "span",
          { class: "choice-text" },
          el("span", { class: "choice-title", text: choice.label }),
          el("span", { class: "choice-help", text: choice.help }),
        ),
      ),
    );
    return el("fieldset", { class: "field" }, el("legend", {}, ...label), help, ...options, error);
  }

  const type = field.input === "password" ? "password" : "text";
  const input = el("input", {
    id,
    name: field.name,
    type,
    required: field.required,
    placeholder: field.placeholder,
    value: field.input === "password" ? null : field.default,
    autocomplete: field.input === "password" ? "new-password" : "off",
    spellcheck: "false",
    autocapitalize: "off",
    "aria-describedby": describedBy,
  });
  return el("div", { class: "field" }, el("label", { for: id }, ...label), input, help, error);
}

/** Returns the command-line equivalent of configuring `connector`. */
function cliCommand(connector) {
  const parts = ["agnes admin configure", connector.data_source];
  for (const field of connector.fields.filter((f) => f.required)) {
    const example = field.placeholder || field.name;
    parts.push("--" + field.name, example.includes(" ") ? `'${example}'` : example);
  }
  return parts.join(" ");
}

async function showCredentials(dataSource) {
  const list = await loadConnectors();
  if (!list) return;
  const connector = list.find((c) => c.data_source === dataSource);
  if (!connector) {
    sessionStorage.removeItem(CONNECTOR_KEY);
    return showSource();
  }
  const form = byId("credentials-form");
  form.dataset.source = connector.data_source;
  byId("credentials-title").textContent = "Connect: " + connector.title;
  byId("credentials-intro").textContent = connector.description;
  byId("credentials-fields").replaceChildren(...connector.fields.map(fieldInput));
  byId("credentials-cli").textContent = cliCommand(connector);
  clearErrors(form);
  show("step-credentials", 3);
}

/** Reads the configure request from the form, leaving out empty optional values. */
function configureBody(form, connector) {
  const data = new FormData(form);
  const body = { data_source: connector.data_source };
  for (const field of connector.fields) {
    const raw = String(data.get(field.name) || "");
    const value = field.input === "password" ? raw : raw.trim();
    if (field.input === "list") {
      const items = value.split(",").map((item) => item.trim()).filter(Boolean);
      if (items.length > 0) body[field.name] = items;
    } else if (value !== "") {
      body[field.name] = value;
    }
  }
  return body;
}

async function submitCredentials(event) {
  event.preventDefault();
  const form = event.target;
  const connector = (await loadConnectors()).find((c) => c.data_source === form.dataset.source);
  clearErrors(form);
  const result = await busy(form, "Checking the source…", () =>
    api("POST", "/api/admin/configure", configureBody(form, connector)),
  );
  if (!result.ok) {
    if (result.status === 401) return apiFailure(result);
    const field = connector.fields.find((f) => f.error_codes.includes(result.error.code));
    return showFieldError(form, field ? field.name : null, result.error);
  }
  sessionStorage.removeItem(CONNECTOR_KEY);
  await showTables(result.body);
}

// ---- step 4: tables ---------------------------------------------------------------------------

async function showTables(configured) {
  const section = byId("step-tables");
  const summary = byId("tables-summary");
  const table = byId("tables-list");
  const problems = byId("tables-problems");
  const register = byId("tables-register");
  section.querySelector(".form-error").hidden = true;
  table.hidden = true;
  problems.hidden = true;
  register.disabled = true;
  summary.textContent = "Looking for tables…";
  show("step-tables", 4);

  const result = await busy(section, "Looking…", () => api("GET", "/api/admin/discover-tables"));
  if (!result.ok) {
    if (result.status === 401 || result.status === 403) return apiFailure(result);
    summary.textContent = "";
    return showError(section.querySelector(".form-error"), result.error);
  }
  const found = result.body;
  const prefix = configured ? `Source ${configured.source} is connected. ` : "";
  const sourceCount = new Set(found.tables.map((t) => t.source)).size;
  summary.textContent =
    found.count === 0
      ? prefix + "No tables were found. Add files to the folder or fix the source, then look again."
      : prefix + `${found.count} ${found.count === 1 ? "table" : "tables"} found in ` +
        `${sourceCount} ${sourceCount === 1 ? "source" : "sources"}.`;

  table.tBodies[0].replaceChildren(
    ...found.tables.map((t) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", text: t.name }),
        el("td", { text: t.source }),
        el("td", { class: "mono", text: t.source_table }),
        el("td", { text: t.query_mode }),
      ),
    ),
  );
  table.hidden = found.count === 0;
  problems.replaceChildren(...found.errors.map((text) => el("li", { text })));
  problems.hidden = found.errors.length === 0;
  register.disabled = found.count === 0;
  register.textContent =
    found.count === 0 ? "Register the tables" : `Register ${found.count} ${found.count === 1 ? "table" : "tables"}`;
}

async function registerTables() {
  const section = byId("step-tables");
  section.querySelector(".form-error").hidden = true;
  const result = await busy(section, "Registering…", () =>
    api("POST", "/api/admin/discover-and-register"),
  );
  if (!result.ok) {
    if (result.status === 401 || result.status === 403) return apiFailure(result);
    return showError(section.querySelector(".form-error"), result.error);
  }
  showSync(null, null, result.body);
}

// ---- step 5: the first sync -------------------------------------------------------------------

function showSync(jobId, lastJob, registered) {
  const section = byId("step-sync");
  section.querySelector(".form-error").hidden = true;
  byId("sync-progress").hidden = true;
  const start = byId("sync-start");
  start.hidden = false;
  start.textContent = lastJob ? "Try the sync again" : "Start the first sync";
  if (registered) {
    const count = registered.registered + registered.skipped;
    byId("sync-intro").textContent =
      `${count} ${count === 1 ? "table is" : "tables are"} registered. The sync copies them ` +
      "into Agnes and publishes them for queries.";
  }
  show("step-sync", 5);
  if (lastJob && lastJob.status === "failed") {
    showError(section.querySelector(".form-error"), jobFailure(lastJob));
  }
  if (jobId) follow(jobId);
}

async function startSync() {
  const section = byId("step-sync");
  section.querySelector(".form-error").hidden = true;
  const result = await busy(section, "Starting…", () => api("POST", "/api/sync/trigger"));
  if (result.ok || (result.status === 409 && result.body && result.body.job_id)) {
    return follow(result.body.job_id);
  }
  if (result.status === 401 || result.status === 403) return apiFailure(result);
  showError(section.querySelector(".form-error"), result.error);
}

/** Returns the share of the job that is done, in percent. */
function percentOf(job) {
  const progress = job.progress;
  if (job.status !== "running" || progress.phase === "done") return 100;
  if (progress.phase === "publishing") return 95;
  if (progress.phase === "extracting" && progress.tables_total > 0) {
    return Math.round(5 + (85 * progress.tables_done) / progress.tables_total);
  }
  if (progress.sources_total > 0) {
    return Math.round(5 + (85 * progress.sources_done) / progress.sources_total);
  }
  return progress.phase === "discovering" ? 2 : 0;
}

/** Returns one sentence on what the job does now. */
function phaseText(job) {
  const progress = job.progress;
  switch (progress.phase) {
    case "discovering":
      return "Looking for tables…";
    case "extracting":
      if (progress.current_table && progress.tables_total > 0) {
        const number = Math.min(progress.tables_done + 1, progress.tables_total);
        return `Copying ${progress.current_table} (table ${number} of ${progress.tables_total})…`;
      }
      if (progress.tables_done > 0) {
        return `Copied ${progress.tables_done} of ${progress.tables_total} tables…`;
      }
      return "Copying tables…";
    case "custom_connectors":
      return `Running custom connector ${progress.current_source || ""}…`;
    case "publishing":
      return "Publishing the tables…";
    case "done":
      return "Finished.";
    default:
      return "Starting…";
  }
}

/** Returns a list item per table the job finished, and one for the table it works on. */
function tableItems(job) {
  const items = [];
  const reported = new Set();
  for (const source of job.sources) {
    for (const table of source.tables) {
      reported.add(table.name);
      const ok = table.status !== "failed";
      const detail = ok ? formatNumber(table.rows) + " rows" : table.error || "failed";
      items.push(
        el(
          "li",
          { class: ok ? "ok" : "failed" },
          el("span", { class: "mark", "aria-hidden": "true", text: ok ? "✓" : "✗" }),
          el("span", { class: "name", text: table.name }),
          el("span", { class: "detail", text: (ok ? "" : "failed: ") + detail }),
        ),
      );
    }
    if (source.status === "failed" && source.tables.length === 0) {
      items.push(
        el(
          "li",
          { class: "failed" },
          el("span", { class: "mark", "aria-hidden": "true", text: "✗" }),
          el("span", { class: "name", text: source.name }),
          el("span", { class: "detail", text: "failed: " + (source.error || "unknown error") }),
        ),
      );
    }
  }
  // Tables of a source still at work: written, but their row counts come with the source's result.
  for (const name of job.progress.tables_finished || []) {
    if (reported.has(name)) continue;
    items.push(
      el(
        "li",
        { class: "ok" },
        el("span", { class: "mark", "aria-hidden": "true", text: "✓" }),
        el("span", { class: "name", text: name }),
        el("span", { class: "detail", text: "copied" }),
      ),
    );
  }
  if (job.status === "running" && job.progress.current_table) {
    items.push(
      el(
        "li",
        { class: "working" },
        el("span", { class: "mark spinner", "aria-hidden": "true" }),
        el("span", { class: "name", text: job.progress.current_table }),
        el("span", { class: "detail", text: "copying…" }),
      ),
    );
  }
  return items;
}

function renderJob(job) {
  const percent = percentOf(job);
  byId("sync-progress").hidden = false;
  byId("sync-bar").value = percent;
  byId("sync-percent").textContent = percent + " %";
  byId("sync-phase").textContent = phaseText(job);
  byId("sync-tables").replaceChildren(...tableItems(job));
}

/** Follows job `id` until it ends, then shows the result. */
async function follow(id) {
  const section = byId("step-sync");
  byId("sync-start").hidden = true;
  byId("sync-progress").hidden = false;
  byId("sync-phase").textContent = "Starting…";
  for (;;) {
    const result = await api("GET", "/api/sync/jobs/" + encodeURIComponent(id));
    if (!result.ok) {
      if (result.status === 401 || result.status === 403) return apiFailure(result);
      showError(section.querySelector(".form-error"), result.error);
      await sleep(2000);
      continue;
    }
    section.querySelector(".form-error").hidden = true;
    const job = result.body;
    renderJob(job);
    if (job.status !== "running") return finishJob(job);
    await sleep(POLL_MS);
  }
}

function finishJob(job) {
  if (job.status === "succeeded" || job.status === "partial") return showDone(job, true);
  const start = byId("sync-start");
  start.hidden = false;
  start.textContent = "Try the sync again";
  showError(byId("step-sync").querySelector(".form-error"), jobFailure(job));
}

/** Returns an error of a failed job, naming what failed. */
function jobFailure(job) {
  const reasons = [job.error, ...job.publication_errors]
    .concat(job.sources.filter((s) => s.error).map((s) => `${s.name}: ${s.error}`))
    .filter(Boolean);
  return {
    message: "the sync failed" + (reasons.length ? ": " + reasons.join("; ") : ""),
    hint: "Fix the source settings (Add another source replaces a source of the same name), then try again.",
  };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- done -------------------------------------------------------------------------------------

function showDone(job, redirect) {
  const count = job.published_tables || 0;
  const partial = job.status === "partial" ? " Some tables failed; they keep their previous data." : "";
  byId("done-summary").textContent =
    `The sync published ${count} ${count === 1 ? "table" : "tables"} in ` +
    `${formatDuration(job.duration_ms)}.${partial}`;
  byId("done-tables").replaceChildren(...tableItems(job));
  show("step-done", 6);
  const notice = byId("done-redirect");
  notice.hidden = !redirect;
  if (redirect) countDown(REDIRECT_SECONDS);
}

function countDown(seconds) {
  const notice = byId("done-redirect");
  if (seconds <= 0) {
    window.location.assign("/dashboard");
    return;
  }
  notice.replaceChildren(
    `Opening the dashboard in ${seconds} s. `,
    el("button", { type: "button", class: "link", id: "done-stay", text: "Stay here" }),
  );
  byId("done-stay").addEventListener("click", stopRedirect);
  redirectTimer = setTimeout(() => countDown(seconds - 1), 1000);
}

function stopRedirect() {
  clearTimeout(redirectTimer);
  redirectTimer = null;
  byId("done-redirect").hidden = true;
}

// ---- wiring -----------------------------------------------------------------------------------

function start() {
  byId("login-form").addEventListener("submit", submitLogin);
  byId("admin-form").addEventListener("submit", submitAdmin);
  byId("source-form").addEventListener("submit", submitSource);
  byId("credentials-form").addEventListener("submit", submitCredentials);
  byId("credentials-back").addEventListener("click", () => {
    sessionStorage.removeItem(CONNECTOR_KEY);
    showSource();
  });
  byId("tables-back").addEventListener("click", () => showSource());
  byId("tables-refresh").addEventListener("click", () => showTables(null));
  byId("tables-register").addEventListener("click", registerTables);
  byId("sync-start").addEventListener("click", startSync);
  byId("done-add").addEventListener("click", () => {
    stopRedirect();
    showSource();
  });
  byId("logout").addEventListener("click", () => {
    clearSession();
    resume();
  });
  resume();
}

start();
