// The console's pages: the connector list, the new-connector form, and a
// connector's statistics. Each one reads through the same gRPC services
// and credentials as grpcurl would.

import { api, confirmAction, describe, h, notice, render } from "./app.js";
import { addDays, browserZone, show, startOfDay, timestamp, today, zones } from "./dates.js";

const count = (n) => new Intl.NumberFormat("en-US").format(n);

const STATUS_TEXT = { ACTIVE: "Active", INACTIVE: "Inactive" };

const CATEGORY_TEXT = {
  PARTNER_ERROR: "Partner error",
  INVALID_CREDENTIALS: "Invalid credentials",
  TIMEOUT: "Timeout",
  RESOURCE_ACCESS: "Connection failure",
  CIRCUIT_BREAKER: "Circuit breaker open",
  OTHER: "Other",
  ERROR_CATEGORY_UNSPECIFIED: "",
};

function statusBadge(status) {
  return h("span", { class: `status ${status}` }, STATUS_TEXT[status] || status);
}

// --- the "..." menu -----------------------------------------------------------------

/** Deactivate/Activate and Delete for `connector`; `done` runs after a change. */
function actionsMenu(connector, done) {
  const list = h("div", { role: "menu", hidden: true, "aria-label": `Actions for ${connector.name}` });
  const button = h("button", {
    type: "button", class: "quiet", "aria-haspopup": "menu", "aria-expanded": "false",
    "aria-label": `Actions for ${connector.name}`,
  }, "…");
  const close = () => {
    list.hidden = true;
    button.setAttribute("aria-expanded", "false");
    document.removeEventListener("click", outside, true);
  };
  const outside = (event) => { if (!menu.contains(event.target)) close(); };
  const item = (label, run) => h("button", {
    type: "button", role: "menuitem", tabindex: "-1",
    onclick: async () => {
      close();
      button.focus();
      try {
        await run();
      } catch (error) {
        notice(describe(error));
      }
    },
  }, label);
  const active = connector.status === "ACTIVE";
  list.append(
    active
      ? item("Deactivate", async () => {
        await api("DeactivateConnector", { id: connector.id });
        notice(`${connector.name} deactivated: nothing is sent until it is activated.`);
        await done("changed");
      })
      : item("Activate", async () => {
        await api("ActivateConnector", { id: connector.id });
        notice(`${connector.name} activated.`);
        await done("changed");
      }),
    item("Delete", async () => {
      const sure = await confirmAction(
        `Delete ${connector.name}?`,
        "Delivery stops on every node at once, and the connector's statistics are erased permanently: they cannot be recovered.",
        "Delete connector",
      );
      if (!sure) return;
      await api("DeleteConnector", { id: connector.id });
      notice(`${connector.name} deleted, with its statistics.`);
      await done("deleted");
    }),
  );
  const items = () => [...list.querySelectorAll("[role=menuitem]")];
  button.addEventListener("click", () => {
    if (!list.hidden) return close();
    list.hidden = false;
    button.setAttribute("aria-expanded", "true");
    items()[0].focus();
    document.addEventListener("click", outside, true);
  });
  list.addEventListener("keydown", (event) => {
    const all = items();
    const at = all.indexOf(document.activeElement);
    if (event.key === "Escape") { close(); button.focus(); }
    if (event.key === "ArrowDown") { event.preventDefault(); all[(at + 1) % all.length].focus(); }
    if (event.key === "ArrowUp") { event.preventDefault(); all[(at - 1 + all.length) % all.length].focus(); }
  });
  const menu = h("div", { class: "menu" }, button, list);
  return menu;
}

// --- the connector list ----------------------------------------------------------------

/** Every connector the key can see (a workspace key: its own). */
async function allConnectors() {
  const connectors = [];
  let page_token = "";
  do {
    const page = await api("ListConnectors", { page_size: 500, page_token });
    connectors.push(...page.connectors);
    page_token = page.next_page_token;
  } while (page_token && connectors.length < 5000);
  return connectors;
}

