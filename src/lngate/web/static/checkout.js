// The checkout page's enhancements: live status (Server-Sent Events), countdown, copy, WebLN.
// The page works without this script (QR, amount, lightning: link, a refresh link); every word
// shown here comes from the page itself (data-* attributes, server-rendered panels).
(function () {
  "use strict";

  var root = document.getElementById("checkout");
  if (!root) {
    return;
  }
  var bolt11 = root.dataset.bolt11;
  var live = document.getElementById("live");
  var deadline = Date.now() + Number(root.dataset.secondsLeft) * 1000;
  var stream = null;
  var countdownTimer = null;
  var pollTimer = null;

  function show(state) {
    if (root.dataset.state === state) {
      return;
    }
    root.dataset.state = state;
    var panels = root.querySelectorAll("[data-when]");
    for (var i = 0; i < panels.length; i++) {
      panels[i].hidden = panels[i].dataset.when !== state;
    }
    if (state !== "pending") {
      stop();
      var title = document.getElementById(state + "-title");
      if (title) {
        title.setAttribute("tabindex", "-1");
        title.focus();
      }
    }
  }

  function stop() {
    if (stream) {
      stream.close();
      stream = null;
    }
    clearInterval(countdownTimer);
    clearTimeout(pollTimer);
  }

  // The API says "settled" where the page says "paid".
  function applyStatus(status) {
    if (status === "settled") {
      show("paid");
    } else if (status === "expired") {
      show("expired");
    }
  }

  // Asks the gateway, which asks the provider: how an invoice past its expiry becomes "expired".
  function check(retryMs) {
    fetch(root.dataset.checkUrl, { headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (body) { applyStatus(body.status); })
      .catch(function () { /* offline for a moment: the next try will tell */ })
      .then(function () {
        if (root.dataset.state === "pending" && retryMs) {
          pollTimer = setTimeout(function () { check(retryMs); }, retryMs);
        }
      });
  }

  function listen() {
    if (!window.EventSource) {
      check(5000);
      return;
    }
    stream = new EventSource(root.dataset.eventsUrl);
    stream.addEventListener("open", function () { root.dataset.stream = "open"; });
    stream.addEventListener("status", function (event) {
      applyStatus(JSON.parse(event.data).status);
    });
    // After "timeout" the server closes the stream and EventSource reconnects by itself.
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function startCountdown() {
    var clock = document.getElementById("countdown");
    function tick() {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      var hours = Math.floor(left / 3600);
      var minutes = Math.floor((left % 3600) / 60);
      var text = pad(minutes) + ":" + pad(left % 60);
      clock.textContent = hours ? hours + ":" + text : text;
      if (left === 0) {
        clearInterval(countdownTimer);
        check(3000);
      }
    }
    tick();
    countdownTimer = setInterval(tick, 1000);
  }

  function enableCopy() {
    var button = document.getElementById("copy");
    var field = document.getElementById("bolt11");
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      function done(ok) {
        button.textContent = ok ? button.dataset.copied : button.dataset.failed;
        setTimeout(function () { button.textContent = label; }, 2500);
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(bolt11).then(function () { done(true); }, function () {
          field.select();
          done(false);
        });
      } else {
        field.select();
        done(document.execCommand && document.execCommand("copy"));
      }
    });
  }

  // WebLN: a browser wallet (extension) pays the invoice; the status still comes from the
  // gateway, never from the wallet's word. (The button's id is not "webln": an element's id
  // becomes a window property, which would look like a wallet.)
  function enableWebln() {
    var button = document.getElementById("pay-webln");
    if (!window.webln || typeof window.webln.sendPayment !== "function" || !button.hidden) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      Promise.resolve()
        .then(function () { return window.webln.enable(); })
        .then(function () { return window.webln.sendPayment(bolt11); })
        .then(function () { live.textContent = live.dataset.weblnSent; })
        .catch(function () { live.textContent = live.dataset.weblnFailed; })
        .then(function () { button.disabled = false; });
    });
  }

  if (root.dataset.state === "pending") {
    listen();
    startCountdown();
    enableCopy();
    enableWebln();
    window.addEventListener("webln:ready", enableWebln);
  }
})();
