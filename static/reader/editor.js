/* The report editor of the reading and senior pages.
 *
 * Loses no typing: every change is kept in this browser's localStorage at once and sent to
 * the server within 1.5 s (and on blur, tab hide and page close, with keepalive requests that
 * outlive the page). Saves carry the version they are based on; the server refuses a stale
 * one (another tab saved since), and the page then says so instead of overwriting.
 * Reading pages also report what the server needs for reading time: the first display of the
 * image (from the viewer's "viewer:displayed" event), visibility, focus and a heartbeat every
 * 10 s. The server keeps the clock; the browser's clock is only sent along for reference (the
 * reader is never shown the reading time).
 * Submitting (reader) and signing (senior) cannot be undone: both first ask in the page's modal
 * <dialog id="confirm-dialog"> (focus on its confirm button: Enter confirms, Escape cancels), so
 * Ctrl+Enter then Enter submits. Nothing is sent until it is confirmed.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("reading-config").textContent);
  const urls = JSON.parse(document.getElementById("reading-urls").textContent);
  const reading = config.mode === "reading";
  const form = document.getElementById("report");
  const findings = document.getElementById("findings");
  const impression = document.getElementById("impression");
  const statusLine = document.getElementById("save-status");
  const submitButton = document.getElementById("submit");
  const DEBOUNCE_MS = 700;
  const MAX_WAIT_MS = 1500;
  const HEARTBEAT_MS = 10000;

  let version = config.version;
  let locked = config.status !== "open";
  let stale = false;
  let submitting = false;
  let inFlight = null;
  let again = false;
  let timer = null;
  let firstDirtyAt = 0;
  let startedFrom = null;

  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const boxes = () => Array.from(document.querySelectorAll('input[name="labels"]'));
  const labels = () => boxes().filter((b) => b.checked).map((b) => b.value);
  const snapshot = () => JSON.stringify([findings.value, impression.value, labels()]);
  let saved = snapshot();
  const dirty = () => snapshot() !== saved;

  function show(message, problem) {
    statusLine.textContent = message;
    statusLine.classList.toggle("problem", !!problem);
  }

  function clock() {
    return new Date().toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  }

  function post(url, data, keepalive, background) {
    const headers = {"Content-Type": "application/json", "Accept": "application/json",
                     "X-CSRFToken": csrf()};
    // The page's own requests (heartbeats) keep no idle session alive (server: X-Background).
    if (background) headers["X-Background"] = "1";
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive: !!keepalive,
      headers: headers,
      body: JSON.stringify(data),
    });
  }

  function body(baseVersion) {
    const data = {findings: findings.value, impression: impression.value,
                  version: baseVersion === undefined ? version : baseVersion};
    if (reading && boxes().length) data.labels = labels();
    if (!reading && startedFrom) data.started_from = startedFrom;
    return data;
  }

  // --- the local copy: survives a crash between a keystroke and its save -------------------
  function backup() {
    try {
      localStorage.setItem(config.key, JSON.stringify(
        {version: version, findings: findings.value, impression: impression.value,
         labels: labels()}));
    } catch (e) { /* private mode or full: the server save still runs */ }
  }

  function dropBackup() {
    try { localStorage.removeItem(config.key); } catch (e) { /* nothing to drop */ }
  }

  function restore() {
    let copy = null;
    try { copy = JSON.parse(localStorage.getItem(config.key) || "null"); } catch (e) { copy = null; }
    // Only a copy based on the version the server still has is newer than the server's text.
    if (!copy || locked || copy.version !== version) { dropBackup(); return; }
    findings.value = copy.findings;
    impression.value = copy.impression;
    boxes().forEach((b) => { b.checked = (copy.labels || []).includes(b.value); });
    if (dirty()) {
      show("Restored text typed in this browser before it closed; saving…");
      schedule(0);
    } else {
      dropBackup();
    }
  }

  // --- saving --------------------------------------------------------------------------------
  function schedule(delay) {
    if (locked || stale) return;
    const now = Date.now();
    if (!firstDirtyAt) firstDirtyAt = now;
    const wait = Math.max(0, Math.min(delay, firstDirtyAt + MAX_WAIT_MS - now));
    clearTimeout(timer);
    timer = setTimeout(save, wait);
  }

  function refused(response, data) {
    if (response.status === 401) {
      // Signed out (idle too long): the text stays in this browser and comes back after
      // signing in again; nothing is retried until then.
      show(`${(data && data.detail) || "You are signed out."} Your text is kept in this ` +
           "browser and restored when you sign in again and reopen this case.", true);
      return;
    }
    if (response.status === 409 && data && data.version !== undefined) {
      stale = true;
      show("This report was saved in another window since. Copy anything you need, then reload.", true);
    } else if (response.status === 409) {
      locked = true;
      show((data && data.detail) || "The report is locked.", true);
    } else {
      show(`Not saved (${(data && data.detail) || response.status}); retrying…`, true);
      schedule(3000);
    }
  }

  function save() {
    clearTimeout(timer);
    if (locked || stale || submitting) return Promise.resolve();
    if (inFlight) { again = true; return inFlight; }
    if (!dirty()) { firstDirtyAt = 0; return Promise.resolve(); }
    const sent = snapshot();
    firstDirtyAt = 0;
    show("Saving…");
    inFlight = post(urls.save, body(), true)
      .then(async (response) => {
        const data = await response.json().catch(() => null);
        if (response.ok) {
          version = data.version;
          saved = sent;
          if (dirty()) backup(); else dropBackup();
          show(`Saved ${clock()}`);
        } else {
          refused(response, data);
        }
      })
      .catch(() => { show("Not saved: no connection. Retrying…", true); schedule(3000); })
      .finally(() => {
        inFlight = null;
        if (again) { again = false; if (dirty()) schedule(0); }
      });
    return inFlight;
  }

  // The page is going away: send what is unsaved with a request that outlives it. If a save
  // is still on its way, this one is based on the version that save will produce.
  function flush() {
    if (locked || stale || submitting || !dirty()) return;
    // Signing out: the copy is not left for the next person at this workstation.
    if (!document.documentElement.dataset.signingOut) backup();
    const base = inFlight ? version + 1 : version;
    post(urls.save, body(base), true).catch(() => {});
  }

  // --- page events for reading time (reading pages only) --------------------------------------
  function event(kind, keepalive) {
    if (!reading || locked) return;
    post(urls.events, {kind: kind, client_at: new Date().toISOString()}, keepalive,
         kind === "heartbeat")
      .catch(() => { /* a lost heartbeat only shortens active time */ });
  }

  // --- confirmation of what cannot be undone --------------------------------------------------
  const dialogOpen = window.cxrConfirm.isOpen;
  const confirmed = window.cxrConfirm.ask;  // (js/site.js)

  // While the dialog is open, only its own keys work (Enter, Space, Escape, Tab): the page's
  // shortcuts and the viewer's keys wait (the viewer ignores a key whose default is prevented).
  window.addEventListener("keydown", (e) => {
    if (!dialogOpen()) return;
    const own = !(e.ctrlKey || e.metaKey || e.altKey) &&
      ["Enter", "Escape", "Tab", " "].includes(e.key);
    if (!own) { e.preventDefault(); e.stopImmediatePropagation(); }
  }, true);

  // --- submit / sign ------------------------------------------------------------------------
  async function submit(e) {
    if (e) e.preventDefault();
    if (locked || stale || submitting || dialogOpen()) return;
    if (!findings.value.trim() && !impression.value.trim()) {
      show("The report is empty: write the findings or the impression first.", true);
      findings.focus();
      return;
    }
    // Signing the final report is an electronic signature: the senior's password, now.
    const passwordField = reading ? null : document.getElementById("sign-password");
    const passwordNote = document.getElementById("sign-password-status");
    if (passwordField && !passwordField.value) {
      passwordNote.textContent = "Enter your password to sign: it is your electronic signature.";
      passwordField.focus();
      return;
    }
    if (passwordNote) passwordNote.textContent = "";
    if (!(await confirmed())) return;  // cancelled: nothing sent, the report stays open
    if (locked || stale || submitting) return;
    clearTimeout(timer);
    if (inFlight) await inFlight.catch(() => {});
    if (stale || locked) return;
    submitting = true;
    submitButton.disabled = true;
    show(reading ? "Submitting…" : "Signing…");
    let response;
    let data = null;
    try {
      const sent = body();
      if (passwordField) sent.password = passwordField.value;
      response = await post(reading ? urls.submit : urls.sign, sent, true);
      data = await response.json().catch(() => null);
    } catch (err) {
      submitting = false;
      submitButton.disabled = false;
      show("Not sent: no connection. Your text is kept here; try again.", true);
      return;
    }
    submitting = false;
    if (passwordField) passwordField.value = "";  // never kept: typed again for each signature
    if (!response.ok) {
      submitButton.disabled = false;
      if (response.status !== 400) { refused(response, data); return; }
      // Not accepted as sent (nothing was stored): say why, where it can be put right.
      const why = (data && (data.detail || (data.password && data.password.join(" ")))) ||
        "Not accepted.";
      if (passwordField) {
        passwordNote.textContent = why;
        show("Not signed: see the password field.", true);
        passwordField.focus();
      } else {
        show(why, true);
      }
      return;
    }
    locked = true;
    saved = snapshot();
    dropBackup();
    findings.readOnly = impression.readOnly = true;
    boxes().forEach((b) => { b.disabled = true; });
    document.querySelectorAll(".start-from").forEach((b) => { b.hidden = true; });
    submitButton.hidden = true;
    const passwordBox = document.getElementById("sign-password-box");
    if (passwordBox) passwordBox.hidden = true;
    const note = document.createElement("p");
    note.className = "notice ok";
    note.id = "submitted-note";
    note.textContent = reading
      ? "Submitted. The report is locked."
      : "Signed. This is the reference report of the case.";
    submitButton.parentNode.insertBefore(note, submitButton);
    if (data && data.signature) {
      const signed = document.createElement("p");
      signed.className = "signature";
      signed.id = "signature";
      signed.textContent = `Electronic signature: ${data.signature.text}`;
      submitButton.parentNode.insertBefore(signed, submitButton);
    }
    show("");
    const bar = document.getElementById("done-bar");  // the header's count moves on at once
    if (bar && reading) {
      bar.value = Math.min(Number(bar.max), Number(bar.value) + 1);
      bar.textContent = `${bar.value} / ${bar.max}`;
      const count = document.getElementById("done-count");
      if (count) count.textContent = `${bar.value}/${bar.max}`;
    }
    const amendBox = document.getElementById("amend-box");
    if (amendBox) {
      amendBox.hidden = false;
      document.getElementById("amend-findings").value = findings.value;
      document.getElementById("amend-impression").value = impression.value;
    }
    const nextLine = document.getElementById("next-line");
    nextLine.hidden = false;
    document.getElementById("next-case").focus();
  }

  // --- amendment (reading pages) ------------------------------------------------------------
  const amendForm = document.getElementById("amend-form");
  if (amendForm) {
    amendForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      const reason = document.getElementById("amend-reason").value.trim();
      const out = document.getElementById("amend-status");
      const password = document.getElementById("amend-password");
      if (!reason) { out.textContent = "Give the reason for the amendment."; return; }
      if (!password.value) {
        out.textContent = "Enter your password: it is your electronic signature of the amendment.";
        password.focus();
        return;
      }
      const response = await post(urls.amend, {
        findings: document.getElementById("amend-findings").value,
        impression: document.getElementById("amend-impression").value,
        reason: reason,
        password: password.value,
      }).catch(() => null);
      password.value = "";  // never kept: typed again for each signature
      if (response && response.ok) {
        window.location.reload();
      } else {
        const data = response ? await response.json().catch(() => null) : null;
        const why = ((data && data.detail) || "no connection").replace(/[.\s]+$/, "");
        out.textContent = `Not saved: ${why}.`;  // one full stop, whatever the detail ends with
      }
    });
  }

  // --- senior: start from Report 1, Report 2 or blank ----------------------------------------
  const juniors = document.getElementById("junior-reports");
  document.querySelectorAll(".start-from").forEach((button) => {
    button.addEventListener("click", () => {
      if (locked) return;
      const source = button.dataset.source;
      const hasText = findings.value.trim() || impression.value.trim();
      if (hasText && !window.confirm("Replace the final report's text?")) return;
      const reports = juniors ? JSON.parse(juniors.textContent) : [];
      const chosen = reports.find((r) => r.key === source);
      findings.value = chosen ? chosen.findings : "";
      impression.value = chosen ? chosen.impression : "";
      if (!startedFrom && !config.startedFrom) startedFrom = source;
      backup();
      schedule(0);
      findings.focus();
    });
  });

  // --- wiring --------------------------------------------------------------------------------
  const typing = (el) => el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
    (el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(el.type)));

  [findings, impression].forEach((field) => {
    field.addEventListener("input", () => { backup(); schedule(DEBOUNCE_MS); });
    field.addEventListener("blur", () => { if (dirty()) save(); });
  });
  boxes().forEach((b) => b.addEventListener("change", () => { backup(); schedule(0); }));
  form.addEventListener("submit", submit);

  document.addEventListener("keydown", (e) => {
    if (dialogOpen()) return;  // the dialog's keys are its own
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { submit(e); return; }
    if (e.key === "Escape" && typing(document.activeElement)) { document.activeElement.blur(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey || typing(document.activeElement)) return;
    if ((e.key === "n" || e.key === "N") && locked) {
      const next = document.getElementById("next-case");
      if (next) { e.preventDefault(); next.click(); }
    } else if ((e.key === "e" || e.key === "E") && !locked) {
      e.preventDefault();
      findings.focus();
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") { flush(); event("hidden", true); }
    else event("visible");
  });
  window.addEventListener("pagehide", flush);
  window.addEventListener("focus", () => event("focus"));
  window.addEventListener("blur", () => event("blur"));

  if (reading && !locked) {
    const viewer = document.getElementById("viewer");
    const displayed = () => event("image_displayed");
    if (viewer && viewer.dataset.displayed === "1") displayed();
    else document.addEventListener("viewer:displayed", displayed, {once: true});
    setInterval(() => { if (document.visibilityState === "visible") event("heartbeat"); },
                HEARTBEAT_MS);
  }

  restore();
  if (locked) dropBackup();
})();
