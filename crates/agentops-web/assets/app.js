// agentops ui: keeps a page live. Every half second it asks the journal's
// position; when it moved, it fetches the page again and swaps each element
// marked data-live (by id) for the new one. Nothing else runs here: the
// pages are rendered by the server.
"use strict";
(function () {
  const main = document.getElementById("main");
  const dot = document.getElementById("live");
  if (!main) return;
  let seq = main.dataset.seq || "";
  let busy = false;
  function mark(ok) {
    if (!dot) return;
    dot.className = ok ? "live on" : "live off";
    dot.textContent = ok ? "live" : "offline";
  }
  async function refresh() {
    const res = await fetch(location.href, { headers: { "X-Agentops-Live": "1" }, credentials: "same-origin" });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    for (const el of document.querySelectorAll("[data-live]")) {
      const next = el.id && doc.getElementById(el.id);
      if (next) el.replaceWith(document.importNode(next, true));
    }
    const nm = doc.getElementById("main");
    if (nm && nm.dataset.seq) main.dataset.seq = nm.dataset.seq;
    document.dispatchEvent(new CustomEvent("agentops:refreshed"));
  }
  async function tick() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const res = await fetch("/api/seq", { credentials: "same-origin", cache: "no-store" });
      if (!res.ok) { mark(false); return; }
      const now = String((await res.json()).seq);
      mark(true);
      if (seq !== "" && now !== seq && document.querySelector("[data-live]")) {
        seq = now;
        await refresh();
      }
      seq = now;
    } catch (_) {
      mark(false);
    } finally {
      busy = false;
    }
  }
  if (main.dataset.seq !== undefined) {
    tick();
    setInterval(tick, 500);
  }
  // Filters apply as soon as they change.
  for (const f of document.querySelectorAll("form.filters select")) {
    f.addEventListener("change", () => f.form.submit());
  }
})();
