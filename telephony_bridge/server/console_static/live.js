// Calls in progress: server-sent events from /console/live/events (event types: call, line, ended).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("live-calls");
  const status = document.getElementById("live-status");
  const cards = new Map();
  const labels = { caller: "Caller", agent: "Agent", barge_in: "Barge-in", tool_call: "Tool", dtmf: "DTMF" };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;  // text only: nothing from a call is parsed as HTML
    return node;
  }
  function updateStatus() {
    const live = Array.from(cards.values()).filter((c) => !c.ended).length;
    status.textContent = live ? `${live} call(s) in progress` : "no call in progress";
  }
  function card(call) {
    const node = el("section", "live-call");
    node.dataset.callId = call.id;
    const title = el("h3");
    const link = el("a", "", call.id);
    link.href = `/console/calls/${encodeURIComponent(call.id)}`;
    title.append(link);
    const meta = el("div", "meta");
    meta.append(el("span", "from", call.from || "?"), " → ", el("span", "to", call.to || "?"),
                ` · ${call.scenario || ""} · ${call.carrier || ""} · `, el("span", "state", "in progress"));
    node.append(title, meta, el("ol", "transcript"));
    box.prepend(node);
    return { node, ended: false };
  }
  const source = new EventSource("/console/live/events");
  source.addEventListener("hello", () => updateStatus());
  source.addEventListener("call", (event) => {
    const call = JSON.parse(event.data);
    if (!cards.has(call.id)) cards.set(call.id, card(call));
    updateStatus();
  });
  source.addEventListener("line", (event) => {
    const line = JSON.parse(event.data);
    const entry = cards.get(line.id);
    if (!entry) return;
    const li = el("li", `line ${line.kind}`);
    li.append(el("b", "", labels[line.kind] || line.kind), el("span", "text", line.text));
    entry.node.querySelector("ol").append(li);
  });
  source.addEventListener("ended", (event) => {
    const ended = JSON.parse(event.data);
    const entry = cards.get(ended.id);
    if (!entry) return;
    entry.ended = true;
    entry.node.classList.add("ended");
    entry.node.querySelector(".state").textContent = `ended: ${ended.end_reason || "?"}`;
    updateStatus();
  });
  source.onerror = () => { status.textContent = "reconnecting…"; };
});
