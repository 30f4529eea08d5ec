// Live studio: follow the selected generation's event stream and swap in the panels the
// server renders (this same page, fetched again: the thread list and the two live panels),
// so the page changes as each stage happens. Without this script the page still shows the
// state it was rendered with.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || live.dataset.live !== "yes" || !window.EventSource || !window.fetch) return;
  var busy = false, again = false, finished = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { cache: "no-store", credentials: "omit" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["threads", "live"].forEach(function (id) {
          var now = document.getElementById(id), next = fresh.getElementById(id);
          if (now && next) now.innerHTML = next.innerHTML;
        });
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var source = new EventSource(live.dataset.events);
  source.addEventListener("stage", refresh);
  source.addEventListener("state", refresh);
  source.addEventListener("done", function () { finished = true; source.close(); refresh(); });
  source.onerror = function () { if (finished) source.close(); };
})();
