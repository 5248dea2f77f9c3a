// fusioncell pages: local times beside UTC, countdowns, live entries (server-sent events) and alerts.
"use strict";
(function () {
  const body = document.body;
  const lang = body.dataset.lang || "en";
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const local = new Intl.DateTimeFormat(lang, {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    hour12: false,
  });

  function localise(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      if (el.querySelector(".local")) return;
      const when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      const span = document.createElement("span");
      span.className = "local";
      span.textContent = " (" + local.format(when) + " " + zone + ")";
      el.appendChild(span);
    });
  }

  function countdowns() {
    const now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      const left = Math.round((new Date(el.dataset.deadline) - now) / 1000);
      let out = el.querySelector(".left");
      if (!out) {
        out = document.createElement("strong");
        out.className = "left";
        el.prepend(out);
      }
      const abs = Math.abs(left);
      const text = Math.floor(abs / 3600) + ":" + String(Math.floor(abs / 60) % 60).padStart(2, "0") + ":" +
        String(abs % 60).padStart(2, "0");
      out.textContent = (left < 0 ? body.dataset.tOverdue + " " : "") + text + " ";
      out.setAttribute("dir", "ltr");
      el.classList.toggle("late", left < 0);
    });
  }

  function alert(text) {
    const box = document.getElementById("live-alert");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
  }

  // The member's page received a message: record it, signed, as delivered (once per member; repeats are no-ops).
  function delivered(seq) {
    const token = document.querySelector('meta[name="csrf-token"]');
    if (!token) return;
    fetch("/api/v1/hotline/messages/" + encodeURIComponent(seq) + "/receipts", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token.content },
      body: JSON.stringify({ status: "delivered" }),
    }).catch(function () { /* the next page load or stream event tries again */ });
  }

  function live() {
    if (body.dataset.live !== "on" || !window.EventSource) return;
    const rows = document.querySelector("[data-live-rows]");
    const first = rows && rows.querySelector("tr a");
    const after = first ? first.textContent.trim() : "";
    const source = new EventSource("/events" + (after ? "?after=" + encodeURIComponent(after) : ""));
    source.addEventListener("entry", function (event) {
      const data = JSON.parse(event.data);
      const target = document.querySelector("[data-live-rows]");
      if (target && !target.querySelector('a[href="/records/' + data.seq + '"]')) {
        const holder = document.createElement("tbody");
        holder.innerHTML = data.html;  // rendered and escaped by the server, in this member's language
        const row = holder.firstElementChild;
        if (row) {
          target.prepend(row);
          localise(row);
        }
      }
      if (data.alert) alert(data.alert);
      if (data.deliver) delivered(data.seq);
      body.dispatchEvent(new CustomEvent("fusioncell:entry", { detail: data }));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    countdowns();
    setInterval(countdowns, 1000);
    live();
  });
  document.addEventListener("htmx:afterSwap", function (event) { localise(event.target); });
})();
