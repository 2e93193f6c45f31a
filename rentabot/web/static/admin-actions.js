// Admin actions on one resource: their dialogs, their requests and their results.
//
// Each action needs confirmation in a dialog: "mark unavailable" in one with a reason
// and an optional until time, the others in a plain confirmation dialog. The request
// goes out when the dialog is submitted. The dialog stays open until the request
// succeeds, so an error shows next to the input that caused it. Results, and errors
// that arrive after the dialog was closed, show in the feedback bar at the bottom of
// the window.

import { formatDateTime, localDateTimeToIso } from "./clock.js";
import { focusNearestButton } from "./dom.js";

let getToken = () => null;
let onTokenRejected = () => {};
let onResourceChanged = () => {};

// The action whose dialog was opened last: { dialog, opener, resourceId, failure, run, busy }.
let current = null;

const ui = {};

export function initAdminActions(options) {
  getToken = options.getToken;
  onTokenRejected = options.onTokenRejected;
  onResourceChanged = options.onResourceChanged;

  for (const id of [
    "unavailable-dialog",
    "unavailable-title",
    "unavailable-reason",
    "unavailable-until",
    "unavailable-zone",
    "confirm-dialog",
    "confirm-title",
    "confirm-text",
    "confirm-button",
    "admin-feedback",
    "admin-result",
    "admin-failure",
    "dismiss-feedback",
  ]) {
    ui[id] = document.getElementById(id);
  }

  for (const dialog of [ui["unavailable-dialog"], ui["confirm-dialog"]]) {
    dialog.querySelector("form").addEventListener("submit", submitCurrentAction);
    dialog.querySelector(".dialog-cancel").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", onDialogClosed);
  }
  ui["dismiss-feedback"].addEventListener("click", clearFeedback);

  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  ui["unavailable-zone"].textContent = `The time is in this browser's time zone, ${zone}.`;
}

export function closeAdminDialogs() {
  for (const dialog of [ui["unavailable-dialog"], ui["confirm-dialog"]]) {
    if (dialog.open) {
      dialog.close();
    }
  }
}

// The three actions

export function askMarkUnavailable(resource, opener) {
  const failure = `Could not mark ${resource.name} unavailable`;
  ui["unavailable-title"].textContent = `Mark ${resource.name} unavailable`;
  ui["unavailable-dialog"].querySelector("form").reset();
  openAction(ui["unavailable-dialog"], opener, {
    resourceId: resource.id,
    failure,
    run: () => markUnavailable(resource, failure),
  });
}

export function askMarkAvailable(resource, opener) {
  const reason = resource.unavailable_reason || "no reason given";
  const failure = `Could not mark ${resource.name} available`;
  openConfirmation(opener, resource, {
    title: `Mark ${resource.name} available?`,
    text:
      `It is unavailable now (${reason}). Once available, it may be locked again, and ` +
      "a waiting reservation may get it at once.",
    button: "Mark available",
    failure,
    run: () => markAvailable(resource, failure),
  });
}

export function askForceUnlock(resource, opener) {
  const failure = `Could not force unlock ${resource.name}`;
  openConfirmation(opener, resource, {
    title: `Force unlock ${resource.name}?`,
    text:
      `The lock of ${describeHolder(resource)} ends now, before its expiry. Its holder ` +
      "is not told, and its lock token stops working.",
    button: "Force unlock",
    failure,
    run: () => forceUnlock(resource, failure),
  });
}

async function markUnavailable(resource, failure) {
  const reason = ui["unavailable-reason"].value.trim();
  if (reason === "") {
    return invalidInput("Enter a reason. Everyone who looks at the resource sees it.");
  }
  const untilInput = ui["unavailable-until"];
  if (untilInput.validity.badInput) {
    return invalidInput("The until time is incomplete. Enter a full date and time, or clear it.");
  }

  const body = { reason };
  const until = localDateTimeToIso(untilInput.value);
  if (until !== null) {
    body.until = until;
  }
  const response = await send("POST", resourcePath(resource.id, "unavailable"), body);
  if (!response.ok) {
    return rejected(failure, response);
  }
  const changed = response.payload.resource;
  return {
    ok: true,
    message: `${resource.name} is now unavailable: ${describeUnavailable(changed)}.`,
  };
}

async function markAvailable(resource, failure) {
  const response = await send("POST", resourcePath(resource.id, "available"));
  if (!response.ok) {
    return rejected(failure, response);
  }
  const changed = response.payload.resource;
  if (changed.unavailable === true) {
    // A maintenance window under way keeps it unavailable until the window ends.
    return {
      ok: true,
      message: `${resource.name} is still unavailable: ${describeUnavailable(changed)}.`,
    };
  }
  return { ok: true, message: `${resource.name} is available again.` };
}

