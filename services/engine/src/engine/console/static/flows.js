// The flows, a flow's graph, triggers and executions; how a trigger is called.

import { API, api } from "./api.js";
import { OUTCOME_COLORS, stackedBars } from "./charts.js";
import { alertBox, el, every, failure, link, show, status, svg, when } from "./dom.js";

const HOUR_MS = 3600 * 1000;

export async function flowsPage() {
  const rows = el("tbody");
  const more = el("p");
  show(
    "Flows",
    el(
      "table",
      {},
      el("caption", { class: "muted", text: "Every deployed version; the live one of each name is marked." }),
      el("thead", {}, el("tr", {}, ...["Name", "Version", "Triggers", "Deployed", "Flow id"].map((h) => el("th", { scope: "col", text: h })))),
      rows,
    ),
    more,
  );
  async function load(cursor) {
    const page = await api(`${API}/flows?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    for (const flow of page.flows) {
      rows.append(
        el(
          "tr",
          {},
          el("td", {}, link(`#/flows/${flow.flowId}`, flow.name)),
          el("td", {}, `v${flow.version}`, flow.live ? " (live)" : ""),
          el("td", {}, flow.triggers.map((t) => t.name).join(", ") || el("span", { class: "muted", text: "none" })),
          el("td", { text: when(flow.created) }),
          el("td", {}, el("code", { text: flow.flowId })),
        ),
      );
    }
    more.replaceChildren(
      page.next ? el("button", { type: "button", onclick: () => load(page.next), text: "More flows" }) : "",
    );
  }
  await load(null);
}

// A layered drawing: each block in the column of its shortest distance from the entry.
function graph(flow) {
  const blocks = flow.definition.blocks;
  const byName = Object.fromEntries(blocks.map((b) => [b.name, b]));
  const edges = [];
  for (const block of blocks) {
    if (block.type === "branch") {
      if (block.then) edges.push([block.name, block.then, "then"]);
      if (block.else) edges.push([block.name, block.else, "else"]);
    } else if (block.next) edges.push([block.name, block.next, ""]);
    if (block.onTimeout) edges.push([block.name, block.onTimeout, "timeout"]);
  }
  const incoming = new Set(edges.map((e) => e[1]));
  const entry = (blocks.find((b) => b.type === "start") || blocks.find((b) => !incoming.has(b.name)) || blocks[0]).name;
  const level = { [entry]: 0 };
  const queue = [entry];
  while (queue.length) {
    const name = queue.shift();
    for (const [from, to] of edges) {
      if (from === name && byName[to] && level[to] === undefined) {
        level[to] = level[name] + 1;
        queue.push(to);
      }
    }
  }
  const columns = [];
  for (const block of blocks) {
    const column = level[block.name] ?? 0;
    (columns[column] ||= []).push(block.name);
  }
  const W = 170, H = 46, GX = 60, GY = 24, MH = 32;
  // a triggers group is one box holding its members, one under another
  const tall = (name) => (byName[name]?.type === "triggers_group" ? H + byName[name].triggers.length * (MH + 6) : H);
  const at = {};
  columns.forEach((names, c) => {
    let y = 10;
    for (const name of names) {
      at[name] = { x: 10 + c * (W + GX), y, h: tall(name) };
      y += tall(name) + GY;
    }
  });
  const width = 20 + columns.length * (W + GX);
  const height = 20 + Math.max(...columns.map((c) => c.reduce((sum, name) => sum + tall(name) + GY, 0)));
  const callbacks = allBlocks(flow.definition).filter((b) => b.type === "external_callback").map((b) => b.name);
  const drawing = svg(
    "svg",
    {
      class: "graph",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `Flow graph of ${blocks.length} blocks; callback blocks: ${callbacks.join(", ") || "none"}`,
    },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a94a6" }))),
  );
  for (const [from, to, label] of edges) {
    if (!at[from] || !at[to]) continue;
    const a = at[from], b = at[to];
    const x1 = a.x + W, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
    const back = x2 <= a.x;
    const d = back
      ? `M ${a.x + W / 2} ${a.y + a.h} C ${a.x + W / 2} ${a.y + a.h + 40}, ${b.x + W / 2} ${b.y + b.h + 40}, ${b.x + W / 2} ${b.y + b.h}`
      : `M ${x1} ${y1} C ${x1 + GX / 2} ${y1}, ${x2 - GX / 2} ${y2}, ${x2} ${y2}`;
    drawing.append(svg("path", { class: "edge", d }));
    if (label) drawing.append(svg("text", { class: "edge-label", x: (x1 + x2) / 2 - 12, y: (y1 + y2) / 2 - 4 }, label));
  }
  const short = (text, most) => (text.length > most ? `${text.slice(0, most - 1)}…` : text);
  for (const block of blocks) {
    const p = at[block.name];
    const callback = block.type === "external_callback";
    const group = block.type === "triggers_group";
    const kind = callback ? `callback · ${block.authenticationType || "NONE"}` : group ? `triggers group · ${block.mode}` : block.type;
    const box = svg(
      "g",
      { class: `block${callback ? " callback" : ""}${group ? " group" : ""}` },
      svg("title", {}, `${block.name} (${block.type})`),
      svg("rect", { x: p.x, y: p.y, width: W, height: p.h, rx: 6 }),
      svg("text", { x: p.x + 8, y: p.y + 18 }, short(block.name, 24)),
      svg("text", { x: p.x + 8, y: p.y + 35, class: "muted" }, kind),
    );
    (group ? block.triggers : []).forEach((member, n) => {
      const y = p.y + H + n * (MH + 6);
      box.append(
        svg(
          "g",
          { class: "block callback member" },
          svg("title", {}, `${member.name} (external_callback in ${block.name})`),
          svg("rect", { x: p.x + 8, y, width: W - 16, height: MH, rx: 4 }),
          svg("text", { x: p.x + 14, y: y + 20 }, short(member.name, 21)),
        ),
      );
    });
    drawing.append(box);
  }
  return el("figure", {}, drawing, el("figcaption", { class: "legend", text: "Dashed orange: External Callback blocks, where executions wait; a triggers group holds its members." }));
}