/** Runs `tasks` (functions returning promises), at most `width` at a time. */
async function pooled(tasks, width) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(width, tasks.length) }, worker));
}

export async function connectorsPage() {
  const [{ partners }, connectors] = await Promise.all([api("ListPartners"), allConnectors()]);
  const partnerName = Object.fromEntries(partners.map((p) => [p.id, p.display_name]));
  // Each row's 7-day summary, six calls at a time.
  const summaries = [];
  const rows = connectors.map((connector) => {
    const delivered = h("td", { class: "number" }, "…");
    const failed = h("td", { class: "number" }, "…");
    summaries.push(() => api("GetConnectorStats", { connector_id: connector.id, preset: "LAST_7_DAYS", time_zone: browserZone() })
      .then(({ totals }) => {
        delivered.textContent = count(totals?.delivered ?? 0);
        failed.textContent = count((totals?.failed ?? 0) + (totals?.transformation_errors ?? 0));
      })
      .catch((error) => {
        delivered.textContent = "—";
        failed.textContent = "—";
        delivered.title = describe(error);
      }));
    return h("tr", {},
      h("td", {}, h("a", { href: `#/connectors/${connector.id}` }, connector.name)),
      h("td", { class: "hide-narrow" }, partnerName[connector.partner] || connector.partner),
      h("td", { class: "hide-narrow" }, connector.workspace_id),
      h("td", {}, statusBadge(connector.status)),
      delivered,
      failed,
      h("td", {}, actionsMenu(connector, () => connectorsPage())));
  });
  render(
    h("div", { class: "row spread" },
      h("h1", {}, "Connectors"),
      h("a", { class: "button", href: "#/connectors/new" }, "New connector")),
    connectors.length === 0
      ? h("p", { class: "card" }, "No connectors yet. Create one to start forwarding events.")
      : h("div", { class: "card table-wrap" },
        h("table", {},
          h("caption", { class: "muted" }, "Delivered and failed: the last 7 days (failed includes transformation errors)."),
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Name"),
            h("th", { scope: "col", class: "hide-narrow" }, "Partner"),
            h("th", { scope: "col", class: "hide-narrow" }, "Workspace"),
            h("th", { scope: "col" }, "Status"),
            h("th", { scope: "col", class: "number" }, "Delivered"),
            h("th", { scope: "col", class: "number" }, "Failed"),
            h("th", { scope: "col" }, h("span", { class: "muted" }, "Actions")))),
          h("tbody", {}, rows))),
  );
  pooled(summaries, 6);
}

// --- the new-connector form ---------------------------------------------------------------

const SAMPLE_EVENT = {
  id: "evt-sample-1",
  type: "Purchase",
  timestamp: new Date().toISOString(),
  properties: { total: "19.99", currency: "EUR" },
  user: { email: "jane@example.com" },
};

/** A labelled input whose errors show beneath it; `path` is the API's field path. */
function field(path, label, control, hint) {
  const id = `field-${path}`;
  control.id = id;
  control.dataset.path = path;
  const error = h("p", { class: "error", id: `${id}-error`, hidden: true });
  const hintElement = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  control.setAttribute("aria-describedby", [hintElement && hintElement.id, error.id].filter(Boolean).join(" "));
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintElement, error);
}

/** Shows `violations` beside their fields; the rest in `summary`. */
function showViolations(form, summary, violations, prefix) {
  for (const error of form.querySelectorAll(".error")) { error.hidden = true; error.textContent = ""; }
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
  const unplaced = [];
  let first = null;
  for (const { field: path, description } of violations) {
    const own = path.startsWith(prefix) ? path.slice(prefix.length) : path;
    const control = form.querySelector(`[data-path="${CSS.escape(own)}"]`);
    if (!control) { unplaced.push(`${path}: ${description}`); continue; }
    control.setAttribute("aria-invalid", "true");
    const error = document.getElementById(`${control.id}-error`);
    error.textContent = error.textContent ? `${error.textContent} ${description}` : description;
    error.hidden = false;
    first = first || control;
  }
  summary.replaceChildren();
  summary.hidden = violations.length === 0;
  if (violations.length) {
    summary.append(h("p", {}, `${violations.length === 1 ? "One field needs" : `${violations.length} fields need`} attention.`));
    if (unplaced.length) summary.append(h("ul", {}, unplaced.map((text) => h("li", {}, text))));
  }
  (first || summary).focus?.();
}

