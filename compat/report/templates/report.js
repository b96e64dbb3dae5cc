// A link to a log points at a closed <details>; open it so the log shows.
(function () {
  function openTarget() {
    var el = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (el && el.tagName === "DETAILS") {
      el.open = true;
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();

// Filters on the kinds of run (scan, nightly, check, bisect probe): a history
// entry of an unchecked kind hides, and so does a combination left with none.
(function () {
  var boxes = document.querySelectorAll("input[data-kind-filter]");
  function apply(section) {
    var shown = {};
    section.querySelectorAll("input[data-kind-filter]").forEach(function (box) {
      shown[box.getAttribute("data-kind-filter")] = box.checked;
    });
    section.querySelectorAll("table.results tbody tr").forEach(function (row) {
      var visible = 0;
      row.querySelectorAll("li[data-kind]").forEach(function (item) {
        var on = shown[item.getAttribute("data-kind")] !== false;
        item.hidden = !on;
        if (on) { visible += 1; }
      });
      row.hidden = visible === 0;
    });
  }
  boxes.forEach(function (box) {
    box.addEventListener("change", function () { apply(box.closest("section")); });
  });
})();
