// The web console used as a person would: the one-command system with its
// demo, Debian's headless Chromium driven by playwright-core. Signs in,
// creates a connector through the form (after a field error the server
// points at), previews its request, tests it, deactivates, activates and deletes it,
// opens the statistics with each preset, a custom range and another time
// zone, and switches the error tabs; at 1280×800 and on a narrow window.
// Screenshots go to the artifacts directory.
//
//   node tests/console/console.mjs <eventconnectors binary> <node_modules> <artifacts dir>

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [binary, modules, artifacts] = process.argv.slice(2).map((arg) => resolve(arg));
if (process.argv.length < 5) {
  console.error("usage: console.mjs <eventconnectors binary> <node_modules dir> <artifacts dir>");
  process.exit(2);
}
const { chromium } = createRequire(join(resolve(modules), "noop.js"))("playwright-core");
mkdirSync(artifacts, { recursive: true });

let checks = 0;
function check(condition, what) {
  if (!condition) throw new Error(`FAILED: ${what}`);
  checks += 1;
  console.log(`ok ${checks} - ${what}`);
}

/** Starts the system on free ports; resolves with its console address. */
function startSystem(dir) {
  const child = spawn(binary, [
    "--control-plane-listen", "127.0.0.1:0", "--ingest-listen", "127.0.0.1:0",
    "--stats-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
    "--demo-partner-listen", "127.0.0.1:0", "--demo-events-per-second", "20",
  ], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } });
  let out = "";
  let err = "";
  child.stderr.on("data", (data) => { err += data; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no console address in 60 s:\n${out}\n${err}`)), 60_000);
    child.stdout.on("data", (data) => {
      out += data;
      const found = out.match(/console\s+(http:\/\/\S+)/);
      if (found && out.includes("Ctrl-C")) {
        clearTimeout(timer);
        resolve({ child, url: found[1], banner: out });
      }
    });
    child.on("exit", (code) => reject(new Error(`the system exited (${code}):\n${out}\n${err}`)));
  });
}

/** Every control and link has a name a screen reader can say. */
async function everyControlIsNamed(page, where) {
  const unnamed = await page.evaluate(() => {
    const nameOf = (el) => {
      if (el.getAttribute("aria-label")) return el.getAttribute("aria-label");
      const by = el.getAttribute("aria-labelledby");
      if (by) return by.split(" ").map((id) => document.getElementById(id)?.textContent || "").join(" ");
      if (el.id) {
        const label = document.querySelector(`label[for="${CSS.escape(el.id)}"]`);
        if (label) return label.textContent;
      }
      if (el.closest("label")) return el.closest("label").textContent;
      return el.textContent;
    };
    const visible = (el) => el.offsetParent !== null || el.closest("dialog[open]");
    return [...document.querySelectorAll("button, input, select, textarea, a[href], [role=tab], [role=menuitem]")]
      .filter(visible)
      .filter((el) => !(nameOf(el) || "").trim())
      .map((el) => el.outerHTML.slice(0, 120));
  });
  check(unnamed.length === 0, `every control on ${where} has an accessible name ${unnamed.length ? JSON.stringify(unnamed) : ""}`);
}

async function fitsWidth(page, where) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `${where} fits a ${page.viewportSize().width}px window without sideways scrolling (overflow ${overflow}px)`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

const rowOf = (page, name) => page.getByRole("row").filter({ has: page.getByRole("link", { name, exact: true }) });

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "ec-console-"));
  const system = await startSystem(dir);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.setDefaultTimeout(15_000);
    const base = system.url.replace(/#.*$/, "");

    // --- signing in ------------------------------------------------------------------
    await page.goto(base);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("API key").fill("not-a-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: /./ }).waitFor();
    check(/key|credential|token/i.test(await page.locator("#sign-in-error").textContent()), "a wrong key is refused with a reason");
    await everyControlIsNamed(page, "the sign-in page");
    await page.goto(system.url); // the printed address carries the development token
    await page.getByRole("heading", { name: "Connectors" }).waitFor();
    check(!page.url().includes("token="), "the token leaves the address bar");

    // Where a day starts, in the page's own date code: a plain midnight, a
    // day whose clocks jump at 02:00, and one whose clocks jump at
    // midnight (Havana: the day starts at 01:00).
    const starts = await page.evaluate(async () => {
      const { startOfDay } = await import("/console/dates.js");
      return [["2026-11-30", "Asia/Tokyo"], ["2026-03-29", "Europe/Paris"], ["2026-03-08", "America/Havana"], ["2026-11-01", "America/Havana"]]
        .map(([date, zone]) => new Date(startOfDay(date, zone)).toISOString());
    });
    check(JSON.stringify(starts) === JSON.stringify([
      "2026-11-29T15:00:00.000Z", "2026-03-28T23:00:00.000Z", "2026-03-08T05:00:00.000Z", "2026-11-01T04:00:00.000Z",
    ]), `days start where the zone says, daylight-saving days included: ${starts}`);

    // --- the list ---------------------------------------------------------------------
    for (const name of ["Orders webhook (demo)", "Meta pixel (demo)"]) {
      await rowOf(page, name).waitFor();
      check(true, `the list shows the demo's ${name}`);
    }
    const webhookRow = rowOf(page, "Orders webhook (demo)");
    await page.waitForFunction(() => ![...document.querySelectorAll("td.number")].some((td) => td.textContent === "…"));
    check(/Active/.test(await webhookRow.textContent()), "the demo webhook is listed as active");
    await everyControlIsNamed(page, "the connector list");
    await shot(page, "01-connectors");

    // --- a new connector through the form ---------------------------------------------------
    await page.getByRole("link", { name: "New connector" }).click();
    await page.getByRole("heading", { name: "New event connector" }).waitFor();
    await page.getByLabel("Partner").selectOption({ label: "Meta Conversions API" });
    await page.getByLabel("Name").fill("Checkout pixel");
    check(await page.getByLabel("Workspace").inputValue() === "demo", "the workspace is suggested from the connectors the key sees");
    const token = page.getByLabel(/^access_token/);
    check(await token.getAttribute("type") === "password", "a secret is a write-only password field");
    await token.fill("EAAB-console-test-token");
    await page.getByRole("button", { name: "Create connector" }).click();
    const pixel = page.getByLabel(/^pixel_id/);
    await page.locator("[data-path='settings.pixel_id'][aria-invalid=true]").waitFor();
    const pixelError = await page.locator("#field-settings\\.pixel_id-error").textContent();
    check(pixelError.length > 0, `the missing pixel id is shown at its field: "${pixelError}"`);
    await everyControlIsNamed(page, "the new-connector form");
    await shot(page, "02-field-error");

    await pixel.fill("987654321");
    await page.getByRole("button", { name: "Preview" }).click();
    const body = page.getByLabel("Request body");
    await body.waitFor();
    const shown = await page.locator("main").textContent();
    check((await body.textContent()).includes("Purchase"), "the preview shows the request body Meta would get");
    check(shown.includes("987654321") && !shown.includes("EAAB-console-test-token"), "the preview names the pixel and hides the access token");
    await shot(page, "03-preview");

    // Test: Meta needs a test event code, then one test event is sent (to
    // the demo partner, which answers like the Conversions API).
    await page.getByRole("button", { name: "Test", exact: true }).click();
    await page.locator("[data-path='test_event_code'][aria-invalid=true]").waitFor();
    check((await page.locator("#field-test_event_code-error").textContent()).includes("test event code"), "a Meta test without a test event code is refused at that field");
    await page.getByLabel(/^Test event code/).fill("TEST123");
    await page.getByRole("button", { name: "Test", exact: true }).click();
    const verdict = page.locator("#test-result");
    await verdict.waitFor();
    const verdictText = await verdict.textContent();
    check(/Passed|Failed/.test(verdictText) && verdictText.includes("test_event_code TEST123"), `the test's verdict names the facility: ${verdictText.slice(0, 120)}`);
    check(!(await page.locator("main").textContent()).includes("EAAB-console-test-token"), "the test shows no secret");
    await shot(page, "03b-test");

    await page.getByRole("button", { name: "Create connector" }).click();
    await page.getByRole("heading", { name: "Connectors" }).waitFor();
    const created = rowOf(page, "Checkout pixel");
    await created.waitFor();
    check(/Active/.test(await created.textContent()), "the created connector is listed, active at once");

    // --- the "..." menu ---------------------------------------------------------------------
    const act = async (item) => {
      await page.getByRole("button", { name: "Actions for Checkout pixel" }).click();
      await page.getByRole("menuitem", { name: item }).click();
    };
    await act("Deactivate");
    await page.waitForFunction(() => [...document.querySelectorAll("tr")].some((tr) => tr.textContent.includes("Checkout pixel") && tr.textContent.includes("Inactive")));
    check(true, "Deactivate turns the connector inactive");
    await act("Activate");
    await page.waitForFunction(() => [...document.querySelectorAll("tr")].some((tr) => tr.textContent.includes("Checkout pixel") && tr.textContent.includes("Active") && !tr.textContent.includes("Inactive")));
    check(true, "Activate turns it active again");
    await act("Delete");
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    check(/erased permanently/.test(await dialog.textContent()), "Delete asks first and says the statistics are lost permanently");
    await shot(page, "04-delete-confirmation");
    await page.getByRole("button", { name: "Cancel" }).click();
    check(await rowOf(page, "Checkout pixel").count() === 1, "cancelling keeps the connector");
    await act("Delete");
    await page.getByRole("button", { name: "Delete connector" }).click();
    await rowOf(page, "Checkout pixel").waitFor({ state: "detached" });
    await page.reload();
    await rowOf(page, "Orders webhook (demo)").waitFor();
    check(await rowOf(page, "Checkout pixel").count() === 0, "the deleted connector is gone after a reload");

    // --- statistics -----------------------------------------------------------------------------
    await page.getByRole("link", { name: "Orders webhook (demo)" }).click();
    await page.getByRole("heading", { name: /Orders webhook/ }).waitFor();
    await page.locator("#range-shown").waitFor();
    for (const preset of ["Last 30 days", "Last 90 days", "Last 7 days"]) {
      const before = await page.locator("#range-shown").textContent();
      await page.getByRole("button", { name: preset }).click();
      await page.waitForFunction((old) => document.querySelector("#range-shown")?.textContent !== old || false, before)
        .catch(() => {});
      check(await page.getByRole("button", { name: preset }).getAttribute("aria-pressed") === "true", `the ${preset} preset is applied`);
      await page.getByRole("img", { name: /Chart over/ }).waitFor();
    }
    const days = Number((await page.getByRole("img", { name: /Chart over/ }).getAttribute("aria-label")).match(/over (\d+) days/)?.[1]);
    check(days >= 7 && days <= 8, `the 7-day chart has a point a day (${days})`);

    await page.getByLabel("Time zone").selectOption("Asia/Tokyo");
    await page.waitForFunction(() => document.querySelector("#range-shown")?.textContent.includes("Asia/Tokyo"));
    check(true, "the range is shown in the chosen time zone");

    const todayTokyo = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Tokyo" }).format(new Date());
    const twoDaysAgo = new Date(Date.parse(`${todayTokyo}T00:00:00Z`) - 2 * 86400e3).toISOString().slice(0, 10);
    await page.getByLabel("From").fill(todayTokyo);
    await page.getByLabel("To (inclusive)").fill(twoDaysAgo);
    await page.getByRole("button", { name: "Apply range" }).click();
    check((await page.locator("#range-error").textContent()).includes("on or before"), "a range that ends before it starts is refused at its fields");
    await page.getByLabel("From").fill(twoDaysAgo);
    await page.getByLabel("To (inclusive)").fill(todayTokyo);
    await page.getByRole("button", { name: "Apply range" }).click();
    await page.waitForFunction(() => /Chart over 3 days/.test(document.querySelector("[role=img]")?.getAttribute("aria-label") || ""));
    check(await page.getByRole("button", { name: "Last 7 days" }).getAttribute("aria-pressed") === "false", "a custom range of three days replaces the preset");
    const shownRange = await page.locator("#range-shown").textContent();
    check(shownRange.includes("00:00") && shownRange.includes("Asia/Tokyo"), `the custom range starts at midnight in Tokyo: ${shownRange}`);

    // The demo's events take a few seconds to fail and be counted.
    await page.getByRole("button", { name: "Last 7 days" }).click();
    let failed = 0;
    for (let tries = 0; tries < 30 && failed === 0; tries++) {
      await page.getByRole("button", { name: "Last 7 days" }).click();
      await page.locator(".total").first().waitFor();
      const text = await page.locator(".total").filter({ hasText: /^Failed/ }).textContent();
      failed = Number(text.replace(/\D/g, ""));
      if (failed === 0) await page.waitForTimeout(1000);
    }
    check(failed > 0, `the demo's failures are counted (${failed})`);
    const errorsPanel = page.getByRole("tabpanel");
    check(/Partner error|Timeout|Connection failure|Invalid credentials|Other/.test(await errorsPanel.textContent()), "the connector-errors tab groups failures with a sample message");
    await everyControlIsNamed(page, "the statistics page");
    await shot(page, "05-statistics");
    await page.getByRole("tab", { name: "Transformation errors" }).click();
    check(await page.getByRole("tab", { name: "Transformation errors" }).getAttribute("aria-selected") === "true", "the transformation-errors tab opens");
    await page.getByRole("tabpanel").filter({ hasText: /transformation|Target field/i }).waitFor();
    await shot(page, "06-transformation-errors");
    await page.getByRole("tab", { name: "Recent failures" }).click();
    const failures = page.getByRole("tabpanel").getByRole("row");
    await failures.nth(1).waitFor();
    check(await failures.count() > 1, `the recent failures list failed events (${(await failures.count()) - 1} shown)`);
    await shot(page, "07-recent-failures");
    await page.getByRole("tab", { name: "Connector errors" }).click();
    check(await page.getByRole("tab", { name: "Connector errors" }).getAttribute("aria-selected") === "true", "back on the connector-errors tab");

    // The stored webhook, tested: a signed request to the demo partner,
    // which verifies the signature (and now and then refuses an order).
    await page.getByRole("button", { name: "Send a test event" }).click();
    const storedVerdict = page.locator("#test-result");
    await storedVerdict.waitFor();
    const storedText = await storedVerdict.textContent();
    check(/Passed|Failed/.test(storedText) && storedText.includes("signed"), `the stored connector's test shows its verdict: ${storedText.slice(0, 100)}`);
    await fitsWidth(page, "the statistics page");

    // --- a narrow window ---------------------------------------------------------------------------
    await page.setViewportSize({ width: 390, height: 844 });
    await fitsWidth(page, "the statistics page");
    await shot(page, "08-statistics-narrow");
    await page.getByRole("link", { name: "← Connectors" }).click();
    await rowOf(page, "Orders webhook (demo)").waitFor();
    await fitsWidth(page, "the connector list");
    const menuBox = await page.getByRole("button", { name: "Actions for Orders webhook (demo)" }).boundingBox();
    check(menuBox && menuBox.x + menuBox.width <= 390, `a row's actions are in view on a narrow window (right edge ${menuBox && menuBox.x + menuBox.width}px)`);
    await shot(page, "09-connectors-narrow");
    await page.getByRole("link", { name: "New connector" }).click();
    await page.getByLabel("Partner").selectOption({ label: "Webhook" });
    await fitsWidth(page, "the new-connector form");
    await shot(page, "10-form-narrow");

    check(pageErrors.length === 0, `no script errors on the page ${pageErrors.join("; ")}`);
  } finally {
    await browser.close();
    system.child.kill("SIGTERM");
    await new Promise((resolve) => system.child.once("exit", resolve));
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`console: ${checks} checks passed; screenshots in ${artifacts}`);
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
