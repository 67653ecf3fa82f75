// The console's little script: refresh, select-all. Every page works without it.
"use strict";
(function () {
  // Refresh pages that ask for it, unless the reader turned it off (remembered per browser).
  var box = document.getElementById("auto-refresh");
  var seconds = Number(document.body.dataset.refresh || 0);
  if (box && seconds) {
    box.checked = localStorage.getItem("console-refresh") !== "off";
    box.addEventListener("change", function () { localStorage.setItem("console-refresh", box.checked ? "on" : "off"); });
    setInterval(function () {
      var reading = document.querySelector("details[open]:not(.more-counts)") || window.getSelection().toString();
      if (box.checked && !reading) { window.location.reload(); }
    }, seconds * 1000);
  }

  // Dead letters: select all, and the act buttons only with something selected.
  var all = document.getElementById("select-all");
  var boxes = Array.prototype.slice.call(document.querySelectorAll('#letters input[name="id"]'));
  var count = document.getElementById("selected-count");
  function update() {
    var n = boxes.filter(function (b) { return b.checked; }).length;
    document.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = n === 0; });
    if (count) { count.textContent = n ? n + " selected" : "tick the letters to act on"; }
    if (all) { all.checked = n > 0 && n === boxes.length; }
  }
  if (all) {
    all.addEventListener("change", function () { boxes.forEach(function (b) { b.checked = all.checked; }); update(); });
  }
  boxes.forEach(function (b) { b.addEventListener("change", update); });
  if (boxes.length) { update(); }
})();
