// claimlens workbench: keyboard navigation of the queue (j/k move, Enter opens) and row clicks.
(function () {
  "use strict";
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-href]")); }
  var current = -1;
  function select(i) {
    var all = rows();
    if (!all.length) { return; }
    i = Math.max(0, Math.min(all.length - 1, i));
    all.forEach(function (r) { r.classList.remove("current"); });
    current = i;
    all[i].classList.add("current");
    all[i].focus({ preventScroll: false });
    all[i].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) { return; }
    if (!rows().length) { return; }
    if (ev.key === "j") { select(current + 1); ev.preventDefault(); }
    else if (ev.key === "k") { select(current < 0 ? 0 : current - 1); ev.preventDefault(); }
    else if (ev.key === "Enter" && current >= 0 && t && t.tagName !== "A" && t.tagName !== "BUTTON") {
      window.location.href = rows()[current].getAttribute("data-href");
      ev.preventDefault();
    }
  });
  document.addEventListener("click", function (ev) {
    var row = ev.target.closest && ev.target.closest("tr[data-href]");
    if (row && !ev.target.closest("a, button, input, select")) { window.location.href = row.getAttribute("data-href"); }
  });
})();
