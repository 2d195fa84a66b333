/* Operator search by name or service id prefix; each result is the meter's signed link. */
"use strict";
(function () {
  const form = document.getElementById("search-form");
  if (!form) return;
  const list = document.getElementById("search-results");
  const status = document.getElementById("search-status");
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const q = document.getElementById("search-q").value.trim();
    list.replaceChildren();
    AK.setText(status, "searching…");
    try {
      const res = await AK.getJSON("/api/meters?" + new URLSearchParams({q: q, limit: "20"}));
      AK.setText(status, res.meters.length ? res.meters.length + " found" : "no meter matches");
      res.meters.forEach(function (m) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = m.link;
        a.textContent = m.user_name + " (" + m.state + ", " + m.type + ")";
        const code = document.createElement("code");
        code.textContent = " " + m.service_id;
        li.append(a, code);
        list.append(li);
      });
    } catch (e) {
      AK.setText(status, e.status === 401 || e.status === 403 ?
        "operators only: sign in at /login" : e.message);
    }
  });
})();
