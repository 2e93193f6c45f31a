// Admin controls: their place in the page, empty until the service has admin endpoints.
//
// Planned controls, each request sending the admin token in the X-API-Key header:
// - token entry, kept in sessionStorage so that it is forgotten with the browser tab;
// - "mark unavailable": a dialog asking for a reason and an optional until time, sent as
//   POST /api/v1/resources/{id}/unavailable with {"reason", "until"?};
// - "mark available": POST /api/v1/resources/{id}/available;
// - "force unlock": POST /api/v1/resources/{id}/unlock without a lock-token.
// The page-wide controls go in the #admin-controls section, which stays hidden until
// then. Per-resource buttons come from rowControls(), which resources.js appends to
// each row.

export function initAdminControls(section) {
  section.hidden = true;
}

// Returns the admin buttons for one resource row, or null while there are none.
export function rowControls(resource) {
  return null;
}
