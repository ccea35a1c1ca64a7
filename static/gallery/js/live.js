// Gallery grid: tiles that are not finished (or whose thumbnail is still rendering) poll their
// status endpoint and update their badge and thumbnail in place.
(function () {
  "use strict";
  const tiles = Array.from(document.querySelectorAll(".tile[data-status-url]"));
  function watch(tile, delay) {
    fetch(tile.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) {
        const badge = tile.querySelector('[data-role="status"]');
        if (badge) { badge.textContent = s.status_label; badge.className = "badge badge-" + s.status; }
        const sub = tile.querySelector(".tile-sub");
        if (s.status === "ready" && sub && !sub.querySelector('[data-role="protection"]')) {
          ((s.protection && s.protection.badges) || []).forEach(function (b) {
            if (!b.warning) return;
            const span = document.createElement("span");
            span.className = "badge badge-warn";
            span.dataset.role = "protection";
            span.title = b.text;
            span.textContent = b.label;
            sub.appendChild(span);
          });
        }
        if (s.status === "ready" && s.thumb.ready) {
          const box = tile.querySelector(".tile-image");
          let img = box.querySelector("img");
          if (!img) { box.innerHTML = ""; img = document.createElement("img"); img.alt = tile.querySelector(".tile-title").textContent; box.appendChild(img); }
          img.src = s.thumb.url;
          return;
        }
        if (s.status === "failed") {
          tile.querySelector(".tile-image").innerHTML = '<span class="tile-state tile-failed" aria-hidden="true">!</span>';
          return;
        }
        setTimeout(function () { watch(tile, Math.min(delay * 1.3, 8000)); }, delay);
      })
      .catch(function () { setTimeout(function () { watch(tile, 8000); }, 8000); });
  }
  tiles.forEach(function (t, i) { setTimeout(function () { watch(t, 1500); }, 300 + 100 * i); });
})();
