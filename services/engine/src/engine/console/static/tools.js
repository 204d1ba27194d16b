// Dead letters with replay, the expression tester.

import { API, api } from "./api.js";
import { alertBox, el, failure, link, show, when } from "./dom.js";

export async function deadLettersPage() {
  const rows = el("tbody");
  const more = el("p");
  const problem = alertBox();
  show(
    "Dead letters",
    el("p", { class: "muted", text: "Messages that failed 5 times, or failed validation. Replay publishes one again to its topic." }),
    problem,
    el("table", {}, el("thead", {}, el("tr", {}, ...["Parked", "Kind", "Topic", "Error", "Replayed", ""].map((h) => el("th", { scope: "col", text: h })))), rows),
    more,
  );
  function row(letter) {
    const replay = el("button", {
      type: "button",
      "aria-label": `Replay dead letter ${letter.deadLetterId}`,
      text: "Replay",
      onclick: async () => {
        try {
          const replayed = await api(`${API}/dead-letters/${letter.deadLetterId}/replay`, { method: "POST" });
          tr.replaceWith(row(replayed));
        } catch (error) {
          failure(problem, error);
        }
      },
    });
    const tr = el(
      "tr",
      {},
      el("td", { text: when(letter.at) }),
      el("td", { text: letter.kind }),
      el("td", { text: `${letter.topic} [${letter.partition}] @${letter.offset}` }),
      el("td", {}, letter.error, letter.activationId ? el("div", {}, link(`#/activations/${letter.activationId}`, `activation ${letter.activationId}`)) : ""),
      el("td", { text: letter.replayedAt ? when(letter.replayedAt) : "no" }),
      el("td", {}, replay),
    );
    return tr;
  }
  async function load(cursor) {
    const page = await api(`${API}/dead-letters?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    rows.append(...page.deadLetters.map(row));
    if (!page.deadLetters.length && !cursor) rows.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No dead letters." })));
    more.replaceChildren(page.next ? el("button", { type: "button", onclick: () => load(page.next), text: "More" }) : "");
  }
  await load(null);
}

export function expressionsPage() {
  const source = el("textarea", { id: "expression", rows: 3, text: "data.orderId == vars.order.id" });
  const context = el("textarea", {
    id: "context",
    rows: 8,
    text: JSON.stringify({ data: { orderId: "o-1" }, vars: { order: { id: "o-1" } } }, null, 2),
  });
  const answer = el("div", { "aria-live": "polite", id: "answer" });
  const form = el(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        let parsed;
        try {
          parsed = JSON.parse(context.value || "{}");
        } catch (error) {
          answer.replaceChildren(el("p", { class: "error", role: "alert", text: `The context is not JSON: ${error.message}` }));
          return;
        }
        try {
          const result = await api(`${API}/expressions/evaluate`, { method: "POST", body: JSON.stringify({ expression: source.value, context: parsed }) });
          answer.replaceChildren(el("p", {}, "Value:"), el("pre", { class: "value", text: JSON.stringify(result.value, null, 2) }));
        } catch (error) {
          const position = error.body?.position;
          const parts = [el("p", { class: "error", role: "alert", text: error.message })];
          if (position) {
            const line = source.value.split("\n")[position.line - 1] ?? "";
            parts.push(el("p", {}, `At line ${position.line}, column ${position.column}:`), el("pre", {}, line, "\n", el("span", { class: "caret", text: `${" ".repeat(Math.max(0, position.column - 1))}^` })));
          }
          answer.replaceChildren(...parts);
        }
      },
    },
    el("label", { for: "expression", text: "CEL expression" }),
    source,
    el("label", { for: "context", text: "Context (JSON object: data, user, input, vars, results...)" }),
    context,
    el("p", {}, el("button", { type: "submit", text: "Evaluate" })),
  );
  show("Expression tester", el("p", { class: "muted", text: "Evaluated by the engine under the same cost budget as flows." }), form, answer);
}
