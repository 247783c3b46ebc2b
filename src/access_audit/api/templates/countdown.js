// Live countdowns: every element with data-due (an ISO 8601 time) shows the time left and gets a
// class by urgency: due-later, due-24h (< 24 h), due-6h (< 6 h), overdue. Time runs from the
// server's clock (body data-now), so a wrong clock on the laptop does not move a deadline.
(function () {
  "use strict";
  var H = 3600 * 1000;
  var serverNow = Date.parse(document.body.getAttribute("data-now") || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();
  var els = Array.prototype.slice.call(document.querySelectorAll("[data-due]"));
  if (!els.length) { return; }

  function text(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var parts = [];
    if (d) { parts.push(d + "d"); }
    if (d || h) { parts.push(h + "h"); }
    parts.push(m + "m");
    if (!d) { parts.push((s % 60) + "s"); }
    return ms < 0 ? "overdue by " + parts.join(" ") : parts.join(" ") + " left";
  }

  function tick() {
    var now = Date.now() + skew;
    els.forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) { return; }
      var ms = due - now;
      el.textContent = text(ms);
      el.classList.toggle("overdue", ms < 0);
      el.classList.toggle("due-6h", ms >= 0 && ms < 6 * H);
      el.classList.toggle("due-24h", ms >= 6 * H && ms < 24 * H);
      el.classList.toggle("due-later", ms >= 24 * H);
    });
  }

  tick();
  window.setInterval(tick, 1000);
})();
