// hookd console: the one piece of script. The delivery log's live view refreshes the first
// page's rows every few seconds while the box is ticked; everything else works without it.
(function () {
  "use strict";
  var toggle = document.getElementById("live");
  var rows = document.getElementById("delivery-rows");
  if (!toggle || !rows) return;
  var status = document.getElementById("live-status");
  var timer = null;
  toggle.parentElement.hidden = false;

  function newest() {
    var first = rows.querySelector("tr[data-id]");
    return first ? Number(first.getAttribute("data-id")) : 0;
  }

  function refresh() {
    if (document.hidden) return;
    var before = newest();
    fetch(toggle.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (answer) {
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        return answer.text();
      })
      .then(function (html) {
        rows.innerHTML = html;
        var after = newest();
        if (after > before) {
          var fresh = rows.querySelectorAll("tr[data-id]");
          var count = 0;
          for (var i = 0; i < fresh.length; i++) {
            if (Number(fresh[i].getAttribute("data-id")) > before) count++;
          }
          status.textContent = count + (count === 1 ? " new delivery" : " new deliveries");
        }
      })
      .catch(function (error) {
        status.textContent = "Live view paused: " + error.message;
      });
  }

  function follow(on) {
    if (timer) clearInterval(timer);
    timer = on ? setInterval(refresh, 2000) : null;
    status.textContent = on ? "" : "Live view off";
  }

  toggle.addEventListener("change", function () { follow(toggle.checked); });
  follow(toggle.checked);
})();
