// milkb: progressive enhancement only. Tables read without JavaScript; with it, headings sort and a box filters rows.
(function () {
  "use strict";
  function cellValue(row, index) {
    var cell = row.children[index];
    if (!cell) return "";
    var sort = cell.getAttribute("data-sort");
    return sort !== null ? sort : cell.textContent.trim();
  }
  function compare(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    var xn = a !== "" && !isNaN(x) && isFinite(a), yn = b !== "" && !isNaN(y) && isFinite(b);
    if (xn && yn) return x - y;
    if (xn) return -1;
    if (yn) return 1;
    if (a === "" || a === "–") return 1;
    if (b === "" || b === "–") return -1;
    return a.localeCompare(b);
  }
  function makeSortable(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = th.textContent;
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var a = cellValue(r1, index), b = cellValue(r2, index);
          var aEmpty = a === "" || a === "–", bEmpty = b === "" || b === "–";
          if (aEmpty || bEmpty) return aEmpty === bEmpty ? 0 : (aEmpty ? 1 : -1);  // no value: always last
          var c = compare(a, b);
          return ascending ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  function makeFilterable(input) {
    // a table's rows, or a list's items (the events timeline)
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) return;
    var items = table.tBodies ? table.tBodies[0].rows : table.children;
    var status = input.closest(".table-tools").querySelector(".filter-status");
    input.closest(".table-tools").hidden = false;
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      Array.prototype.forEach.call(items, function (row) {
        var text = row.textContent.toLowerCase();
        row.hidden = !words.every(function (w) { return text.indexOf(w) !== -1; });
        if (!row.hidden) shown += 1;
      });
      if (status) status.textContent = words.length ? shown + " of " + items.length + " shown" : "";
    });
  }
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  document.querySelectorAll("input[data-filter]").forEach(makeFilterable);
})();
