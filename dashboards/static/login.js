/* `make demo` prints /login#token=...: the fragment never reaches the server or its logs;
   it is posted once through the form, then removed from the address bar. */
"use strict";
(function () {
  const m = /^#token=(.+)$/.exec(window.location.hash);
  if (!m) return;
  history.replaceState(null, "", window.location.pathname);
  const input = document.getElementById("token");
  input.value = decodeURIComponent(m[1]);
  document.getElementById("login-form").submit();
})();
