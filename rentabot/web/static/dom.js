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
