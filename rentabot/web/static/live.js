// Keeps both tables current: a snapshot of the lists, then the event stream.
//
// Every change reaches the page as an event on GET /api/v1/events. The page then
// fetches what the event names: the one resource (GET /api/v1/resources/{id}) or the
// reservation list. Fetches run in batches, one batch at a time, and each batch starts
// after the events that asked for it arrived, so the page never shows a state older
// than the last event. While the stream is down, both lists are polled every 10 s and
// the stream reconnects, resuming after the last event it received.

import { noteDateHeader, noteEventTime, serverNow, setServerNow, formatTimeOfDay } from "./clock.js";
import { putResource, removeResource, replaceAllResources } from "./resources.js";
import { replaceReservations } from "./reservations.js";

const EVENTS_URL = "/api/v1/events";
const POLL_INTERVAL_MS = 10_000;
const REOPEN_DELAY_MS = 2_000;
const RETRY_DELAY_MS = 2_000;

// Above this many changed resources in one batch, the whole list is cheaper to fetch.
const MAX_SINGLE_FETCHES = 25;

// EventSource delivers a named event only to listeners for that name, so an event name
// the service adds must be added here as well.
const RESOURCE_EVENTS = [
  "resource.locked",
  "resource.unlocked",
  "lock.extended",
  "lock.expired",
  "resource.reserved",
  "resource.added",
  "resource.updated",
  "resource.removed",
  "resource.unavailable",
  "resource.available",
  "maintenance.scheduled",
  "maintenance.cancelled",
];
const RESERVATION_EVENTS = [
  "reservation.created",
  "reservation.fulfilled",
  "reservation.claimed",
  "reservation.expired",
  "reservation.cancelled",
  "reservation.released",
];
// The whole state was replaced from a backup.
const RELOAD_EVENTS = ["store.restored", "resources.synced"];

const CONNECTION_TEXT = {
  connecting: "Connecting",
  live: "Live",
  polling: "Reconnecting, polling every 10 s",
  offline: "Server unreachable, retrying",
};

const pending = { snapshot: false, reservations: false, resourceIds: new Set() };
let syncing = false;
let retryTimer = null;
let source = null;
let lastEventId = null;
let instance = null;
let pollTimer = null;
let connectionLabel = null;
let updatedLabel = null;

export function startLiveUpdates(options) {
  connectionLabel = options.connectionLabel;
  updatedLabel = options.updatedLabel;
  // Load at once for a quick first view. The stream's hello makes the page load the
  // lists again, so that no change falls between this snapshot and the subscription.
  requestSnapshot();
  openStream();
}

// The event stream

function openStream() {
  const url =
    lastEventId === null
      ? EVENTS_URL
      : `${EVENTS_URL}?last_event_id=${encodeURIComponent(lastEventId)}`;
  source = new EventSource(url);
  source.addEventListener("hello", onHello);
  source.addEventListener("reset", onReset);
  for (const name of RESOURCE_EVENTS) {
    source.addEventListener(name, onResourceEvent);
  }
  for (const name of RESERVATION_EVENTS) {
    source.addEventListener(name, onReservationEvent);
  }
  for (const name of RELOAD_EVENTS) {
    source.addEventListener(name, onReloadEvent);
  }
  source.addEventListener("error", onStreamError);
}

function onHello(message) {
  const hello = JSON.parse(message.data);
  setServerNow(hello.now);
  const restarted = instance !== null && hello.instance !== instance;
  instance = hello.instance;
  // A fresh subscription needs a fresh snapshot. A resumed one gets the missed events
  // (or a reset), unless the service restarted and its event ids began again.
  if (hello.resumed_from === null || restarted) {
    requestSnapshot();
  }
  stopPolling();
  setConnection("live");
  markUpdated();
}

function onReset(message) {
  rememberEventId(message);
  requestSnapshot();
}

function onResourceEvent(message) {
  const event = readEvent(message);
  if (event.resource_id !== null && event.resource_id !== undefined) {
    pending.resourceIds.add(event.resource_id);
  }
  sync();
}

function onReservationEvent(message) {
  readEvent(message);
  pending.reservations = true;
  sync();
}

