// The activation log with lookup and replay, dead letters with replay, the expression tester.

import { API, api } from "./api.js";
import { alertBox, el, failure, link, show, when } from "./dom.js";

const OUTCOMES = ["ACTIVATED", "FILTERED", "NO_WAITER", "DUPLICATE", "IGNORED_AUTH", "UNKNOWN_TRIGGER", "INVALID", "DEAD_LETTERED", "BUFFERED", "EXPIRED", "REFUSED"];

function replayButton(record, problem, done) {
  return el("button", {
    type: "button",
    "aria-label": `Replay activation ${record.activationId}`,
    text: "Replay",
    disabled: record.bodyKept ? undefined : "disabled",
    title: record.bodyKept ? "Send its body again as a new activation" : "Its body is no longer kept",
    onclick: async () => {
      try {
        const replayed = await api(`${API}/activations/${record.activationId}/replay`, { method: "POST" });
        done(el("span", {}, "replayed as ", link(`#/activations/${replayed.activationId}`, replayed.activationId)));
      } catch (error) {
        failure(problem, error);
      }
    },
  });
}

function detail(record, problem) {
  const replayed = el("p", { "aria-live": "polite" });
  return el(
    "section",
    { class: "lookup" },
    el("p", {}, "Outcome: ", el("strong", { class: "outcome", text: record.outcome }), record.reason ? ` · ${record.reason}` : ""),
    el("p", {}, "Executions: ", ...(record.executionIds.length ? record.executionIds.map((id) => [link(`#/executions/${id}`, id), " "]) : ["none"])),
    el(
      "p",
      { class: "muted" },
      `Flow ${record.flowId} · trigger ${record.triggerId}`,
      record.receivedAt ? ` · received ${when(record.receivedAt)}` : "",
      ` · decided ${when(record.decidedAt)}`,
      record.source ? ` · ${record.source}` : "",
      record.userId ? ` · user ${record.userId}` : "",
      record.replayOf ? el("span", {}, " · replays ", link(`#/activations/${record.replayOf}`, record.replayOf)) : "",
    ),
    record.bodyKept ? el("pre", { class: "value", text: JSON.stringify(record.body, null, 2) }) : el("p", { class: "muted", text: "Body: no longer kept." }),
    el("p", {}, replayButton(record, problem, (answer) => replayed.replaceChildren(answer))),
    replayed,
  );
}

export async function activationsPage(activationId) {
  const problem = alertBox();
  const answer = el("div", { "aria-live": "polite" });
  const field = el("input", { id: "activation-id", type: "text", value: activationId || "", required: true });
  const form = el(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        problem.textContent = "";
        answer.replaceChildren();
        try {
          const record = await api(`${API}/activations/${encodeURIComponent(field.value.trim())}`);
          answer.replaceChildren(detail(record, problem));
        } catch (error) {
          failure(problem, error);
        }
      },
    },
    el("label", { for: "activation-id", text: "Activation id (the X-Activation-Id of a callback)" }),
    field,
    el("p", {}, el("button", { type: "submit", text: "Look up" })),
  );
  const trigger = el("input", { id: "log-trigger", type: "text", placeholder: "any" });
  const outcome = el("select", { id: "log-outcome" }, el("option", { value: "", text: "any" }), ...OUTCOMES.map((o) => el("option", { value: o, text: o })));
  const rows = el("tbody");
  const more = el("p");
  const filters = el(
    "form",
    { class: "filters", onsubmit: (event) => { event.preventDefault(); rows.replaceChildren(); load(null); } },
    el("label", { for: "log-trigger", text: "Trigger id" }),
    trigger,
    el("label", { for: "log-outcome", text: "Outcome" }),
    outcome,
    el("button", { type: "submit", text: "Filter" }),
  );
  show(
    "Activations",
    form,
    problem,
    answer,
    el("h2", { text: "Log, newest first" }),
    filters,
    el("table", { class: "log" }, el("thead", {}, el("tr", {}, ...["Received", "Activation", "Outcome", "Why", "Executions", ""].map((h) => el("th", { scope: "col", text: h })))), rows),
    more,
  );
  function row(record) {
    const cell = el("td");
    cell.append(replayButton(record, problem, (done) => cell.replaceChildren(done)));
    return el(
      "tr",
      {},
      el("td", { text: when(record.receivedAt) }),
      el("td", {}, link(`#/activations/${record.activationId}`, record.activationId.slice(0, 8))),
      el("td", { text: record.outcome }),
      el("td", { text: record.reason || "" }),
      el("td", { text: String(record.executionIds.length) }),
      cell,
    );
  }
  async function load(cursor) {
    const query = new URLSearchParams({ limit: "25" });
    if (trigger.value.trim()) query.set("triggerId", trigger.value.trim());
    if (outcome.value) query.set("outcome", outcome.value);
    if (cursor) query.set("cursor", cursor);
    try {
      const page = await api(`${API}/activations?${query}`);
      rows.append(...page.activations.map(row));
      if (!page.activations.length && !cursor) rows.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No activations." })));
      more.replaceChildren(page.next ? el("button", { type: "button", onclick: () => load(page.next), text: "More" }) : "");
    } catch (error) {
      failure(problem, error);
    }
  }
  if (activationId) form.requestSubmit();
  await load(null);
}

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
