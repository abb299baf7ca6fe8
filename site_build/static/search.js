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
  var container = document.getElementById("search");
  if (!container.dataset.index) {
    status.textContent = "Search is off: this build of the site has no search index (it was built with --no-search).";
    return;
  }

  // pagefind's JS API rather than its UI, whose order cannot be changed (and whose 130 KB are not loaded).
  // pageLength 0: short pages (a source's) get no bonus over a system's full page. metaWeights title 0: no
  // boost for a page whose title holds the query, which pagefind 1.5 gives many times over to a title where
  // the word is part of a hyphenated one ("Iskander-M", "Nona-SVK"), so that sources and events titled with
  // a variant's name ranked above the system itself; the systems' names weigh most (entity.html) instead
  var pagefind = import(new URL(container.dataset.index, location.href).href).then(function (module) {
    return module.options({ excerptLength: 30, ranking: { pageLength: 0.0, metaWeights: { title: 0.0 } } })
      .then(function () { return module; });
  });
  pagefind.catch(function () {
    // the page names the index (a build with it) but it is not there: `kb serve` is still making it
    status.hidden = false;
    status.textContent = "The search index is still being made (kb serve makes it after the pages): reload this " +
      "page in a moment.";
    form.hidden = true;
  });
  status.hidden = true;

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
  var suggestion = element("div", "search-suggestions");  // "Did you mean …?" when a query found nothing
  suggestion.setAttribute("aria-live", "polite");
  var more = element("button", "pagefind-ui__button", "Load more results");
  more.type = "button";
  more.hidden = true;
  container.append(form, message, suggestion, list, more);

  // each result's data (title, address, excerpt, names) is loaded once, when needed
  function entry(result) {
    var data = null;
    return { id: result.id, load: function () { return data || (data = result.data()); } };
  }

  // the pages among the first NAME_DEPTH of `entries` whose name or an alias is the query; if none, the
  // systems whose name or an alias begins with the query's words ("bm 21": BM-21 Grad, "mq 9": MQ-9 Reaper)
  function named(term, entries) {
    var wanted = nameKey(term);
    var head = entries.slice(0, NAME_DEPTH);
    return Promise.all(head.map(function (e) { return e.load(); })).then(function (data) {
      var names = data.map(function (d) { return (d.meta.names || d.meta.title || "").split("|"); });
      var exact = head.filter(function (_, i) {
        return names[i].some(function (name) { return nameKey(name) === wanted; });
      });
      if (exact.length) return exact;
      return head.filter(function (_, i) {
        return /^system\b/.test(data[i].meta.kind || "") && names[i].some(function (name) {
          var words = name.split(/\s+/);
          for (var k = 1; k < words.length; k++) if (nameKey(words.slice(0, k).join(" ")) === wanted) return true;
          return false;
        });
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
      var all = found.concat(entries.filter(function (e) { return ids.indexOf(e.id) === -1; }));
      all.named = found.length > 0;
      return all;
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

  // a query that found nothing is matched against the names of systems, organizations, countries and places
  // (names.json) allowing for typing errors: "hymars" offers HIMARS, "iskandar" Iskander
  var names = null;
  function loadNames() {
    return names || (names = fetch(new URL("names.json", location.href)).then(function (response) {
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      return response.json();
    }).catch(function () { names = null; return []; }));
  }

  // edits (insert, delete, replace, swap two neighbours) between a and b, or more than `most` once that is certain
  function distance(a, b, most) {
    if (Math.abs(a.length - b.length) > most) return most + 1;
    var before = null, row = [], i, j;
    for (j = 0; j <= b.length; j++) row.push(j);
    for (i = 1; i <= a.length; i++) {
      var next = [i], least = i;
      for (j = 1; j <= b.length; j++) {
        var d = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        if (before && i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2] + 1);
        next.push(d);
        least = Math.min(least, d);
      }
      if (least > most) return most + 1;
      before = row;
      row = next;
    }
    return row[b.length];
  }

  // the closest names to `term` (each page once, closest first): a name, an alias, or a word of either that
  // begins with the same letter (a typing error seldom hits the first) and is at most one edit away, two from
  // eight letters on, or begins with the query; `exact`: one that is the query itself counts too (when nothing was found, "grom" offers
  // 2A28 Grom); `shown`: the addresses of the results on the page, which are not offered again (nothing is
  // when the closest name is one of them)
  function suggestions(term, all, exact, shown) {
    var wanted = nameKey(term);
    var most = wanted.length < 4 ? 0 : wanted.length < 8 ? 1 : 2;
    var found = [];
    all.forEach(function (page) {
      var best = null;
      [page.n].concat(page.a).forEach(function (name) {
        var keys = [nameKey(name)].concat(name.split(/[\s\-–\/]+/).map(nameKey).filter(function (w) { return w.length > 2; }));
        keys.forEach(function (key) {
          if (key[0] !== wanted[0]) return;
          // a name that begins with the query ("bm 21": BM-21 Grad) is as close as one edit less
          var d = wanted.length > 2 && key.length > wanted.length && key.indexOf(wanted) === 0 ? 0.5
            : distance(wanted, key, most);
          if (d <= most && (exact || d > 0) && (best === null || d < best.d)) best = { d: d, name: name };
        });
      });
      if (best) found.push({ d: best.d, name: best.name, page: page, shown: shown.indexOf(new URL(page.u, location.href).href) !== -1 });
    });
    found.sort(function (x, y) { return x.d - y.d || x.page.n.localeCompare(y.page.n); });
    if (found.length && found[0].shown) return [];  // the closest is among the results: the rest is noise
    return found.filter(function (f) { return !f.shown; }).slice(0, 5);
  }

  function suggest(id, term, nothingFound) {
    return loadNames().then(function (all) {
      if (id !== searchId) return;
      var shown = Array.prototype.map.call(list.querySelectorAll(".pagefind-ui__result-link"), function (a) {
        return a.href;
      });
      var close = suggestions(term, all, nothingFound, shown);
      if (!close.length) return;
      var line = element("p", "search-suggest", "Did you mean ");
      close.forEach(function (s, i) {
        if (i) line.append(i === close.length - 1 ? " or " : ", ");
        var link = element("a", "", s.page.n);
        link.href = s.page.u;
        line.append(link);
        if (s.name !== s.page.n) line.append(" (" + s.name + ")");
      });
      line.append("?");
      suggestion.replaceChildren(line);
    });
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
    suggestion.replaceChildren();
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
        // a query that found nothing, or no page of that name ("iskandar" finds pages that mention Iskander)
        if (!entries.named) return suggest(id, term, n === 0);
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