function onReloadEvent(message) {
  readEvent(message);
  requestSnapshot();
}

function readEvent(message) {
  rememberEventId(message);
  const event = JSON.parse(message.data);
  noteEventTime(event.at);
  return event;
}

function rememberEventId(message) {
  lastEventId = message.lastEventId === "" ? null : message.lastEventId;
}

function onStreamError() {
  startPolling();
  if (source.readyState !== EventSource.CLOSED) {
    return; // The browser reconnects by itself, sending Last-Event-ID.
  }
  // The browser gave up, for example after an error status: open a new stream later.
  source.close();
  setTimeout(openStream, REOPEN_DELAY_MS);
}

// Fallback polling while the stream is down

function startPolling() {
  if (pollTimer === null) {
    pollTimer = setInterval(requestSnapshot, POLL_INTERVAL_MS);
    setConnection("polling");
  }
}

function stopPolling() {
  if (pollTimer !== null) {
    clearInterval(pollTimer);
    pollTimer = null;
  }
}

// Fetch batches

function requestSnapshot() {
  pending.snapshot = true;
  sync();
}

// Fetches one resource again, as its event would. Called after an admin action, so the
// row changes at once even while the stream is down.
export function refreshResource(id) {
  pending.resourceIds.add(id);
  sync();
}

async function sync() {
  if (syncing) {
    return;
  }
  syncing = true;
  try {
    while (hasPendingWork()) {
      const work = takePendingWork();
      try {
        await runBatch(work);
      } catch (error) {
        giveBackWork(work);
        retryLater();
        return;
      }
      if (pollTimer !== null) {
        setConnection("polling");
      }
      markUpdated();
    }
  } finally {
    syncing = false;
  }
}

function retryLater() {
  if (pollTimer !== null) {
    setConnection("offline");
  }
  if (retryTimer === null) {
    retryTimer = setTimeout(() => {
      retryTimer = null;
      sync();
    }, RETRY_DELAY_MS);
  }
}

function hasPendingWork() {
  return pending.snapshot || pending.reservations || pending.resourceIds.size > 0;
}

function takePendingWork() {
  const work = {
    snapshot: pending.snapshot,
    reservations: pending.reservations,
    resourceIds: pending.resourceIds,
  };
  pending.snapshot = false;
  pending.reservations = false;
  pending.resourceIds = new Set();
  return work;
}

function giveBackWork(work) {
  pending.snapshot ||= work.snapshot;
  pending.reservations ||= work.reservations;
  for (const id of work.resourceIds) {
    pending.resourceIds.add(id);
  }
}

async function runBatch(work) {
  const fetches = [];
  if (work.snapshot || work.resourceIds.size > MAX_SINGLE_FETCHES) {
    fetches.push(loadAllResources());
  } else {
    for (const id of work.resourceIds) {
      fetches.push(loadResource(id));
    }
  }
  if (work.snapshot || work.reservations) {
    fetches.push(loadReservations());
  }
  await Promise.all(fetches);
}

async function loadAllResources() {
  const body = await getJson("/api/v1/resources");
  replaceAllResources(body.resources);
}

async function loadResource(id) {
  const path = `/api/v1/resources/${encodeURIComponent(id)}`;
  const response = await fetch(path, { cache: "no-store" });
  noteDateHeader(response);
  if (response.status === 404) {
    removeResource(id);
    return;
  }
  const body = await checkedJson(path, response);
  putResource(body.resource);
}

async function loadReservations() {
  const body = await getJson("/api/v1/reservations");
  replaceReservations(body.reservations);
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  noteDateHeader(response);
  return checkedJson(path, response);
}

async function checkedJson(path, response) {
  if (!response.ok) {
    throw new Error(`GET ${path} failed with status ${response.status}`);
  }
  return response.json();
}

// Status line

function setConnection(state) {
  connectionLabel.dataset.state = state;
  connectionLabel.textContent = CONNECTION_TEXT[state];
}

function markUpdated() {
  const now = serverNow();
  updatedLabel.textContent = formatTimeOfDay(now);
  updatedLabel.dateTime = new Date(now).toISOString();
}
