// Follow the operating system's light/dark preference (Bootstrap 5.3 colour modes). Loaded in <head>, before the
// page paints, so a dark-mode reader never sees a white flash; without JavaScript the page stays light.
(function () {
  "use strict";
  var query = window.matchMedia("(prefers-color-scheme: dark)");
  function apply() {
    document.documentElement.setAttribute("data-bs-theme", query.matches ? "dark" : "light");
  }
  apply();
  query.addEventListener("change", apply);
})();
