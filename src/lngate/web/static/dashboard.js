// The operator dashboard's live view: one Server-Sent Events stream (/admin/events) whose
// "section" events carry the new HTML of a part of the page (rendered and escaped by the
// server), put in place here. No polling: the server pushes when a probe, a payment or an
// order changes something, and refreshes its figures every few seconds. The page works
// without this script (a reload shows the latest figures); every word shown comes from the page.
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  if (!root || !window.EventSource) {
    return;
  }
  var live = document.getElementById("live");
  var ended = document.getElementById("stream-ended");
  var source = new EventSource(root.dataset.events);

  function showLive(open) {
    root.dataset.stream = open ? "open" : "closed";
    live.textContent = open ? live.dataset.open : live.dataset.closed;
    live.classList.toggle("on", open);
  }

  function end() {
    source.close();
    showLive(false);
    ended.hidden = false;
  }

  source.addEventListener("open", function () {
    showLive(true);
  });

  source.addEventListener("section", function (event) {
    var update = JSON.parse(event.data);
    var target = document.getElementById(update.id);
    // Only the page's live sections may be replaced.
    if (target && target.hasAttribute("data-live")) {
      target.innerHTML = update.html;
      root.dataset.updates = String(Number(root.dataset.updates || "0") + 1);
    }
  });

  // The session ended (signed out, expired): nothing more will come.
  source.addEventListener("signed-out", end);

  source.addEventListener("error", function () {
    // CLOSED: the server refused to reconnect (401 once the session is over).
    if (source.readyState === EventSource.CLOSED) {
      end();
    } else {
      showLive(false); // the browser reconnects by itself
    }
  });
})();
