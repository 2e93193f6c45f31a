// The resources table: rows kept in step with the service, sorted and filtered by the view.
//
// Rows are keyed by resource id. A change rebuilds only that resource's row, and rows
// are moved only when the order changes, so keyboard focus inside the table survives
// live updates.

import { fillRowControls } from "./admin.js";
import { formatDateTime, formatDuration, formatSpanEnd, serverNow } from "./clock.js";
import { element, setText } from "./dom.js";
import { SORT_KEYS, parseTagList, view, writeViewToUrl } from "./view.js";

const STATUS_LABELS = {
  available: "Available",
  locked: "Locked",
  reserved: "Reserved",
  unavailable: "Unavailable",
};

// Sort order of the status column: free, kept for the queue, held, out of service.
const STATUS_RANK = { available: 0, reserved: 1, locked: 2, unavailable: 3 };

// Colour bands of the time left: green above 15 minutes, yellow from 5 to 15, red below 5.
const GREEN_ABOVE_SECONDS = 15 * 60;
const RED_BELOW_SECONDS = 5 * 60;

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

const resources = new Map(); // resource id -> resource as the API returns it
const rows = new Map(); // resource id -> { tr, cells, ttlNode, expiresAt }
const changedIds = new Set();
let renderQueued = false;

let table = null;
let tbody = null;
let countLabel = null;
let emptyNote = null;
let tagList = null;
let onTagPicked = () => {};

export function initResourceTable(options) {
  table = options.table;
  tbody = table.tBodies[0];
  countLabel = options.countLabel;
  emptyNote = options.emptyNote;
  tagList = options.tagList;
  onTagPicked = options.onTagPicked;

  for (const button of table.tHead.querySelectorAll("th[data-sort] button")) {
    button.addEventListener("click", () => sortBy(button.parentElement.dataset.sort));
  }
  tbody.addEventListener("click", pickTag);
  tbody.addEventListener("keydown", dismissTipOnEscape);
}

// Data in

export function replaceAllResources(list) {
  const listed = new Set();
  for (const resource of list) {
    listed.add(resource.id);
    resources.set(resource.id, resource);
    changedIds.add(resource.id);
  }
  for (const id of resources.keys()) {
    if (!listed.has(id)) {
      resources.delete(id);
      changedIds.add(id);
    }
  }
  scheduleRender();
}

export function putResource(resource) {
  resources.set(resource.id, resource);
  changedIds.add(resource.id);
  scheduleRender();
}

export function removeResource(id) {
  resources.delete(id);
  changedIds.add(id);
  scheduleRender();
}

// Shows or hides the admin actions column, and fills or empties it in every row.
export function showAdminColumn(visible) {
  table.classList.toggle("admin-on", visible);
  for (const id of resources.keys()) {
    changedIds.add(id);
  }
  scheduleRender();
}

// Rendering

function scheduleRender() {
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(renderResources);
  }
}

export function renderResources() {
  renderQueued = false;
  updateChangedRows();

  const visible = [...resources.values()].filter(matchesView).sort(compareByView);
  placeRows(visible.map((resource) => rows.get(resource.id).tr));

  setText(countLabel, countText(visible.length, resources.size));
  emptyNote.hidden = visible.length > 0 || resources.size === 0;
  markSortedHeader();
  listKnownTags();
}

function updateChangedRows() {
  const now = serverNow();
  for (const id of changedIds) {
    const resource = resources.get(id);
    if (resource === undefined) {
      rows.get(id)?.tr.remove();
      rows.delete(id);
      continue;
    }
    if (!rows.has(id)) {
      rows.set(id, createRow(id));
    }
    fillRow(rows.get(id), resource, now);
  }
  changedIds.clear();
}

function placeRows(ordered) {
  const current = tbody.children;
  const unchanged =
    current.length === ordered.length && ordered.every((row, index) => current[index] === row);
  if (!unchanged) {
    tbody.replaceChildren(...ordered);
  }
}

function countText(visible, total) {
  return visible === total ? `(${total})` : `(${visible} of ${total})`;
}

function markSortedHeader() {
  for (const header of table.tHead.querySelectorAll("th[data-sort]")) {
    if (header.dataset.sort === view.sort) {
      header.setAttribute("aria-sort", view.order === "asc" ? "ascending" : "descending");
    } else {
      header.removeAttribute("aria-sort");
    }
  }
}

