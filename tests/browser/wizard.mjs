// Drives the setup wizard in headless Chromium from an empty instance to the dashboard.
//
//   node wizard.mjs <server URL> <data folder> <artifact folder>
//
// Environment: AGNES_TEST_CHROMIUM (the Chromium binary), AGNES_TEST_NODE_PATH (a node_modules
// folder with playwright-core), AGNES_TEST_ADMIN_EMAIL and AGNES_TEST_ADMIN_PASSWORD. The Rust
// test agnes-http/tests/it/wizard.rs starts the server and runs this script. The script exits 0
// when every step behaved. Otherwise it exits 1, prints the reason on stderr and saves a
// screenshot of the failure.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [base, dataDir, artifacts] = process.argv.slice(2);
if (!base || !dataDir || !artifacts) {
  console.error("usage: node wizard.mjs <server URL> <data folder> <artifact folder>");
  process.exit(2);
}
const chromiumPath = requiredEnv("AGNES_TEST_CHROMIUM");
const nodePath = requiredEnv("AGNES_TEST_NODE_PATH");
const email = requiredEnv("AGNES_TEST_ADMIN_EMAIL");
const password = requiredEnv("AGNES_TEST_ADMIN_PASSWORD");

// playwright-core lives in a cache folder outside the repository, so it is loaded by path.
const { chromium } = createRequire(path.join(nodePath, "loader.cjs"))("playwright-core");

// Chromium must not reach any host but the server under test.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
  "--disable-breakpad",
  "--disable-domain-reliability",
  "--no-default-browser-check",
];
const TABLES = ["airlines", "airports", "flights", "planes", "weather"];
const STEP_TIMEOUT_MS = 30_000;
const SYNC_TIMEOUT_MS = 240_000;

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`environment variable ${name} is not set`);
    process.exit(2);
  }
  return value;
}

