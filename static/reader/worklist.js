/* Worklists: N opens the next case; with nothing to read yet, the page checks again every
 * 15 s (a case waiting for its AI draft appears once the draft is made). */
(function () {
  "use strict";
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const el = document.activeElement;
    if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA")) return;
    if (e.key === "n" || e.key === "N") {
      const next = document.getElementById("next-case");
      if (next) { e.preventDefault(); next.click(); }
    }
  });
  const waiting = document.querySelector("tr.state-waiting");
  if (!document.getElementById("next-case") && waiting) {
    setTimeout(() => window.location.reload(), 15000);
  }
})();
