// The service's clock as seen from this browser, and time formatting.
//
// Lock expiry instants come from the service, so the time left is counted on the
// service's clock: a browser whose clock is wrong still shows the right countdown.
// The offset between the two clocks is set from the `now` of each stream `hello`.
// Event timestamps can only raise it, because an event's `at` is never later than
// the service's time. Until the first `hello` arrives, the HTTP Date header sets it.

let offsetMs = null;
let offsetFromHello = false;

export function setServerNow(isoText) {
  const instant = Date.parse(isoText);
  if (!Number.isNaN(instant)) {
    offsetMs = instant - Date.now();
    offsetFromHello = true;
  }
}

export function noteEventTime(isoText) {
  const instant = Date.parse(isoText);
  if (Number.isNaN(instant)) {
    return;
  }
  const candidate = instant - Date.now();
  if (offsetMs === null || candidate > offsetMs) {
    offsetMs = candidate;
  }
}

export function noteDateHeader(response) {
  if (offsetFromHello) {
    return;
  }
  const instant = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(instant)) {
    offsetMs = instant - Date.now();
  }
}

// Returns the service's current time in milliseconds since the epoch (an estimate).
export function serverNow() {
  return Date.now() + (offsetMs ?? 0);
}

function pad2(number) {
  return String(number).padStart(2, "0");
}

// Formats an instant as HH:MM:SS in the browser's time zone.
export function formatTimeOfDay(milliseconds) {
  const date = new Date(milliseconds);
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map(pad2).join(":");
}

// Formats an instant as YYYY-MM-DD HH:MM in the browser's time zone.
export function formatDateTime(milliseconds) {
  const date = new Date(milliseconds);
  const day = [date.getFullYear(), pad2(date.getMonth() + 1), pad2(date.getDate())].join("-");
  return `${day} ${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
}

// Formats a number of seconds as M:SS, H:MM:SS, or Dd H:MM:SS from one day on.
export function formatDuration(totalSeconds) {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  if (days > 0) {
    return `${days}d ${hours}:${pad2(minutes)}:${pad2(rest)}`;
  }
  if (hours > 0) {
    return `${hours}:${pad2(minutes)}:${pad2(rest)}`;
  }
  return `${minutes}:${pad2(rest)}`;
}

// Formats the end of a span: only HH:MM when it ends on the day it starts.
export function formatSpanEnd(startMilliseconds, endMilliseconds) {
  const start = formatDateTime(startMilliseconds);
  const end = formatDateTime(endMilliseconds);
  return start.slice(0, 10) === end.slice(0, 10) ? end.slice(11) : end;
}

// Converts the value of a datetime-local input ("2026-12-05T10:30"), which is in the
// browser's time zone, to ISO 8601 with that zone's offset on that date
// ("2026-12-05T10:30:00+01:00"). Returns null for an empty or invalid value.
export function localDateTimeToIso(value) {
  if (!value) {
    return null;
  }
  // ECMAScript parses a date and time without an offset as local time.
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    return null;
  }
  const day = [date.getFullYear(), pad2(date.getMonth() + 1), pad2(date.getDate())].join("-");
  const time = [date.getHours(), date.getMinutes(), date.getSeconds()].map(pad2).join(":");
  return `${day}T${time}${utcOffset(date)}`;
}

// Returns the browser's offset from UTC on that date, as "+01:00" or "-05:30".
function utcOffset(date) {
  const minutesEast = -date.getTimezoneOffset();
  const sign = minutesEast < 0 ? "-" : "+";
  const minutes = Math.abs(minutesEast);
  return `${sign}${pad2(Math.floor(minutes / 60))}:${pad2(minutes % 60)}`;
}