function listKnownTags() {
  const known = new Set();
  for (const resource of resources.values()) {
    for (const tag of tagsOf(resource)) {
      known.add(tag);
    }
  }
  const sorted = [...known].sort(collator.compare);
  if (tagList.dataset.tags === sorted.join(",")) {
    return;
  }
  tagList.dataset.tags = sorted.join(",");
  tagList.replaceChildren(...sorted.map((tag) => optionFor(tag)));
}

function optionFor(tag) {
  const option = element("option");
  option.value = tag;
  return option;
}

// One row

// In the order of the table header. The actions column shows only to admins.
const COLUMNS = [
  "id",
  "name",
  "status",
  "actions",
  "holder",
  "ttl",
  "tags",
  "endpoint",
  "description",
];

function createRow(id) {
  const tr = element("tr");
  tr.dataset.id = String(id);
  const cells = {};
  for (const column of COLUMNS) {
    cells[column] = element("td", `cell-${column}`);
    tr.append(cells[column]);
  }
  return { tr, cells, statusText: null, ttlNode: null, expiresAt: null };
}

function fillRow(row, resource, now) {
  const status = statusOf(resource);
  row.tr.dataset.status = status;
  setText(row.cells.id, resource.id);
  row.cells.name.replaceChildren(element("span", "", resource.name));
  fillStatus(row, resource, status, now);
  row.cells.holder.replaceChildren(...holderParts(resource));
  row.cells.tags.replaceChildren(tagButtons(resource));
  setText(row.cells.endpoint, resource.endpoint);
  setText(row.cells.description, resource.description);
  fillCountdown(row, resource, now);
  fillRowControls(row.cells.actions, resource);
}

// Rebuilds the status cell only when its text changes, so that a badge keeps keyboard
// focus and its open tooltip while live updates refresh the row.
function fillStatus(row, resource, status, now) {
  const badge = statusBadge(resource, status);
  const notes = maintenanceNotes(resource, now);
  const text = [status, badge.textContent, ...notes.map((note) => note.textContent)].join("\n");
  if (row.statusText === text) {
    return;
  }
  row.statusText = text;
  row.cells.status.replaceChildren(badge, ...notes);
}

export function statusOf(resource) {
  if (resource.unavailable === true) {
    return "unavailable";
  }
  if (resource.status in STATUS_LABELS) {
    return resource.status;
  }
  return resource["lock-expires-at"] ? "locked" : "available";
}

function statusBadge(resource, status) {
  const badge = element("span", `badge badge-${status}`, STATUS_LABELS[status]);
  const details = statusDetails(resource, status);
  if (details === null) {
    return badge;
  }

  // The details show on hover and on keyboard focus, and screen readers read them too.
  const tip = element("span", "tip", details);
  tip.id = `status-tip-${resource.id}`;
  tip.setAttribute("role", "tooltip");
  badge.tabIndex = 0;
  badge.setAttribute("aria-describedby", tip.id);
  const wrapper = element("span", "has-tip");
  wrapper.append(badge, tip);
  return wrapper;
}

function statusDetails(resource, status) {
  if (status === "unavailable") {
    // A health check's reason already names the check, and an admin's reason is shown as typed.
    const source = resource.unavailable_source === "maintenance" ? "Maintenance: " : "";
    const reason = source + (resource.unavailable_reason || "No reason given");
    const until = Date.parse(resource.unavailable_until || "");
    return Number.isNaN(until) ? reason : `${reason} (until ${formatDateTime(until)})`;
  }
  if (status === "reserved" && resource.reserved_for) {
    return `Kept for reservation ${resource.reserved_for}`;
  }
  return null;
}

// One note per maintenance window that has not started yet. A window under way shows
// as the Unavailable badge instead.
function maintenanceNotes(resource, now) {
  const notes = [];
  for (const maintenance of resource.maintenance_windows || []) {
    const start = Date.parse(maintenance.start);
    const end = Date.parse(maintenance.end);
    if (Number.isNaN(start) || Number.isNaN(end) || start <= now) {
      continue;
    }
    const note = element("span", "secondary maintenance-note", "Maintenance from ");
    // Each instant stays on one line, because a line break inside a date is easy to misread.
    note.append(
      element("span", "nowrap", formatDateTime(start)),
      " to ",
      element("span", "nowrap", formatSpanEnd(start, end)),
      maintenance.reason ? `: ${maintenance.reason}` : "",
    );
    notes.push(note);
  }
  return notes;
}

