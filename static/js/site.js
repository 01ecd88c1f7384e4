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

/* The confirmation of what cannot be undone, one for the report editor and the rating page:
 * <dialog id="confirm-dialog"> with #confirm-ok (focused: Enter confirms) and #confirm-cancel
 * (Escape cancels too). cxrConfirm.ask() opens it synchronously, so a key pressed right after
 * reaches the dialog, and resolves true once confirmed, false when cancelled; focus goes back
 * to where it was. Without the dialog on the page, ask() resolves true. */
window.cxrConfirm = (function () {
  "use strict";
  const dialog = document.getElementById("confirm-dialog");
  const ok = document.getElementById("confirm-ok");
  if (dialog) {
    ok.addEventListener("click", () => dialog.close("confirm"));
    document.getElementById("confirm-cancel").addEventListener(
      "click", () => dialog.close("cancel"));
  }
  const isOpen = () => !!(dialog && dialog.open);
  function ask() {
    if (!dialog) return Promise.resolve(true);
    const back = document.activeElement;
    return new Promise((resolve) => {
      dialog.returnValue = "";
      dialog.addEventListener("close", () => {
        if (back && back !== document.body && back.isConnected) back.focus();
        resolve(dialog.returnValue === "confirm");
      }, {once: true});
      dialog.showModal();
      ok.focus();
    });
  }
  return {ask, isOpen};
})();
