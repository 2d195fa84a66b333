/* Household page: three utility cards, filled from the summary API, then kept live by SSE. */
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

  function setValue(el, value) {
    AK.setText(el, AK.fmt(value));
    el.dataset.raw = value === null || value === undefined ? "" : String(value);
  }

  function draw(utility, card, series) {
    const box = field(card, "chart");
    const data = [series.start, series.sum];
    const width = Math.max(240, box.clientWidth || 300);
    if (!charts[utility]) {
      charts[utility] = new uPlot({
        width: width, height: 150, legend: {show: false}, cursor: {y: false},
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
        scales: {x: {time: true}},
        axes: [{size: 30, values: function (u, splits) { return splits.map(function (v) { return AK.utc(v); }); }},
               {size: 56, values: function (u, splits) { return splits.map(function (v) { return String(Number(v.toPrecision(3))); }); }}],
        series: [{}, {label: card.dataset.utility, stroke: COLORS[utility], width: 2,
                      fill: COLORS[utility] + "22", spanGaps: false, points: {show: false}}],
      }, data, box);
    } else {
      charts[utility].setData(data);
    }
  }

  function render(s) {
    const m = s.meter;
    AK.setText(document.getElementById("meter-name"), m ? m.user_name : "unregistered meter");
    AK.setText(document.getElementById("meter-type"), m ? m.type : "–");
    AK.setText(document.getElementById("meter-state"), m ? m.state : "–");
    Object.keys(s.utilities).forEach(function (u) {
      const c = s.utilities[u];
      const card = document.getElementById("card-" + u);
      if (!card) return;
      AK.setText(field(card, "unit"), c.unit);
      setValue(field(card, "current"), c.current ? c.current.sum : null);
      AK.setText(field(card, "current-when"), c.current ?
        AK.utc(c.current.window_start) + "–" + AK.utc(c.current.window_end) + " UTC · " +
        c.current.count + " readings" : "no readings in the last hour");
      setValue(field(card, "today"), c.today.sum);
      AK.setText(field(card, "today-when"), c.today.from !== null ?
        "since " + AK.utc(c.today.from, true) + " UTC · " + AK.count(c.today.count) + " readings" : "");
      draw(u, card, c.series);
    });
    page.dataset.loaded = "1";
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/api/meters/" + sid + "/stream?" + query({range: range}));
    source.addEventListener("summary", function (e) {
      render(JSON.parse(e.data));
      AK.setLive("live", "live");
    });
    source.onerror = function () { AK.setLive("retrying", "reconnecting…"); };
  }

  async function load() {
    try {
      render(await AK.getJSON("/api/meters/" + sid + "?" + query({range: range})));
      AK.showError("");
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
      charts[u].setSize({width: Math.max(240, box.clientWidth), height: 150});
    });
  });
  load();
})();
