// Photo viewer: fit to the screen, zoom (wheel, pinch, + − 0 1, double click) and pan (drag) to
// 100 % and beyond, full screen / lightbox, previous/next photo (← →, swipe), and a comparison
// mode — side by side or a draggable split — whose two panes share one zoom and position.
//
// Geometry: every image is laid out at the photo's own pixel size (W×H CSS px) and placed with
// translate(tx, ty) scale(s), so s = 1 is 100 % whatever resolution the file behind it has
// (previews, downscaled comparisons). Both panes use the same transform: the zoom is locked.
(function () {
  "use strict";
  const viewer = document.getElementById("viewer");
  if (!viewer) return;
  const stage = document.getElementById("viewer-stage");
  const paneA = stage.querySelector('[data-pane="a"]');
  const paneB = stage.querySelector('[data-pane="b"]');
  const handle = document.getElementById("split-handle");
  const zoomLabel = document.getElementById("zoom-level");
  const compareBox = viewer.querySelector(".compare-with");
  const compareSelect = document.getElementById("compare-with");
  const toggle = document.getElementById("variant-toggle");
  const labelA = stage.querySelector(".pane-label-a");
  const labelB = stage.querySelector(".pane-label-b");
  const W = +viewer.dataset.width;
  const H = +viewer.dataset.height;
  const fullUrl = viewer.dataset.fullUrl || "";
  const MAX_SCALE = 8;
  const STEP = 1.25;

  let mode = "single";
  let scale = 1;
  let tx = 0;
  let ty = 0;
  let fitted = true;
  let split = 0.5;
  let fullLoaded = false;

  stage.classList.add("is-interactive");

  function images() { return stage.querySelectorAll("img[data-key]"); }
  function sizeImages() {
    images().forEach(function (img) { img.style.width = W + "px"; img.style.height = H + "px"; });
  }
  function paneSize() { return { w: paneA.clientWidth || 1, h: paneA.clientHeight || 1 }; }
  function fitScale() { const p = paneSize(); return Math.min(p.w / W, p.h / H); }
  function minScale() { return Math.min(fitScale(), 1); }
  function maxScale() { return Math.max(MAX_SCALE, fitScale()); }

  function clampPan() {
    const p = paneSize();
    const w = W * scale;
    const h = H * scale;
    tx = w <= p.w ? (p.w - w) / 2 : Math.min(0, Math.max(p.w - w, tx));
    ty = h <= p.h ? (p.h - h) / 2 : Math.min(0, Math.max(p.h - h, ty));
  }

  function apply() {
    clampPan();
    const t = "translate(" + tx + "px, " + ty + "px) scale(" + scale + ")";
    images().forEach(function (img) { img.style.transform = t; });
    const pct = Math.round(scale * 100);
    zoomLabel.textContent = fitted ? "Fit (" + pct + " %)" : pct + " %";
    viewer.dataset.scale = scale.toFixed(4);
    viewer.dataset.tx = tx.toFixed(1);
    viewer.dataset.ty = ty.toFixed(1);
    stage.classList.toggle("is-zoomed", scale > fitScale() + 1e-3);
    if (fullUrl && !fullLoaded && scale > 1600 / Math.max(W, H)) loadFull();
  }

  function loadFull() {
    // Past the display preview's resolution, switch the latent to the full-resolution rendition.
    // The worker renders it on the first request: until then the URL answers a placeholder
    // (header X-Preview: pending), so ask with HEAD until the real file is there.
    fullLoaded = true;
    viewer.dataset.full = "pending";
    let tries = 0;
    (function check() {
      fetch(fullUrl, { method: "HEAD", credentials: "same-origin" })
        .then(function (r) {
          if (r.ok && r.headers.get("X-Preview") !== "pending") {
            stage.querySelectorAll('img[data-key="latent"]').forEach(function (img) { img.src = fullUrl; });
            viewer.dataset.full = "loaded";
          } else if (tries++ < 90) {
            setTimeout(check, 2000);
          }
        })
        .catch(function () { if (tries++ < 90) setTimeout(check, 4000); });
    })();
  }

  function fit() {
    scale = fitScale();
    fitted = true;
    const p = paneSize();
    tx = (p.w - W * scale) / 2;
    ty = (p.h - H * scale) / 2;
    apply();
  }

  function zoomTo(next, cx, cy) {
    const p = paneSize();
    if (cx === undefined) { cx = p.w / 2; cy = p.h / 2; }
    next = Math.min(maxScale(), Math.max(minScale(), next));
    const ix = (cx - tx) / scale;
    const iy = (cy - ty) / scale;
    scale = next;
    fitted = Math.abs(scale - fitScale()) < 1e-4;
    tx = cx - ix * scale;
    ty = cy - iy * scale;
    apply();
  }

  function panBy(dx, dy) { tx += dx; ty += dy; fitted = false; apply(); }

  // --- comparison panes -----------------------------------------------------------------
  function buildPaneB() {
    if (paneB.childElementCount) return;
    paneA.querySelectorAll("img[data-key]").forEach(function (img) {
      const copy = img.cloneNode(false);
      copy.removeAttribute("loading");
      copy.hidden = true;
      copy.alt = img.alt + " (comparison)";
      paneB.appendChild(copy);
    });
    sizeImages();
  }
  function currentA() {
    const checked = toggle && toggle.querySelector("input[name=variant]:checked");
    return checked ? checked.value : "latent";
  }
  function labelOf(key) {
    const input = toggle && toggle.querySelector('input[value="' + key + '"]');
    const label = input && input.closest("label").querySelector(".toggle-label");
    return label ? label.textContent : key;
  }
  function showB() {
    const key = compareSelect ? compareSelect.value : "jpeg";
    paneB.querySelectorAll("img[data-key]").forEach(function (img) { img.hidden = img.dataset.key !== key; });
    labelA.textContent = labelOf(currentA());
    labelB.textContent = labelOf(key);
  }
  function setSplit(f) {
    split = Math.min(1, Math.max(0, f));
    paneB.style.clipPath = mode === "split" ? "inset(0 0 0 " + (split * 100).toFixed(2) + "%)" : "";
    handle.style.left = (split * 100).toFixed(2) + "%";
    handle.setAttribute("aria-valuenow", String(Math.round(split * 100)));
    viewer.dataset.split = split.toFixed(3);
  }
  function setMode(next) {
    mode = next;
    viewer.dataset.mode = mode;
    viewer.querySelectorAll("[data-mode-button]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.modeButton === mode ? "true" : "false");
    });
    const comparing = mode !== "single";
    if (comparing) { buildPaneB(); showB(); }
    paneB.hidden = !comparing;
    handle.hidden = mode !== "split";
    if (compareBox) compareBox.hidden = !comparing;
    setSplit(split);
    hug();
    relayout(true);
  }
  function hug() {
    // One photo (or a split of two): the stage takes the photo's shape, up to the window's height.
    const on = mode !== "side";
    stage.classList.toggle("hugs-photo", on);
    stage.style.aspectRatio = on ? W + " / " + H : "";
  }
  viewer.querySelectorAll("[data-mode-button]").forEach(function (b) {
    b.addEventListener("click", function () { setMode(b.dataset.modeButton); });
  });
  if (compareSelect) compareSelect.addEventListener("change", showB);
  if (toggle) toggle.addEventListener("change", function () { if (mode !== "single") showB(); });

  // --- zoom buttons, wheel, keyboard ---------------------------------------------------------
  viewer.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      const what = b.dataset.zoom;
      if (what === "in") zoomTo(scale * STEP);
      else if (what === "out") zoomTo(scale / STEP);
      else if (what === "actual") zoomTo(1);
      else fit();
    });
  });
  function local(e, pane) {
    const r = (pane || paneA).getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }
  function paneAt(e) {
    return mode === "side" && paneB.contains(e.target) ? paneB : paneA;
  }
  stage.addEventListener("wheel", function (e) {
    e.preventDefault();
    const p = local(e, paneAt(e));
    const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    zoomTo(scale * Math.exp(-delta * 0.0015), p.x, p.y);
  }, { passive: false });
  stage.addEventListener("dblclick", function (e) {
    const p = local(e, paneAt(e));
    if (Math.abs(scale - 1) < 1e-3) fit(); else zoomTo(1, p.x, p.y);
  });

  function go(rel) {
    // The next photo opens in the same view: lightbox, comparison mode and compared version.
    const link = document.getElementById(rel + "-photo");
    if (!link) return;
    const state = [];
    if (viewer.classList.contains("is-lightbox")) state.push("lightbox");
    if (mode !== "single") state.push("mode=" + mode);
    if (mode !== "single" && compareSelect) state.push("vs=" + compareSelect.value);
    window.location.href = link.href.split("#")[0] + (state.length ? "#" + state.join("&") : "");
  }
  function restoreState() {
    const parts = window.location.hash.replace(/^#/, "").split("&");
    parts.forEach(function (p) {
      const kv = p.split("=");
      if (kv[0] === "vs" && compareSelect && compareSelect.querySelector('option[value="' + kv[1] + '"]')) compareSelect.value = kv[1];
    });
    parts.forEach(function (p) {
      const kv = p.split("=");
      if (kv[0] === "mode" && (kv[1] === "side" || kv[1] === "split")) setMode(kv[1]);
      if (kv[0] === "lightbox") {
        viewer.classList.add("is-lightbox");
        document.documentElement.classList.add("has-lightbox");
        fullButton.textContent = "Exit full screen";
      }
    });
  }
  viewer.querySelectorAll("[data-go]").forEach(function (b) {
    if (!document.getElementById(b.dataset.go + "-photo")) { b.hidden = true; return; }
    b.addEventListener("click", function () { go(b.dataset.go); });
  });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    const tag = t.tagName || "";
    if (/^(TEXTAREA|SELECT)$/.test(tag) || (tag === "INPUT" && t.type !== "radio") || t.isContentEditable) return;
    if (t === handle && (e.key === "ArrowLeft" || e.key === "ArrowRight")) {
      setSplit(split + (e.key === "ArrowLeft" ? -0.05 : 0.05));
      e.preventDefault();
      return;
    }
    switch (e.key) {
      case "+": case "=": zoomTo(scale * STEP); break;
      case "-": case "_": zoomTo(scale / STEP); break;
      case "0": fit(); break;
      case "1": zoomTo(1); break;
      case "f": case "F": toggleFull(); break;
      case "Escape": if (viewer.classList.contains("is-lightbox") && !document.fullscreenElement) closeLightbox(); return;
      case "ArrowLeft": case "ArrowRight":
        if (tag === "INPUT") return; // the variant radio group uses the arrows itself
        go(e.key === "ArrowLeft" ? "prev" : "next");
        break;
      default: return;
    }
    e.preventDefault();
  });

  // --- pointer: pan, pinch, swipe, split handle -------------------------------------------------
  const pointers = new Map();
  let gesture = null;
  stage.addEventListener("pointerdown", function (e) {
    if (e.button !== undefined && e.button > 0) return;
    if (e.target.closest("button")) return; // the lightbox's previous/next buttons
    stage.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (e.target === handle) {
      gesture = { kind: "split" };
    } else if (pointers.size === 2) {
      const [a, b] = Array.from(pointers.values());
      const r = paneA.getBoundingClientRect();
      gesture = {
        kind: "pinch",
        d0: Math.hypot(a.x - b.x, a.y - b.y) || 1,
        s0: scale,
        cx: (a.x + b.x) / 2 - r.left,
        cy: (a.y + b.y) / 2 - r.top,
      };
    } else if (pointers.size === 1) {
      gesture = { kind: "pan", x0: e.clientX, y0: e.clientY, t0: Date.now(), zoomed: scale > fitScale() + 1e-3 };
    }
  });
  stage.addEventListener("pointermove", function (e) {
    const prev = pointers.get(e.pointerId);
    if (!prev || !gesture) return;
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (gesture.kind === "split") {
      const r = stage.getBoundingClientRect();
      setSplit((e.clientX - r.left) / r.width);
    } else if (gesture.kind === "pinch" && pointers.size === 2) {
      const [a, b] = Array.from(pointers.values());
      zoomTo(gesture.s0 * (Math.hypot(a.x - b.x, a.y - b.y) / gesture.d0), gesture.cx, gesture.cy);
    } else if (gesture.kind === "pan" && gesture.zoomed) {
      panBy(e.clientX - prev.x, e.clientY - prev.y);
    }
  });
  function endPointer(e) {
    if (!pointers.has(e.pointerId)) return;
    pointers.delete(e.pointerId);
    if (gesture && gesture.kind === "pan" && !gesture.zoomed && pointers.size === 0) {
      const dx = e.clientX - gesture.x0;
      const dy = e.clientY - gesture.y0;
      if (Math.abs(dx) > 60 && Math.abs(dx) > 2 * Math.abs(dy) && Date.now() - gesture.t0 < 1000) {
        go(dx > 0 ? "prev" : "next");
      }
    }
    if (pointers.size === 0) gesture = null;
  }
  stage.addEventListener("pointerup", endPointer);
  stage.addEventListener("pointercancel", endPointer);

  // --- full screen / lightbox ------------------------------------------------------------------
  const fullButton = document.getElementById("fullscreen-button");
  function openLightbox() {
    viewer.classList.add("is-lightbox");
    fullButton.textContent = "Exit full screen";
    document.documentElement.classList.add("has-lightbox");
    if (viewer.requestFullscreen) viewer.requestFullscreen().catch(function () {});
    relayout(true);
  }
  function closeLightbox() {
    viewer.classList.remove("is-lightbox");
    fullButton.textContent = "Full screen";
    document.documentElement.classList.remove("has-lightbox");
    if (document.fullscreenElement && document.exitFullscreen) document.exitFullscreen().catch(function () {});
    relayout(true);
  }
  function toggleFull() { if (viewer.classList.contains("is-lightbox")) closeLightbox(); else openLightbox(); }
  fullButton.addEventListener("click", toggleFull);
  document.addEventListener("fullscreenchange", function () {
    if (!document.fullscreenElement && viewer.classList.contains("is-lightbox")) closeLightbox();
    else relayout(false);
  });

  // --- layout --------------------------------------------------------------------------------------
  function relayout(refit) {
    if (fitted || refit) fit(); else apply();
  }
  sizeImages();
  hug();
  restoreState();
  fit();
  if (window.ResizeObserver) new ResizeObserver(function () { relayout(false); }).observe(stage);
  else window.addEventListener("resize", function () { relayout(false); });
})();
