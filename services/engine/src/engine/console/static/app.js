// The hookflow console: one page, hash routes, the engine's management API.
// No dependencies: every element is built with the DOM API, so no text from the API is
// ever parsed as HTML.

const API = "/api/automation";
const CREDENTIAL = "hookflow.credential";
const POLL_MS = 1000;
const main = document.getElementById("main");
let stopPolling = () => {};

// -- the API ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function credential() {
  const saved = sessionStorage.getItem(CREDENTIAL);
  return saved ? JSON.parse(saved) : null;
}

// `trying`: a credential to check instead of the saved one (signing in)
async function api(path, options = {}, trying = null) {
  const saved = trying || credential();
  const headers = {};
  if (saved) headers[saved.kind === "admin" ? "X-Admin-Key" : "user-token"] = saved.value;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && saved && !trying) signOut(); // the key changed, say
    throw new ApiError(response.status, body);
  }
  return body;
}

// -- building pages ----------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(title, ...children) {
  stopPolling();
  stopPolling = () => {};
  main.replaceChildren(el("h1", { text: title }), ...children);
  document.title = `${title} · hookflow console`;
  main.focus();
}

function pretty(value) {
  return el("pre", { text: JSON.stringify(value, null, 2) });
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

function link(href, text) {
  return el("a", { href }, text);
}

function alertBox() {
  return el("p", { role: "alert", class: "error" });
}

function failure(box, error) {
  box.textContent = error instanceof ApiError ? `${error.status}: ${error.message}` : String(error);
}

function status(value) {
  return el("span", { class: `status status-${value}`, text: value });
}

// -- sign-in -----------------------------------------------------------------------------

function signOut() {
  sessionStorage.removeItem(CREDENTIAL);
  document.getElementById("nav").hidden = true;
  if (location.hash === "#/sign-in") route();
  else location.hash = "#/sign-in";
}

function signInPage() {
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

// -- flows -------------------------------------------------------------------------------

async function flowsPage() {
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
  const W = 170, H = 46, GX = 60, GY = 24;
  const at = {};
  columns.forEach((names, c) => names.forEach((name, r) => (at[name] = { x: 10 + c * (W + GX), y: 10 + r * (H + GY) })));
  const width = 20 + columns.length * (W + GX);
  const height = 20 + Math.max(...columns.map((c) => c.length)) * (H + GY);
  const ns = "http://www.w3.org/2000/svg";
  const svg = (tag, attributes = {}, ...children) => {
    const node = document.createElementNS(ns, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  };
  const callbacks = blocks.filter((b) => b.type === "external_callback").map((b) => b.name);
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
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const back = x2 <= a.x;
    const d = back
      ? `M ${a.x + W / 2} ${a.y + H} C ${a.x + W / 2} ${a.y + H + 40}, ${b.x + W / 2} ${b.y + H + 40}, ${b.x + W / 2} ${b.y + H}`
      : `M ${x1} ${y1} C ${x1 + GX / 2} ${y1}, ${x2 - GX / 2} ${y2}, ${x2} ${y2}`;
    drawing.append(svg("path", { class: "edge", d }));
    if (label) drawing.append(svg("text", { class: "edge-label", x: (x1 + x2) / 2 - 12, y: (y1 + y2) / 2 - 4 }, label));
  }
  for (const block of blocks) {
    const p = at[block.name];
    const callback = block.type === "external_callback";
    const name = block.name.length > 24 ? `${block.name.slice(0, 23)}…` : block.name;
    drawing.append(
      svg(
        "g",
        { class: `block${callback ? " callback" : ""}` },
        svg("title", {}, `${block.name} (${block.type})`),
        svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6 }),
        svg("text", { x: p.x + 8, y: p.y + 18 }, name),
        svg("text", { x: p.x + 8, y: p.y + 35, class: "muted" }, callback ? `callback · ${block.authenticationType || "NONE"}` : block.type),
      ),
    );
  }
  return el("figure", {}, drawing, el("figcaption", { class: "legend", text: "Dashed orange: External Callback blocks, where executions wait." }));
}

