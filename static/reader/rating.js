/* Blinded rating pages (templates/rating/item.html and list.html).
 *
 * Item page, keyboard first:
 *  - a digit picks a level of the current instrument: the one holding the focus, else the
 *    first one not answered yet (outlined). The key of each level is printed beside it
 *    (data-keys): the level's code when that is a digit, else its place (1, 2, ...) and, for
 *    letter codes (Report A/B, acceptability A-D), the letter too.
 *  - Enter submits once every instrument is answered, or says which one is missing. Where
 *    the campaign does not allow revision the submission is final, so Enter first opens a
 *    confirmation (<dialog id="confirm-dialog">, focus on its Submit button): Enter again
 *    submits, Escape cancels and nothing is sent. Where revision is allowed, no question.
 *  - after a successful submission the next item opens (or "All done" is shown).
 *  - N opens the next item once this one is submitted.
 * The image viewer uses the digits for window presets; here the digits rate, so this script
 * listens in the capture phase on window and stops digit keys before the viewer sees them
 * (the presets stay on the viewer's toolbar buttons). Keys typed into the error counts (number
 * inputs) are left alone.
 * The server keeps the time: rendering the page opened the item, the submission closes it;
 * "Revise" re-opens it (open/ URL) so a revision is timed too.
 * List page: N opens the next item.
 */
