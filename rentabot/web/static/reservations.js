// The reservation queue table: pending, fulfilled and claimed reservations, oldest first.
//
// GET /api/v1/reservations lists a reservation until it ends (expired, cancelled or
// released), so a claimed one stays here until its locks are given back or expire.

import { formatDateTime, formatTimeOfDay } from "./clock.js";
import { element } from "./dom.js";

const STATUS_LABELS = { pending: "Pending", fulfilled: "Fulfilled", claimed: "Claimed" };

let tbody = null;
let countLabel = null;
let emptyNote = null;
let shownJson = null;

export function initReservationTable(options) {
  tbody = options.table.tBodies[0];
  countLabel = options.countLabel;
  emptyNote = options.emptyNote;
}

export function replaceReservations(list) {
  // A refresh that changed nothing leaves the table alone.
  const json = JSON.stringify(list);
  if (json === shownJson) {
    return;
  }
  shownJson = json;
  tbody.replaceChildren(...list.map(reservationRow));
  countLabel.textContent = `(${list.length})`;
  emptyNote.hidden = list.length > 0;
}

function reservationRow(reservation) {
  const tr = element("tr");
  tr.dataset.id = reservation.reservation_id;
  tr.dataset.status = reservation.status;
  tr.append(
    element("td", "cell-id", reservation.reservation_id),
    element("td", "cell-tags", (reservation.tags || []).join(", ")),
    element("td", "cell-quantity", reservation.quantity),
    element("td", "cell-priority", reservation.priority ?? 0),
    statusCell(reservation.status),
    element("td", "cell-position", reservation.position_in_queue ?? ""),
    createdCell(reservation.created_at),
  );
  return tr;
}

function statusCell(status) {
  const cell = element("td", "cell-status");
  const label = STATUS_LABELS[status] || status;
  cell.append(element("span", `badge badge-${status}`, label));
  return cell;
}

function createdCell(isoText) {
  const cell = element("td", "cell-created");
  const instant = Date.parse(isoText || "");
  if (Number.isNaN(instant)) {
    return cell;
  }
  const time = element("time", "", formatTimeOfDay(instant));
  time.dateTime = isoText;
  time.title = formatDateTime(instant);
  cell.append(time);
  return cell;
}
