// Live updates and confirmations; the pages work without this file.
"use strict";

(function () {
  const body = document.body;
  const source = body.dataset.events;
  const live = document.getElementById("live");
  if (source && window.EventSource) {
    const events = new EventSource(source);
    events.addEventListener("update", function (event) {
      const parts = JSON.parse(event.data);
      for (const id of Object.keys(parts)) {
        const element = document.getElementById(id);
        if (element && element.innerHTML !== parts[id]) element.innerHTML = parts[id];
      }
      body.dataset.live = "1";
      if (live) live.textContent = "live";
    });
    events.addEventListener("error", function () {
      body.dataset.live = "0";
      if (live) live.textContent = "reconnecting";
    });
  }

  // The token is asked once per tab, not at every action.
  const token = document.querySelector("form.actions input[name=token]");
  if (token) {
    token.value = sessionStorage.getItem("actors-dashboard-token") || "";
    token.addEventListener("change", function () {
      sessionStorage.setItem("actors-dashboard-token", token.value);
    });
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const button = event.submitter;
    if (!form.matches("form.actions") || !button || !button.dataset.confirm) return;
    if (!window.confirm(button.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (token) sessionStorage.setItem("actors-dashboard-token", token.value);
    form.querySelector("input[name=confirm]").value = "1";
  });
})();