(function () {
  "use strict";

  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const modified = (e) => e.ctrlKey || e.metaKey || e.altKey;
  const form = document.getElementById("rating");

  if (!form) {  // the list page
    document.addEventListener("keydown", (e) => {
      if (modified(e)) return;
      const el = document.activeElement;
      if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA")) return;
      if (e.key === "n" || e.key === "N") {
        const next = document.getElementById("next-item");
        if (next) { e.preventDefault(); next.click(); }
      }
    });
    return;
  }

  const urls = JSON.parse(document.getElementById("rating-urls").textContent);
  const stored = JSON.parse(document.getElementById("rating-values").textContent);
  const statusLine = document.getElementById("rating-status");
  const submitButton = document.getElementById("submit-rating");
  const reviseButton = document.getElementById("revise");
  const cancelButton = document.getElementById("cancel-revise");
  const submittedNote = document.getElementById("submitted-note");
  const nextLine = document.getElementById("next-line");
  const allDone = document.getElementById("all-done");
  const fieldsets = Array.from(form.querySelectorAll("fieldset.instrument"));
  const campaignOpen = form.dataset.open === "1";
  const mayRevise = form.dataset.mayRevise === "1";
  const nextUrl = form.dataset.next || "";

  let locked = form.dataset.status === "submitted" || !campaignOpen;
  let submitting = false;
  let lastPicked = null;
  let values = stored;

  // --- confirmation of a final submission ---------------------------------------------------
  const dialogOpen = window.cxrConfirm.isOpen;
  const confirmed = window.cxrConfirm.ask;  // (js/site.js)

  const isCounts = (fs) => fs.dataset.kind === "counts";
  const radios = (fs) => Array.from(fs.querySelectorAll('input[type="radio"]'));
  const counts = (fs) => Array.from(fs.querySelectorAll('input[type="number"]'));
  const nameOf = (fs) => fs.querySelector(".instrument-name").textContent.trim();

  function say(message, problem) {
    statusLine.textContent = message;
    statusLine.classList.toggle("problem", !!problem);
  }

  function countValue(input) {
    const text = input.value.trim();
    if (text === "") return 0;
    return /^\d+$/.test(text) ? Number(text) : NaN;
  }

  function countsValid(fs) {
    return counts(fs).every((input) => {
      const n = countValue(input);
      return Number.isInteger(n) && n >= 0 && n <= 50;
    });
  }

  function answered(fs) {
    return isCounts(fs) ? countsValid(fs) : radios(fs).some((r) => r.checked);
  }

  function valueOf(fs) {
    if (!isCounts(fs)) {
      const checked = radios(fs).find((r) => r.checked);
      return checked ? checked.value : null;
    }
    const result = {};
    counts(fs).forEach((input) => {
      result[input.dataset.type] = result[input.dataset.type] || {};
      result[input.dataset.type][input.dataset.part] = countValue(input);
    });
    return result;
  }

  function fill(given) {
    if (!given) return;
    fieldsets.forEach((fs) => {
      const value = given[fs.dataset.instrument];
      if (value === undefined || value === null) return;
      if (isCounts(fs)) {
        counts(fs).forEach((input) => {
          const entry = value[input.dataset.type] || {};
          input.value = String(entry[input.dataset.part] || 0);
        });
      } else {
        radios(fs).forEach((r) => { r.checked = r.value === String(value); });
      }
    });
  }

  function setLocked(flag) {
    locked = flag;
    form.classList.toggle("locked", flag);
    fieldsets.forEach((fs) => {
      fs.querySelectorAll("input").forEach((input) => {
        if (input.type === "number") input.readOnly = flag;
        else input.disabled = flag;
      });
    });
    submitButton.hidden = flag;
    submittedNote.hidden = !(flag && form.dataset.status === "submitted");
    nextLine.hidden = !flag;
    reviseButton.hidden = !(flag && mayRevise && form.dataset.status === "submitted");
    markCurrent();
  }

  // --- which instrument the digits go to ----------------------------------------------------
  function focusedInstrument() {
    const el = document.activeElement;
    return el && el.closest ? el.closest("fieldset.instrument") : null;
  }

  function current() {
    const focused = focusedInstrument();
    if (focused && !isCounts(focused)) return focused;
    const open = fieldsets.find((fs) => !isCounts(fs) && !answered(fs));
    return open || lastPicked;
  }

  function markCurrent() {
    const target = locked ? null : current();
    fieldsets.forEach((fs) => {
      fs.classList.toggle("current", fs === target);
      fs.classList.toggle("answered", answered(fs));
    });
  }

  // The status line after an answer, whether picked by a key or tapped/clicked.
  function announce(fs, radio) {
    const label = radio ? fs.querySelector(`label[for="${radio.id}"] .level-label`) : null;
    const remaining = fieldsets.filter((f) => !answered(f)).map(nameOf);
    const picked = radio ? `${nameOf(fs)}: ${label ? label.textContent.trim() : radio.value}.`
                         : "";
    say((picked + (remaining.length ? ` Still to answer: ${remaining.join(", ")}.`
                                    : " All answered: press Enter to submit.")).trim());
  }

  function pick(fs, radio) {
    radio.checked = true;
    radio.dispatchEvent(new Event("change", {bubbles: true}));
    lastPicked = fs;
    fs.classList.remove("missing");
    if (focusedInstrument() === fs) radio.focus();
    announce(fs, radio);
    markCurrent();
    const upcoming = form.querySelector("fieldset.instrument.current");
    (upcoming || submitButton).scrollIntoView({block: "nearest"});
  }

  function typingTarget(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && el.type !== "radio" && el.type !== "checkbox";
  }

  window.addEventListener("keydown", (e) => {
    if (dialogOpen()) {
      // Only the dialog's own keys: no digit rates and no viewer key acts behind it.
      const own = !modified(e) && ["Enter", "Escape", "Tab", " "].includes(e.key);
      if (!own) { e.preventDefault(); e.stopImmediatePropagation(); }
      return;
    }
    if (modified(e)) return;
    const key = e.key;
    const target = e.target;
    if (typingTarget(target)) return;  // error counts: digits type, Enter submits the form
    const digit = /^[0-9]$/.test(key);
    if (digit) {
      // Digits rate on this page: the viewer never sees them.
      e.preventDefault();
      e.stopImmediatePropagation();
    }
    if (digit || /^[a-zA-Z]$/.test(key)) {
      if (!digit && (key === "n" || key === "N")) {
        const next = document.getElementById("next-item");
        if (locked && next && !nextLine.hidden) { e.preventDefault(); next.click(); }
        return;
      }
      if (locked) {
        if (digit) say(campaignOpen ? "This rating is submitted." : "This campaign is closed.");
        return;
      }
      const fs = current();
      const wanted = key.toLowerCase();
      const radio = fs && radios(fs).find((r) => r.dataset.keys.split(" ").includes(wanted));
      if (radio) {
        if (!digit) { e.preventDefault(); e.stopImmediatePropagation(); }
        pick(fs, radio);
      } else if (digit) {
        say(fs ? `${nameOf(fs)}: no level has the key ${key}.` : "Nothing to pick here.", true);
      }
      return;
    }
    if (key === "Enter") {
      const tag = target && target.tagName;
      if (tag === "A" || tag === "BUTTON" || tag === "SUMMARY") return;  // their own action
      if (locked) return;
      e.preventDefault();
      e.stopImmediatePropagation();
      submit();
    }
  }, true);

  form.addEventListener("change", (e) => {
    markCurrent();
    if (!e.isTrusted || locked) return;  // pick() announces its own (synthetic) changes
    const fs = e.target.closest("fieldset.instrument");
    if (fs) announce(fs, e.target.type === "radio" ? e.target : null);
  });
  form.addEventListener("input", () => markCurrent());
  document.addEventListener("focusin", () => markCurrent());
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });

  function post(url, data) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": csrf()},
      body: JSON.stringify(data),
    });
  }

  async function submit() {
    if (locked || submitting || dialogOpen()) return;
    const missing = fieldsets.filter((fs) => !answered(fs));
    fieldsets.forEach((fs) => fs.classList.toggle("missing", missing.includes(fs)));
    if (missing.length) {
      const names = missing.map(nameOf);
      say(`Not submitted: answer ${names.join(", ")} first` +
          (missing.some(isCounts) ? " (error counts are whole numbers 0–50)." : "."), true);
      markCurrent();
      return;
    }
    if (!mayRevise) {
      if (!(await confirmed())) {
        say("Not submitted: change your answers, or press Enter to submit.");
        return;
      }
      if (locked || submitting) return;
    }
    const answers = {};
    fieldsets.forEach((fs) => { answers[fs.dataset.instrument] = valueOf(fs); });
    submitting = true;
    submitButton.disabled = true;
    say("Submitting…");
    let response;
    try {
      response = await post(urls.submit, {values: answers});
    } catch (err) {
      submitting = false;
      submitButton.disabled = false;
      say("Not submitted: the server could not be reached. Press Enter to try again.", true);
      return;
    }
    let body = {};
    try { body = await response.json(); } catch (err) { body = {}; }
    submitting = false;
    submitButton.disabled = false;
    if (!response.ok) {
      const why = body.detail || `HTTP ${response.status}`;
      if (response.status === 409) {
        form.dataset.status = "submitted";
        setLocked(true);
      }
      say(`Not submitted: ${why}`, true);
      return;
    }
    values = body.values || answers;
    form.dataset.status = "submitted";
    fill(values);
    setLocked(true);
    cancelButton.hidden = true;
    if (nextUrl) {
      say("Submitted. Opening the next item…");
      window.location.assign(nextUrl);
    } else {
      say("Submitted.");
      allDone.hidden = false;
      const link = allDone.querySelector("a");
      if (link) link.focus();
    }
  }

  // --- revision (only where the campaign allows it) -----------------------------------------
  reviseButton.addEventListener("click", async () => {
    let response;
    try {
      response = await post(urls.open, {});
    } catch (err) {
      response = null;
    }
    if (!response || !response.ok) {
      say("The item could not be re-opened; reload the page and try again.", true);
      return;
    }
    setLocked(false);
    submittedNote.hidden = true;
    nextLine.hidden = true;
    reviseButton.hidden = true;
    cancelButton.hidden = false;
    say("Revising: change your answers and press Enter to submit them again.");
    const first = fieldsets[0] && fieldsets[0].querySelector("input:checked, input");
    if (first) first.focus();
  });

  cancelButton.addEventListener("click", () => {
    fill(values);
    setLocked(true);
    cancelButton.hidden = true;
    say("The submitted rating is unchanged.");
  });

  fill(values);
  setLocked(locked);
  if (!locked) {
    const remaining = fieldsets.filter((f) => !answered(f)).map(nameOf);
    say(remaining.length ? `To answer: ${remaining.join(", ")}.` : "");
  }
})();
