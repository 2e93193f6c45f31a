// The view's state: sort column and order, status and tag filters, search text.
//
// It lives in the URL query (?q=&status=&tags=a,b&sort=&order=), so a reload or a
// shared link shows the same view. Values equal to the defaults are left out.

export const SORT_KEYS = ["id", "name", "status", "holder", "ttl", "tags", "endpoint", "description"];
export const STATUSES = ["available", "locked", "reserved", "unavailable"];

const DEFAULT_SORT = "id";

export const view = {
  sort: DEFAULT_SORT,
  order: "asc",
  status: "",
  tags: [],
  query: "",
};

// Splits "a, b,c" into ["a", "b", "c"], as the service splits a resource's tags.
export function parseTagList(text) {
  const tags = text.split(",").map((tag) => tag.trim()).filter((tag) => tag !== "");
  return [...new Set(tags)];
}

export function readViewFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const sort = params.get("sort");
  const status = params.get("status");
  view.sort = SORT_KEYS.includes(sort) ? sort : DEFAULT_SORT;
  view.order = params.get("order") === "desc" ? "desc" : "asc";
  view.status = STATUSES.includes(status) ? status : "";
  view.tags = parseTagList(params.get("tags") || "");
  view.query = params.get("q") || "";
}

// Replaces the current history entry, so typing in a filter does not fill the history.
export function writeViewToUrl() {
  const params = new URLSearchParams();
  if (view.query) {
    params.set("q", view.query);
  }
  if (view.status) {
    params.set("status", view.status);
  }
  if (view.tags.length > 0) {
    params.set("tags", view.tags.join(","));
  }
  if (view.sort !== DEFAULT_SORT) {
    params.set("sort", view.sort);
  }
  if (view.order !== "asc") {
    params.set("order", view.order);
  }
  const query = params.toString();
  const url = window.location.pathname + (query ? `?${query}` : "") + window.location.hash;
  window.history.replaceState(null, "", url);
}
