(function () {
  "use strict";
  var family = document.getElementById("family");
  var failures = document.getElementById("failures");
  var text = document.getElementById("text");
  function apply() {
    var f = family.value, onlyBad = failures.checked, q = text.value.toLowerCase();
    var shown = 0;
    document.querySelectorAll("[data-family]").forEach(function (el) {
      var ok = (!f || el.dataset.family === f) &&
        (!onlyBad || el.dataset.outcome === "failed" || el.dataset.outcome === "error") &&
        (!q || el.dataset.name.toLowerCase().indexOf(q) >= 0);
      el.classList.toggle("hidden", !ok);
      if (ok && el.tagName === "TR") { shown += 1; }
    });
    document.getElementById("shown").textContent = shown;
  }
  [family, failures, text].forEach(function (el) { el.addEventListener("input", apply); });
  document.getElementById("expand").addEventListener("click", function () {
    document.querySelectorAll("details.scenario:not(.hidden)").forEach(function (d) { d.open = true; });
  });
  document.getElementById("collapse").addEventListener("click", function () {
    document.querySelectorAll("details.scenario").forEach(function (d) { d.open = false; });
  });
  document.querySelectorAll("a.to-scenario").forEach(function (a) {
    a.addEventListener("click", function () {
      var d = document.getElementById(a.getAttribute("href").slice(1));
      if (d) { d.open = true; }
    });
  });
  function openHash() {
    var d = location.hash && document.getElementById(location.hash.slice(1));
    if (d && d.tagName === "DETAILS") { d.open = true; d.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openHash);
  apply();
  openHash();
}());
