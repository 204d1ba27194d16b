// Building pages with the DOM API (no HTML parsing), and what a page leaves behind.

import { ApiError } from "./api.js";

export const POLL_MS = 1000;
const main = document.getElementById("main");
let leave = () => {};

// `stop` runs when the page is left (a polling loop ends)
export function onLeave(stop) {
  leave = stop;
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

// An SVG element: attributes set as given, children appended (text stays text)
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children.flat());
  return node;
}

// Run `step` now and every `ms` until the page is left
export function every(ms, step) {
  let active = true;
  let timer = null;
  onLeave(() => {
    active = false;
    clearTimeout(timer);
  });
  const tick = async () => {
    if (!active) return;
    try {
      await step();
    } finally {
      if (active) timer = setTimeout(tick, ms);
    }
  };
  return tick();
}

export function show(title, ...children) {
  leave();
  leave = () => {};
  main.replaceChildren(el("h1", { text: title }), ...children);
  document.title = `${title} · hookflow console`;
  main.focus();
}

export function pretty(value) {
  return el("pre", { text: JSON.stringify(value, null, 2) });
}

export function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

export function link(href, text) {
  return el("a", { href }, text);
}

export function alertBox() {
  return el("p", { role: "alert", class: "error" });
}

export function failure(box, error) {
  box.textContent = error instanceof ApiError ? `${error.status}: ${error.message}` : String(error);
}

export function status(value) {
  return el("span", { class: `status status-${value}`, text: value });
}