function holderParts(resource) {
  const parts = [];
  if (resource.locked_by_label) {
    parts.push(element("span", "holder-label", resource.locked_by_label));
  }
  const details = [];
  if (resource.locked_by_ip) {
    details.push(resource.locked_by_ip);
  }
  if (resource.locked_by_token) {
    details.push(`token ${resource.locked_by_token}`);
  }
  if (details.length > 0) {
    parts.push(element("span", "secondary holder-details", details.join(" \u00b7 ")));
  }
  return parts;
}

function tagButtons(resource) {
  const list = element("span", "tags");
  for (const tag of tagsOf(resource)) {
    const button = element("button", "tag", tag);
    button.type = "button";
    button.dataset.tag = tag;
    button.setAttribute("aria-label", `Show only resources tagged ${tag}`);
    list.append(button);
  }
  return list;
}

function tagsOf(resource) {
  return parseTagList(resource.tags || "");
}

// Time left

function fillCountdown(row, resource, now) {
  const expiresAt = Date.parse(resource["lock-expires-at"] || "");
  if (statusOf(resource) === "available" || Number.isNaN(expiresAt)) {
    row.expiresAt = null;
    row.ttlNode = null;
    row.cells.ttl.replaceChildren();
    return;
  }
  row.expiresAt = expiresAt;
  if (row.ttlNode === null) {
    row.ttlNode = element("span", "ttl");
    row.cells.ttl.replaceChildren(row.ttlNode);
  }
  paintCountdown(row, now);
}

function paintCountdown(row, now) {
  const seconds = (row.expiresAt - now) / 1000;
  setText(row.ttlNode, formatDuration(Math.ceil(seconds)));
  const className = `ttl ttl-${ttlBand(seconds)}`;
  if (row.ttlNode.className !== className) {
    row.ttlNode.className = className;
  }
}

export function ttlBand(seconds) {
  if (seconds > GREEN_ABOVE_SECONDS) {
    return "green";
  }
  if (seconds >= RED_BELOW_SECONDS) {
    return "yellow";
  }
  return "red";
}

// Called every second. A lock that reaches zero stays on screen, in red, until the
// service's lock.expired event arrives a moment later.
export function tickCountdowns() {
  const now = serverNow();
  for (const row of rows.values()) {
    if (row.expiresAt !== null) {
      paintCountdown(row, now);
    }
  }
}

// Filtering and sorting

function matchesView(resource) {
  if (view.status && statusOf(resource) !== view.status) {
    return false;
  }
  if (view.tags.length > 0) {
    const tags = new Set(tagsOf(resource));
    if (!view.tags.every((tag) => tags.has(tag))) {
      return false;
    }
  }
  if (view.query) {
    const needle = view.query.toLowerCase();
    const haystack = `${resource.name}\n${resource.description || ""}`.toLowerCase();
    if (!haystack.includes(needle)) {
      return false;
    }
  }
  return true;
}

// Returns the value a column sorts by, or null for an empty cell.
function sortValue(resource, key) {
  switch (key) {
    case "id":
      return resource.id;
    case "status":
      return STATUS_RANK[statusOf(resource)];
    case "holder":
      return resource.locked_by_label || resource.locked_by_ip || null;
    case "ttl": {
      const expiresAt = Date.parse(resource["lock-expires-at"] || "");
      return statusOf(resource) === "available" || Number.isNaN(expiresAt) ? null : expiresAt;
    }
    default:
      return resource[key] || null;
  }
}

// Empty cells go last in either order, and equal values keep id order.
function compareByView(left, right) {
  const a = sortValue(left, view.sort);
  const b = sortValue(right, view.sort);
  if (a === null || b === null) {
    if (a !== b) {
      return a === null ? 1 : -1;
    }
    return left.id - right.id;
  }
  const direction = view.order === "asc" ? 1 : -1;
  const order = typeof a === "number" && typeof b === "number" ? a - b : collator.compare(a, b);
  return order !== 0 ? order * direction : left.id - right.id;
}

function sortBy(key) {
  if (!SORT_KEYS.includes(key)) {
    return;
  }
  if (view.sort === key) {
    view.order = view.order === "asc" ? "desc" : "asc";
  } else {
    view.sort = key;
    view.order = "asc";
  }
  writeViewToUrl();
  renderResources();
}

// Events inside the table

function pickTag(event) {
  const button = event.target.closest("button.tag");
  if (button !== null) {
    onTagPicked(button.dataset.tag);
  }
}

// Escape hides a status tooltip that keyboard focus opened.
function dismissTipOnEscape(event) {
  if (event.key === "Escape" && event.target.matches(".has-tip .badge")) {
    event.target.blur();
  }
}
