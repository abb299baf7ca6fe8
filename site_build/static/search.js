// milkb search page: searches the site's pagefind index and lists the results, a page whose name or alias is the
// query first; opened from disk, or on a site without the index, it says why search is off.
(function () {
  "use strict";
  var PAGE_SIZE = 5;    // results shown at first and at each "Load more results"
  var NAME_DEPTH = 20;  // how many of pagefind's first results are read to find the page named by the query
  var status = document.getElementById("search-status");
  if (location.protocol === "file:") {
    status.textContent = "Search is off because this page was opened from disk: the search index can only be loaded " +
      "over HTTP. Serve the site folder (for example with python3 -m http.server) or use the menu above.";
    return;
  }
  var uiScript = document.querySelector('script[src$="pagefind-ui.js"]');
  if (typeof PagefindUI === "undefined") {
    // the page asked for the index (a build with it) but it is not there: `kb serve` is still making it
    status.textContent = uiScript
      ? "The search index is still being made (kb serve makes it after the pages): reload this page in a moment."
      : "Search is off: this build of the site has no search index (it was built with --no-search).";
    return;
  }
  status.hidden = true;

  // pagefind's JS API rather than its UI, whose order cannot be changed: pagefind.js lies beside pagefind-ui.js.
  // pageLength 0: short pages (a source's) get no bonus over a system's full page. metaWeights title 0: no
  // boost for a page whose title holds the query, which pagefind 1.5 gives many times over to a title where
  // the word is part of a hyphenated one ("Iskander-M", "Nona-SVK"), so that sources and events titled with
  // a variant's name ranked above the system itself; the systems' names weigh most (entity.html) instead
  var pagefind = import(new URL("pagefind.js", uiScript.src).href).then(function (module) {
    return module.options({ excerptLength: 30, ranking: { pageLength: 0.0, metaWeights: { title: 0.0 } } })
      .then(function () { return module; });
  });

  // "T-80", "t80" and "T 80" are one name; scripts are not mixed ("Т-80" in Cyrillic is its own)
  function nameKey(text) {
    return text.normalize("NFKC").toLowerCase().replace(/[\p{P}\p{Z}\s]+/gu, "");
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // the form and the list, in pagefind's class names (the tests and any user style sheet know them)
  var form = element("form", "pagefind-ui__form");
  form.setAttribute("role", "search");
  form.setAttribute("aria-label", "Search this site");
  form.setAttribute("action", "javascript:void(0);");  // as pagefind's own form: Enter never leaves the page
  var label = element("label", "search-label", "Search terms");
  label.htmlFor = "search-q";
  var input = element("input", "pagefind-ui__search-input");
  input.type = "search";
  input.id = "search-q";
  input.autocomplete = "off";
  input.setAttribute("autocapitalize", "none");
  input.setAttribute("enterkeyhint", "search");
  form.append(label, input);
  var message = element("p", "pagefind-ui__message");
  message.setAttribute("role", "status");  // read out when a search ends: "49 results for T-80"
  var list = element("ol", "pagefind-ui__results");
  var more = element("button", "pagefind-ui__button", "Load more results");
  more.type = "button";
  more.hidden = true;
  document.getElementById("search").append(form, message, list, more);

  // each result's data (title, address, excerpt, names) is loaded once, when needed
  function entry(result) {
    var data = null;
    return { id: result.id, load: function () { return data || (data = result.data()); } };
  }

  // the pages among the first NAME_DEPTH of `entries` whose name or an alias is the query
  function named(term, entries) {
    var wanted = nameKey(term);
    var head = entries.slice(0, NAME_DEPTH);
    return Promise.all(head.map(function (e) { return e.load(); })).then(function (data) {
      return head.filter(function (_, i) {
        var names = (data[i].meta.names || data[i].meta.title || "").split("|");
        return names.some(function (name) { return nameKey(name) === wanted; });
      });
    });
  }

  // pagefind's order, except that the pages whose name or an alias is the query come first (a system above
  // the sources and events that mention it, or above its variants). "tos 1a" is two words to pagefind, which
  // may not rank TOS-1A among its first results: then the words joined by hyphens ("tos-1a") are looked up too
  function namedFirst(pf, term, entries) {
    return named(term, entries).then(function (found) {
      if (found.length || !/\s/.test(term)) return found;
      return pf.search(term.replace(/\s+/g, "-")).then(function (response) {
        return named(term, response.results.map(entry));
      });
    }).then(function (found) {
      var ids = found.map(function (e) { return e.id; });
      return found.concat(entries.filter(function (e) { return ids.indexOf(e.id) === -1; }));
    });
  }

  // pagefind's excerpt is HTML: keep its text and its <mark>s, nothing else
  function excerpt(html) {
    var parsed = document.createElement("template");
    parsed.innerHTML = html;
    var out = element("p", "pagefind-ui__result-excerpt");
    parsed.content.childNodes.forEach(function (node) {
      out.append(node.nodeName === "MARK" ? element("mark", "", node.textContent) : node.textContent);
    });
    return out;
  }

  function resultItem(data) {
    var item = element("li", "pagefind-ui__result");
    var title = element("p", "pagefind-ui__result-title");
    var link = element("a", "pagefind-ui__result-link", data.meta.title || data.url);
    link.href = data.meta.url || data.url;
    title.append(link);
    item.append(title, excerpt(data.excerpt || ""));
    if (data.meta.kind) {
      var tags = element("ul", "pagefind-ui__result-tags");
      tags.append(element("li", "pagefind-ui__result-tag", "Kind: " + data.meta.kind));
      item.append(tags);
    }
    return item;
  }

  var searchId = 0, found = [], shownCount = 0, loadingMore = false;

  // the next PAGE_SIZE results of search `id`, in place of the list when `fresh`, else after it
  function showMore(id, fresh) {
    var page = found.slice(shownCount, shownCount + PAGE_SIZE);
    return Promise.all(page.map(function (e) { return e.load(); })).then(function (data) {
      if (id !== searchId) return null;
      var items = data.map(resultItem);
      if (fresh) list.replaceChildren.apply(list, items);
      else list.append.apply(list, items);
      shownCount += page.length;
      more.hidden = shownCount >= found.length;
      return items;
    });
  }

  function search(term) {
    var id = ++searchId;
    term = term.trim();
    var address = new URL(location.href);  // the address keeps the query: reloaded or gone back to, it is searched again
    if (term) address.searchParams.set("q", term); else address.searchParams.delete("q");
    history.replaceState(null, "", address);
    if (!term) {
      found = [];
      list.replaceChildren();
      message.textContent = "";
      more.hidden = true;
      return Promise.resolve();
    }
    message.textContent = "Searching for " + term + "…";
    return pagefind.then(function (pf) {
      return pf.search(term).then(function (response) {
        return id === searchId ? namedFirst(pf, term, response.results.map(entry)) : null;
      });
    }).then(function (entries) {
      if (entries === null || id !== searchId) return null;
      found = entries;
      shownCount = 0;
      return showMore(id, true).then(function (items) {
        if (items === null) return;
        var n = entries.length;
        message.textContent = n === 0 ? "No results for " + term
          : n + (n === 1 ? " result for " : " results for ") + term;
      });
    }).catch(function (error) {
      if (id !== searchId) return;
      message.textContent = "Search failed: " + error.message;  // said on the page, not thrown on
    });
  }

  var timer = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { search(input.value); }, 300);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearTimeout(timer);
    search(input.value);
  });
  more.addEventListener("click", function () {
    if (loadingMore) return;
    loadingMore = true;
    showMore(searchId, false).then(function (items) {
      if (items && items.length) items[0].querySelector("a").focus();  // on to the first of the new results
    }).finally(function () { loadingMore = false; });
  });

  var q = new URLSearchParams(location.search).get("q");
  if (q) {
    input.value = q;
    search(q);
  }
})();
