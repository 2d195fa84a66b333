/* Fleet page: a US choropleth by state (us-atlas Albers geometry, drawn as SVG paths),
   the top-10 table, the fleet's counters and its alerts, updated by SSE. */
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  // FIPS code (us-atlas feature id) -> postal code: the 50 states and DC
  const FIPS = {"01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT",
    "10": "DE", "11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL", "18": "IN",
    "19": "IA", "20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD", "25": "MA", "26": "MI",
    "27": "MN", "28": "MS", "29": "MO", "30": "MT", "31": "NE", "32": "NV", "33": "NH", "34": "NJ",
    "35": "NM", "36": "NY", "37": "NC", "38": "ND", "39": "OH", "40": "OK", "41": "OR", "42": "PA",
    "44": "RI", "45": "SC", "46": "SD", "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA",
    "53": "WA", "54": "WV", "55": "WI", "56": "WY"};
  const RAMP = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"];
  const svg = document.getElementById("map");
  const paths = {};
  let utility = "electricity", range = "hour", source = null, lastStates = null;

  // the geometry is already projected (Albers USA, 975x610): coordinates are SVG pixels
  function line(points) {
    return "M" + points.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join("L");
  }
  function ring(points) { return line(points) + "Z"; }
  function pathData(geometry) {
    if (geometry.type === "MultiLineString") return geometry.coordinates.map(line).join("");
    const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    return polygons.map(function (poly) { return poly.map(ring).join(""); }).join("");
  }

  async function drawMap() {
    const topo = await AK.getJSON("/static/vendor/us-atlas/states-albers-10m.json");
    const states = topojson.feature(topo, topo.objects.states).features;
    states.forEach(function (f) {
      const code = FIPS[f.id];
      if (!code) return;
      const p = document.createElementNS(SVG, "path");
      p.setAttribute("d", pathData(f.geometry));
      p.setAttribute("id", "state-" + code);
      p.setAttribute("class", "state");
      p.dataset.state = code;
      p.dataset.name = f.properties.name;
      const title = document.createElementNS(SVG, "title");
      title.textContent = f.properties.name;
      p.append(title);
      svg.append(p);
      paths[code] = p;
    });
    const border = document.createElementNS(SVG, "path");
    border.setAttribute("class", "borders");
    border.setAttribute("d", pathData(topojson.mesh(topo, topo.objects.states, function (a, b) { return a !== b; })));
    svg.append(border);
  }

  function colour(value, max) {
    if (!(value > 0) || !(max > 0)) return RAMP[0];
    const i = Math.min(RAMP.length - 1, 1 + Math.floor((value / max) * (RAMP.length - 1)));
    return RAMP[i];
  }

  // a stored value in the utility's display unit (gas: cubic feet), e.g. "641 ft³"
  function shown(x, d) { return AK.fmt(x * d.factor) + " " + d.short; }

  function renderStates(s) {
    lastStates = s;
    const d = s.display;
    const values = Object.keys(s.states).map(function (k) { return s.states[k].sum; });
    const max = Math.max.apply(null, values.concat([0]));
    Object.keys(paths).forEach(function (code) {
      const v = s.states[code] || {sum: 0, count: 0};
      const p = paths[code];
      p.style.fill = colour(v.sum, max);
      p.dataset.value = String(v.sum);
      p.firstChild.textContent = p.dataset.name + ": " + shown(v.sum, d) + " (" + AK.count(v.count) + " readings)";
    });
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    const title = document.createElement("span");
    title.className = "legend-title";
    title.textContent = d.unit + " per state, last " + s.range + ":";
    legend.append(title);
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      const item = document.createElement("span");
      const sw = document.createElement("i");
      sw.style.background = colour(f * max, max);
      item.append(sw, document.createTextNode(shown(f * max, d)));
      legend.append(item);
    });
    document.getElementById("states-csv").href = "/api/fleet/states?" +
      new URLSearchParams({utility: s.utility, range: s.range, format: "csv"});
    AK.setText(document.getElementById("map-caption"), s.utility + " (" + d.unit +
      (d.unit !== s.unit ? "; stored as " + s.unit : "") + ") by state, " +
      (s.from !== null ? AK.utc(s.from, true) + " – " + AK.utc(s.to, s.range === "day") + " UTC" : "no data yet") +
      " · fleet total " + shown(s.total.sum, d));
    AK.setText(document.getElementById("top10-unit"), d.short);
    const body = document.querySelector("#top10 tbody");
    body.replaceChildren();
    s.top10.forEach(function (r) {
      const tr = document.createElement("tr");
      [String(r.rank), r.state, AK.fmt(r.sum * d.factor), AK.count(r.count)].forEach(function (text, i) {
        const td = document.createElement("td");
        td.textContent = text;
        if (i >= 2) td.className = "num";
        tr.append(td);
      });
      body.append(tr);
    });
    document.getElementById("page").dataset.loaded = "1";
  }

  function renderSummary(s) {
    const live = Object.keys(s.utilities).some(function (u) { return s.utilities[u].today.is_today; });
    AK.setText(document.getElementById("day-label"), live ? "today (UTC)" : "latest day in the data (UTC)");
    Object.keys(s.utilities).forEach(function (u) {
      const v = s.utilities[u];
      const row = document.querySelector("#fleet-totals tr[data-utility='" + u + "']");
      const cell = function (name) { return row.querySelector("[data-field='" + name + "']"); };
      AK.setText(cell("today"), shown(v.today.sum, v.display) +
        (v.display.unit !== v.unit ? " (" + AK.fmt(v.today.sum) + " " + v.unit + ")" : ""));
      cell("today").dataset.raw = String(v.today.sum);
      if (v.today.date) cell("today").title = v.today.date + " (UTC), " + AK.count(v.today.count) + " readings";
      AK.setText(cell("ingest_rate"), v.ingest_rate === null ? "–" : AK.count(Math.round(v.ingest_rate)));
      ["accepted", "duplicates", "late", "quarantined"].forEach(function (k) {
        AK.setText(cell(k), AK.count(v[k]));
        cell(k).dataset.raw = String(v[k]);
      });
      AK.setText(cell("watermark"), AK.utc(v.watermark, true));
      AK.setText(cell("watermark_lag_s"), AK.duration(v.watermark_lag_s));
      AK.setText(cell("partition_skew_s"), AK.duration(v.partition_skew_s));
    });
    AK.setText(document.getElementById("fleet-meta"), AK.count(s.meters) + " meters in the registry · source " +
      s.source + " · namespace " + s.namespace +
      (s.checkpoint_age_s !== null ? " · last checkpoint " + AK.duration(s.checkpoint_age_s) + " ago" : ""));
  }

  // alert counts by kind and state, and the open alerts linking to their households
  function renderAlerts(a) {
    const badges = document.getElementById("alert-badges");
    badges.replaceChildren();
    a.kinds.forEach(function (k) {
      const b = document.createElement("span");
      b.className = "badge";
      b.dataset.kind = k;
      b.dataset.open = String(a.totals[k].open);
      b.textContent = k + ": " + AK.count(a.totals[k].open) + " open, " + AK.count(a.totals[k].closed) + " closed";
      badges.append(b);
    });
    const body = document.querySelector("#alert-counts tbody");
    body.replaceChildren();
    a.counts.forEach(function (r) {
      const tr = document.createElement("tr");
      tr.dataset.kind = r.kind;
      tr.dataset.state = r.state === null ? "" : r.state;
      [r.kind, r.state === null ? "unregistered" : r.state, AK.count(r.open), AK.count(r.closed)].forEach(function (text, i) {
        const td = document.createElement("td");
        td.textContent = text;
        if (i >= 2) td.className = "num";
        tr.append(td);
      });
      body.append(tr);
    });
    const list = document.getElementById("alert-open");
    list.replaceChildren();
    a.open.forEach(function (x) {
      const li = document.createElement("li");
      li.className = "alert " + x.kind;
      li.dataset.sid = x.service_id;
      const link = document.createElement("a");
      link.href = x.link;
      link.textContent = (x.user_name || x.service_id) + (x.state ? " (" + x.state + ")" : "");
      li.append(link, document.createTextNode(": " + x.text));
      list.append(li);
    });
    AK.setText(document.getElementById("alert-open-note"), a.open_total > a.open.length ?
      "(newest " + AK.count(a.open.length) + " of " + AK.count(a.open_total) + ")" : "(" + AK.count(a.open_total) + ")");
    document.getElementById("fleet-alerts").dataset.loaded = "1";
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/api/fleet/stream?" + new URLSearchParams({utility: utility, range: range}));
    source.addEventListener("states", function (e) { renderStates(JSON.parse(e.data)); AK.setLive("live", "live"); });
    source.addEventListener("summary", function (e) { renderSummary(JSON.parse(e.data)); });
    source.addEventListener("alerts", function (e) { renderAlerts(JSON.parse(e.data)); });
    source.onerror = function () { AK.setLive("retrying", "reconnecting…"); };
  }

  async function load() {
    try {
      const q = new URLSearchParams({utility: utility, range: range});
      const results = await Promise.all([AK.getJSON("/api/fleet/states?" + q), AK.getJSON("/api/fleet/summary")]);
      renderStates(results[0]);
      renderSummary(results[1]);
      AK.getJSON("/api/fleet/alerts").then(renderAlerts).catch(function (e) {
        AK.setText(document.getElementById("alert-open-note"), "(alerts unavailable: " + e.message + ")");
      });
      AK.showError("");
      connect();
    } catch (e) {
      AK.showError(e.message);
      AK.setLive("off", "offline");
    }
  }

  AK.toggles("utility", function (u) { utility = u; load(); });
  AK.toggles("range", function (r) { range = r; load(); });
  drawMap().then(function () {
    AK.setText(document.getElementById("map-caption"), "map loaded");
    if (lastStates) renderStates(lastStates);
    load();
  }).catch(function (e) { AK.showError("map: " + e.message); });
})();
