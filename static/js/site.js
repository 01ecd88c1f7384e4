/* On every page. Signing out removes the report copies the editor keeps in this browser's
 * local storage (reading:* and review:*): on a shared workstation the next person must not
 * find another person's report text. */
(function () {
  "use strict";
  const form = document.getElementById("sign-out");
  if (!form) return;
  form.addEventListener("submit", () => {
    // The editor sends what is unsaved as the page goes, but keeps no copy here any more.
    document.documentElement.dataset.signingOut = "1";
    try {
      Object.keys(localStorage)
        .filter((key) => key.startsWith("reading:") || key.startsWith("review:"))
        .forEach((key) => localStorage.removeItem(key));
    } catch (e) { /* storage unavailable: nothing was kept */ }
  });
})();
