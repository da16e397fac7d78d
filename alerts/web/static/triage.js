// socflow console: keyboard operation, live updates and selection on the triage pages.
// Loaded from /static (the CSP allows no inline script). Everything from an alert is put on the
// page with textContent, never as HTML. The pages work without this file (forms and links).
"use strict";

(function () {
  const csrf = () => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  };

  async function api(url, body) {
    const options = { method: body === undefined ? "GET" : "POST", credentials: "same-origin",
                      headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = csrf();
      options.body = JSON.stringify(body);
    }
    const answer = await fetch(url, options);
    let data = null;
    try { data = await answer.json(); } catch (error) { data = null; }
    return { status: answer.status, data };
  }

  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  function say(text, isError) {
    const box = document.getElementById("action-status");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    box.className = isError ? "live error" : "live";
  }

  function dialogOpen() {
    return Array.from(document.querySelectorAll("dialog")).some((d) => d.open);
  }

  function showHelp() {
    const help = document.getElementById("help");
    if (help && !help.open) help.showModal();
  }

  // A key meant for the page: no modifier, not typed into a field, no dialog open.
  function plainKey(event) {
    return !(event.ctrlKey || event.metaKey || event.altKey || typing(event.target) || dialogOpen());
  }

  // --- a table of rows driven from the keyboard (the queue, the rules) --------------------------

  // j/k move a cursor over the rows matching `selector`, Enter opens the row's data-href; a
  // click on a row (not on its links or fields) moves the cursor there.
  function rowCursor(selector) {
    const rows = () => Array.from(document.querySelectorAll(selector));
    let current = -1;

    function focusRow(index) {
      const all = rows();
      if (!all.length) return;
      current = Math.max(0, Math.min(all.length - 1, index));
      all.forEach((row, i) => row.classList.toggle("current", i === current));
      all[current].focus({ preventScroll: true });
      all[current].scrollIntoView({ block: "nearest" });
    }

    function currentRow() {
      const all = rows();
      return current >= 0 && current < all.length ? all[current] : null;
    }

    // The keys every such table shares; false when the key is not one of them.
    function move(key) {
      const row = currentRow();
      switch (key) {
        case "j": focusRow(current + 1); return true;
        case "k": focusRow(current < 0 ? 0 : current - 1); return true;
        case "Enter": if (row) { window.location.assign(row.dataset.href); return true; } return false;
        case "?": showHelp(); return true;
        default: return false;
      }
    }

    rows().forEach((row, index) => {
      row.addEventListener("click", (event) => {
        if (event.target instanceof HTMLElement && event.target.closest("a, input, button, label")) return;
        focusRow(index);
      });
    });
    return { rows, currentRow, move };
  }

  // --- the queue -------------------------------------------------------------------------------

  function setupQueue(config) {
    const cursor = rowCursor("tr.alert-row");
    const rows = cursor.rows;
    const currentRow = cursor.currentRow;
    const pollSeconds = Math.max(2, Number(config.dataset.poll) || 15);
    const canTriage = config.dataset.triage === "yes";

    function countSelected() {
      const count = document.querySelectorAll('input[name="sel"]:checked').length;
      const label = document.getElementById("selected-count");
      if (label) label.textContent = `${count} selected`;
      rows().forEach((row) => {
        const box = row.querySelector('input[name="sel"]');
        row.classList.toggle("selected", Boolean(box && box.checked));
      });
    }

    function updateRow(row, summary) {
      if (!summary) return;
      row.dataset.version = summary.version;
      const box = row.querySelector('input[name="sel"]');
      if (box) box.value = `${summary.id} ${summary.version}`;
      const status = row.querySelector('[data-field="status"]');
      if (status) status.textContent = summary.status;
      const assignee = row.querySelector('[data-field="assignee"]');
      if (assignee) assignee.textContent = summary.assignee || "";
      row.className = row.className.replace(/st-\w+/, `st-${summary.status}`);
      row.classList.remove("flash");
      void row.offsetWidth;  // restart the animation
      row.classList.add("flash");
    }

    function summaryOf(current) {
      // A 409 carries the whole fresh document: the row needs only its triage fields.
      if (!current) return null;
      const alert = (current.socflow && current.socflow.alert) || {};
      return { id: current._id, version: current._version, status: alert.status || "open",
               assignee: alert.assignee || null };
    }

    async function setStatus(row, body, label) {
      const answer = await api(`/api/alerts/${encodeURIComponent(row.dataset.id)}/status`,
                               { ...body, version: row.dataset.version });
      if (answer.status === 200) {
        updateRow(row, answer.data);
        say(`${label}.`, false);
      } else if (answer.status === 409) {
        updateRow(row, summaryOf(answer.data && answer.data.current));
        say("Someone changed this alert meanwhile; nothing of yours was saved. The row shows its current state: decide again.", true);
      } else {
        say(`Not done: ${(answer.data && answer.data.detail) || answer.status}`, true);
      }
    }

    function askClose(row) {
      const dialog = document.getElementById("close-dialog");
      const form = document.getElementById("close-form");
      if (!dialog || !form) return;
      form.reset();
      dialog.returnValue = "";
      dialog.showModal();
      document.getElementById("close-reason").focus();
      dialog.addEventListener("close", () => {
        if (dialog.returnValue !== "close") return;
        const verdict = document.getElementById("close-verdict").value;
        const reason = document.getElementById("close-reason").value;
        setStatus(row, { status: "closed", verdict, reason }, "Closed");
      }, { once: true });
    }

    document.addEventListener("keydown", (event) => {
      if (!plainKey(event)) return;
      if (cursor.move(event.key)) { event.preventDefault(); return; }
      const row = currentRow();
      switch (event.key) {
        case "x": {
          const box = row && row.querySelector('input[name="sel"]');
          if (box) { box.checked = !box.checked; countSelected(); }
          break;
        }
        case "a": if (row && canTriage) setStatus(row, { status: "acknowledged" }, "Acknowledged"); break;
        case "c": if (row && canTriage) askClose(row); break;
        case "/": { const search = document.getElementById("f-text"); if (search) search.focus(); break; }
        case "r": window.location.assign(`/queue?${config.dataset.query}`); break;
        default: return;
      }
      event.preventDefault();
    });

    document.querySelectorAll('input[name="sel"]').forEach((box) => box.addEventListener("change", countSelected));
    countSelected();

    // Live updates: the first page asks the API for the same filter every few seconds; rows
    // another analyst changed are updated in place, new alerts are announced (r shows them).
    if (config.dataset.first === "yes") {
      const size = Math.max(20, Number(config.dataset.size) || 0);
      const poll = async () => {
        if (document.hidden) return;
        const answer = await api(`/api/alerts?${config.dataset.query}&size=${Math.min(size, 200)}`).catch(() => null);
        if (!answer || answer.status !== 200) return;
        const shown = new Map(rows().map((row) => [row.dataset.id, row]));
        let fresh = 0;
        for (const summary of answer.data.alerts) {
          const row = shown.get(summary.id);
          if (!row) fresh += 1;
          else if (row.dataset.version !== summary.version) updateRow(row, summary);
        }
        const banner = document.getElementById("live-banner");
        if (banner && fresh > 0) {
          document.getElementById("live-text").textContent =
            `${fresh} new alert${fresh === 1 ? "" : "s"} match${fresh === 1 ? "es" : ""} these filters.`;
          banner.hidden = false;
        }
      };
      setInterval(poll, pollSeconds * 1000);
    }
  }

  // --- an alert page ---------------------------------------------------------------------------

  function setupAlert() {
    let pendingG = false;
    document.addEventListener("keydown", (event) => {
      if (!plainKey(event)) return;
      if (pendingG) {
        pendingG = false;
        if (event.key === "q") { window.location.assign("/queue"); event.preventDefault(); }
        return;
      }
      switch (event.key) {
        case "a": { const button = document.getElementById("do-acknowledged"); if (button) button.click(); break; }
        case "c": { const verdict = document.getElementById("verdict"); if (verdict) verdict.focus(); break; }
        case "g": pendingG = true; break;
        case "?": showHelp(); break;
        default: return;
      }
      event.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const helpButton = document.getElementById("help-button");
    if (helpButton) helpButton.addEventListener("click", showHelp);
    const queue = document.getElementById("queue-config");
    if (queue) setupQueue(queue);
    if (document.getElementById("alert-config")) setupAlert();
    if (document.getElementById("rules-config")) {
      const cursor = rowCursor("tr.rule-row");
      document.addEventListener("keydown", (event) => {
        if (plainKey(event) && cursor.move(event.key)) event.preventDefault();
      });
    }
  });
}());
