// Sends the page's CSRF token with every htmx request (forms carry it as a hidden field).
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
  });
})();
