// Wapim dashboard: the only script. Pages stay server-rendered; this reloads a page when the
// state it shows has changed (polling a small JSON endpoint), and refreshes pairing QR codes.
"use strict";
(function () {
  document.querySelectorAll("[data-poll]").forEach(function (el) {
    var url = el.getAttribute("data-poll");
    var shown = el.getAttribute("data-poll-value");
    var every = parseInt(el.getAttribute("data-poll-every") || "1500", 10);
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (state) {
          if (state && String(state.value) !== shown) { window.location.reload(); return; }
          window.setTimeout(tick, every);
        })
        .catch(function () { window.setTimeout(tick, every * 2); });
    }
    window.setTimeout(tick, every);
  });
  document.querySelectorAll("[data-reload-ms]").forEach(function (el) {
    window.setTimeout(function () { window.location.reload(); },
      parseInt(el.getAttribute("data-reload-ms"), 10));
  });
  document.querySelectorAll("img[data-refresh-ms]").forEach(function (img) {
    var every = parseInt(img.getAttribute("data-refresh-ms"), 10);
    window.setInterval(function () {
      var u = new URL(img.src, window.location.href);
      u.searchParams.set("t", Date.now().toString());
      img.src = u.toString();
    }, every);
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
})();
