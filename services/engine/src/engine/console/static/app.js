// The hookflow console: one page, hash routes, the engine's management API.
// No dependencies: every element is built with the DOM API, so no text from the API is
// ever parsed as HTML. One module per view; api.js and dom.js are what they share.

import { ApiError, credential, signOut } from "./api.js";
import { alertBox, failure, show } from "./dom.js";
import { executionPage } from "./executions.js";
import { flowPage, flowsPage } from "./flows.js";
import { signInPage } from "./signin.js";
import { activationsPage } from "./activations.js";
import { systemPage } from "./system.js";
import { deadLettersPage, expressionsPage } from "./tools.js";

const routes = [
  [/^#\/flows$/, flowsPage],
  [/^#\/flows\/([^/]+)$/, flowPage],
  [/^#\/executions\/([^/]+)$/, executionPage],
  [/^#\/activations(?:\/([^/]+))?$/, activationsPage],
  [/^#\/dead-letters$/, deadLettersPage],
  [/^#\/system$/, systemPage],
  [/^#\/expressions$/, expressionsPage],
];

async function route() {
  if (!credential()) {
    signInPage();
    return;
  }
  document.getElementById("nav").hidden = false;
  const hash = location.hash || "#/flows";
  for (const a of document.querySelectorAll("nav a")) {
    if (hash.startsWith(a.getAttribute("href"))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  for (const [pattern, page] of routes) {
    const found = hash.match(pattern);
    if (found) {
      try {
        await page(...found.slice(1).map((part) => (part ? decodeURIComponent(part) : part)));
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return;
        const problem = alertBox();
        failure(problem, error);
        show("Not available", problem);
      }
      return;
    }
  }
  location.hash = "#/flows";
}

document.getElementById("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
route();
