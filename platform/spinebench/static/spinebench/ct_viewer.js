// CT case viewer: while a slice slider moves, swap its <img> for that slice's PNG (drawn by the server) and update
// the number beside it; a change of window redraws all three planes. Without JavaScript the sliders sit in a GET
// form whose button shows the chosen slices, so this file only makes the same thing live.
(function () {
  "use strict";
  function setUp() {
    var form = document.getElementById("ct-viewer");
    if (!form) { return; }
    var template = form.getAttribute("data-slice-url");
    var windowSelect = document.getElementById("ct-window");
    var sliders = form.querySelectorAll(".ct-slider");
    function show(slider) {
      var plane = slider.getAttribute("data-plane");
      var image = document.getElementById(slider.getAttribute("data-image"));
      var output = document.getElementById(slider.getAttribute("data-output"));
      var url = template.replace("PLANE", encodeURIComponent(plane)).replace("INDEX", encodeURIComponent(slider.value));
      image.src = url + "?window=" + encodeURIComponent(windowSelect.value);
      image.alt = image.alt.replace(/slice \d+ of/, "slice " + slider.value + " of");
      output.textContent = slider.value;
    }
    sliders.forEach(function (slider) {
      slider.addEventListener("input", function () { show(slider); });
    });
    windowSelect.addEventListener("change", function () { sliders.forEach(show); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