export async function newConnectorPage() {
  const { partners } = await api("ListPartners");
  const requestId = crypto.randomUUID();
  const partner = h("select", {}, h("option", { value: "" }, "Choose a partner"),
    partners.map((p) => h("option", { value: p.id }, p.display_name)));
  const workspace = h("input", { type: "text", autocomplete: "off", "aria-required": "true" });
  const name = h("input", { type: "text", autocomplete: "off", "aria-required": "true" });
  const settings = h("fieldset", { class: "card", hidden: true },
    h("legend", {}, "Settings"));
  const summary = h("div", { class: "errors", role: "alert", tabindex: "-1", hidden: true });
  const sample = h("textarea", { spellcheck: "false" }, JSON.stringify(SAMPLE_EVENT, null, 2));
  const preview = h("section", { "aria-live": "polite", "aria-label": "Preview result" });
  const form = h("form", { novalidate: true, "aria-labelledby": "new-title" });

  // Suggest the workspace of the connectors this key already sees.
  api("ListConnectors", { page_size: 1 }).then(({ connectors }) => {
    if (connectors[0] && !workspace.value) workspace.value = connectors[0].workspace_id;
  }).catch(() => {});

  partner.addEventListener("change", () => {
    const chosen = partners.find((p) => p.id === partner.value);
    settings.replaceChildren(h("legend", {}, chosen ? `${chosen.display_name} settings` : "Settings"));
    settings.hidden = !chosen;
    if (!chosen) return;
    settings.append(h("p", { class: "hint" }, chosen.description));
    for (const setting of chosen.settings) {
      if (setting.name.endsWith(".*")) continue; // prefixed extras (headers): through the API
      const where = setting.secret ? "secrets" : "settings";
      const input = h("input", {
        type: setting.secret ? "password" : "text",
        autocomplete: "off",
        "aria-required": setting.required ? "true" : "false",
        "data-kind": where,
        "data-name": setting.name,
      });
      const label = `${setting.name}${setting.required ? " (required)" : " (optional)"}${setting.secret ? ", secret" : ""}`;
      const hint = setting.secret
        ? `${setting.description} Write-only: it is stored encrypted and never shown again.`
        : setting.description;
      settings.append(field(`${where}.${setting.name}`, label, input, hint));
    }
  });

  const draft = () => {
    const connector = { workspace_id: workspace.value.trim(), name: name.value, partner: partner.value, settings: {}, secrets: {} };
    for (const input of settings.querySelectorAll("input[data-kind]")) {
      if (input.value !== "") connector[input.dataset.kind][input.dataset.name] = input.value;
    }
    return connector;
  };

  /** A button that runs `call` on the draft and shows its answer with `shown`. */
  const draftAction = (label, waiting, call, shown) => {
    const button = h("button", { type: "button", class: "quiet" }, label);
    button.addEventListener("click", async () => {
      button.disabled = true;
      preview.replaceChildren(h("p", { class: "loading" }, waiting));
      try {
        const result = await call(draft());
        showViolations(form, summary, [], "");
        preview.replaceChildren(shown(result));
      } catch (error) {
        preview.replaceChildren();
        if (error.violations?.length) showViolations(form, summary, error.violations, "draft.");
        else preview.replaceChildren(h("div", { class: "errors", role: "alert" }, describe(error)));
      } finally {
        button.disabled = false;
      }
    });
    return button;
  };
  const testCode = h("input", { type: "text", autocomplete: "off" });
  const previewButton = draftAction("Preview", "Computing the request…",
    (connector) => api("PreviewTransformation", { draft: connector, event_json: sample.value }), previewResult);
  const testButton = draftAction("Test", "Sending one test event to the partner…",
    (connector) => api("TestConnector", { draft: connector, event_json: sample.value, test_event_code: testCode.value.trim() }),
    testResult);

  const createButton = h("button", { type: "submit" }, "Create connector");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    createButton.disabled = true;
    try {
      const created = await api("CreateConnector", { connector: draft(), request_id: requestId });
      notice(`${created.name} created: it is active on every node.`);
      location.hash = "#/connectors";
    } catch (error) {
      if (error.violations?.length) showViolations(form, summary, error.violations, "connector.");
      else showViolations(form, summary, [{ field: "", description: describe(error) }], "");
    } finally {
      createButton.disabled = false;
    }
  });

  form.append(
    h("h1", { id: "new-title" }, "New event connector"),
    summary,
    h("div", { class: "card" },
      field("partner", "Partner", partner),
      field("workspace_id", "Workspace", workspace, "The workspace whose events this connector receives."),
      field("name", "Name", name)),
    settings,
    h("section", { class: "card", "aria-labelledby": "preview-title" },
      h("h2", { id: "preview-title" }, "Preview or test before saving"),
      field("event_json", "Sample event (JSON)", sample, "A raw event as producers send it. Preview sends nothing; Test sends it once to the partner's test facility."),
      field("test_event_code", "Test event code (Meta, TikTok, Snapchat)", testCode, "From the partner's test events tool. Meta and TikTok are tested only with one."),
      h("div", { class: "row" }, previewButton, testButton),
      preview),
    h("div", { class: "row" }, createButton, h("a", { href: "#/connectors" }, "Cancel")),
  );
  render(form);
}

