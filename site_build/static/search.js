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
    // the page asked for the index (a build with it) but it is not there: `kb serve` is still making it
    status.textContent = document.querySelector('script[src$="pagefind-ui.js"]')
      ? "The search index is still being made (kb serve makes it after the pages): reload this page in a moment."
      : "Search is off: this build of the site has no search index (it was built with --no-search).";
    return;
  }
  status.hidden = true;
  // pageLength 0: short pages (a source's) get no bonus over a system's full page. metaWeights title 0: no
  // boost for a page whose title holds the query, which pagefind 1.5 gives many times over to a title where
  // the word is part of a hyphenated one ("Iskander-M", "Nona-SVK"), so that sources and events titled with
  // a variant's name ranked above the system itself; the systems' names weigh most (entity.html) instead
  var ui = new PagefindUI({ element: "#search", showImages: false, resetStyles: false,
                            ranking: { pageLength: 0.0, metaWeights: { title: 0.0 } } });
  // pagefind's input has only a placeholder: give it a visible label
  var label = function () {
    var input = document.querySelector("#search input");
    if (!input) return false;
    input.id = "pagefind-q";
    var text = document.createElement("label");
    text.htmlFor = "pagefind-q";
    text.textContent = "Search terms";
    document.getElementById("search").before(text);
    return true;
  };
  if (!label()) new MutationObserver(function (_, observer) { if (label()) observer.disconnect(); })
    .observe(document.getElementById("search"), { childList: true, subtree: true });
  var q = new URLSearchParams(location.search).get("q");
  if (q) ui.triggerSearch(q);
})();
