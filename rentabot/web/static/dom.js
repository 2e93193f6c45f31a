// DOM helpers. Text from the server always goes in through textContent, never as markup.

export function element(tag, className = "", text = null) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== null && text !== undefined) {
    node.textContent = String(text);
  }
  return node;
}

// Sets the text only when it differs, so unchanged cells are not touched.
export function setText(node, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== value) {
    node.textContent = value;
  }
}

// Moves focus to `button`, or when it is hidden to the first shown button beside it.
// Does nothing when neither is on screen, for example after its row was removed.
export function focusNearestButton(button) {
  if (isShown(button)) {
    button.focus();
    return;
  }
  const sibling = button.parentElement?.querySelector("button:not([hidden])");
  if (sibling && isShown(sibling)) {
    sibling.focus();
  }
}

function isShown(node) {
  return node.isConnected && !node.hidden && node.checkVisibility();
}
