// milkb search page: pagefind's UI when the site is served over HTTP; otherwise say why search is off.
(function () {
  "use strict";
  var status = document.getElementById("search-status");
  if (location.protocol === "file:") {
    status.textContent = "Search is off because this page was opened from disk: the search index can only be loaded " +
      "over HTTP. Serve the site folder (for example with python3 -m http.server) or use the menu above.";
    return;
  }
  if (typeof PagefindUI === "undefined") {
    status.textContent = "Search is off: this build of the site has no search index (it was built with --no-search).";
    return;
  }
  status.hidden = true;
  var ui = new PagefindUI({ element: "#search", showImages: false, resetStyles: false });
  var q = new URLSearchParams(location.search).get("q");
  if (q) ui.triggerSearch(q);
})();
