// The seat page: long-polls the seat's state, renders it, posts the person's answers.
"use strict";
(function () {
  const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const base = "/seat/" + encodeURIComponent(token);
  const app = document.getElementById("app");
  let version = -1;
  let current = null;     // the open question, if any
  let lastChoice = null;  // what this page last sent, shown while waiting
  let deadline = null;
  let stopped = false;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    return node;
  }
  const card = (title, cls, ...body) => el("section", { class: "card " + (cls || "") }, title ? el("h2", { text: title }) : null, ...body);
  // One key per option: its letter when every option is one letter, else 1, 2, 3, ...
  const choiceKeys = (choices) => choices.map((c, i) => (choices.every((x) => x.length === 1) ? c.toUpperCase() : String(i + 1)));
  const orList = (xs) => (xs.length < 2 ? xs.join("") : xs.slice(0, -1).join(", ") + " or " + xs[xs.length - 1]);
  const label = (q, c) => (q.matrix ? "Option " + c : c.charAt(0).toUpperCase() + c.slice(1));

  function setHeader(s) {
    document.getElementById("seat-name").textContent = s.seat;
    const where = document.getElementById("where");
    where.replaceChildren();
    if (s.episodes > 1) where.append(el("b", { text: `Game ${s.episode} of ${s.episodes}` }));
    const q = s.question;
    if (q && q.kind === "decision" && q.rounds) {
      if (where.childNodes.length) where.append(" · ");
      where.append(`Round ${q.round} of ${q.rounds}`);
    }
    const clock = document.getElementById("clock");
    deadline = q ? Date.now() + q.remaining_s * 1000 : null;
    clock.hidden = !q;
    tick();
  }

  function tick() {
    const clock = document.getElementById("clock");
    if (deadline === null) return;
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    clock.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
    clock.classList.toggle("low", left < 30);
  }
  setInterval(tick, 1000);

  function historyTable(rows, latest) {
    if (!rows.length) return el("p", { class: "empty", text: "No rounds played yet." });
    return el("table", { class: "history", id: "history" },
      el("thead", {}, el("tr", {}, el("th", { text: "Round" }), el("th", { text: "You" }), el("th", { text: "Other player" }),
        el("th", { text: "Your points" }), el("th", { text: "Their points" }))),
      el("tbody", {}, rows.map((r, i) => el("tr", { class: latest && i === rows.length - 1 ? "latest" : null },
        el("td", { text: r.round }), el("td", { class: "you", text: r.you }), el("td", { class: "them", text: r.partner }),
        el("td", { text: r.your_points }), el("td", { text: r.partner_points })))));
  }

  function matrixTable(m) {
    const [a, b] = m.options;
    const cell = (i, j) => el("td", { class: "cell" }, el("span", { class: "you", text: m.cells[i][j][0] }), " / ",
      el("span", { class: "them", text: m.cells[i][j][1] }));
    return el("table", { class: "matrix", id: "matrix" },
      el("thead", {}, el("tr", {}, el("th", { class: "corner", text: "You \\ other" }), el("th", { text: "Option " + a }),
        el("th", { text: "Option " + b }))),
      el("tbody", {}, [0, 1].map((i) => el("tr", {}, el("th", { text: "Option " + m.options[i] }), cell(i, 0), cell(i, 1)))));
  }

  function answerBox(q, onError) {
    const f = q.answer;
    const err = el("p", { class: "error", id: "answer-error", hidden: true });
    const send = async (value, controls) => {
      controls.forEach((c) => (c.disabled = true));
      err.hidden = true;
      const r = await fetch(base + "/answer", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question: q.id, value }) }).catch(() => null);
      if (r && r.ok) { lastChoice = { value, label: f.kind === "choice" ? label(q, value) : String(value), kind: q.kind };
        apply(await r.json()); return; }
      const msg = r ? ((await r.json().catch(() => ({}))).error || `error ${r.status}`) : "The server cannot be reached.";
      err.textContent = msg; err.hidden = false;
      controls.forEach((c) => (c.disabled = false));
      if (r && r.status === 409) refresh();
    };
    if (f.kind === "choice") {
      const keys = choiceKeys(f.choices);
      const buttons = f.choices.map((c, i) => el("button", { class: "choice", type: "button", "data-value": c,
        onclick: () => send(c, buttons) }, label(q, c), el("kbd", { text: keys[i] })));
      current.onkey = (key) => { const i = keys.indexOf(key.toUpperCase()); if (i >= 0 && !buttons[i].disabled) buttons[i].click(); };
      return el("div", {}, el("div", { class: "choices", id: "choices" }, buttons), err);
    }
    const numeric = f.kind === "integer" || f.kind === "real";
    const input = numeric
      ? el("input", { type: "number", id: "answer-input", min: f.minimum, max: f.maximum, step: f.kind === "integer" ? 1 : "any" })
      : el("textarea", { id: "answer-input", rows: 3, maxlength: f.max_length });
    const button = el("button", { class: "choice", type: "submit", text: "Send" });
    const form = el("form", { class: "field", onsubmit: (e) => { e.preventDefault(); send(input.value, [input, button]); } }, input, button);
    const hint = numeric ? `A ${f.kind === "integer" ? "whole " : ""}number from ${f.minimum} to ${f.maximum}.` : (f.description || "");
    return el("div", {}, form, hint ? el("p", { class: "hint", text: hint }) : null, err);
  }

  function renderDecision(s, q) {
    const score = q.score ? el("div", { class: "score" },
      el("div", {}, el("span", { text: "Your points" }), el("b", { class: "you", id: "score-you", text: q.score.you })),
      el("div", {}, el("span", { text: "Other player's points" }), el("b", { class: "them", text: q.score.partner }))) : null;
    const rows = q.history_rows || [];
    const prev = rows.length ? rows[rows.length - 1] : null;
    const last = prev ? el("p", { class: "last", id: "last-round" }, `Round ${prev.round}: you chose `,
      el("b", { class: "you", text: "Option " + prev.you }), " and the other player chose ",
      el("b", { class: "them", text: "Option " + prev.partner }), `, so you won ${prev.your_points} and they won ${prev.partner_points}.`) : null;
    const keys = q.answer.kind === "choice" ? el("p", { class: "hint", text: "Click an option, or press " +
      orList(choiceKeys(q.answer.choices)) + "." }) : null;
    const ask = card("Your move", "ask", last, el("p", { class: "question", id: "question", text: q.question }), answerBox(q), keys, score);
    // A 2x2 game's rules are its first line and the payoffs, which the table shows; the words stay a click away.
    const [intro, ...rest] = q.rules.split("\n");
    const side = q.matrix
      ? card("Rules", "", el("p", { class: "intro", text: intro }), matrixTable(q.matrix),
          el("p", { class: "hint", text: "Each cell: your points / the other player's points." }),
          rest.length ? el("details", { class: "rules-text" }, el("summary", { text: "The rules as written" }),
            el("p", { class: "rules small", id: "rules", text: rest.join("\n") })) : null)
      : card("Rules", "", el("p", { class: "rules", id: "rules", text: q.rules }));
    const history = q.history_rows
      ? card("History", "wide", historyTable(q.history_rows, true))
      : card("History", "", q.history ? el("pre", { id: "history-text", text: q.history }) : el("p", { class: "empty", text: "Nothing yet." }));
    const seen = card(null, "wide", el("details", { id: "agent-view" }, el("summary", { text: "The whole prompt, word for word as an agent reads it" }),
      el("pre", { text: q.rules + "\n\n" + q.prompt })));
    // A 2x2 game: the move and the payoffs side by side, the history below; other games keep their
    // history beside the move, under it, so the latest rounds stay in view.
    if (q.matrix) app.replaceChildren(ask, side, history, seen);
    else app.replaceChildren(el("div", { class: "stack" }, ask, history), side, seen);
  }

  function resultCard(r, title, wide) {
    return card(title || `Game ${r.game} result`, wide ? "wide" : "",
      r.history_rows ? historyTable(r.history_rows, false) : (r.text ? el("pre", { text: r.text }) : null),
      el("div", { class: "score" }, el("div", {}, el("span", { text: "Your total" }), el("b", { class: "you", text: r.total })),
        r.partner_total !== undefined ? el("div", {}, el("span", { text: "Other player's total" }), el("b", { class: "them", text: r.partner_total })) : null));
  }

  function renderDebrief(s, q) {
    const ask = card("One more question", "ask wide", el("p", { class: "question", id: "question", text: q.question }), answerBox(q));
    app.replaceChildren(ask, resultCard({ ...q.result, game: s.episode }, `Game ${s.episode} is over`, true));
  }

  function notice(kind, lines, extra) {
    app.replaceChildren(el("section", { class: "card notice", id: "notice" }, kind === "wait" ? el("div", { class: "spinner" }) : null,
      lines.map((t, i) => el("p", { class: i ? "sub" : null, text: t })), extra || null));
  }

  function render(s) {
    app.dataset.status = s.status;
    current = s.question ? { id: s.question.id, onkey: null } : null;
    app.dataset.question = current ? current.id : "";
    app.dataset.round = s.question && s.question.kind === "decision" ? s.question.round : "";
    setHeader(s);
    if (s.status === "question") {
      (s.question.kind === "debrief" ? renderDebrief : renderDecision)(s, s.question);
    } else if (s.status === "waiting") {
      const said = lastChoice && lastChoice.kind === "decision" ? [`You chose ${lastChoice.label}.`] : [];
      notice("wait", said.length ? [...said, "Waiting for the other player…"] : ["Waiting for your next game to start…"]);
    } else if (s.status === "done") {
      stopped = true;  // the results stay on the page after the run's server goes
      notice("done", ["All games are over. Thank you for playing!", "You can close this page."],
        s.results.length ? el("div", { class: "results" }, s.results.map((r) => resultCard(r))) : null);
    } else {
      stopped = true;
      notice("closed", ["This session has ended.", "You can close this page."]);
    }
  }

  function apply(s) {
    if (s.version <= version && s.status !== "closed") return;
    version = s.version;
    render(s);
  }

  async function refresh() {
    const r = await fetch(base + "/state").catch(() => null);
    if (r && r.ok) apply(await r.json());
  }

  document.addEventListener("keydown", (e) => {
    if (current && current.onkey && !e.ctrlKey && !e.metaKey && !e.altKey && e.target.tagName !== "INPUT" && e.target.tagName !== "TEXTAREA") current.onkey(e.key);
  });

  async function poll() {
    let failures = 0;
    while (!stopped) {
      const r = await fetch(`${base}/state?since=${version}`).catch(() => null);
      if (r && r.status === 404) { stopped = true; notice("closed", ["This link does not hold a seat.", "Check the link you were given."]); return; }
      if (r && r.ok) { failures = 0; apply(await r.json()); continue; }
      failures += 1;
      if (failures >= 3) { stopped = true; notice("closed", ["This session has ended.", "You can close this page."]); return; }
      await new Promise((done) => setTimeout(done, 1000));
    }
  }
  poll();
})();