const OUTCOME_TEXT = {
  DELIVERED: "Passed: the partner accepted the test event.",
  FAILED: "Failed: the partner refused the test event, or it could not be sent.",
  TRANSFORMATION_ERROR: "Not sent: a mapped field cannot be filled.",
  OUTCOME_UNSPECIFIED: "Not sent: the connector's filter leaves this event out.",
};

function testResult(result) {
  const passed = result.outcome === "DELIVERED";
  const details = [
    ["Facility", result.facility],
    ["Category", result.outcome === "FAILED" ? CATEGORY_TEXT[result.category] || result.category : ""],
    ["Partner code", result.partner_code],
    ["HTTP status", result.http_status ? String(result.http_status) : ""],
    ["Partner answer", result.message],
  ].filter(([, value]) => value);
  return h("div", { class: passed ? "card" : "errors", role: passed ? "status" : "alert", id: "test-result" },
    h("p", {}, h("strong", {}, OUTCOME_TEXT[result.outcome] || result.outcome)),
    h("dl", {}, details.flatMap(([name, value]) => [h("dt", {}, name), h("dd", { class: "message" }, value)])),
    result.validation_messages.length
      ? h("ul", { "aria-label": "Validation messages" }, result.validation_messages.map((m) => h("li", {}, m)))
      : null,
    result.request ? h("pre", { "aria-label": "Test request sent" }, `${result.request.method} ${result.request.url}\n\n${result.request.body}`) : null);
}

function previewResult(result) {
  if (!result.matches_filter) return h("p", {}, "The connector's filter leaves this event out: nothing would be sent.");
  if (result.transformation_errors.length) {
    return h("div", { class: "errors" },
      h("p", {}, "Nothing would be sent: a mapped field cannot be filled."),
      h("ul", {}, result.transformation_errors.map((e) => h("li", {}, `${e.target_field}: ${e.reason}`))));
  }
  const request = result.request;
  const headers = Object.entries(request.headers).map(([k, v]) => `${k}: ${v}`).join("\n");
  let body = request.body;
  try { body = JSON.stringify(JSON.parse(body), null, 2); } catch { /* shown as sent */ }
  return h("div", {},
    h("p", {}, "The partner would get this request (secrets shown as ***):"),
    h("pre", { "aria-label": "Request line and headers" }, `${request.method} ${request.url}\n${headers}`),
    h("pre", { "aria-label": "Request body" }, body));
}

