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
  var suggestion = element("div", "search-suggestions");  // "Did you mean …?" when no page is named by the query
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

  // among the first NAME_DEPTH of `entries`: the pages whose name or an alias is the query (`exact`), and the
  // systems whose name or an alias begins with the query's words (`prefix`: "bm 21", BM-21 Grad)
  function named(term, entries) {
    var wanted = nameKey(term);
    var head = entries.slice(0, NAME_DEPTH);
    return Promise.all(head.map(function (e) { return e.load(); })).then(function (data) {
      var exact = [], prefix = [];
      head.forEach(function (e, i) {
        var names = (data[i].meta.names || data[i].meta.title || "").split("|");
        if (names.some(function (name) { return nameKey(name) === wanted; })) {
          exact.push(e);
        } else if (/^system\b/.test(data[i].meta.kind || "") && names.some(function (name) {
          var words = name.split(/\s+/);
          for (var k = 1; k < words.length; k++) if (nameKey(words.slice(0, k).join(" ")) === wanted) return true;
          return false;
        })) {
          prefix.push(e);
        }
      });
      return { exact: exact, prefix: prefix };
    });
  }

  // pagefind's order, except that the pages whose name or an alias is the query come first (a system above
  // the sources and events that mention it, or above its variants). "tos 1a" is two words to pagefind, which
  // may not rank TOS-1A among its first results: then the words joined by hyphens ("tos-1a") are looked up too.
  // Only without a page of that name do the systems whose name begins with the query come first
  function namedFirst(pf, term, entries) {
    return named(term, entries).then(function (first) {
      if (first.exact.length || !/\s/.test(term)) return first.exact.length ? first.exact : first.prefix;
      return pf.search(term.replace(/\s+/g, "-")).then(function (response) {
        return named(term, response.results.map(entry));
      }).then(function (joined) {
        return joined.exact.length ? joined.exact : first.prefix.length ? first.prefix : joined.prefix;
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

  // a query that names no page is matched against the names of systems, organizations, countries and places,
  // allowing for typing errors: "hymars" offers M142 HIMARS. Each name, alias and word of one (of three letters
  // or more) is a key, and a query is compared only with the keys of its own first letter (a typing error
  // seldom hits the first), which the build writes to a file of their own: names/XXXX.json, XXXX the letter's
  // code point (kb/site/build.py `_names_files`). Each file is read once
  var names = {}, letters = null;
  function readJSON(path) {
    return fetch(new URL(path, location.href)).then(function (response) {
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      return response.json();
    });
  }
  function loadNames(first) {
    var code = first.codePointAt(0).toString(16).padStart(4, "0");
    letters = letters || readJSON("names/index.json");  // the letters that have a file
    return names[first] || (names[first] = letters.then(function (codes) {
      return codes.indexOf(code) === -1 ? [] : readJSON("names/" + code + ".json");
    }).then(function (pages) {
      var keys = [];
      pages.forEach(function (page) {
        page.href = new URL("id/" + page.i + ".html", location.href).href;
        [page.n].concat(page.a).forEach(function (name) {
          var words = name.split(/[\s\-–\/]+/).map(nameKey).filter(function (w) { return w.length > 2; });
          [nameKey(name)].concat(words).forEach(function (key) {
            if (key && String.fromCodePoint(key.codePointAt(0)) === first) {
              keys.push({ key: key, name: name, page: page });
            }
          });
        });
      });
      return keys;
    }).catch(function () {
      delete names[first];  // asked again at the next search
      letters = null;
      return [];
    }));
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
        if (before && i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
          d = Math.min(d, before[j - 2] + 1);  // two neighbours swapped
        }
        next.push(d);
        least = Math.min(least, d);
      }
      if (least > most) return most + 1;
      before = row;
      row = next;
    }
    return row[b.length];
  }

  // the pages closest to `term`, closest first: a key that begins with the query's first letter and is one edit
  // away (none under four letters, two from eight letters on), or that begins with the query (of three letters
  // or more: "him", HIMARS), counted as half an edit; `exact`: one that is the query itself counts too (when
  // nothing was found, "grom" offers 2A28 Grom). `shown`: the addresses of the results on the page, not offered
  // again; nothing is offered when the closest page is one of them
  function suggestions(wanted, keys, exact, shown) {
    var most = wanted.length < 4 ? 0 : wanted.length < 8 ? 1 : 2;
    var best = new Map();  // page → its closest key: {d, name}
    keys.forEach(function (k) {
      var d = wanted.length > 2 && k.key.length > wanted.length && k.key.indexOf(wanted) === 0 ? 0.5
        : distance(wanted, k.key, most);
      if ((d > most && d !== 0.5) || (d === 0 && !exact)) return;
      var known = best.get(k.page);
      if (!known || d < known.d) best.set(k.page, { d: d, name: k.name });
    });
    var found = [];
    best.forEach(function (b, page) {
      found.push({ d: b.d, name: b.name, page: page, shown: shown.indexOf(page.href) !== -1 });
    });
    found.sort(function (x, y) { return x.d - y.d || x.page.n.localeCompare(y.page.n); });
    if (found.length && found[0].shown) return [];
    return found.filter(function (f) { return !f.shown; }).slice(0, 5);
  }

  // "Did you mean …?" under the message; the search box's container says `data-suggested` once it has looked
  function suggest(id, term, nothingFound) {
    var wanted = nameKey(term);
    var first = wanted ? String.fromCodePoint(wanted.codePointAt(0)) : "";
    return (first ? loadNames(first) : Promise.resolve([])).then(function (keys) {
      if (id !== searchId) return;
      var shown = Array.prototype.map.call(list.querySelectorAll(".pagefind-ui__result-link"), function (a) {
        return a.href;
      });
      var close = suggestions(wanted, keys, nothingFound, shown);
      if (close.length) {
        var line = element("p", "search-suggest", "Did you mean ");
        close.forEach(function (s, i) {
          if (i) line.append(i === close.length - 1 ? " or " : ", ");
          var link = element("a", "", s.page.n);
          link.href = s.page.href;
          line.append(link);
          if (s.name !== s.page.n) line.append(" (" + s.name + ")");
        });
        line.append("?");
        suggestion.replaceChildren(line);
      }
      container.dataset.suggested = term;
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
    delete container.dataset.suggested;
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
        container.dataset.suggested = term;
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
