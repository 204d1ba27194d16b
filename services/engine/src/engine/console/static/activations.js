// The activation log: filters, live refresh, one activation's detail (body, reason,
// executions, trace), replay of one.

import { API, api } from "./api.js";
import { alertBox, el, every, failure, link, show, when } from "./dom.js";

export const OUTCOMES = ["ACTIVATED", "FILTERED", "NO_WAITER", "DUPLICATE", "IGNORED_AUTH", "UNKNOWN_TRIGGER", "INVALID", "DEAD_LETTERED", "BUFFERED", "EXPIRED", "REFUSED"];
const LIVE_MS = 2000;

function replayButton(record, problem, done) {
  return el("button", {
    type: "button",
    "aria-label": `Replay activation ${record.activationId}`,
    text: "Replay",
    disabled: record.bodyKept ? undefined : "disabled",
    title: record.bodyKept ? "Send its body again as a new activation" : "Its body is not kept",
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
    { class: "lookup", "aria-label": "Activation detail" },
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
      record.bodySize !== null && record.bodySize !== undefined ? ` · ${record.bodySize} bytes` : "",
      record.replayOf ? el("span", {}, " · replays ", link(`#/activations/${record.replayOf}`, record.replayOf)) : "",
    ),
    record.traceId ? el("p", {}, "Trace: ", el("code", { class: "trace", text: record.traceId })) : "",
    record.bodyKept ? el("pre", { class: "value", text: JSON.stringify(record.body, null, 2) }) : el("p", { class: "muted", text: "Body: not kept." }),
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
  const flow = el("input", { id: "log-flow", type: "text", placeholder: "any" });
  const trigger = el("input", { id: "log-trigger", type: "text", placeholder: "any" });
  const outcome = el("select", { id: "log-outcome" }, el("option", { value: "", text: "any" }), ...OUTCOMES.map((o) => el("option", { value: o, text: o })));
  const live = el("input", { id: "log-live", type: "checkbox" });
  const rows = el("tbody");
  const more = el("p");
  const filters = el(
    "form",
    { class: "filters", onsubmit: (event) => { event.preventDefault(); load(null); } },
    el("div", {}, el("label", { for: "log-flow", text: "Flow id" }), flow),
    el("div", {}, el("label", { for: "log-trigger", text: "Trigger id" }), trigger),
    el("div", {}, el("label", { for: "log-outcome", text: "Outcome" }), outcome),
    el("button", { type: "submit", text: "Filter" }),
    el("div", {}, live, el("label", { for: "log-live", class: "inline", text: " Live (refresh every 2 s)" })),
  );
  show(
    "Activations",
    form,
    problem,
    answer,
    el("h2", { text: "Log, newest first" }),
    filters,
    el("table", { class: "log" }, el("thead", {}, el("tr", {}, ...["Received", "Activation", "Trigger", "Outcome", "Why", "Executions", ""].map((h) => el("th", { scope: "col", text: h })))), rows),
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
      el("td", { text: record.triggerId.slice(0, 8) }),
      el("td", { text: record.outcome }),
      el("td", { text: record.reason || "" }),
      el("td", { text: String(record.executionIds.length) }),
      cell,
    );
  }
  // the first page replaces the rows (a refresh), a later one is appended (More)
  async function load(cursor) {
    const query = new URLSearchParams({ limit: "25" });
    if (flow.value.trim()) query.set("flowId", flow.value.trim());
    if (trigger.value.trim()) query.set("triggerId", trigger.value.trim());
    if (outcome.value) query.set("outcome", outcome.value);
    if (cursor) query.set("cursor", cursor);
    try {
      const page = await api(`${API}/activations?${query}`);
      const found = page.activations.map(row);
      if (cursor) rows.append(...found);
      else rows.replaceChildren(...found);
      if (!page.activations.length && !cursor) rows.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No activations." })));
      more.replaceChildren(page.next ? el("button", { type: "button", onclick: () => load(page.next), text: "More" }) : "");
    } catch (error) {
      failure(problem, error);
    }
  }
  if (activationId) form.requestSubmit();
  await load(null);
  // live: the first page again every 2 s while the box is ticked (and the page shown)
  every(LIVE_MS, async () => {
    if (live.checked) await load(null);
  });
}
