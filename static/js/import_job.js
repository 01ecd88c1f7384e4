// The admin's DICOM import job page (templates/admin/trial/import/job.html): while the job
// runs, poll its progress endpoint every second, update the counts, and reload the page (with
// the per-file report) once it has finished. A static file: the Content-Security-Policy runs
// no inline script.
(function () {
  "use strict";
  const box = document.getElementById("import-progress");
  if (!box || box.dataset.finished === "1") return;
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  const timer = setInterval(async () => {
    try {
      const response = await fetch(box.dataset.url, {
        headers: {Accept: "application/json", "X-Background": "1"},  // keeps no session alive
      });
      if (!response.ok) return;
      const p = await response.json();
      const bar = document.getElementById("import-bar");
      bar.max = p.total || 1; bar.value = p.processed;
      set("import-status", p.status); set("import-count", p.processed + "/" + p.total);
      set("import-imported", p.imported); set("import-duplicates", p.duplicates);
      set("import-rejected", p.rejected);
      if (p.finished) { clearInterval(timer); window.location.reload(); }
    } catch (e) { /* a missed poll is retried on the next tick */ }
  }, 1000);
})();
