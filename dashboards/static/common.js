/* Shared helpers for the dashboard pages: number and time formatting, JSON fetch, DOM.
   Numbers: three significant digits below 1,000, whole numbers with thousands separators
   above. Times: in the meter's IANA zone (Intl), with the UTC time for a title attribute. */
"use strict";
window.AK = (function () {
  function fmt(x) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    if (x === 0) return "0";
    if (Math.abs(x) >= 1000) return x.toLocaleString("en-US", {maximumFractionDigits: 0});
    return x.toLocaleString("en-US", {maximumSignificantDigits: 3});
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
  const formats = {};
  function formatter(zone, kind) {
    const key = zone + "|" + kind;
    if (!formats[key]) {
      const opts = kind === "time" ? {hour: "numeric", minute: "2-digit"} :
        kind === "day" ? {weekday: "short", month: "short", day: "numeric", year: "numeric"} :
        {hour: "numeric", minute: "2-digit", timeZoneName: "short"};
      formats[key] = new Intl.DateTimeFormat("en-US", Object.assign({timeZone: zone}, opts));
    }
    return formats[key];
  }
  // "4:20 PM" where the meter is
  function local(t, zone) {
    return (t === null || t === undefined) ? "–" : formatter(zone, "time").format(new Date(t * 1000));
  }
  // "Sun, Mar 1, 2026" where the meter is
  function localDay(t, zone) {
    return (t === null || t === undefined) ? "–" : formatter(zone, "day").format(new Date(t * 1000));
  }
  // "PST": the zone's short name at that moment (it changes with daylight saving time)
  function zoneName(t, zone) {
    const part = formatter(zone, "zone").formatToParts(new Date(t * 1000))
      .find(function (p) { return p.type === "timeZoneName"; });
    return part ? part.value : zone;
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
  return {fmt: fmt, count: count, utc: utc, local: local, localDay: localDay, zoneName: zoneName,
          duration: duration, getJSON: getJSON,
          setText: setText, showError: showError, setLive: setLive, toggles: toggles};
})();
