// socflow console: shared page behaviour. Loaded from /static (the CSP allows no inline script).
"use strict";

// The CSRF token of this session, for fetch() calls that change something.
function socflowCsrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

// fetch() with the session's CSRF header on every state-changing request; JSON in and out.
async function socflowFetch(url, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = new Headers(options.headers || {});
  headers.set("Accept", "application/json");
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) headers.set("X-CSRF-Token", socflowCsrfToken());
  if (options.body !== undefined && typeof options.body !== "string") {
    headers.set("Content-Type", "application/json");
    options = { ...options, body: JSON.stringify(options.body) };
  }
  return fetch(url, { ...options, method, headers, credentials: "same-origin" });
}

// The Elasticsearch banner: poll /api/status so it appears and disappears without a reload.
function socflowWatchElasticsearch() {
  const banner = document.getElementById("es-banner");
  const reason = document.getElementById("es-banner-reason");
  if (!banner || !socflowCsrfToken()) return;  // not logged in: nothing to poll
  const check = async () => {
    try {
      const answer = await socflowFetch("/api/status");
      if (!answer.ok) return;
      const status = await answer.json();
      banner.hidden = status.elasticsearch === "up";
      if (reason) reason.textContent = status.reason || "";
      const state = document.getElementById("es-state");
      if (state) state.textContent = status.elasticsearch === "up" ? "available" : "unavailable";
    } catch (error) {
      // The console itself is unreachable: the banner cannot help; try again later.
    }
  };
  setInterval(check, banner.hidden ? 15000 : 5000);
}

document.addEventListener("DOMContentLoaded", socflowWatchElasticsearch);
