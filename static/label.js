// Labeling page: pairwise choice (K = 2) or ranked list with ties (K > 2), keyboard first.
// Data from prompts and completions is only ever put in the page with textContent.
// Work in progress lives in localStorage until the server has stored it; a judgment being sent
// sits in an outbox there too, so a reload or a crash resends it instead of losing it.
(() => {
  "use strict";
  const cfg = JSON.parse(document.getElementById("label-config").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = window.PREFLOOP_POLL_MS || 15000;
  const OUTBOX = `prefloop:outbox:${cfg.user_id}`;
  const wipKey = (taskId) => `prefloop:wip:${cfg.user_id}:${taskId}`;
  const DRAG_TYPE = "application/x-prefloop-candidate";

  let task = null; // TaskOut of the task on screen
  let st = null; // work state: {choice, groups, touched, sel, ratings, flags, rationale, elapsed}
  let visibleSince = null; // performance.now() when the current visible stretch began
  let busy = false; // a submit or skip is in flight
  let confirmAsShown = false; // K > 2: second Enter submits an untouched ranking
  let timer = null; // countdown of a retry or of the next "anything to do?" check
  const cards = new Map(); // candidate id -> ranking <li>

  // ---------- small helpers ----------
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Plain text with `inline code` spans as <code>; everything else stays literal. */
  function prose(text) {
    const div = el("div", "prose");
    text.split(/`([^`\n]+)`/).forEach((part, i) => {
      if (part) div.append(i % 2 ? el("code", null, part) : part);
    });
    return div;
  }

  /** Text with ``` fences: code blocks in <pre>, the rest as pre-wrapped text. */
  function richText(text) {
    const box = el("div", "rich");
    const fence = /```([^\n`]*)\n([\s\S]*?)(?:\n?```|$)/g;
    let last = 0;
    const before = (s) => s.replace(/\n+$/, ""); // blank lines next to a block are its margin
    const after = (s) => s.replace(/^\n+/, "");
    for (const m of text.matchAll(fence)) {
      const chunk = before(last ? after(text.slice(last, m.index)) : text.slice(0, m.index));
      if (chunk) box.append(prose(chunk));
      const pre = el("pre", "code");
      if (m[1].trim()) pre.dataset.lang = m[1].trim();
      pre.append(el("code", null, m[2]));
      box.append(pre);
      last = m.index + m[0].length;
    }
    const rest = last ? after(text.slice(last)) : text;
    if (rest || !box.childNodes.length) box.append(prose(rest));
    return box;
  }

  function status(text, kind, link) {
    const s = $("status");
    s.replaceChildren(text);
    s.className = "lb-status" + (kind ? " " + kind : "");
    if (link) {
      const a = el("a", null, link.text);
      a.href = link.href;
      s.append(" ", a);
    }
  }

  /** Trimmed free text without NUL characters (PostgreSQL text cannot hold them). */
  function clean(text) {
    return text.replaceAll("\0", "").trim();
  }

  function hint(text) {
    $("hint").textContent = text || "";
  }

  async function api(method, url, body) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 20000);
    const opts = {
      method,
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
      cache: "no-store",
      signal: ctl.signal,
    };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    try {
      return await fetch(url, opts);
    } finally {
      clearTimeout(t);
    }
  }

  async function errorText(res) {
    try {
      const d = (await res.json()).detail;
      return Array.isArray(d) ? d.map((e) => `${e.loc.slice(1).join(".")}: ${e.msg}`).join("; ") : String(d);
    } catch {
      return `HTTP ${res.status}`;
    }
  }

  /** Show a countdown in the status line, then resolve. */
  function countdown(ms, render) {
    clearInterval(timer);
    return new Promise((resolve) => {
      const end = Date.now() + ms;
      const tick = () => {
        const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
        render(left);
        if (Date.now() >= end) {
          clearInterval(timer);
          timer = null;
          resolve();
        }
      };
      timer = setInterval(tick, 250);
      tick();
      $("check-now").onclick = () => {
        clearInterval(timer);
        resolve();
      };
    });
  }

  // ---------- time on task ----------
  function elapsed() {
    return Math.round(st.elapsed + (visibleSince === null ? 0 : performance.now() - visibleSince));
  }
  function pauseClock() {
    if (st && visibleSince !== null) st.elapsed = elapsed();
    visibleSince = null;
  }
  function resumeClock() {
    if (st && visibleSince === null && !document.hidden) visibleSince = performance.now();
  }

  // ---------- work in progress ----------
  function store(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch {
      status("This browser refuses to keep work in progress (storage full or disabled).", "bad");
    }
  }

  function load(key) {
    try {
      return JSON.parse(localStorage.getItem(key) || "null");
    } catch {
      return null;
    }
  }

  function save() {
    if (!task || !st) return;
    const { sel, ...rest } = st;
    store(wipKey(task.task_id), { ...rest, elapsed: elapsed() });
  }

  /** Drop work kept for tasks other than this one: a labeler holds one lease at a time. */
  function forgetOthers(taskId) {
    const prefix = wipKey("");
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith(prefix) && key !== wipKey(taskId)) localStorage.removeItem(key);
    }
  }

  function restore(t) {
    const ids = t.candidates.map((c) => c.id);
    const fresh = {
      choice: null, groups: ids.map((i) => [i]), touched: false, sel: null,
      ratings: {}, flags: [], rationale: "", elapsed: 0,
    };
    const saved = load(wipKey(t.task_id));
    if (!saved) return [fresh, false];
    const flat = (saved.groups || []).flat();
    const sameIds = flat.length === ids.length && ids.every((i) => flat.includes(i));
    const state = { ...fresh, ...saved, groups: sameIds ? saved.groups : fresh.groups, sel: null };
    const worked = state.choice || state.touched || state.rationale || state.flags.length
      || Object.keys(state.ratings).length;
    return [state, Boolean(worked)];
  }

  // ---------- showing a task ----------
  function showTask(t) {
    task = t;
    forgetOthers(t.task_id);
    let restored;
    [st, restored] = restore(t);
    visibleSince = null;
    resumeClock();
    confirmAsShown = false;
    const k = t.candidates.length;
    $("task-info").textContent = `Task #${t.task_id} · ${k} candidates`;

    const convo = $("prompt");
    const msgs = typeof t.prompt === "string" ? [{ role: "user", content: t.prompt }] : t.prompt;
    convo.replaceChildren(
      ...msgs.map((m) => {
        const box = el("div", `msg msg-${m.role}`);
        box.append(el("div", "role", m.role), richText(m.content));
        return box;
      }),
    );

    $("pair").hidden = $("choices").hidden = k !== 2;
    $("kwise").hidden = k === 2;
    if (k === 2) buildPair(t);
    else buildRanking(t);

    for (const input of $("ratings").querySelectorAll("input")) {
      input.checked = st.ratings[input.name.slice(2)] === Number(input.value);
    }
    for (const input of $("flags").querySelectorAll("input")) {
      input.checked = st.flags.includes(input.value);
    }
    $("rationale").value = st.rationale;
    closeSkip();
    hint("");
    $("empty").hidden = true;
    $("work").hidden = false;
    setBusy(false);
    render();
    convo.scrollTop = convo.scrollHeight;
    window.scrollTo(0, 0);
    if (restored) status("Restored your unsaved work on this task.", "info");
  }

  function buildPair(t) {
    $("pair").replaceChildren(
      ...t.candidates.map((c, i) => {
        const card = el("article", "cand");
        card.dataset.id = c.id;
        const head = el("header", "cand-head");
        head.append(el("span", "cand-label", "AB"[i]), el("kbd", null, String(i + 1)));
        card.append(head, richText(c.text));
        return card;
      }),
    );
  }

  function buildRanking(t) {
    cards.clear();
    $("kmax").textContent = String(Math.min(9, t.candidates.length));
    t.candidates.forEach((c, i) => {
      const li = el("li", "rank-item");
      li.dataset.id = c.id;
      li.draggable = true;
      li.tabIndex = 0;
      const head = el("header", "cand-head");
      head.append(el("span", "rank-pos"), el("span", "cand-label", `Candidate ${i + 1}`));
      if (i < 9) head.append(el("kbd", null, String(i + 1)));
      li.append(head, richText(c.text));
      li.addEventListener("focus", () => select(c.id, false));
      li.addEventListener("dragstart", (e) => {
        e.dataTransfer.setData(DRAG_TYPE, String(c.id));
        e.dataTransfer.effectAllowed = "move";
        li.classList.add("dragging");
      });
      li.addEventListener("dragend", () => li.classList.remove("dragging"));
      li.addEventListener("dragover", (e) => {
        e.preventDefault();
        li.dataset.drop = dropZone(li, e);
      });
      li.addEventListener("dragleave", () => delete li.dataset.drop);
      li.addEventListener("drop", (e) => {
        e.preventDefault();
        const zone = dropZone(li, e);
        delete li.dataset.drop;
        const dragged = Number(e.dataTransfer.getData(DRAG_TYPE));
        if (!busy && cards.has(dragged) && dragged !== c.id) {
          change(() => dropOn(dragged, c.id, zone), dragged);
        }
      });
      cards.set(c.id, li);
    });
    $("ranking").replaceChildren(...cards.values());
  }

  function dropZone(li, e) {
    const r = li.getBoundingClientRect();
    const y = (e.clientY - r.top) / r.height;
    return y < 0.3 ? "before" : y > 0.7 ? "after" : "tie";
  }

  /** Bring the screen in line with st (cheap: K is small; cards are moved, not rebuilt). */
  function render() {
    if (task.candidates.length === 2) {
      for (const b of $("choices").querySelectorAll("button")) {
        b.setAttribute("aria-pressed", String(b.dataset.choice === st.choice));
      }
      const [a, b] = $("pair").children;
      const win = { a: [a, b], b: [b, a] }[st.choice];
      for (const c of [a, b]) c.classList.remove("preferred", "lesser", "bad", "tied");
      if (win) {
        win[0].classList.add("preferred");
        win[1].classList.add("lesser");
      } else if (st.choice) {
        for (const c of [a, b]) c.classList.add(st.choice === "tie" ? "tied" : "bad");
      }
      return;
    }
    const list = $("ranking");
    let pos = 1;
    let at = 0;
    for (const group of st.groups) {
      group.forEach((id, i) => {
        const li = cards.get(id);
        // move a node only when it is out of place: moving one cancels a drag in progress
        if (list.children[at] !== li) list.insertBefore(li, list.children[at] || null);
        at += 1;
        const tied = group.length > 1;
        li.querySelector(".rank-pos").textContent = (tied ? "=" : "") + pos;
        li.classList.toggle("tied", tied);
        li.classList.toggle("tie-first", tied && i === 0);
        li.classList.toggle("tie-rest", tied && i > 0);
        li.classList.toggle("selected", id === st.sel);
        const n = task.candidates.findIndex((c) => c.id === id) + 1;
        li.setAttribute("aria-label", `Rank ${pos}${tied ? " (tied)" : ""}: candidate ${n}`);
      });
      pos += group.length;
    }
  }

  // ---------- ranking operations (groups: best first; one group = tied candidates) ----------
  function locate(id) {
    return st.groups.findIndex((g) => g.includes(id));
  }

  function detach(id) {
    const gi = locate(id);
    const g = st.groups[gi];
    g.splice(g.indexOf(id), 1);
    if (!g.length) st.groups.splice(gi, 1);
  }

  function moveBy(id, dir) {
    const gi = locate(id);
    const g = st.groups[gi];
    if (g.length > 1) {
      // leaving a tie: step just above or below the tied group
      g.splice(g.indexOf(id), 1);
      st.groups.splice(dir < 0 ? gi : gi + 1, 0, [id]);
      return;
    }
    const to = gi + dir;
    if (to < 0 || to >= st.groups.length) return;
    st.groups.splice(gi, 1);
    st.groups.splice(to, 0, [id]);
  }

  function toggleTie(id) {
    const gi = locate(id);
    const g = st.groups[gi];
    if (g.length > 1) {
      g.splice(g.indexOf(id), 1);
      st.groups.splice(gi + 1, 0, [id]);
    } else if (gi > 0) {
      st.groups.splice(gi, 1);
      st.groups[gi - 1].push(id);
    } else {
      hint("The top candidate has nothing above it to tie with.");
    }
  }

  function dropOn(dragged, target, zone) {
    detach(dragged);
    const ti = locate(target);
    if (zone === "tie") st.groups[ti].push(dragged);
    else st.groups.splice(zone === "before" ? ti : ti + 1, 0, [dragged]);
  }

  function select(id, focus = true) {
    st.sel = id;
    render();
    const li = cards.get(id);
    if (focus && li && document.activeElement !== li) li.focus({ preventScroll: true });
    if (li) li.scrollIntoView({ block: "nearest" });
  }

  function change(fn, sel) {
    fn();
    st.touched = true;
    confirmAsShown = false;
    if (sel !== undefined) st.sel = sel;
    hint("");
    save();
    render();
    if (sel !== undefined) select(sel);
  }

  // ---------- submit, skip, retry ----------
  function body() {
    const b = {
      ratings: st.ratings,
      flags: st.flags,
      rationale: clean(st.rationale) || null,
      time_spent_ms: elapsed(),
    };
    if (task.candidates.length === 2) {
      if (!st.choice) {
        hint("Pick first: 1 = A better, 2 = B better, 3 = tie, 0 = both bad.");
        return null;
      }
      return { ...b, choice: st.choice };
    }
    if (!st.touched && !confirmAsShown) {
      confirmAsShown = true;
      hint("You have not changed the order shown. Press Enter again to submit it as is.");
      return null;
    }
    return { ...b, ranking: st.groups };
  }

  function setBusy(on) {
    busy = on;
    $("work").setAttribute("aria-busy", String(on));
    $("work").classList.toggle("sending", on);
    for (const b of [$("submit"), $("skip"), $("skip-go")]) b.disabled = on;
  }

  function submit() {
    if (!task || busy) return;
    st.rationale = $("rationale").value;
    const b = body();
    if (!b) return;
    pauseClock();
    save();
    send({ kind: "judgment", task_id: task.task_id, body: b });
  }

  function skip() {
    if (!task || busy) return;
    pauseClock();
    save();
    send({ kind: "skip", task_id: task.task_id, body: { reason: clean($("skip-reason").value) } });
  }

  async function send(item) {
    store(OUTBOX, item);
    const moved = await drainOutbox(item);
    if (moved) next(moved.next);
  }

  /** The next task a submit answered with (undefined when the answer carries none). */
  async function carried(res) {
    try {
      const data = await res.json();
      return "next" in data ? data.next : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Send the outbox until the server answers. Returns false while the labeler must stay on
   * the task, else {next}: a judgment is sent with ?next=1, so the same request (and the same
   * transaction) leases the next task; `next` is that task, null for none, undefined to ask.
   */
  async function drainOutbox(item = load(OUTBOX)) {
    if (!item) return {};
    setBusy(true);
    const url = item.kind === "skip"
      ? `/api/v1/tasks/${item.task_id}/skip`
      : `/api/v1/tasks/${item.task_id}/judgments?next=1`;
    const verb = item.kind === "skip" ? "Skipping" : "Saving";
    for (let attempt = 1; ; attempt++) {
      status(`${verb}…`, "busy");
      let res = null;
      let why = "no connection";
      try {
        res = await api("POST", url, item.body);
      } catch {
        res = null;
      }
      const done = () => {
        localStorage.removeItem(OUTBOX);
        localStorage.removeItem(wipKey(item.task_id));
      };
      if (res && res.ok) {
        done();
        status(`${item.kind === "skip" ? "Skipped" : "Saved"} ✓ (task #${item.task_id})`, "ok");
        if (item.kind !== "skip") countOne(); // no request of its own: one request per click
        return { next: res.status === 204 ? undefined : await carried(res) };
      }
      if (res && (res.status === 409 || res.status === 404)) {
        done();
        const answer = res.clone();
        status(`Not saved: ${await errorText(res)}. Moving on.`, "warn");
        return { next: await carried(answer) };
      }
      if (res && (res.status === 401 || res.status === 403)) {
        status("Not saved yet: your session expired or changed. Your work is kept here;", "bad", {
          text: "log in again to send it.",
          href: "/login?next=/label",
        });
        return false;
      }
      // any other 4xx but timeouts and rate limits: resending the same body cannot help
      if (res && res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        localStorage.removeItem(OUTBOX);
        status(`Not saved: ${await errorText(res)}`, "bad");
        if (task && task.task_id === item.task_id) {
          setBusy(false);
          resumeClock();
          return false;
        }
        return {}; // an old outbox entry the server refuses: nothing the labeler can fix
      }
      if (res) why = `server answered ${res.status}`;
      const wait = Math.min(1000 * 2 ** (attempt - 1), 15000);
      await countdown(wait, (s) =>
        status(`Not saved yet (${why}). Retrying in ${s} s (attempt ${attempt + 1})…`, "warn"),
      );
    }
  }

  // ---------- next task / nothing to do ----------
  /** Show `given` (a task a submit carried; null: none) or ask the server for one. */
  async function next(given) {
    if (given) {
      showTask(given);
      return;
    }
    for (let attempt = 1; ; attempt++) {
      if (given === null) {
        given = undefined; // the submit said there is nothing to do: wait, then ask
        showEmpty();
        await countdown(POLL_MS, (s) => {
          $("empty-next").textContent = `Checking again in ${s} s.`;
        });
        attempt = 0;
        continue;
      }
      let res = null;
      try {
        res = await api("GET", "/api/v1/tasks/next");
      } catch {
        res = null;
      }
      if (res && res.status === 200) {
        showTask(await res.json());
        return;
      }
      if (res && res.status === 204) {
        showEmpty();
        await countdown(POLL_MS, (s) => {
          $("empty-next").textContent = `Checking again in ${s} s.`;
        });
        attempt = 0;
        continue;
      }
      if (res && res.status === 401) {
        window.location.assign("/login?next=/label");
        return;
      }
      const wait = Math.min(1000 * 2 ** (attempt - 1), 15000);
      const why = res ? `server answered ${res.status}` : "no connection";
      await countdown(wait, (s) =>
        status(`Could not load a task (${why}). Retrying in ${s} s…`, "warn"),
      );
    }
  }

  function showEmpty() {
    refreshCounts(); // an idle moment: take the server's counters (e.g. after midnight UTC)
    pauseClock();
    task = null;
    st = null;
    setBusy(false);
    $("work").hidden = true;
    $("empty").hidden = false;
    $("task-info").textContent = "No task";
  }

  /** A judgment was stored (201, or 200 for one whose first answer was lost): count it here. */
  function countOne() {
    for (const id of ["n-today", "n-total"]) {
      const n = Number($(id).textContent);
      if (Number.isFinite(n)) $(id).textContent = String(n + 1);
    }
  }

  async function refreshCounts() {
    try {
      const res = await api("GET", "/api/v1/me");
      if (!res.ok) return;
      const me = await res.json();
      $("n-today").textContent = me.judged_today;
      $("n-total").textContent = me.judged_total;
    } catch {
      // counters are a nicety; the next save refreshes them
    }
  }

  // ---------- controls ----------
  function buildControls() {
    for (const name of cfg.criteria) {
      const row = el("div", "rating");
      row.append(el("span", "rating-name", name));
      for (let v = 1; v <= 5; v++) {
        const lab = el("label", "pip");
        const input = el("input");
        input.type = "radio";
        input.name = `r-${name}`;
        input.value = String(v);
        // clicking the chosen value again clears it (ratings are optional)
        input.addEventListener("click", () => {
          if (st.ratings[name] === v) {
            delete st.ratings[name];
            input.checked = false;
          } else st.ratings[name] = v;
          save();
        });
        lab.append(input, el("span", null, String(v)));
        row.append(lab);
      }
      $("ratings").append(row);
    }
    for (const name of cfg.flags) {
      const lab = el("label", "flag");
      const input = el("input");
      input.type = "checkbox";
      input.value = name;
      input.addEventListener("change", () => {
        st.flags = st.flags.filter((f) => f !== name).concat(input.checked ? [name] : []);
        save();
      });
      lab.append(input, el("span", null, name.replaceAll("_", " ")));
      $("flags").append(lab);
    }
    $("rationale").addEventListener("input", () => {
      st.rationale = $("rationale").value;
      save();
    });
    for (const b of $("choices").querySelectorAll("button")) {
      b.addEventListener("click", () => choose(b.dataset.choice));
    }
    $("submit").addEventListener("click", submit);
    $("skip").addEventListener("click", openSkip);
    $("skip-go").addEventListener("click", skip);
    $("guide-toggle").addEventListener("click", () => toggleGuide());
    $("guide-close").addEventListener("click", () => toggleGuide(false));
  }

  function choose(c) {
    if (!task || busy) return;
    st.choice = c;
    hint("");
    save();
    render();
  }

  function openSkip() {
    if (!task || busy) return;
    $("skipbox").hidden = false;
    $("skip-reason").focus();
  }

  function closeSkip() {
    $("skipbox").hidden = true;
    $("skip-reason").value = "";
  }

  function toggleGuide(open) {
    const g = $("guide");
    const show = open === undefined ? g.hidden : open;
    g.hidden = !show;
    $("guide-toggle").setAttribute("aria-expanded", String(show));
  }

  function onKey(e) {
    if (e.isComposing) return;
    const t = e.target;
    const typing = t.matches("textarea, input:not([type=radio]):not([type=checkbox]), select");
    if (e.key === "Escape") {
      if (!$("skipbox").hidden) closeSkip();
      else if (!$("guide").hidden) toggleGuide(false);
      if (typing) t.blur();
      return;
    }
    if (typing) {
      if (e.key === "Enter" && t.id === "skip-reason") {
        e.preventDefault();
        skip();
      } else if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && t.id === "rationale") {
        e.preventDefault();
        submit();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "g") return toggleGuide();
    if (!task || busy) return;
    const k = task.candidates.length;
    if (e.key === "Enter") {
      // Enter on a link or a button other than the judgment's own keeps its usual meaning
      if (t.closest("a, button:not([data-choice]):not(#submit)")) return;
      e.preventDefault(); // a focused choice button would otherwise act on Enter as well
      return submit();
    }
    if (e.key === "s") {
      e.preventDefault();
      return openSkip();
    }
    if (k === 2) {
      const c = { 1: "a", 2: "b", 3: "tie", 0: "both_bad" }[e.key];
      if (c) choose(c);
      return;
    }
    if (/^[1-9]$/.test(e.key) && Number(e.key) <= k) {
      return select(task.candidates[Number(e.key) - 1].id);
    }
    if ((e.key === "ArrowUp" || e.key === "ArrowDown") && t.type !== "radio") {
      if (st.sel === null) return hint("Pick a candidate with its number key first.");
      e.preventDefault();
      return change(() => moveBy(st.sel, e.key === "ArrowUp" ? -1 : 1), st.sel);
    }
    if (e.key === "t" && st.sel !== null) return change(() => toggleTie(st.sel), st.sel);
  }

  // ---------- start ----------
  document.addEventListener("keydown", onKey);
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      pauseClock();
      save();
    } else resumeClock();
  });
  window.addEventListener("pagehide", save);
  buildControls();
  refreshCounts();
  (async () => {
    const moved = await drainOutbox(); // a judgment sent before a reload or crash goes first
    await next(moved ? moved.next : undefined);
  })();
})();