// Every block of a definition: each triggers group followed by its members.
export function allBlocks(definition) {
  return definition.blocks.flatMap((b) => (b.type === "triggers_group" ? [b, ...b.triggers] : [b]));
}

export async function flowPage(flowId) {
  const flow = await api(`${API}/flows/${flowId}`);
  const blocks = Object.fromEntries(allBlocks(flow.definition).map((b) => [b.name, b]));
  const problem = alertBox();
  const input = el("textarea", { id: "input", rows: 4, text: "{}" });
  const start = el(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          // answered once the execution exists: a start is carried out asynchronously
          const started = await api(`${API}/flow/${flow.flowId}/execute?wait=10`, { method: "POST", body: input.value || "{}" });
          location.hash = `#/executions/${started.executionId}`;
        } catch (error) {
          failure(problem, error);
        }
      },
    },
    el("label", { for: "input", text: "Input (JSON object)" }),
    input,
    el("p", {}, el("button", { type: "submit", text: "Start an execution" })),
    problem,
  );
  const filter = el(
    "select",
    { id: "status-filter" },
    ...["all", "running", "waiting", "completed", "failed", "terminated"].map((s) => el("option", { value: s === "all" ? "" : s, text: s })),
  );
  const rows = el("tbody");
  const more = el("p");
  async function load(cursor) {
    if (!cursor) rows.replaceChildren();
    const query = new URLSearchParams({ limit: "20" });
    if (filter.value) query.set("status", filter.value);
    if (cursor) query.set("cursor", cursor);
    const page = await api(`${API}/flow/${flow.flowId}/executions?${query}`);
    for (const execution of page.executions) {
      rows.append(
        el(
          "tr",
          {},
          el("td", {}, link(`#/executions/${execution.executionId}`, execution.executionId)),
          el("td", {}, status(execution.status)),
          el("td", { text: when(execution.created) }),
          el("td", { text: when(execution.updated) }),
        ),
      );
    }
    if (!page.executions.length && !cursor) rows.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "No executions." })));
    more.replaceChildren(page.next ? el("button", { type: "button", onclick: () => load(page.next), text: "Next page" }) : "");
  }
  filter.addEventListener("change", () => load(null));
  const outcomes = el("div", { class: "charts", "aria-live": "polite" });
  show(
    `${flow.name} v${flow.version}`,
    el("p", { class: "muted" }, `Flow ${flow.flowId}${flow.live ? " · live version" : ""} · deployed ${when(flow.created)}`),
    el("h2", { text: "Graph" }),
    graph(flow),
    el("h2", { text: "Triggers" }),
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, ...["Block", "Authentication", "Callback URL"].map((h) => el("th", { scope: "col", text: h })))),
      el(
        "tbody",
        {},
        flow.triggers.map((t) =>
          el("tr", {}, el("td", { text: t.name }), el("td", { text: authentication(blocks[t.name]) }), el("td", {}, el("code", { text: t.callbackUrl }))),
        ),
      ),
    ),
    el("h2", { text: "Outcomes, last hour" }),
    outcomes,
    el("h2", { text: "Start" }),
    start,
    el("h2", { text: "Executions" }),
    el("label", { for: "status-filter", text: "Status" }),
    filter,
    el("table", {}, el("thead", {}, el("tr", {}, ...["Execution", "Status", "Created", "Updated"].map((h) => el("th", { scope: "col", text: h })))), rows),
    more,
  );
  await load(null);
  every(10_000, () => outcomeCharts(flow, outcomes));
}