// --- statistics -------------------------------------------------------------------------------

const PRESETS = [["LAST_7_DAYS", "Last 7 days"], ["LAST_30_DAYS", "Last 30 days"], ["LAST_90_DAYS", "Last 90 days"]];
const SERIES = [["delivered", "Delivered"], ["failed", "Failed"], ["transformation_errors", "Transformation errors"]];

function chart(stats, zone) {
  const points = stats.series.map((p) => ({ at: timestamp.toMs(p.start), ...p.totals }));
  const width = 800, height = 220, left = 48, bottom = 28, top = 10;
  const peak = Math.max(1, ...points.flatMap((p) => SERIES.map(([k]) => p[k] ?? 0)));
  const right = 36; // room for the last label
  const x = (i) => left + (points.length <= 1 ? 0 : (i * (width - left - right)) / (points.length - 1));
  const y = (v) => top + (height - top - bottom) * (1 - v / peak);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  const node = (tag, attributes, text) => {
    const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attributes)) element.setAttribute(k, v);
    if (text !== undefined) element.textContent = text;
    svg.append(element);
  };
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const totals = stats.totals || {};
  svg.setAttribute("aria-label", `Chart over ${points.length} ${stats.granularity === "HOUR" ? "hours" : "days"}: `
    + SERIES.map(([k, label]) => `${label.toLowerCase()} ${count(totals[k] ?? 0)}`).join(", "));
  for (const fraction of [0, 0.5, 1]) {
    const value = Math.round(peak * fraction);
    node("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), stroke: "#d9dde5" });
    node("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", "font-size": 11, fill: "#5b6475" }, count(value));
  }
  const precision = stats.granularity === "HOUR" ? "hour" : "day";
  const labels = Math.min(points.length, 6);
  for (let n = 0; n < labels; n++) {
    const i = labels === 1 ? 0 : Math.round((n * (points.length - 1)) / (labels - 1));
    node("text", { x: x(i), y: height - 8, "text-anchor": "middle", "font-size": 11, fill: "#5b6475" }, show(points[i].at, zone, precision));
  }
  const colors = { delivered: "#1a7f37", failed: "#c2261b", transformation_errors: "#9a6700" };
  for (const [key] of SERIES) {
    node("polyline", {
      points: points.map((p, i) => `${x(i)},${y(p[key] ?? 0)}`).join(" "),
      fill: "none", stroke: colors[key], "stroke-width": 2,
    });
  }
  return h("div", { class: "chart" }, svg,
    h("div", { class: "legend", "aria-hidden": "true" },
      SERIES.map(([key, label]) => h("span", {}, h("span", { class: `swatch ${key}` }), label))));
}

function table(caption, columns, rows, empty) {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h("div", { class: "table-wrap" }, h("table", {},
    h("caption", { class: "muted" }, caption),
    h("thead", {}, h("tr", {}, columns.map(([label, cls]) => h("th", { scope: "col", class: cls }, label)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) => h("td", { class: columns[i][1] }, cell)))))));
}

