// The console's shell: who is signed in (an API key kept for this tab
// only), the calls it may make, the page for the address after `#`, and
// the small DOM helpers every page uses. Text from the server is only ever
// set as text, never parsed as markup.

import { call, loadSchema, CallError, UNAUTHENTICATED } from "./grpc.js";
import { connectorsPage, newConnectorPage, statsPage } from "./pages.js";

const CONNECTORS = "eventconnectors.v1.ConnectorService";
const STATS = "eventconnectors.v1.StatsService";
const V1 = "eventconnectors.v1.";

/** Every call the console makes: service, request type, response type. */
const RPCS = {
  ListPartners: [CONNECTORS, "ListPartnersRequest", "ListPartnersResponse"],
  ListConnectors: [CONNECTORS, "ListConnectorsRequest", "ListConnectorsResponse"],
  GetConnector: [CONNECTORS, "GetConnectorRequest", "Connector"],
  CreateConnector: [CONNECTORS, "CreateConnectorRequest", "Connector"],
  ActivateConnector: [CONNECTORS, "ActivateConnectorRequest", "Connector"],
  DeactivateConnector: [CONNECTORS, "DeactivateConnectorRequest", "Connector"],
  DeleteConnector: [CONNECTORS, "DeleteConnectorRequest", "DeleteConnectorResponse"],
  PreviewTransformation: [CONNECTORS, "PreviewTransformationRequest", "PreviewTransformationResponse"],
  TestConnector: [CONNECTORS, "TestConnectorRequest", "TestConnectorResponse"],
  GetConnectorStats: [STATS, "GetConnectorStatsRequest", "GetConnectorStatsResponse"],
  ListRecentFailures: [STATS, "ListRecentFailuresRequest", "ListRecentFailuresResponse"],
};

const TOKEN_KEY = "eventconnectors.token";

/** Calls `method` with the signed-in key; a refused key signs out. */
export async function api(method, request = {}) {
  const [service, input, output] = RPCS[method];
  const token = sessionStorage.getItem(TOKEN_KEY);
  try {
    return await call(service, method, V1 + input, V1 + output, request, token);
  } catch (error) {
    if (error instanceof CallError && error.code === UNAUTHENTICATED) {
      sessionStorage.removeItem(TOKEN_KEY);
      signIn("The key was refused: sign in again.");
    }
    throw error;
  }
}

/** An element: `h("a", {href: "#"}, "text", child)`. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replaces the page's content and moves focus to it. */
export function render(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
  main.focus({ preventScroll: true });
}

/** A short message at the bottom of the window, read out by screen readers. */
export function notice(message) {
  const box = document.getElementById("notice");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

/** Asks for confirmation in a modal dialog; resolves true when confirmed. */
export function confirmAction(title, text, action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

/** A failed call as a sentence for the page. */
export function describe(error) {
  return error instanceof CallError ? error.message : `Something went wrong: ${error.message}`;
}

function signIn(reason = "") {
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  // Not offered to the browser's password manager: the key stays in this tab.
  const key = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true });
  const problem = h("p", { class: "error", id: "sign-in-error", role: "alert" }, reason);
  const form = h("form", { class: "card", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("div", { class: "field" },
      h("label", { for: "api-key" }, "API key"),
      key,
      h("p", { class: "hint" }, "The admin token, or an API key of a workspace (its admin scope). It stays in this tab only."),
    ),
    problem,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, key.value.trim());
    try {
      await api("ListConnectors", { page_size: 1 });
      if (location.hash === "#/connectors") route();
      else location.hash = "#/connectors"; // routed by hashchange
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      problem.textContent = describe(error);
    }
  });
  render(form);
  key.focus();
}

/**
 * The one-command system prints an address with its development token
 * after `#token=`: taken once, then removed from the address bar (a
 * fragment is never sent to the server).
 */
function takeTokenFromAddress() {
  const given = location.hash.match(/^#token=(.+)$/);
  if (!given) return;
  history.replaceState(null, "", `${location.pathname}#/connectors`);
  // Never in place of a key already signed in: a link must not switch
  // someone to another workspace's key unawares.
  if (sessionStorage.getItem(TOKEN_KEY)) return;
  try {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(given[1]));
  } catch {
    // A malformed address: sign in by hand.
  }
}

async function route() {
  takeTokenFromAddress();
  if (!sessionStorage.getItem(TOKEN_KEY)) return signIn();
  document.getElementById("sign-out").hidden = false;
  document.getElementById("who").textContent = "Signed in with an API key";
  const path = location.hash.replace(/^#/, "") || "/connectors";
  const stats = path.match(/^\/connectors\/([0-9a-fA-F-]{36})$/);
  try {
    if (path === "/connectors/new") await newConnectorPage();
    else if (stats) await statsPage(stats[1]);
    else await connectorsPage();
  } catch (error) {
    if (!sessionStorage.getItem(TOKEN_KEY)) return;
    render(h("div", { class: "errors", role: "alert" }, describe(error)));
  }
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    history.replaceState(null, "", location.pathname);
    signIn("Signed out.");
  });
  try {
    await loadSchema();
  } catch (error) {
    render(h("div", { class: "errors", role: "alert" }, error.message));
    return;
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
