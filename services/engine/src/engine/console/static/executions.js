// One execution: its timeline, and the callbacks it waits on with a ready curl.

import { API, api } from "./api.js";
import { POLL_MS, el, link, onLeave, pretty, show, status, when } from "./dom.js";
import { allBlocks, authentication, curlFor } from "./flows.js";

export async function executionPage(executionId) {
  let flow = null;
  const head = el("div", { "aria-live": "polite" });
  const waits = el("div");
  const vars = el("div");
  const results = el("div");
  const history = el("ol", { class: "timeline" });
  show(
    "Execution",
    head,
    el("h2", { text: "Waiting on" }),
    waits,
    el("h2", { text: "Variables" }),
    vars,
    el("h2", { text: "Results" }),
    results,
    el("h2", { text: "History" }),
    history,
  );
  let active = true;
  onLeave(() => (active = false));
  let shown = "";
  while (active) {
    const execution = await api(`${API}/executions/${executionId}`);
    flow ||= await api(`${API}/flows/${execution.flowId}`);
    const fingerprint = JSON.stringify([execution.status, execution.updated, execution.history.length]);
    if (fingerprint !== shown) {
      shown = fingerprint;
      render(execution, flow);
    }
    if (execution.status === "completed" || execution.status === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }

  function render(execution, flow) {
    const blocks = Object.fromEntries(allBlocks(flow.definition).map((b) => [b.name, b]));
    head.replaceChildren(
      el("p", {}, "Status: ", status(execution.status), execution.error ? el("span", { class: "error" }, ` · ${execution.error}`) : ""),
      el("p", { class: "muted" }, `${execution.executionId} · flow `, link(`#/flows/${flow.flowId}`, `${flow.name} v${flow.version}`), ` · created ${when(execution.created)} · updated ${when(execution.updated)}`),
      execution.deadline ? el("p", {}, `Times out at ${when(execution.deadline)}`) : "",
    );
    const waiting = flow.triggers.filter((t) => execution.waitingOn.includes(t.triggerId));
    const group = execution.group;
    waits.replaceChildren(
      group
        ? el(
            "section",
            { "aria-label": `Triggers group ${group.block}` },
            el("h3", { text: `Triggers group ${group.block} · ${blocks[group.block]?.mode ?? ""}` }),
            el(
              "ul",
              { class: "members" },
              group.members.map((m) => el("li", {}, el("strong", { text: m.name }), m.arrivedAt ? ` · arrived ${when(m.arrivedAt)}` : " · awaited")),
            ),
          )
        : "",
      ...(waiting.length
        ? waiting.map((t) => {
            const url = `${t.callbackUrl}?execution=${execution.executionId}`;
            const curl = el("pre", { class: "curl", "aria-label": `curl for ${t.name}`, text: curlFor(url, blocks[t.name]) });
            return el(
              "section",
              { "aria-label": `Trigger ${t.name}` },
              el("h3", { text: `${t.name} · ${authentication(blocks[t.name])}` }),
              el("p", {}, "Callback URL: ", el("code", { class: "callback-url", text: url })),
              blocks[t.name]?.condition ? el("p", {}, "Condition: ", el("code", { text: blocks[t.name].condition })) : "",
              curl,
              el("button", { type: "button", onclick: () => navigator.clipboard?.writeText(curl.textContent), text: "Copy curl" }),
            );
          })
        : [el("p", { class: "muted", text: "Nothing." })]),
    );
    vars.replaceChildren(pretty(execution.vars));
    results.replaceChildren(pretty(execution.results));
    history.replaceChildren(
      ...execution.history.map((entry) =>
        el("li", {}, el("strong", { text: entry.event }), entry.block ? ` ${entry.block}` : "", ` · ${when(entry.at)}`, entry.detail ? el("span", { class: "muted" }, ` · ${entry.detail}`) : ""),
      ),
    );
  }
}
