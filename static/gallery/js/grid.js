// Justified grid: every row has one height and is filled edge to edge. Each tile grows in
// proportion to its photo's aspect ratio (flex-grow = w/h, flex-basis = w/h × row height), so the
// browser breaks the rows and all tiles of a row end up equally tall; a filler item keeps the
// last row from stretching. Without JavaScript the grid falls back to equal cropped tiles.
(function () {
  "use strict";
  const grid = document.getElementById("photo-grid");
  if (!grid) return;
  function rowHeight() {
    const w = grid.clientWidth;
    return w < 480 ? 120 : w < 900 ? 170 : 220;
  }
  function layout() {
    const h = rowHeight();
    grid.querySelectorAll(".tile[data-w]").forEach(function (tile) {
      const ratio = Math.min(4, Math.max(0.25, (+tile.dataset.w || 1) / (+tile.dataset.h || 1)));
      tile.style.flexGrow = String(ratio);
      tile.style.flexBasis = Math.round(ratio * h) + "px";
      const box = tile.querySelector(".tile-image");
      if (box) box.style.aspectRatio = String(ratio);
    });
    grid.classList.add("is-justified");
  }
  layout();
  let pending = 0;
  window.addEventListener("resize", function () {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(layout);
  });
})();

// The selection bar: a confirmation before deleting, and the count of selected photos.
(function () {
  "use strict";
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const label = form.querySelector(".bulk-label");
  const boxes = Array.from(document.querySelectorAll('input[name="ids"][form="bulk-form"]'));
  function count() { return boxes.filter(function (b) { return b.checked; }).length; }
  // The actions show once something is selected; until then one line says how to select.
  form.classList.add("js-bulk");
  function update() {
    const n = count();
    form.classList.toggle("has-selection", n > 0);
    label.textContent = n ? "Selected: " + n : "Tick photos to download, move or delete several at once.";
  }
  boxes.forEach(function (b) { b.addEventListener("change", update); });
  update();
  const del = document.getElementById("bulk-delete");
  if (del) {
    del.addEventListener("click", function (e) {
      const n = count();
      if (n && !window.confirm("Delete " + n + " photo" + (n === 1 ? "" : "s") + " for good? Photos of other people are left alone.")) e.preventDefault();
    });
  }
})();
