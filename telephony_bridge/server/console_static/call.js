// One call's page: the timeline and the transcript follow the recording as it plays; a click on a
// transcript line or on the timeline plays from there. Plain JavaScript, no build step.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const player = document.getElementById("player");
  const svg = document.getElementById("timeline");
  const playhead = document.getElementById("playhead");
  const lines = Array.from(document.querySelectorAll("#transcript li"));
  if (!player) return;
  const offset = parseFloat(player.dataset.offset || "0");  // where the recording starts on the call's timeline
  const scale = parseFloat(svg.dataset.scale);
  let current = null;

  function follow() {
    const t = offset + player.currentTime;
    const x = (t * scale).toFixed(2);
    playhead.setAttribute("x1", x);
    playhead.setAttribute("x2", x);
    playhead.setAttribute("visibility", "visible");
    let now = null;
    for (const li of lines) {
      if (t >= parseFloat(li.dataset.start) && t < Math.max(parseFloat(li.dataset.end), parseFloat(li.dataset.start) + 0.5)) now = li;
    }
    if (now !== current) {
      if (current) current.classList.remove("current");
      document.querySelectorAll("svg .seg.current").forEach((el) => el.classList.remove("current"));
      current = now;
      if (now) {
        now.classList.add("current");
        const seg = svg.querySelector(`[data-line="${lines.indexOf(now)}"]`);
        if (seg) seg.classList.add("current");
      }
    }
  }
  function playFrom(t) {
    player.currentTime = Math.max(0, t - offset);
    player.play();
  }
  player.addEventListener("timeupdate", follow);
  player.addEventListener("seeked", follow);
  lines.forEach((li) => li.addEventListener("click", () => playFrom(parseFloat(li.dataset.start))));
  svg.addEventListener("click", (event) => {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const local = point.matrixTransform(svg.getScreenCTM().inverse());
    playFrom(local.x / scale);
  });
});
