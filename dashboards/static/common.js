/* Shared helpers for the dashboard pages: number and time formatting, JSON fetch, DOM. */
"use strict";
window.AK = (function () {
  function fmt(x) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    const a = Math.abs(x);
    if (a === 0) return "0";
    if (a >= 1000) return x.toLocaleString("en-US", {maximumFractionDigits: 1});
    if (a >= 100) return x.toFixed(2);
    if (a >= 1) return x.toFixed(3);
    return x.toPrecision(4);
  }
  function count(n) {
    return (n === null || n === undefined) ? "–" : Number(n).toLocaleString("en-US");
  }
  function pad(n) { return String(n).padStart(2, "0"); }
  function utc(t, withDate) {
    if (t === null || t === undefined) return "–";
    const d = new Date(t * 1000);
    const hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    if (!withDate) return hm;
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + hm;
  }
  function duration(s) {
    if (s === null || s === undefined) return "–";
    const a = Math.abs(s), sign = s < 0 ? "-" : "";
    if (a < 120) return sign + a.toFixed(a < 10 ? 1 : 0) + " s";
    if (a < 7200) return sign + (a / 60).toFixed(1) + " min";
    if (a < 172800) return sign + (a / 3600).toFixed(1) + " h";
    return sign + (a / 86400).toFixed(1) + " d";
  }
  async function getJSON(url) {
    const r = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const err = new Error((body && body.error) || ("HTTP " + r.status));
      err.status = r.status;
      throw err;
    }
    return body;
  }
  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }
  function showError(message) {
    const el = document.getElementById("page-error");
    if (!el) return;
    el.hidden = !message;
    el.textContent = message || "";
  }
  function setLive(state, text) {
    const el = document.getElementById("live");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }
  function toggles(attr, onChange) {
    const buttons = Array.from(document.querySelectorAll("button.toggle[data-" + attr + "]"));
    buttons.forEach(function (b) {
      b.addEventListener("click", function () {
        buttons.forEach(function (o) { o.classList.toggle("on", o === b); });
        onChange(b.dataset[attr]);
      });
    });
  }
  return {fmt: fmt, count: count, utc: utc, duration: duration, getJSON: getJSON,
          setText: setText, showError: showError, setLive: setLive, toggles: toggles};
})();
