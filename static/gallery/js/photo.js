// Photo page: the latent/JPEG/WebP/AVIF toggle (radio group: arrow keys, or L/J/W/A) and live status.
(function () {
  "use strict";
  const section = document.getElementById("photo");
  const toggle = document.getElementById("variant-toggle");
  const caption = document.getElementById("viewer-caption");

  if (toggle) {
    const images = document.querySelectorAll(".pane-a img[data-key]");
    const show = function (key) {
      images.forEach(function (img) { img.hidden = img.dataset.key !== key; });
      const input = toggle.querySelector('input[value="' + key + '"]');
      if (input) caption.textContent = input.dataset.caption;
    };
    toggle.addEventListener("change", function (e) { if (e.target.name === "variant") show(e.target.value); });
    const keys = { l: "latent", j: "jpeg", w: "webp", a: "avif" };
    document.addEventListener("keydown", function (e) {
      const tag = e.target.tagName || "";
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (/^(TEXTAREA|SELECT)$/.test(tag) || (tag === "INPUT" && e.target.type !== "radio")) return;
      const key = keys[e.key.toLowerCase()];
      const input = key && toggle.querySelector('input[value="' + key + '"]');
      if (input) { input.checked = true; input.focus(); show(key); }
    });
  }

  if (!section) return;
  const initialStatus = section.dataset.status;
  const initialPending = section.dataset.pending === "1";
  if ((initialStatus === "ready" && !initialPending) || initialStatus === "failed") return;
  const badge = section.querySelector('[data-role="status"]');
  const errorText = section.querySelector('[data-role="error"]');
  let delay = 1000;
  function poll() {
    fetch(section.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) {
        if (badge) { badge.textContent = s.status_label; badge.className = "badge badge-" + s.status; }
        if (errorText) errorText.textContent = s.error || "";
        const queueText = section.querySelector('[data-role="queue"]');
        if (queueText) queueText.textContent = s.queue_text || "";
        const pending = s.variants.length ? s.variants[0].pending : true;
        if (s.status !== initialStatus && s.finished) { window.location.reload(); return; }
        if (s.status === "ready" && !pending) {
          // The display preview is rendered: swap it in without reloading.
          const img = document.querySelector('.viewer-stage img[data-key="latent"]');
          if (img) img.src = s.variants[0].url;
          section.dataset.pending = "0";
          return;
        }
        delay = Math.min(delay * 1.2, 4000);
        setTimeout(poll, delay);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, delay);
})();

// Decoded downloads (PNG/JPEG): the worker decodes the latent on the first request. Ask with HEAD
// until the file exists, then let the browser download it; without JavaScript the link opens a
// page that refreshes itself until the download starts.
(function () {
  "use strict";
  document.querySelectorAll("a[data-download]").forEach(function (link) {
    if (link.dataset.download === "latent") return;
    const state = link.parentElement.querySelector('[data-role="download-state"]');
    link.addEventListener("click", function (e) {
      e.preventDefault();
      if (link.getAttribute("aria-busy") === "true") return;
      link.setAttribute("aria-busy", "true");
      if (state) state.textContent = "Decoding from the latent…";
      let tries = 0;
      (function poll() {
        fetch(link.href, { method: "HEAD", headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then(function (r) {
            if (r.status === 202 && tries++ < 150) { setTimeout(poll, 1500); return; }
            link.removeAttribute("aria-busy");
            if (state) state.textContent = r.ok ? "" : "The download failed (HTTP " + r.status + ").";
            if (r.ok) window.location.href = link.href;
          })
          .catch(function () { link.removeAttribute("aria-busy"); window.location.href = link.href; });
      })();
    });
  });
})();
