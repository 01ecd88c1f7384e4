/* The trial dashboard (templates/monitor/dashboard.html): asks the server for the numbers every
 * few seconds and updates the page in place, without reloading it. A static file: the
 * Content-Security-Policy runs no inline script; the configuration (the data URL and the
 * interval) is the page's JSON data block #monitor-config.
 *
 * Each poll says "X-Background: 1", so an open dashboard does not count as activity and an
 * unattended one still signs its user out. Polling pauses while the tab is hidden, and stops
 * for good when the server says the person is signed out or no longer allowed (401/403/404).
 */
(function () {
  "use strict";
  const root = document.getElementById("monitor");
  const block = document.getElementById("monitor-config");
  if (!root || !block) return;
  const config = JSON.parse(block.textContent);
  const status = document.getElementById("monitor-poll");
  const interval = Math.max(0.2, Number(config.interval) || 15) * 1000;
  let timer = null;
  let busy = false;
  let stopped = false;
  const drawn = new Map();  // figure name -> the SVG markup on the page

  const say = (text) => { if (status) status.textContent = text; };

  function setText(node, value) {
    const text = String(value);
    if (node.textContent === text) return;
    node.textContent = text;
    node.classList.remove("changed");
    void node.offsetWidth;  // restart the highlight
    node.classList.add("changed");
  }

  function updateNumbers(numbers) {
    root.querySelectorAll("[data-number]").forEach((node) => {
      const key = node.dataset.number;
      if (Object.prototype.hasOwnProperty.call(numbers, key)) setText(node, numbers[key]);
    });
    root.querySelectorAll("[data-show-if]").forEach((node) => {
      node.hidden = !(Number(numbers[node.dataset.showIf]) > 0);
    });
  }

  function cell(row, index, numericFrom) {
    const node = document.createElement(index === 0 ? "th" : "td");
    if (index === 0) node.scope = "row";
    if (index >= numericFrom) node.className = "num";
    return node;
  }

  function updateTable(name, table) {
    const element = root.querySelector(`table[data-table="${name}"]`);
    if (!element) return;
    const body = element.tBodies[0];
    const existing = new Map();
    Array.from(body.rows).forEach((row) => existing.set(row.dataset.key, row));
    const numericFrom = Number(table.numeric_from);
    table.rows.forEach((data) => {
      let row = existing.get(data.key);
      if (!row) {
        row = document.createElement("tr");
        row.dataset.key = data.key;
      }
      existing.delete(data.key);
      data.cells.forEach((value, index) => {
        let node = row.cells[index];
        if (!node) {
          node = cell(row, index, numericFrom);
          row.appendChild(node);
          node.textContent = String(value);
        } else {
          setText(node, value);
        }
      });
      while (row.cells.length > data.cells.length) row.deleteCell(-1);
      body.appendChild(row);  // in the server's order (moves an existing row)
    });
    existing.forEach((row) => row.remove());
    element.hidden = table.rows.length === 0;
    const empty = root.querySelector(`[data-empty="${name}"]`);
    if (empty) empty.hidden = table.rows.length > 0;
  }

  function updateActions(actions) {
    const list = document.getElementById("monitor-actions");
    if (!list) return;
    const items = actions.map((action) => {
      const item = document.createElement("li");
      item.className = `level-${action.level}`;
      if (action.url) {
        const link = document.createElement("a");
        link.href = action.url;
        link.textContent = action.text;
        item.appendChild(link);
      } else {
        item.textContent = action.text;
      }
      return item;
    });
    const before = Array.from(list.children).map((li) => li.outerHTML).join("");
    const after = items.map((li) => li.outerHTML).join("");
    if (before !== after) list.replaceChildren(...items);
  }

  function updateFigures(figures) {
    Object.entries(figures).forEach(([name, figure]) => {
      const box = root.querySelector(`[data-figure="${name}"]`);
      // The server's own SVG markup (every label escaped there), redrawn only when it changed.
      if (box && drawn.get(name) !== figure.svg) {
        box.innerHTML = figure.svg;
        drawn.set(name, figure.svg);
      }
      const text = root.querySelector(`[data-figure-text="${name}"]`);
      if (text && text.textContent !== figure.text) text.textContent = figure.text;
    });
  }

  function apply(data) {
    updateNumbers(data.numbers);
    Object.entries(data.tables).forEach(([name, table]) => updateTable(name, table));
    updateActions(data.actions);
    updateFigures(data.figures);
    const when = document.getElementById("monitor-updated");
    if (when) {
      when.dateTime = data.generated_at;
      when.textContent = data.generated_label;
    }
    root.dataset.polls = String(Number(root.dataset.polls || 0) + 1);
  }

  function stop(message) {
    stopped = true;
    if (timer) clearInterval(timer);
    timer = null;
    say(message);
  }

  async function poll() {
    if (busy || stopped || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(config.url, {
        headers: {Accept: "application/json", "X-Background": "1"},
        credentials: "same-origin",
        cache: "no-store",
      });
      if ([401, 403, 404].includes(response.status)) {
        stop("Updates stopped: you are signed out or no longer allowed. Reload the page.");
        return;
      }
      if (!response.ok) {
        say(`Update failed (HTTP ${response.status}); trying again.`);
        return;
      }
      apply(await response.json());
      say("");
    } catch (e) {
      say("Cannot reach the server; trying again.");
    } finally {
      busy = false;
    }
  }

  function start() {
    if (!timer && !stopped) timer = setInterval(poll, interval);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      if (timer) clearInterval(timer);
      timer = null;
    } else if (!stopped) {
      poll();
      start();
    }
  });
  // Leaving the page stops the polling; coming back to it from the browser's history
  // (back-forward cache) starts it again with fresh numbers.
  let left = false;
  window.addEventListener("pagehide", () => { left = !stopped; stop(""); });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && left) {
      stopped = left = false;
      poll();
      start();
    }
  });
  start();
})();
