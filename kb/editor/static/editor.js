// The query editor of `kb serve`: YASGUI pointed at this server's /sparql, the saved queries as examples.
(function () {
  "use strict";
  var examples = JSON.parse(document.getElementById("saved-queries").textContent);
  var endpoint = new URL("/sparql", window.location.href).href;
  document.getElementById("endpoint").textContent = endpoint;

  // Completion of classes and properties asks Linked Open Vocabularies, another host: left off.
  Yasgui.Yasqe.defaults.autocompleters = Yasgui.Yasqe.defaults.autocompleters.filter(function (name) {
    return name !== "class" && name !== "property";
  });
  var yasgui = new Yasgui(document.getElementById("yasgui"), {
    requestConfig: { endpoint: endpoint, method: "POST" },
    copyEndpointOnNewTab: true,
    // Tabs are not kept in the browser: a stored tab would point at whatever port served it last.
    persistenceId: null,
    endpointCatalogueOptions: {
      getData: function () { return [{ endpoint: endpoint }]; },
      keys: [],
      renderItem: function (data, source) { source.textContent = data.value.endpoint; }
    }
  });

  var select = document.getElementById("examples");
  function show(index) {
    var example = examples[index];
    if (example) {
      yasgui.getTab().setQuery(example.text);
    }
  }
  select.addEventListener("change", function () { show(Number(select.value)); });
  if (!/[?&#]query=/.test(window.location.href)) {
    show(0);
  }
  window.milkbEditor = yasgui; // for the tests and the browser console
})();
