// Shared by the setup wizard and the dashboard: API calls with the session token, and the
// display of API errors. Everything is built with DOM calls and textContent, never innerHTML,
// so no value from the server is parsed as markup.

const TOKEN_KEY = "agnes.token";

/** Returns the bearer token of this tab, or null. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Stores the bearer token for this tab only; it is gone when the tab closes. */
export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

/** Forgets the token and every setup choice of this tab. */
export function clearSession() {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("agnes.")) sessionStorage.removeItem(key);
  }
}

/**
 * Calls the JSON API and returns {ok, status, body, error}. `error` is null on success, else the
 * API's {code, message, hint}; a network failure has the code "network.failed".
 */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const current = token();
  if (current) headers.Authorization = "Bearer " + current;

  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (failure) {
    const error = {
      code: "network.failed",
      message: "the server could not be reached (" + failure.message + ")",
      hint: "Check that Agnes is running, then try again.",
    };
    return { ok: false, status: 0, body: null, error };
  }

  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }

  let error = null;
  if (!response.ok) {
    error = (parsed && parsed.error) || {
      code: "http." + response.status,
      message: "the server returned HTTP " + response.status,
      hint: null,
    };
  }
  return { ok: response.ok, status: response.status, body: parsed, error };
}

/** Creates an element with attributes and children (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Fills an alert element with an API error: the message, and the hint on its own line. */
export function showError(target, error) {
  target.replaceChildren(
    el("strong", { text: capitalize(error.message) + "." }),
    error.hint ? el("span", { class: "hint", text: error.hint }) : null,
  );
  target.hidden = false;
}

/**
 * Shows an API error next to the input named `fieldName` of `form`: marks the input invalid
 * and fills its error paragraph. Without such an input, the form's own alert shows it.
 */
export function showFieldError(form, fieldName, error) {
  const input = fieldName ? form.querySelector(`[name="${fieldName}"]`) : null;
  const field = input ? input.closest(".field") : null;
  const slot = field ? field.querySelector(".field-error") : null;
  if (!input || !slot) {
    showError(form.querySelector(".form-error"), error);
    return;
  }
  input.setAttribute("aria-invalid", "true");
  showError(slot, error);
  input.focus();
}

/** Hides every error of a form and clears the invalid marks. */
export function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error, .form-error")) {
    slot.hidden = true;
    slot.replaceChildren();
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
}

/**
 * Disables the buttons of `container` (a form or section) and shows `label` on its primary
 * button while `work` runs; returns what `work` returns.
 */
export async function busy(container, label, work) {
  const buttons = [...container.querySelectorAll("button")];
  const primary = container.querySelector("button.primary") || buttons[0];
  const original = primary ? primary.textContent : "";
  const wasDisabled = buttons.map((button) => button.disabled);
  for (const button of buttons) button.disabled = true;
  container.setAttribute("aria-busy", "true");
  if (primary) primary.textContent = label;
  try {
    return await work();
  } finally {
    buttons.forEach((button, i) => (button.disabled = wasDisabled[i]));
    container.removeAttribute("aria-busy");
    if (primary) primary.textContent = original;
  }
}

/** Logs in with the email and password of `form` and stores the token; returns whether it worked. */
export async function logIn(form) {
  clearErrors(form);
  const data = new FormData(form);
  const email = String(data.get("email") || "").trim();
  const password = String(data.get("password") || "");
  if (!email || !password) {
    showError(form.querySelector(".form-error"), {
      message: "Email and password are both required",
      hint: "Enter the email and password of an admin.",
    });
    return false;
  }
  const result = await busy(form, "Logging in…", () =>
    api("POST", "/auth/token", { email, password }),
  );
  if (!result.ok) {
    showError(form.querySelector(".form-error"), result.error);
    return false;
  }
  setToken(result.body.access_token);
  form.reset();
  return true;
}

/** Formats a row or byte count with thousands separators. */
export function formatNumber(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US");
}

/** Formats milliseconds as seconds or minutes. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
}

/** Formats a UTC time of the API ("2026-11-01 10:00:00" or ISO 8601) in the local time zone. */
export function formatTime(value) {
  if (!value) return "–";
  let iso = String(value).replace(" ", "T");
  if (/[+-]\d\d$/.test(iso)) iso += ":00";
  else if (!/(Z|[+-]\d\d:?\d\d)$/i.test(iso)) iso += "Z";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

function capitalize(text) {
  const trimmed = String(text || "").replace(/\.$/, "");
  return trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
}
