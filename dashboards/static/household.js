/* Household page: its alerts in words and three utility cards, filled from the API, then
   kept live by SSE.
   Times are the meter's local time (the API's time_zone), with UTC in each title attribute;
   values are shown in the card's display unit (gas: cubic feet, ccf beside it). */
"use strict";
(function () {
  const page = document.getElementById("page");
  const sid = page.dataset.sid, sig = page.dataset.sig;
  const COLORS = {electricity: "#d97706", gas: "#2563eb", water: "#0891b2"};
  const charts = {};
  let range = "hour", source = null;

  function query(extra) {
    const p = new URLSearchParams(extra || {});
    if (sig) p.set("sig", sig);
    return p.toString();
  }

  function field(card, name) { return card.querySelector("[data-field='" + name + "']"); }

  // the stored value (data-raw, as the API gives it) shown in the display unit
  function setValue(card, name, value, c) {
    const el = field(card, name), also = field(card, name + "-also");
    const shown = value === null || value === undefined ? null : value * c.display.factor;
    AK.setText(el, AK.fmt(shown));
    el.dataset.unit = shown === null ? "" : c.display.unit;   // drawn small after the number (CSS)
    el.dataset.raw = value === null || value === undefined ? "" : String(value);
    AK.setText(also, c.display.unit !== c.unit && value !== null && value !== undefined ?
      "(" + AK.fmt(value) + " " + c.unit + ")" : "");
  }

  function setWhen(el, text, utcText) {
    AK.setText(el, text);
    if (utcText) el.title = utcText; else el.removeAttribute("title");
  }

  function draw(utility, card, c, zone) {
    const series = c.series, box = field(card, "chart");
    const data = [series.start, series.sum.map(function (v) { return v === null ? null : v * c.display.factor; })];
    const width = Math.max(240, box.clientWidth || 300);
    const zoneShort = series.start.length ? AK.zoneName(series.start[series.start.length - 1], zone) : zone;
    const key = zone + "|" + series.size + "|" + c.display.unit;
    if (charts[utility] && charts[utility].key !== key) {
      charts[utility].plot.destroy();
      delete charts[utility];
    }
    if (!charts[utility]) {
      const per = series.size === 60 ? "minute" : series.size === 3600 ? "hour" : series.size + " s";
      const plot = new uPlot({
        width: width, height: 170, legend: {show: false}, cursor: {y: false},
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), zone); },
        scales: {x: {time: true}},
        axes: [{size: 42, label: "local time (" + zoneShort + ")", labelSize: 16,
                values: function (u, splits) { return splits.map(function (v) { return AK.local(v, zone); }); }},
               {size: 50, label: c.display.short + " per " + per, labelSize: 16,
                values: function (u, splits) { return splits.map(function (v) { return AK.fmt(v); }); }}],
        series: [{}, {label: card.dataset.utility, stroke: COLORS[utility], width: 2,
                      fill: COLORS[utility] + "22", spanGaps: false, points: {show: false}}],
      }, data, box);
      charts[utility] = {plot: plot, key: key};
    } else {
      charts[utility].plot.setData(data);
    }
  }

  function readings(n) { return AK.count(n) + (n === 1 ? " reading" : " readings"); }

  function render(s) {
    const m = s.meter, zone = s.time_zone;
    AK.setText(document.getElementById("meter-name"), m ? m.user_name : "unregistered meter");
    document.title = (m ? m.user_name : "Meter") + " · AUTH-Kappa";
    AK.setText(document.getElementById("meter-type"), m ? m.type : "–");
    AK.setText(document.getElementById("meter-state"), m ? m.state : "–");
    AK.setText(document.getElementById("meter-zone"), zone);
    Object.keys(s.utilities).forEach(function (u) {
      const c = s.utilities[u];
      const card = document.getElementById("card-" + u);
      if (!card) return;
      const live = c.today.is_today;
      AK.setText(field(card, "unit"), c.display.unit === c.unit ? c.unit : c.display.unit + " · " + c.unit);
      AK.setText(field(card, "current-label"), live ? "this minute" : "latest minute in the data");
      AK.setText(field(card, "today-label"), live ? "today" : "latest day in the data");
      setValue(card, "current", c.current ? c.current.sum : null, c);
      const cur = c.current;
      setWhen(field(card, "current-when"), cur ?
        AK.local(cur.window_start, zone) + "–" + AK.local(cur.window_end, zone) + " " +
        AK.zoneName(cur.window_start, zone) + " · " + readings(cur.count) : "no readings in the last hour",
        cur ? AK.utc(cur.window_start, true) + "–" + AK.utc(cur.window_end) + " UTC" : "");
      setValue(card, "today", c.today.sum, c);
      setWhen(field(card, "today-when"), c.today.from !== null ?
        AK.localDay(c.today.from, zone) + " · " + readings(c.today.count) : "",
        c.today.from !== null ? "from " + AK.utc(c.today.from, true) + " UTC (local midnight) to " +
        AK.utc(c.today.to, true) + " UTC" : "");
      const csv = field(card, "csv");
      csv.href = "/api/meters/" + sid + "/windows?" + query({utility: u, window: String(c.series.size), format: "csv"});
      draw(u, card, c, zone);
    });
    const clocks = Object.keys(s.utilities).map(function (u) { return s.utilities[u].clock; })
      .filter(function (t) { return t !== null; });
    if (clocks.length) {
      AK.setText(document.getElementById("meter-zone-short"),
        AK.zoneName(Math.max.apply(null, clocks), zone) + " (" + zone + ")");
    }
    page.dataset.loaded = "1";
  }

  // alerts in words (the API words them: the meter's local time, the page's units)
  function alertItems(list, items, zone) {
    list.replaceChildren();
    items.forEach(function (a) {
      const li = document.createElement("li");
      li.className = "alert " + a.kind;
      li.dataset.kind = a.kind;
      li.dataset.utility = a.utility;
      li.textContent = a.text;
      li.title = a.kind + " · " + a.utility + " · " + a.detail + " · from " + AK.utc(a.start, true) +
        " UTC" + (a.end !== null ? " to " + AK.utc(a.end, true) + " UTC" : "");
      list.append(li);
    });
  }

  function renderAlerts(s) {
    const open = [], closed = [];
    Object.keys(s.utilities).forEach(function (u) {
      open.push.apply(open, s.utilities[u].open);
      closed.push.apply(closed, s.utilities[u].closed);
    });
    closed.sort(function (a, b) { return b.end - a.end; });
    alertItems(document.getElementById("alerts-open"), open, s.time_zone);
    alertItems(document.getElementById("alerts-closed"), closed, s.time_zone);
    document.getElementById("alerts-none").hidden = open.length > 0;
    document.getElementById("alerts-recent").hidden = closed.length === 0;
    document.getElementById("alerts").dataset.loaded = "1";
  }

  // the bill to date, per utility: time-of-use split, measured vs estimated, similar homes
  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.append(td);
  }

  function billCard(u, b) {
    const card = document.createElement("article");
    card.className = "card bill " + u;
    card.dataset.utility = u;
    const h = document.createElement("h3");
    h.textContent = u.charAt(0).toUpperCase() + u.slice(1) + ": $" + b.cost.toFixed(2);
    card.append(h);
    const table = document.createElement("table");
    table.className = "tou";
    const head = table.insertRow();
    ["period", "use", "price", "cost"].forEach(function (t) { cell(head, t, "th"); });
    b.bill.forEach(function (r) {
      const tr = table.insertRow();
      tr.dataset.period = r.period;
      cell(tr, r.period);
      cell(tr, AK.fmt(r.consumption) + " " + r.unit, "num");
      cell(tr, r.price === null ? "–" : "$" + r.price.toFixed(4) + "/" + r.unit, "num");
      cell(tr, r.cost === null ? "–" : "$" + r.cost.toFixed(2), "num cost");
    });
    card.append(table);
    const m = document.createElement("p");
    m.className = "measured";
    m.textContent = "Measured " + AK.fmt(b.measured) + " " + b.unit +
      (b.estimated > 0 ? "; estimated for gaps (not measured, not in the total) " +
        AK.fmt(b.estimated) + " " + b.unit : "; nothing estimated");
    card.append(m);
    const peak = b.days.length ? b.days[b.days.length - 1] : null;
    if (peak && u === "electricity" && peak.peak_kw !== null) {
      const p = document.createElement("p");
      p.className = "peak";
      p.textContent = "Peak demand on " + peak.day + ": " + peak.peak_kw.toFixed(2) + " kW (15 minutes)";
      card.append(p);
    }
    const sim = document.createElement("p");
    sim.className = "similar";
    sim.textContent = b.similar ? "You vs similar homes in " + b.similar.state + " on " +
      b.similar.day + ": you used " + AK.fmt(b.similar.total) + " " + b.unit + "; " +
      b.similar.percentile.toFixed(0) + "% of " + b.similar.homes + " " + b.similar.type +
      " homes used as much or less (median " + AK.fmt(b.similar.median) + " " + b.unit + ")"
      : "You vs similar homes: after your first whole day.";
    card.append(sim);
    return card;
  }

  function renderBills(s) {
    const box = document.getElementById("bill-cards");
    box.replaceChildren();
    const us = Object.keys(s.utilities);
    us.forEach(function (u) { box.append(billCard(u, s.utilities[u])); });
    AK.setText(document.getElementById("bill-month"), us.length ? s.utilities[us[0]].month : "");
    document.getElementById("bills-none").hidden = us.length > 0;
    document.getElementById("bills").dataset.loaded = "1";
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/api/meters/" + sid + "/stream?" + query({range: range}));
    source.addEventListener("summary", function (e) {
      render(JSON.parse(e.data));
      AK.setLive("live", "live");
    });
    source.addEventListener("alerts", function (e) { renderAlerts(JSON.parse(e.data)); });
    source.onerror = function () { AK.setLive("retrying", "reconnecting…"); };
  }

  async function load() {
    try {
      render(await AK.getJSON("/api/meters/" + sid + "?" + query({range: range})));
      AK.showError("");
      AK.getJSON("/api/meters/" + sid + "/alerts?" + query()).then(renderAlerts)
        .catch(function (e) { AK.setText(document.getElementById("alerts-none"), "Alerts unavailable: " + e.message); });
      AK.getJSON("/api/meters/" + sid + "/bill?" + query()).then(renderBills)
        .catch(function (e) { AK.setText(document.getElementById("bills-none"), "Bill unavailable: " + e.message); });
      connect();
    } catch (e) {
      AK.showError(e.message);
      AK.setLive("off", "offline");
    }
  }

  AK.toggles("range", function (r) { range = r; load(); });
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (u) {
      const box = field(document.getElementById("card-" + u), "chart");
      charts[u].plot.setSize({width: Math.max(240, box.clientWidth), height: 170});
    });
  });
  load();
})();