async function flowPage(flowId) {
  const flow = await api(`${API}/flows/${flowId}`);
  const blocks = Object.fromEntries(flow.definition.blocks.map((b) => [b.name, b]));
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
    ...["all", "running", "waiting", "completed", "failed"].map((s) => el("option", { value: s === "all" ? "" : s, text: s })),
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
    el("h2", { text: "Start" }),
    start,
    el("h2", { text: "Executions" }),
    el("label", { for: "status-filter", text: "Status" }),
    filter,
    el("table", {}, el("thead", {}, el("tr", {}, ...["Execution", "Status", "Created", "Updated"].map((h) => el("th", { scope: "col", text: h })))), rows),
    more,
  );
  await load(null);
}

function authentication(block) {
  if (!block) return "";
  const type = block.authenticationType || "NONE";
  if (type === "USER") return `USER${block.requiredRoles?.length ? ` (${block.requiredRoles.join(", ")})` : ""}`;
  if (type === "SIGNATURE") return `SIGNATURE (${block.signatureScheme || "standard-webhooks"})`;
  return type;
}

// -- executions ----------------------------------------------------------------------------

// A ready curl for a waiting trigger: the data goes in BODY; a USER trigger reads
// $USER_TOKEN, a SIGNATURE trigger signs BODY with $SECRET as its scheme does.
function curlFor(url, block) {
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

async function executionPage(executionId) {
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
  stopPolling = () => (active = false);
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
    const blocks = Object.fromEntries(flow.definition.blocks.map((b) => [b.name, b]));
    head.replaceChildren(
      el("p", {}, "Status: ", status(execution.status), execution.error ? el("span", { class: "error" }, ` · ${execution.error}`) : ""),
      el("p", { class: "muted" }, `${execution.executionId} · flow `, link(`#/flows/${flow.flowId}`, `${flow.name} v${flow.version}`), ` · created ${when(execution.created)} · updated ${when(execution.updated)}`),
      execution.deadline ? el("p", {}, `Times out at ${when(execution.deadline)}`) : "",
    );
    const waiting = flow.triggers.filter((t) => execution.waitingOn.includes(t.triggerId));
    waits.replaceChildren(
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

// -- activations, dead letters, expressions -------------------------------------------

function activationsPage(activationId) {
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
          const outcome = await api(`${API}/activations/${encodeURIComponent(field.value.trim())}`);
          answer.replaceChildren(
            el("p", {}, "Outcome: ", el("strong", { class: "outcome", text: outcome.outcome }), outcome.detail ? ` · ${outcome.detail}` : ""),
            el("p", {}, "Executions: ", ...(outcome.executionIds.length ? outcome.executionIds.map((id) => [link(`#/executions/${id}`, id), " "]) : ["none"])),
            el("p", { class: "muted" }, `Flow ${outcome.flowId} · trigger ${outcome.triggerId} · decided ${when(outcome.decidedAt)}`),
          );
        } catch (error) {
          failure(problem, error);
        }
      },
    },
    el("label", { for: "activation-id", text: "Activation id (the X-Activation-Id of a callback)" }),
    field,
    el("p", {}, el("button", { type: "submit", text: "Look up" })),
  );
  show("Activation lookup", form, problem, answer);
  if (activationId) form.requestSubmit();
}

async function deadLettersPage() {
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

function expressionsPage() {
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

// -- routing -------------------------------------------------------------------------------

const routes = [
  [/^#\/flows$/, flowsPage],
  [/^#\/flows\/([^/]+)$/, flowPage],
  [/^#\/executions\/([^/]+)$/, executionPage],
  [/^#\/activations(?:\/([^/]+))?$/, activationsPage],
  [/^#\/dead-letters$/, deadLettersPage],
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
