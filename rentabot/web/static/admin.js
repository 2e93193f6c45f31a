// Admin controls: the admin token, and the admin buttons in each resource row.
//
// The token is kept in sessionStorage, so it lasts as long as the browser tab and never
// reaches localStorage or a URL. It is sent in the X-API-Key header. Before the buttons
// show, the page checks the token with GET /api/v1/audit?limit=1, which only
// administrators may read: 200 means the admin token, 403 a user token, 401 an unknown
// one. With authentication off (the template sets data-authentication="off") the
// service treats every caller as an administrator, so any token passes, and force
// unlock is not offered because it needs authentication.

import {
  askForceUnlock,
  askMarkAvailable,
  askMarkUnavailable,
  closeAdminDialogs,
  initAdminActions,
} from "./admin-actions.js";
import { element, focusNearestButton } from "./dom.js";

const STORAGE_KEY = "rentabot-admin-token";
const CHECK_URL = "/api/v1/audit?limit=1";

const session = { token: null, authenticationOff: false, checking: false };
let onAdminChange = () => {};
const ui = {};

export function initAdminControls(options) {
  onAdminChange = options.onAdminChange;
  initAdminActions({
    getToken: () => session.token,
    onTokenRejected: forgetRejectedToken,
    onResourceChanged: options.onResourceChanged,
  });

  for (const id of [
    "admin-controls",
    "admin-entry",
    "admin-state",
    "admin-sign-in",
    "admin-token",
    "admin-session",
    "admin-session-text",
    "forget-token",
    "admin-login-status",
    "admin-login-error",
  ]) {
    ui[id] = document.getElementById(id);
  }
  session.authenticationOff = ui["admin-controls"].dataset.authentication === "off";
  if (session.authenticationOff) {
    ui["admin-sign-in"].querySelector(".hint").textContent =
      "Authentication is off on this service, so any token turns the admin controls on.";
  }
  ui["admin-sign-in"].addEventListener("submit", signIn);
  ui["forget-token"].addEventListener("click", forgetToken);
  // Without JavaScript the controls could not work, so the template keeps them hidden.
  ui["admin-controls"].hidden = false;

  const stored = readStoredToken();
  if (stored !== null) {
    resumeStoredToken(stored);
  }
}

// Signing in and out

async function signIn(event) {
  // The form is never submitted, so the token never goes into a URL or a request body.
  event.preventDefault();
  if (session.checking) {
    return;
  }
  const candidate = ui["admin-token"].value.trim();
  showLoginMessages("", "");
  if (candidate === "") {
    showLoginMessages("", "Enter the admin token.");
    return;
  }

  session.checking = true;
  const verdict = await checkToken(candidate);
  session.checking = false;
  if (verdict.role !== "admin") {
    showLoginMessages("", verdict.message);
    ui["admin-token"].select();
    return;
  }

  ui["admin-token"].value = "";
  storeToken(candidate);
  enableControls(candidate);
  showLoginMessages("Admin controls are on: each resource row now has its admin actions.", "");
  ui["forget-token"].focus();
}

async function resumeStoredToken(stored) {
  const verdict = await checkToken(stored);
  if (verdict.role === "admin") {
    enableControls(stored);
    return;
  }
  if (verdict.role === null) {
    // The service could not be asked. Keep the token, so a reload can try again.
    showLoginMessages(
      "",
      `The admin token kept in this tab could not be checked. ${verdict.message}`,
    );
    return;
  }
  removeStoredToken();
  showLoginMessages(
    "",
    `The admin token kept in this tab was rejected, so the page forgot it. ${verdict.message}`,
  );
}

function forgetToken() {
  removeStoredToken();
  disableControls();
  showLoginMessages("Admin token forgotten. The admin controls are hidden.", "");
  ui["admin-token"].focus();
}

// Called when an admin request got 401: the service no longer accepts the token.
function forgetRejectedToken() {
  removeStoredToken();
  disableControls();
  showLoginMessages(
    "",
    "The service rejected the admin token, so the page forgot it. Enter the admin token " +
      "again to use the admin controls.",
  );
  ui["admin-entry"].open = true;
  ui["admin-token"].focus();
}

