// Signing in with the admin key or a FlowAdmin/FlowViewer user-token.

import { API, CREDENTIAL, api } from "./api.js";
import { alertBox, el, failure, show } from "./dom.js";

export function signInPage() {
  const problem = alertBox();
  const form = el(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const trying = {
          kind: form.querySelector("#kind").value,
          value: form.querySelector("#credential").value.trim(),
        };
        try {
          await api(`${API}/flows?limit=1`, {}, trying);
        } catch (error) {
          failure(problem, error);
          return;
        }
        sessionStorage.setItem(CREDENTIAL, JSON.stringify(trying));
        document.getElementById("nav").hidden = false;
        location.hash = "#/flows";
      },
    },
    el("label", { for: "kind", text: "Sign in with" }),
    el(
      "select",
      { id: "kind" },
      el("option", { value: "admin", text: "the admin key" }),
      el("option", { value: "token", text: "a FlowAdmin or FlowViewer user-token" }),
    ),
    el("label", { for: "credential", text: "Admin key or user-token" }),
    el("input", { id: "credential", type: "password", autocomplete: "off", required: true }),
    el("p", {}, el("button", { type: "submit", text: "Sign in" })),
    problem,
  );
  show("Sign in", form);
  form.querySelector("#credential").focus();
}
