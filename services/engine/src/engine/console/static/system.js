// The system page: what the whole deployment did over the last hour, from the totals the
// engine samples off Kafka's offsets (every gateway and engine counted alike).

import { API, api } from "./api.js";
import { lineChart } from "./charts.js";
import { alertBox, el, every, failure, show } from "./dom.js";

const REFRESH_MS = 5000;

// per second between consecutive samples, at the later one
function rates(samples, field) {
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1], samples[i]];
    const seconds = (b.at - a.at) / 1000;
    if (seconds > 0) points.push([b.at, Math.max(0, b[field] - a[field]) / seconds]);
  }
  return points;
}

function increases(samples, field) {
  const points = [];
  for (let i = 1; i < samples.length; i++) points.push([samples[i].at, Math.max(0, samples[i][field] - samples[i - 1][field])]);
  return points;
}

export async function systemPage() {
  const problem = alertBox();
  const charts = el("div", { class: "charts" });
  const totals = el("tbody");
  show(
    "System",
    el("p", { class: "muted", text: "The last hour of the whole deployment, read from Kafka every few seconds: callbacks accepted by every gateway (and activations published straight to Kafka), what the engines decided, and what is left." }),
    problem,
    charts,
    el("h2", { text: "Totals" }),
    el("table", { class: "totals" }, el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Figure" }), el("th", { scope: "col", text: "Now" }))), totals),
  );
  async function refresh() {
    let figures;
    try {
      figures = await api(`${API}/system`);
      problem.textContent = "";
    } catch (error) {
      failure(problem, error);
      return;
    }
    const samples = figures.samples;
    const lag = samples.map((s) => [s.at, Math.max(0, s.accepted - s.decided)]);
    charts.replaceChildren(
      lineChart({
        title: "Callbacks per second",
        unit: "/s",
        series: [
          { label: "accepted", color: "#1f5fbf", points: rates(samples, "accepted") },
          { label: "refused", color: "#b3261e", points: rates(samples, "refused") },
        ],
      }),
      lineChart({
        title: "Decisions per second",
        unit: "/s",
        series: [
          { label: "activations decided", color: "#1e7a3a", points: rates(samples, "decided") },
          { label: "executions started", color: "#7a5cc2", points: rates(samples, "started") },
        ],
      }),
      lineChart({ title: "Engine lag (activations not yet decided)", series: [{ label: "behind", color: "#b85c00", points: lag }] }),
      lineChart({ title: "Dead letters per interval", series: [{ label: "dead letters", color: "#000000", points: increases(samples, "deadLetters") }] }),
    );
    const last = samples[samples.length - 1];
    const figure = (name, value) => el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: String(value) }));
    totals.replaceChildren(
      ...(last
        ? [
            figure("Activations accepted", last.accepted),
            figure("Activations decided", last.decided),
            figure("Behind", Math.max(0, last.accepted - last.decided)),
            figure("Callbacks refused", last.refused),
            figure("Starts requested", last.startsRequested),
            figure("Starts handled", last.started),
            figure("Dead letters", last.deadLetters),
          ]
        : [el("tr", {}, el("td", { colspan: 2, class: "muted", text: "No sample yet: the engine reads Kafka every few seconds." }))]),
    );
  }
  every(REFRESH_MS, refresh);
}
