// Gantry dashboard: live updates on top of pages that work without this script.
// Reads the JSON API with the session cookie (GET only); never writes through it.
"use strict";

(function () {
  const main = document.querySelector("main");
  if (!main) return;
  const page = main.dataset.page;
  const TERMINAL = ["succeeded", "failed", "cancelled", "timed_out", "skipped"];

  function setStatus(el, status) {
    if (!el || el.textContent === status) return;
    el.textContent = status;
    el.className = el.className.replace(/\bst-[a-z_]+/, "st-" + status);
  }

  async function getJson(url) {
    const resp = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
    if (!resp.ok) throw new Error(url + ": " + resp.status);
    return resp.json();
  }

  // Polls `url` every 2 s with `apply` until it returns true.
  function poll(url, apply) {
    let stopped = false;
    async function tick() {
      if (stopped) return;
      try {
        if (apply(await getJson(url))) return;
      } catch (e) { /* the server may be restarting: try again */ }
      setTimeout(tick, 2000);
    }
    setTimeout(tick, 2000);
    return () => { stopped = true; };
  }

  // Fetches this page again and gives its <main>; null when it is no longer this page (a
  // logged-out session gets the login page).
  async function freshMain() {
    const resp = await fetch(location.href, { credentials: "same-origin", headers: { accept: "text/html" } });
    if (!resp.ok) throw new Error(location.href + ": " + resp.status);
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    const fresh = doc.querySelector("main");
    return fresh && fresh.dataset.page === page ? fresh : null;
  }

  // Calls `refresh` whenever `/live` says runs changed (at most once a second, never two at
  // once), and whenever the stream (re)connects: what changed before it listened is fetched.
  // A hidden tab closes its stream (browsers allow few connections per server) and opens it
  // again when shown. If the stream cannot be had (a proxy that refuses it, the session
  // over), it polls every 5 s instead. `refresh` returns true when nothing more will change;
  // then it all stops.
  function whenChanged(query, refresh) {
    let busy = false, again = false, done = false, lastAt = 0, timer = null;
    let source = null, polling = false;
    async function run() {
      timer = null;
      if (done) return;
      if (busy || document.hidden) { again = true; return; }
      const wait = lastAt + 1000 - Date.now();
      if (wait > 0) { timer = setTimeout(run, wait); return; }
      busy = true;
      again = false;
      lastAt = Date.now();
      try { done = await refresh(); } catch (e) { /* the server may be restarting */ }
      busy = false;
      if (done) { close(); return; }
      if (again && !timer) timer = setTimeout(run, 0);
    }
    const kick = () => { if (!timer) timer = setTimeout(run, 0); };
    function close() { if (source) source.close(); source = null; }
    function poll() {
      if (polling) return;
      polling = true;
      (function tick() { if (!done) { if (!document.hidden) kick(); setTimeout(tick, 5000); } })();
    }
    function open() {
      if (done || source || polling) return;
      if (typeof EventSource !== "function") { poll(); return; }
      source = new EventSource("/live" + query);
      source.addEventListener("change", kick);
      source.addEventListener("open", kick);
      source.onerror = () => {
        // The browser retries a dropped stream by itself; one it gave up on is closed.
        if (source && source.readyState === EventSource.CLOSED) { close(); poll(); }
      };
    }
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) { close(); } else { open(); kick(); }
    });
    if (!document.hidden) open();
  }

  if (page === "runs") {
    // The list as the server draws it for these filters (new runs, statuses, durations),
    // swapped in when it changed; the filter form is left alone.
    const region = document.getElementById("runs-list");
    let last = region ? region.innerHTML : "";
    if (region) {
      whenChanged("", async () => {
        const fresh = await freshMain();
        const list = fresh && fresh.querySelector("#runs-list");
        if (list && list.innerHTML !== last) {
          last = list.innerHTML;
          region.replaceChildren(...list.childNodes);
        }
        return false;
      });
    }
  }

  if (page === "run") {
    const id = main.dataset.runId;
    const runStatus = document.querySelector("[data-run-status]");
    if (!TERMINAL.includes(runStatus.textContent)) {
      whenChanged("?run=" + encodeURIComponent(id), async () => {
        const run = await getJson("/api/v1/runs/" + encodeURIComponent(id));
        setStatus(runStatus, run.status);
        for (const job of run.jobs) {
          const sel = '[data-job="' + CSS.escape(job.name) + '"]';
          const row = document.querySelector("tr" + sel);
          if (row) {
            setStatus(row.querySelector("[data-status]"), job.status);
            // The row's cells: job, status, attempt, duration, exit code.
            row.cells[2].textContent = job.attempt;
            row.cells[4].textContent = job.exit_code === null ? "" : job.exit_code;
          }
          const node = document.querySelector("g.node" + sel);
          if (node) {
            node.setAttribute("class", node.getAttribute("class").replace(/\bst-[a-z_]+/, "st-" + job.status));
          }
        }
        const done = TERMINAL.includes(run.status);
        // Durations, the critical path and the buttons are drawn by the server: once the run
        // is over, its page as the server draws it now replaces this one's content (no reload).
        if (done) {
          const fresh = await freshMain();
          if (fresh) main.replaceChildren(...fresh.childNodes);
        }
        return done;
      });
    }
  }

  if (page === "rule") {
    // Hints as you type: the pattern checked by the server as saving would check it.
    const field = document.querySelector('textarea[name="pattern"]');
    const hint = document.getElementById("pattern-hint");
    let timer = null, asked = 0;
    if (field && hint) {
      field.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(async () => {
          const mine = ++asked;
          try {
            const r = await getJson("/rules/new/check?pattern=" + encodeURIComponent(field.value));
            if (mine !== asked) return;
            hint.textContent = r.ok ? (field.value.trim() ? "The pattern is valid." : "") : r.reason;
            hint.className = r.ok ? "hint" : "hint error";
            field.setAttribute("aria-invalid", r.ok ? "false" : "true");
          } catch (e) { /* no hint then; saving still checks */ }
        }, 300);
      });
    }
  }

  if (page === "log") {
    const log = document.getElementById("log");
    const button = document.getElementById("follow");
    if (!button) return;
    const runUrl = "/api/v1/runs/" + encodeURIComponent(main.dataset.runId);
    const logUrl = () => runUrl + "/jobs/" + encodeURIComponent(main.dataset.job) +
      "/log?attempt=" + main.dataset.attempt;
    let source = null;

    // One line of log text with its SGR colours as spans (text only ever set as textContent).
    let style = [];
    function appendLine(text) {
      const line = document.createDocumentFragment();
      const parts = text.split(/\x1b\[([0-9;:]*)m/);
      parts.forEach((part, i) => {
        if (i % 2 === 1) {
          style = sgr(style, part);
          return;
        }
        const clean = part.replace(/\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|\x1b.?|[\x00-\x08\x0b-\x1f\x7f]/g, "");
        if (!clean) return;
        if (style.length) {
          const span = document.createElement("span");
          span.className = style.join(" ");
          span.textContent = clean;
          line.appendChild(span);
        } else {
          line.appendChild(document.createTextNode(clean));
        }
      });
      line.appendChild(document.createTextNode("\n"));
      // The log grows the page (it scrolls only sideways): follow the end if the reader is there.
      const atEnd = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 40;
      log.appendChild(line);
      if (atEnd) window.scrollTo(0, document.body.scrollHeight);
    }
    function sgr(current, params) {
      let s = current.slice();
      const nums = params === "" ? [0] : params.split(/[;:]/).map(Number);
      const set = (prefix, cls) => { s = s.filter((c) => !c.startsWith(prefix)); if (cls) s.push(cls); };
      for (let i = 0; i < nums.length; i++) {
        const n = nums[i];
        if (n === 0) s = [];
        else if (n === 1) set("b", "b");
        else if (n === 3) set("i", "i");
        else if (n === 4) set("u", "u");
        else if (n === 22) set("b", null);
        else if (n >= 30 && n <= 37) set("fg", "fg" + (n - 30));
        else if (n >= 90 && n <= 97) set("fg", "fg" + (n - 82));
        else if (n === 39) set("fg", null);
        else if (n >= 40 && n <= 47) set("bg", "bg" + (n - 40));
        else if (n >= 100 && n <= 107) set("bg", "bg" + (n - 92));
        else if (n === 49) set("bg", null);
        else if (n === 38 || n === 48) i += nums[i + 1] === 5 ? 2 : 4;
      }
      return s;
    }

    function stop() {
      if (source) source.close();
      source = null;
      button.textContent = "Follow";
      button.setAttribute("aria-pressed", "false");
    }
    function follow() {
      // The stream replays the attempt's output from its start, then follows it.
      log.textContent = "";
      style = [];
      source = new EventSource(logUrl());
      source.addEventListener("log", (e) => appendLine(e.data));
      source.addEventListener("end", (e) => {
        try {
          const end = JSON.parse(e.data);
          setStatus(document.querySelector("[data-job-status]"), end.status);
          getJson(runUrl).then((run) => {
            const job = run.jobs.find((j) => j.name === main.dataset.job);
            const exit = document.querySelector("[data-exit]");
            if (job && exit && String(job.attempt) === main.dataset.attempt && job.exit_code !== null) {
              exit.textContent = job.exit_code;
            }
          }).catch(() => {});
        } catch (err) { /* keep the shown status */ }
        stop();
        button.hidden = true;
      });
      source.onerror = () => { if (source && source.readyState === EventSource.CLOSED) stop(); };
      button.textContent = "Stop following";
      button.setAttribute("aria-pressed", "true");
    }
    button.addEventListener("click", () => (source ? stop() : follow()));
    if (main.dataset.attempt !== "0") {
      button.hidden = false;
      follow();
    } else {
      // Not started yet: wait for its first attempt, then follow it.
      poll(runUrl, (run) => {
        const job = run.jobs.find((j) => j.name === main.dataset.job);
        if (!job || job.attempt === 0) return TERMINAL.includes(run.status);
        main.dataset.attempt = String(job.attempt);
        button.hidden = false;
        follow();
        return true;
      });
    }
  }
})();