function recentFailures(connectorId, zone) {
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  const rows = [];
  const more = h("button", { type: "button", class: "quiet", hidden: true }, "Load more");
  let token = "";
  const load = async () => {
    more.disabled = true;
    try {
      const page = await api("ListRecentFailures", { connector_id: connectorId, page_size: 20, page_token: token });
      token = page.next_page_token;
      rows.push(...page.failures.map((f) => [
        show(timestamp.toMs(f.at), zone),
        h("code", {}, f.event_id),
        f.outcome === "TRANSFORMATION_ERROR" ? `Transformation: ${f.target_field}` : CATEGORY_TEXT[f.category] || f.category,
        f.partner_code || f.reason || "",
        String(f.attempts),
        h("span", { class: "message" }, f.message),
      ]));
      body.replaceChildren(table("The newest failed events first (the last 100 are kept).",
        [["When"], ["Event id"], ["What"], ["Code or reason"], ["Attempts", "number"], ["Partner answer"]],
        rows, "No failed events are recorded for this connector."));
      more.hidden = !token;
    } catch (error) {
      body.replaceChildren(h("div", { class: "errors", role: "alert" }, describe(error)));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  load();
  return h("div", {}, body, more);
}

function tabs(panels) {
  const list = h("div", { role: "tablist", "aria-label": "Errors" });
  const views = [];
  panels.forEach(([id, label, content], i) => {
    const tab = h("button", {
      type: "button", role: "tab", id: `tab-${id}`, "aria-controls": `panel-${id}`,
      "aria-selected": i === 0 ? "true" : "false", tabindex: i === 0 ? "0" : "-1",
    }, label);
    const panel = h("div", { role: "tabpanel", id: `panel-${id}`, "aria-labelledby": `tab-${id}`, hidden: i !== 0 });
    let filled = false;
    const select = () => {
      for (const other of list.children) { other.setAttribute("aria-selected", "false"); other.tabIndex = -1; }
      for (const view of views) view.hidden = true;
      tab.setAttribute("aria-selected", "true");
      tab.tabIndex = 0;
      panel.hidden = false;
      if (!filled) { panel.append(content()); filled = true; }
    };
    tab.addEventListener("click", select);
    tab.addEventListener("keydown", (event) => {
      const all = [...list.children];
      const at = all.indexOf(tab);
      const next = event.key === "ArrowRight" ? all[(at + 1) % all.length] : event.key === "ArrowLeft" ? all[(at - 1 + all.length) % all.length] : null;
      if (next) { next.focus(); next.click(); }
    });
    if (i === 0) { panel.append(content()); filled = true; }
    list.append(tab);
    views.push(panel);
  });
  return h("div", { class: "card" }, list, views);
}

export async function statsPage(id) {
  const connector = await api("GetConnector", { id });
  const state = { preset: "LAST_7_DAYS", from: "", to: "", zone: browserZone() };
  const output = h("div", { "aria-live": "polite" });
  const presetButtons = PRESETS.map(([preset, label]) => h("button", {
    type: "button", class: "quiet", "aria-pressed": String(preset === state.preset),
    onclick: () => { state.preset = preset; load(); },
  }, label));
  const zone = h("select", { id: "time-zone" }, zones().map((z) => h("option", { value: z, selected: z === state.zone }, z)));
  zone.addEventListener("change", () => { state.zone = zone.value; load(); });
  const from = h("input", { type: "date", id: "range-from", value: addDays(today(state.zone), -13) });
  const to = h("input", { type: "date", id: "range-to", value: today(state.zone) });
  const rangeError = h("p", { class: "error", id: "range-error", role: "alert" });
  from.setAttribute("aria-describedby", rangeError.id);
  to.setAttribute("aria-describedby", rangeError.id);
  const custom = h("form", { class: "row", novalidate: true, "aria-label": "Custom range" },
    h("div", { class: "field" }, h("label", { for: "range-from" }, "From"), from),
    h("div", { class: "field" }, h("label", { for: "range-to" }, "To (inclusive)"), to),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Apply range")));
  custom.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!from.value || !to.value || from.value > to.value) {
      rangeError.textContent = "Choose a start date on or before the end date.";
      return;
    }
    rangeError.textContent = "";
    state.preset = "";
    state.from = from.value;
    state.to = to.value;
    load();
  });

  let shown = 0; // the latest load: an older answer arriving late is dropped
  async function load() {
    const mine = ++shown;
    for (const [i, [preset]] of PRESETS.entries()) presetButtons[i].setAttribute("aria-pressed", String(preset === state.preset));
    const request = { connector_id: id, time_zone: state.zone };
    if (state.preset) request.preset = state.preset;
    else {
      request.from = timestamp.fromMs(startOfDay(state.from, state.zone));
      request.to = timestamp.fromMs(startOfDay(addDays(state.to, 1), state.zone));
    }
    output.replaceChildren(h("p", { class: "loading" }, "Loading statistics…"));
    try {
      const stats = await api("GetConnectorStats", request);
      if (mine !== shown) return;
      const totals = stats.totals || {};
      const range = `${show(timestamp.toMs(stats.from), state.zone)} – ${show(timestamp.toMs(stats.to), state.zone)} (${state.zone})`;
      output.replaceChildren(
        h("p", { class: "muted", id: "range-shown" }, range),
        h("div", { class: "totals" },
          [...SERIES, ["dropped", "Dropped"]].map(([key, label]) => h("div", { class: "total" }, label, h("strong", {}, count(totals[key] ?? 0))))),
        h("div", { class: "card" }, chart(stats, state.zone)),
        tabs([
          ["connector-errors", "Connector errors", () => table("Failed deliveries grouped by category and partner code.",
            [["Category"], ["Partner code"], ["Events", "number"], ["Sample message"]],
            stats.connector_errors.map((g) => [CATEGORY_TEXT[g.category] || g.category, g.partner_code, count(g.count), h("span", { class: "message" }, g.sample_message)]),
            "No failed deliveries in this range.")],
          ["transformation-errors", "Transformation errors", () => table("Events not sent because a mapped field could not take its datatype.",
            [["Target field"], ["Reason"], ["Events", "number"], ["Sample message"]],
            stats.transformation_errors.map((g) => [h("code", {}, g.target_field), g.reason, count(g.count), h("span", { class: "message" }, g.sample_message)]),
            "No transformation errors in this range.")],
          ["recent-failures", "Recent failures", () => recentFailures(id, state.zone)],
        ]),
      );
    } catch (error) {
      if (mine === shown) output.replaceChildren(h("div", { class: "errors", role: "alert" }, describe(error)));
    }
  }

  const testCode = h("input", { type: "text", id: "stored-test-code", autocomplete: "off" });
  const testOutput = h("div", { "aria-live": "polite" });
  const testButton = h("button", { type: "submit", class: "quiet" }, "Send a test event");
  const testForm = h("form", { class: "card", novalidate: true, "aria-labelledby": "test-title" },
    h("h2", { id: "test-title" }, "Test this connector"),
    h("p", { class: "hint" }, "Sends one sample purchase to the partner's test facility (nothing is counted here)."),
    h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "stored-test-code" }, "Test event code (Meta, TikTok, Snapchat)"), testCode),
      h("div", { class: "field" }, testButton)),
    testOutput);
  testForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    testButton.disabled = true;
    testOutput.replaceChildren(h("p", { class: "loading" }, "Sending one test event to the partner…"));
    try {
      testOutput.replaceChildren(testResult(await api("TestConnector", { connector_id: id, test_event_code: testCode.value.trim() })));
    } catch (error) {
      const why = error.violations?.length ? error.violations.map((v) => v.description).join(" ") : describe(error);
      testOutput.replaceChildren(h("div", { class: "errors", role: "alert" }, why));
    } finally {
      testButton.disabled = false;
    }
  });

  render(
    h("p", {}, h("a", { href: "#/connectors" }, "← Connectors")),
    h("div", { class: "row spread" },
      h("h1", {}, connector.name, " ", statusBadge(connector.status)),
      actionsMenu(connector, (what) => (what === "deleted" ? (location.hash = "#/connectors") : statsPage(id)))),
    h("p", { class: "muted" }, `${connector.partner} · workspace ${connector.workspace_id} · ${connector.id}`),
    h("section", { class: "card", "aria-label": "Range" },
      h("div", { class: "row" },
        h("div", { role: "group", "aria-label": "Preset ranges", class: "row" }, presetButtons),
        h("div", { class: "field" }, h("label", { for: "time-zone" }, "Time zone"), zone)),
      custom,
      rangeError),
    output,
    testForm,
  );
  await load();
}
