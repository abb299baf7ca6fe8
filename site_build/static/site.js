// milkb: progressive enhancement only. Tables read without JavaScript; with it, headings sort and a box filters rows.
(function () {
  "use strict";
  // a plain number: digits with at most one dot and a sign; not "57E6" (a radar's name, not 5.7e7) nor "2S19"
  var PLAIN_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;
  // what a cell sorts by: null when it has no value, a number when it carries data-sort (the number cells do)
  // or reads as a plain number, else its text
  function sortKey(row, index) {
    var cell = row.children[index];
    if (!cell) return null;
    var sort = cell.getAttribute("data-sort");
    var text = sort !== null ? sort.trim() : cell.textContent.trim();
    if (text === "" || text === "–") return null;
    return (sort !== null || PLAIN_NUMBER.test(text)) && isFinite(parseFloat(text)) ? parseFloat(text) : text;
  }
  // numbers by value and before words; words as people read them: "2S19" before "2S23", "T-72" before "T-80",
  // without regard to case or accents
  function compare(a, b) {
    var an = typeof a === "number", bn = typeof b === "number";
    if (an && bn) return a - b;
    if (an !== bn) return an ? -1 : 1;
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
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
          var a = sortKey(r1, index), b = sortKey(r2, index);
          if (a === null || b === null) return a === b ? 0 : (a === null ? 1 : -1);  // no value: always last
          var c = compare(a, b);
          return ascending ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  // a row's cells, or a list item's parts, apart: "cannon" and "autocannon" in two cells must not read
  // "cannonautocannon", which holds "nona"
  function itemText(item) {
    return Array.prototype.map.call(item.childNodes, function (node) { return node.textContent; })
      .join(" ").toLowerCase();
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
        var text = itemText(row);
        row.hidden = !words.every(function (w) { return text.indexOf(w) !== -1; });
        if (!row.hidden) shown += 1;
      });
      if (status) status.textContent = words.length ? shown + " of " + items.length + " shown" : "";
    });
  }
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  document.querySelectorAll("input[data-filter]").forEach(makeFilterable);
})();