async function forceUnlock(resource, failure) {
  // Without a lock-token, the admin token makes this a force unlock.
  const response = await send("POST", resourcePath(resource.id, "unlock"));
  if (!response.ok) {
    return rejected(failure, response);
  }
  return { ok: true, message: `${resource.name} is unlocked (${response.payload.message}).` };
}

// Texts

function describeUnavailable(resource) {
  const reason = resource.unavailable_reason || "no reason given";
  const until = Date.parse(resource.unavailable_until || "");
  return Number.isNaN(until) ? reason : `${reason}, until ${formatDateTime(until)}`;
}

function describeHolder(resource) {
  const details = [];
  if (resource.locked_by_token) {
    details.push(`token ${resource.locked_by_token}`);
  }
  if (resource.locked_by_ip) {
    details.push(resource.locked_by_ip);
  }
  const label = resource.locked_by_label ? `"${resource.locked_by_label}"` : "its holder";
  return details.length > 0 ? `${label} (${details.join(", ")})` : label;
}

// Dialogs

function openConfirmation(opener, resource, confirmation) {
  ui["confirm-title"].textContent = confirmation.title;
  ui["confirm-text"].textContent = confirmation.text;
  ui["confirm-button"].textContent = confirmation.button;
  openAction(ui["confirm-dialog"], opener, {
    resourceId: resource.id,
    failure: confirmation.failure,
    run: confirmation.run,
  });
}

function openAction(dialog, opener, action) {
  current = { ...action, dialog, opener, busy: false };
  showDialogError(dialog, "");
  // showModal moves focus to the first control in the dialog and makes the rest of
  // the page inert. Escape closes it, and onDialogClosed then moves focus back.
  dialog.showModal();
}

async function submitCurrentAction(event) {
  event.preventDefault();
  const action = current;
  if (action === null || action.dialog !== event.currentTarget.closest("dialog") || action.busy) {
    return;
  }
  action.busy = true;
  action.dialog.setAttribute("aria-busy", "true");
  showDialogError(action.dialog, "");

  let outcome;
  try {
    outcome = await action.run();
  } catch (error) {
    outcome = {
      ok: false,
      status: null,
      message:
        `${action.failure}: the service did not respond (${error.message}). ` +
        "Check the connection and try again.",
    };
  } finally {
    action.busy = false;
    action.dialog.removeAttribute("aria-busy");
  }
  finishAction(action, outcome);
}

function finishAction(action, outcome) {
  if (outcome.ok) {
    showResult(outcome.message);
    onResourceChanged(action.resourceId);
    // After Escape, the same dialog may have been opened again for another action.
    if (current === action) {
      closeIfOpen(action.dialog);
    }
    return;
  }
  if (outcome.status === 401) {
    closeIfOpen(action.dialog);
    showFailure(outcome.message);
    onTokenRejected();
    return;
  }
  // Show the error where the user is: in the dialog if it is still open.
  if (action.dialog.open && current === action) {
    showDialogError(action.dialog, outcome.message);
  } else {
    showFailure(outcome.message);
  }
}

function closeIfOpen(dialog) {
  if (dialog.open) {
    dialog.close();
  }
}

function onDialogClosed() {
  if (current !== null) {
    focusNearestButton(current.opener);
  }
}

function showDialogError(dialog, message) {
  dialog.querySelector(".dialog-error").textContent = message;
}

// Requests

function resourcePath(id, action) {
  return `/api/v1/resources/${encodeURIComponent(id)}/${action}`;
}

async function send(method, path, body) {
  const headers = { "X-API-Key": getToken() };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // A body that is not JSON: the error text falls back to the status code.
  }
  return { ok: response.ok, status: response.status, payload };
}

function rejected(failure, response) {
  const detail = response.payload?.message || "no message from the service";
  return {
    ok: false,
    status: response.status,
    message: `${failure} (HTTP ${response.status}): ${detail}`,
  };
}

function invalidInput(message) {
  return { ok: false, status: null, message };
}

// Feedback bar

function showResult(message) {
  ui["admin-failure"].textContent = "";
  ui["admin-result"].textContent = message;
  showFeedbackBar();
}

export function showFailure(message) {
  ui["admin-result"].textContent = "";
  ui["admin-failure"].textContent = message;
  showFeedbackBar();
}

function showFeedbackBar() {
  ui["admin-feedback"].classList.add("has-message");
  ui["dismiss-feedback"].hidden = false;
}

function clearFeedback() {
  ui["admin-result"].textContent = "";
  ui["admin-failure"].textContent = "";
  ui["admin-feedback"].classList.remove("has-message");
  ui["dismiss-feedback"].hidden = true;
  // The Dismiss button had focus and is now hidden: go back to the row acted on last.
  if (current !== null) {
    focusNearestButton(current.opener);
  }
}