function log(message) {
  console.log(`[wizard] ${message}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, name + ".png"), fullPage: true });
  log(`screenshot ${name}.png`);
}

/** Waits until `selector` is visible and returns its locator. */
async function visible(page, selector, timeout = STEP_TIMEOUT_MS) {
  const locator = page.locator(selector);
  await locator.waitFor({ state: "visible", timeout });
  return locator;
}

async function stepAdmin(page) {
  await page.goto(base + "/setup");
  const step = await visible(page, "#step-admin");
  assert.equal(await page.locator('#steps li[aria-current="step"]').getAttribute("data-step"), "1");
  await step.getByLabel("Email").fill(email);
  await step.getByLabel("Name (optional)").fill("Wizard Admin");
  await step.getByLabel("Password").fill(password);
  await shot(page, "01-admin");
  await step.getByRole("button", { name: "Create the admin" }).click();
}

async function stepSource(page) {
  const step = await visible(page, "#step-source");
  const files = step.getByRole("radio", { name: /Folder of files/ });
  const postgres = step.getByRole("radio", { name: /PostgreSQL/ });
  assert.equal(await files.count(), 1, "the files connector is offered");
  assert.equal(await postgres.count(), 1, "the postgres connector is offered");
  await files.check();
  await shot(page, "02-source");
  await step.getByRole("button", { name: "Continue" }).click();
}

async function stepConnection(page) {
  const step = await visible(page, "#step-credentials");
  const pathInput = step.getByLabel("Folder path on the server");
  const submit = step.getByRole("button", { name: "Connect and check" });
  const missing = path.join(dataDir, "no-such-folder");
  await pathInput.fill(missing);
  await submit.click();

  // The error shows next to the path input, in the server's words, and the input is marked.
  const error = await visible(page, "#field-path-error");
  const text = await error.innerText();
  assert.match(text, /does not exist on the server/, `error text: ${text}`);
  assert.ok(text.includes(missing), `the error names the folder: ${text}`);
  assert.match(text, /absolute path of a folder/, `the hint follows: ${text}`);
  assert.equal(await error.getAttribute("role"), "alert");
  assert.equal(await pathInput.getAttribute("aria-invalid"), "true");
  assert.match(await pathInput.getAttribute("aria-describedby"), /field-path-error/);
  await shot(page, "03-connection-error");

  await pathInput.fill(dataDir);
  await submit.click();
  await visible(page, "#step-tables");
  await page.locator("#tables-list tbody tr").nth(TABLES.length - 1).waitFor();
  assert.match(await page.locator("#tables-summary").innerText(), /Source files is connected/);
}

async function stepTables(page) {
  // A reload in the middle resumes from the server's state: a source exists, nothing is
  // registered yet, so the wizard opens at step 4 again.
  log("reloading the page to check that the wizard resumes");
  await page.reload();
  await visible(page, "#step-tables");
  assert.equal(await page.locator('#steps li[aria-current="step"]').getAttribute("data-step"), "4");
  const rows = page.locator("#tables-list tbody tr");
  await rows.nth(TABLES.length - 1).waitFor();
  const names = await page.locator("#tables-list tbody th").allInnerTexts();
  assert.deepEqual(names, TABLES);
  assert.match(await page.locator("#tables-summary").innerText(), /5 tables found in 1 source/);
  await shot(page, "04-tables");
  await page.getByRole("button", { name: "Register 5 tables" }).click();
}

/** Reads what the progress area shows until the wizard reports the end of the sync. */
async function watchSync(page) {
  const seen = [];
  let progressShot = false;
  const deadline = Date.now() + SYNC_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await page.locator("#step-done").isVisible()) return { seen, progressShot };
    if (await page.locator("#sync-progress").isVisible()) {
      const percent = await page.locator("#sync-percent").innerText();
      const phase = await page.locator("#sync-phase").innerText();
      const last = seen[seen.length - 1];
      if (!last || last.percent !== percent || last.phase !== phase) {
        seen.push({ percent, phase });
        log(`sync: ${percent} ${phase}`);
      }
      // From the third table on, the list shows finished tables beside the current one.
      if (!progressShot && /Copying \w+ \(table [3-5] of 5\)/.test(phase)) {
        await shot(page, "05-sync-progress");
        progressShot = true;
      }
    }
    const failure = page.locator("#step-sync .form-error");
    if (await failure.isVisible()) throw new Error("the sync failed: " + (await failure.innerText()));
    await page.waitForTimeout(100);
  }
  throw new Error("the sync did not finish in time");
}

async function stepSync(page) {
  await visible(page, "#step-sync");
  assert.match(await page.locator("#sync-intro").innerText(), /5 tables are registered/);
  await page.getByRole("button", { name: "Start the first sync" }).click();
  const { seen, progressShot } = await watchSync(page);
  assert.ok(progressShot, "the sync was seen at work on table 3 or later: " + JSON.stringify(seen));

  const named = seen.filter((s) => TABLES.some((t) => s.phase.includes(t)));
  assert.ok(named.length > 0, "the progress named a table: " + JSON.stringify(seen));
  const partial = seen.filter((s) => s.percent !== "100 %" && s.percent !== "0 %");
  assert.ok(partial.length > 0, "the progress showed a percent between 0 and 100: " + JSON.stringify(seen));

  await visible(page, "#step-done");
  assert.match(await page.locator("#done-summary").innerText(), /published 5 tables/);
  const finished = await page.locator("#done-tables .name").allInnerTexts();
  assert.deepEqual([...finished].sort(), TABLES);
  await shot(page, "06-sync-done");
}

async function stepDashboard(page) {
  // The wizard opens the dashboard by itself a few seconds after the sync.
  await page.waitForURL(base + "/dashboard", { timeout: STEP_TIMEOUT_MS });
  await visible(page, "#panels");
  await page.locator("#tables-list tbody tr").nth(TABLES.length - 1).waitFor();
  const names = await page.locator("#tables-list tbody th").allInnerTexts();
  assert.deepEqual(names, TABLES);
  assert.equal(await page.locator("#tables-count").innerText(), "5");
  assert.equal(await page.locator("#health-status").innerText(), "healthy");
  await page.locator("#syncs-list tbody tr").first().waitFor();
  assert.equal(await page.locator("#syncs-list tbody tr .badge").first().innerText(), "succeeded");
  await shot(page, "07-dashboard");

  // Back on /setup, the wizard finds the finished setup and stays put.
  await page.goto(base + "/setup");
  await visible(page, "#step-done");
  assert.match(await page.locator("#done-summary").innerText(), /published 5 tables/);
  assert.equal(await page.locator("#done-redirect").isVisible(), false);
}

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  // Anything the page logs as an error, any uncaught exception (a Content-Security-Policy
  // violation among them) and any request to another host fails the run.
  const problems = [];
  page.on("pageerror", (error) => problems.push("uncaught exception: " + error.message));
  page.on("console", (message) => {
    // Chromium logs every 4xx response as "Failed to load resource", and the wizard expects some.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      problems.push("console error: " + message.text());
    }
  });
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(base + "/") && !url.startsWith("data:")) {
      problems.push("request to another host: " + url);
    }
  });

  try {
    await stepAdmin(page);
    await stepSource(page);
    await stepConnection(page);
    await stepTables(page);
    await stepSync(page);
    await stepDashboard(page);
  } catch (error) {
    await shot(page, "failure").catch(() => {});
    throw error;
  }
  assert.deepEqual(problems, [], "the pages ran without errors");
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  log(`launching ${chromiumPath}`);
  // Playwright gives every launch a new empty profile folder and deletes it on close.
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    chromiumSandbox: false,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
  try {
    await run(browser);
  } finally {
    await browser.close();
  }
  log("all steps passed");
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exitCode = 1;
});
