// Entry point of the resource page: binds the controls and starts the live updates.

import { initAdminControls } from "./admin.js";
import { refreshResource, startLiveUpdates } from "./live.js";
import {
  initResourceTable,
  renderResources,
  showAdminColumn,
  tickCountdowns,
} from "./resources.js";
import { initReservationTable } from "./reservations.js";
import { parseTagList, readViewFromUrl, view, writeViewToUrl } from "./view.js";

function byId(id) {
  return document.getElementById(id);
}

function showViewInControls() {
  byId("search").value = view.query;
  byId("status-filter").value = view.status;
  byId("tag-filter").value = view.tags.join(", ");
}

function applyControls() {
  view.query = byId("search").value;
  view.status = byId("status-filter").value;
  view.tags = parseTagList(byId("tag-filter").value);
  writeViewToUrl();
  renderResources();
}

function addTagToFilter(tag) {
  if (!view.tags.includes(tag)) {
    view.tags = [...view.tags, tag];
  }
  showViewInControls();
  applyControls();
}

function clearFilters() {
  view.query = "";
  view.status = "";
  view.tags = [];
  showViewInControls();
  applyControls();
}

function bindFilters() {
  const form = byId("filters");
  form.addEventListener("input", applyControls);
  form.addEventListener("submit", (event) => event.preventDefault());
  byId("clear-filters").addEventListener("click", clearFilters);
}

function start() {
  readViewFromUrl();
  showViewInControls();
  initResourceTable({
    table: byId("resources"),
    countLabel: byId("resource-count"),
    emptyNote: byId("resources-empty"),
    tagList: byId("known-tags"),
    onTagPicked: addTagToFilter,
  });
  initReservationTable({
    table: byId("reservations"),
    countLabel: byId("reservation-count"),
    emptyNote: byId("reservations-empty"),
  });
  initAdminControls({ onAdminChange: showAdminColumn, onResourceChanged: refreshResource });
  bindFilters();
  startLiveUpdates({ connectionLabel: byId("connection"), updatedLabel: byId("updated") });
  setInterval(tickCountdowns, 1000);
}

start();
