// The site's query page when kb.toml sets sparql_endpoint: YASGUI (vendored) pointed at that endpoint,
// the saved queries as examples. Without JavaScript the build-time results below still read.
(function () {
  "use strict";
  var element = document.getElementById("yasgui");
  if (!element || typeof Yasgui === "undefined") return;
  var endpoint = element.getAttribute("data-endpoint");
  var examples = JSON.parse(document.getElementById("saved-queries").textContent);
  // Completion of classes and properties would ask another host (Linked Open Vocabularies): left off.
  Yasgui.Yasqe.defaults.autocompleters = Yasgui.Yasqe.defaults.autocompleters.filter(function (name) {
    return name !== "class" && name !== "property";
  });
  var yasgui = new Yasgui(element, {
    requestConfig: { endpoint: endpoint, method: "POST" },
    copyEndpointOnNewTab: true,
    persistenceId: null
  });
  var select = document.getElementById("examples");
  function show(index) { if (examples[index]) yasgui.getTab().setQuery(examples[index].text); }
  select.addEventListener("change", function () { show(Number(select.value)); });
  show(0);
})();
