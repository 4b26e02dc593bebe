// societas view: keep pages current while runs play, by polling small fragments (no build step, no libraries).
(function () {
  "use strict";
  const POLL_MS = 2000;

  async function text(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) throw new Error(url + ": " + r.status);
    return { body: await r.text(), version: r.headers.get("X-Version") };
  }

  // The runs list: rows replaced in place, ticked boxes kept.
  const table = document.getElementById("runs-table");
  const button = document.getElementById("compare-button");
  function syncButton() {
    if (!button) return;
    const n = document.querySelectorAll('input[name="run"]:checked').length;
    button.disabled = n < 2;
    button.textContent = n >= 2 ? "Compare " + n + " runs" : "Compare selected";
  }
  if (table) {
    table.addEventListener("change", syncButton);
    const refresh = async () => {
      if (document.hidden) return;
      try {
        const { body } = await text(table.dataset.refresh);
        // Ticks read after the fetch, so one made while it was under way is kept too.
        const picked = new Set([...document.querySelectorAll('input[name="run"]:checked')].map((i) => i.value));
        table.innerHTML = body;
        document.querySelectorAll('input[name="run"]').forEach((i) => { i.checked = picked.has(i.value); });
        syncButton();
      } catch (e) { /* the server went away; keep what is shown */ }
    };
    setInterval(refresh, POLL_MS * 1.5);
    syncButton();
  }

  // A run's page: the header every poll, the report when a new version of the run exists.
  const report = document.getElementById("report");
  const head = document.getElementById("head");
  if (report && head) {
    let busy = false;
    const poll = async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const state = await (await fetch(report.dataset.state, { cache: "no-store" })).json();
        const { body: headHtml } = await text(head.dataset.refresh);
        head.innerHTML = headHtml;
        if (state.version !== report.dataset.version) {
          const { body, version } = await text(report.dataset.fragment);
          if (version && version !== report.dataset.version) {
            const y = window.scrollY;
            report.innerHTML = body;
            report.dataset.version = version;
            report.classList.remove("updated"); void report.offsetWidth; report.classList.add("updated");
            window.scrollTo(0, y);
          }
        } else if (state.status !== "running") {
          clearInterval(timer);  // finished and shown: nothing more will change
        }
      } catch (e) { /* try again at the next poll */ }
      busy = false;
    };
    const timer = setInterval(poll, POLL_MS);
    if (!report.dataset.version) poll();  // not drawn yet: ask for it now
  }
})();
