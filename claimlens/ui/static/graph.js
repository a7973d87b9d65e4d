// claimlens workbench: the linked-claims graph (Cytoscape.js, vendored). Click or tap a claim to open it.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("graph");
    var data = JSON.parse(document.getElementById("graph-data").textContent);
    var elements = [];
    data.nodes.forEach(function (n) {
      elements.push({ data: { id: n.claim_id, label: n.claim_id + (n.score !== null ? " (" + n.score + ")" : ""),
                              root: n.claim_id === data.claim_id ? 1 : 0, score: n.score || 0 } });
    });
    data.edges.forEach(function (e, i) {
      elements.push({ data: { id: "e" + i, source: e.source, target: e.target, label: e.labels.join(", ") } });
    });
    var cy = window.cytoscape({
      container: box, elements: elements, wheelSensitivity: 0.3,
      layout: { name: "breadthfirst", roots: [data.claim_id], spacingFactor: 1.3, padding: 30 },
      style: [
        { selector: "node", style: { "label": "data(label)", "background-color": "#245a8a", "color": "#1a1a1a",
          "font-size": 12, "text-valign": "bottom", "text-margin-y": 6, "width": 28, "height": 28 } },
        { selector: "node[score >= 50]", style: { "background-color": "#a4161a" } },
        { selector: "node[root = 1]", style: { "border-width": 4, "border-color": "#ffbf47", "width": 36, "height": 36 } },
        { selector: "edge", style: { "label": "data(label)", "font-size": 10, "color": "#4a4a4a", "width": 2,
          "line-color": "#6b7280", "curve-style": "bezier", "text-background-color": "#fbfbfc",
          "text-background-padding": 2,
          "text-background-opacity": 1, "text-rotation": "none" } }
      ]
    });
    cy.on("tap", "node", function (ev) {
      var id = ev.target.id();
      if (id !== data.claim_id) { window.location.href = "/ui/claims/" + encodeURIComponent(id); }
    });
    window.claimGraph = cy;  // for tests and the console
    box.setAttribute("data-ready", "1");
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