// One chart per trigger: its activations per minute over the last hour, by outcome
async function outcomeCharts(flow, into) {
  const until = Date.now();
  const since = until - HOUR_MS;
  const query = new URLSearchParams({ flowId: flow.flowId, since: String(since), until: String(until), bucketSeconds: "60" });
  let summary;
  try {
    summary = await api(`${API}/activations/summary?${query}`);
  } catch (error) {
    const problem = alertBox();
    failure(problem, error);
    into.replaceChildren(problem);
    return;
  }
  const charts = flow.triggers.map((trigger) => {
    const series = summary.series
      .filter((s) => s.triggerId === trigger.triggerId)
      .map((s) => ({ label: s.outcome, color: OUTCOME_COLORS[s.outcome] || "#5b6475", counts: s.counts }));
    if (!series.length) return el("p", { class: "muted", text: `${trigger.name}: no activations in the last hour.` });
    return stackedBars({ title: `${trigger.name}: activations per minute`, since, bucketMs: summary.bucketSeconds * 1000, series });
  });
  if (summary.truncated) charts.push(el("p", { class: "muted", text: `Counted the newest ${summary.counted} activations only.` }));
  into.replaceChildren(...charts);
}

export function authentication(block) {
  if (!block) return "";
  const type = block.authenticationType || "NONE";
  if (type === "USER") return `USER${block.requiredRoles?.length ? ` (${block.requiredRoles.join(", ")})` : ""}`;
  if (type === "SIGNATURE") return `SIGNATURE (${block.signatureScheme || "standard-webhooks"})`;
  return type;
}

// -- executions ----------------------------------------------------------------------------

// A ready curl for a waiting trigger: the data goes in BODY; a USER trigger reads
// $USER_TOKEN, a SIGNATURE trigger signs BODY with $SECRET as its scheme does.
export function curlFor(url, block) {
  const type = block?.authenticationType || "NONE";
  const lines = ["BODY='{}'"];
  const headers = ["-H 'content-type: application/json'"];
  if (type === "USER") headers.push('-H "user-token: $USER_TOKEN"');
  if (type === "SIGNATURE") {
    const scheme = block.signatureScheme || "standard-webhooks";
    if (scheme === "github") {
      lines.push(`SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.*= //')`);
      headers.push('-H "X-Hub-Signature-256: sha256=$SIG"', '-H "X-GitHub-Delivery: $(date +%s%N)"');
    } else if (scheme === "stripe") {
      lines.push("TS=$(date +%s)", `SIG=$(printf '%s' "$TS.$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.*= //')`);
      headers.push('-H "Stripe-Signature: t=$TS,v1=$SIG"');
    } else {
      lines.push(
        "MSG=msg_$(date +%s%N); TS=$(date +%s)",
        `KEY=$(printf '%s' "\${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \\n')`,
        `SIG=$(printf '%s' "$MSG.$TS.$BODY" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY -binary | base64)`,
      );
      headers.push('-H "webhook-id: $MSG"', '-H "webhook-timestamp: $TS"', '-H "webhook-signature: v1,$SIG"');
    }
  }
  lines.push(`curl -sS -i -X POST '${url}' \\\n  ${headers.join(" \\\n  ")} \\\n  -d "$BODY"`);
  return lines.join("\n");
}