function enableControls(token) {
  session.token = token;
  ui["admin-sign-in"].hidden = true;
  ui["admin-session"].hidden = false;
  ui["admin-state"].textContent = "(on)";
  ui["admin-session-text"].textContent = session.authenticationOff
    ? "Authentication is off on this service, so every caller may use these controls. " +
      "Force unlock needs authentication on, so it is not offered."
    : "The admin token is in use in this browser tab.";
  onAdminChange(true);
}

function disableControls() {
  session.token = null;
  closeAdminDialogs();
  ui["admin-sign-in"].hidden = false;
  ui["admin-session"].hidden = true;
  ui["admin-state"].textContent = "";
  onAdminChange(false);
}

function showLoginMessages(status, error) {
  ui["admin-login-status"].textContent = status;
  ui["admin-login-error"].textContent = error;
}

// Checking a token

// Returns { role: "admin" | "user" | "unknown" | null, message }, where role null
// means that the service could not be asked.
async function checkToken(candidate) {
  let response;
  try {
    response = await fetch(CHECK_URL, { headers: { "X-API-Key": candidate }, cache: "no-store" });
  } catch (error) {
    return { role: null, message: `The service did not respond (${error.message}). Try again.` };
  }
  if (response.status === 401) {
    return {
      role: "unknown",
      message:
        "This token matches no token configured on the service. Check it and enter it " +
        "again. Nothing was changed.",
    };
  }
  if (response.status === 403) {
    return {
      role: "user",
      message:
        "This is a user token, and the admin controls need the admin token. " +
        "Nothing was changed.",
    };
  }
  if (!response.ok) {
    return {
      role: null,
      message: `GET ${CHECK_URL} failed with HTTP ${response.status}. Try again.`,
    };
  }
  return { role: "admin", message: "" };
}

// sessionStorage throws when the browser blocks storage. The token then lasts until
// the page is reloaded.

function readStoredToken() {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

function storeToken(token) {
  try {
    sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // Kept in memory only.
  }
}

function removeStoredToken() {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing was stored.
  }
}

// Buttons in each resource row

const ROW_ACTIONS = [
  {
    name: "unavailable",
    text: "Mark unavailable",
    ask: askMarkUnavailable,
    isOffered: (resource) => resource.unavailable !== true,
  },
  {
    // A maintenance window is ended by deleting it, not by marking the resource available.
    name: "available",
    text: "Mark available",
    ask: askMarkAvailable,
    isOffered: (resource) =>
      resource.unavailable === true && resource.unavailable_source !== "maintenance",
  },
  {
    name: "unlock",
    text: "Force unlock",
    ask: askForceUnlock,
    isOffered: (resource) => !session.authenticationOff && Boolean(resource["lock-expires-at"]),
  },
];

// The latest resource shown by each row's button group, for the dialogs to describe.
const groupResources = new WeakMap();

// Fills a row's admin cell. The buttons are kept from one update to the next, and
// only shown or hidden, so keyboard focus stays on them while the row changes.
export function fillRowControls(cell, resource) {
  if (session.token === null) {
    if (cell.firstChild !== null) {
      cell.replaceChildren();
    }
    return;
  }
  let group = cell.firstElementChild;
  if (group === null) {
    group = createRowControls();
    cell.append(group);
  }
  groupResources.set(group, resource);
  updateRowControls(group, resource);
}

function createRowControls() {
  const group = element("span", "row-actions");
  for (const action of ROW_ACTIONS) {
    const button = element("button", `row-action action-${action.name}`, action.text);
    button.type = "button";
    button.dataset.action = action.name;
    button.addEventListener("click", () => action.ask(groupResources.get(group), button));
    group.append(button);
  }
  return group;
}

function updateRowControls(group, resource) {
  const focused = group.contains(document.activeElement) ? document.activeElement : null;
  ROW_ACTIONS.forEach((action, index) => {
    const button = group.children[index];
    button.hidden = !action.isOffered(resource);
    // The name makes each button unique for screen readers and voice control.
    button.setAttribute("aria-label", `${action.text}: ${resource.name}`);
  });
  // A button that disappears under keyboard focus hands it to the next action.
  if (focused !== null && focused.hidden) {
    focusNearestButton(focused);
  }
}
