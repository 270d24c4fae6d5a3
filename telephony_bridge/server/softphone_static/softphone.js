// The browser softphone (server/softphone.py): one call over WebRTC to the bridge.
// For automated checks: window.softphone.state (idle|calling|connected|ended), .heardSeconds (agent
// audio played so far, measured here from the browser's own RTCInboundRtpStreamStats), .hangup().
"use strict";
(() => {
  const REPORT_MS = 100;  // how often the page measures its playout and tells the bridge
  const phone = { state: "idle", heardSeconds: 0, callId: null, error: null, hangup, sendDigit, call };
  window.softphone = phone;
  let pc = null, channel = null, mic = null, feed = null, timer = null;
  const $ = (id) => document.getElementById(id);

  function setState(state, detail) {
    phone.state = state;
    $("state").textContent = state;
    $("detail").textContent = detail ? `(${detail})` : "";
    $("call").disabled = state === "calling" || state === "connected";
    $("hangup").disabled = !(state === "calling" || state === "connected");
  }

  function span(className, text) {
    const node = document.createElement("span");
    node.className = className;
    node.textContent = text;  // text only: nothing from a call is parsed as HTML
    return node;
  }

  function line(kind, t, text) {
    const li = document.createElement("li");
    li.className = `line ${kind}`;
    const who = { caller: "You", agent: "Agent", barge_in: "Barge-in", dtmf: "DTMF", tool_call: "Tool" }[kind] || kind;
    li.append(span("t", typeof t === "number" ? `${t.toFixed(1)} s` : ""), span("who", who), span("text", text));
    $("transcript").append(li);
  }

  // What the page played of the agent, from the browser's own RTCInboundRtpStreamStats: the bridge
  // sends RTP only while the agent talks (server/softphone_track.py), so the samples the browser
  // played out, less those its jitter buffer made up (concealment over the gaps, samples stretched
  // in to slow down) and plus those it squeezed out (to speed up), are the agent's audio it played.
  async function measure() {
    const receiver = pc && pc.getReceivers().find((r) => r.track && r.track.kind === "audio");
    if (!receiver) return;
    const report = await receiver.getStats();
    let inbound = null;
    report.forEach((s) => { if (s.type === "inbound-rtp") inbound = s; });
    if (!inbound || !inbound.totalSamplesReceived) return;
    // Samples are counted at the codec's clock rate (Opus: 48 kHz, PCMU: 8 kHz).
    const codec = inbound.codecId && report.get(inbound.codecId);
    const rate = codec && codec.clockRate ? codec.clockRate : 48000;
    const own = inbound.totalSamplesReceived - (inbound.concealedSamples || 0)
      - (inbound.insertedSamplesForDeceleration || 0) + (inbound.removedSamplesForAcceleration || 0);
    phone.heardSeconds = Math.max(phone.heardSeconds, own / rate);
    $("heard").textContent = phone.heardSeconds.toFixed(1);
    const delay = inbound.jitterBufferEmittedCount ? inbound.jitterBufferDelay / inbound.jitterBufferEmittedCount : 0;
    if (channel && channel.readyState === "open") {
      channel.send(JSON.stringify({ type: "playout", played_ms: phone.heardSeconds * 1000, delay_ms: delay * 1000 }));
    }
  }

  function gathered(connection) {
    if (connection.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (connection.iceGatheringState === "complete") resolve(); };
      connection.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);  // what was gathered by then is offered (no trickle)
    });
  }

  async function call() {
    if (phone.state === "calling" || phone.state === "connected") return;
    phone.heardSeconds = 0; phone.callId = null; phone.error = null;
    $("transcript").replaceChildren();
    setState("calling");
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true });
      pc = new RTCPeerConnection({ iceServers: [] });  // no STUN/TURN: the bridge answers with its own addresses
      mic.getTracks().forEach((track) => pc.addTrack(track, mic));
      channel = pc.createDataChannel("softphone");
      channel.onmessage = (event) => {
        let message = null;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        if (message && message.type === "hangup") end(message.reason || "the bridge hung up");
      };
      pc.ontrack = (event) => { $("remote").srcObject = event.streams[0] || new MediaStream([event.track]); };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "connected" && phone.state === "calling") setState("connected");
        if (pc.connectionState === "failed") end("connection failed");
      };
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const response = await fetch("/softphone/offer", {
        method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
        body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, number: $("number").value.trim(), scenario: $("scenario").value }),
      });
      if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
      const answer = await response.json();
      phone.callId = answer.call_id;
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      follow(answer.call_id);
      timer = setInterval(() => { measure().catch(() => {}); }, REPORT_MS);
    } catch (error) {
      phone.error = String(error && error.message || error);
      end(phone.error);
    }
  }

  function follow(callId) {
    feed = new EventSource("/softphone/events");
    feed.addEventListener("line", (event) => {
      const item = JSON.parse(event.data);
      if (item.id === callId) line(item.kind, item.t, item.text);
    });
    feed.addEventListener("ended", (event) => {
      const item = JSON.parse(event.data);
      if (item.id === callId) end(item.end_reason || "ended");
    });
  }

  function end(detail) {
    if (phone.state === "ended" || phone.state === "idle" && !pc) { setState("ended", detail); return; }
    if (timer) { clearInterval(timer); timer = null; }
    const closing = pc, closingChannel = channel;
    pc = null; channel = null;
    if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
    if (feed) { setTimeout(((f) => () => f.close())(feed), 1000); feed = null; }  // the last lines may still come
    setState("ended", detail);
    if (closing) {
      // Let the hang-up message leave before the connection goes.
      const close = () => closing.close();
      if (closingChannel && closingChannel.readyState === "open" && closingChannel.bufferedAmount > 0) setTimeout(close, 200);
      else close();
    }
  }

  function hangup() {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "hangup" }));
    end("you hung up");
  }

  function sendDigit(digit) {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "dtmf", digit }));
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("dial").addEventListener("submit", (event) => { event.preventDefault(); call(); });
    $("hangup").addEventListener("click", hangup);
    document.querySelectorAll("#keypad .key").forEach((key) => key.addEventListener("click", () => sendDigit(key.dataset.digit)));
    setState("idle");
    if (document.querySelector("main").dataset.autocall === "1") call();
  });
})();
