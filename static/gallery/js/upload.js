// Upload page: drag-and-drop, one XHR per file (so each file gets its own progress bar), then
// live status per photo by polling its status endpoint. Without JavaScript the form posts normally.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  const input = form.querySelector('input[type="file"]');
  const drop = document.getElementById("dropzone");
  const queue = document.getElementById("upload-queue");
  const list = document.getElementById("upload-list");
  const maxBytes = Number(form.dataset.maxBytes);
  const PARALLEL = 2;
  let picked = [];

  function humanBytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function setPicked(files) {
    picked = Array.from(files);
    const title = drop.querySelector(".dropzone-title");
    title.textContent = picked.length ? picked.length + " photo" + (picked.length === 1 ? "" : "s") + " selected: " +
      picked.map(function (f) { return f.name; }).join(", ") : "Drop photos here, or choose files";
  }

  input.addEventListener("change", function () { setPicked(input.files); });
  ["dragenter", "dragover"].forEach(function (type) {
    drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add("is-over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.remove("is-over"); });
  });
  drop.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files.length) setPicked(e.dataTransfer.files);
  });

  function row(file) {
    const li = document.createElement("li");
    li.className = "upload-item";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name + " (" + humanBytes(file.size) + ")";
    const bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Upload progress of " + file.name);
    const state = document.createElement("span");
    state.className = "state-text";
    state.textContent = "Waiting…";
    li.append(name, bar, state);
    list.appendChild(li);
    return { li: li, bar: bar, state: state };
  }

  function fail(ui, message) {
    // Honest state: a rejected file has no progress to show (no bar stuck at 90 %).
    ui.bar.remove();
    ui.li.classList.add("is-error");
    ui.state.setAttribute("role", "alert");
    ui.state.textContent = message;
  }

  function poll(ui, result) {
    fetch(result.status_url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) {
        ui.li.dataset.status = s.status;
        if (s.status === "ready") {
          ui.li.classList.add("is-ready");
          ui.bar.value = 100;
          ui.state.innerHTML = "";
          const a = document.createElement("a");
          a.href = s.url;
          a.textContent = "Ready: " + s.latent_bytes.toLocaleString("en") + " bytes — open the photo";
          ui.state.appendChild(a);
          // Never a silent READY: what the encoder says it changed (or checked and kept).
          ((s.protection && s.protection.badges) || []).forEach(function (b) {
            const span = document.createElement("span");
            span.className = "badge " + (b.warning ? "badge-warn" : "badge-ok");
            span.dataset.role = "protection";
            span.dataset.key = b.key;
            span.title = b.text;
            span.textContent = b.label;
            ui.state.appendChild(span);
            if (b.warning) {
              const why = document.createElement("span");
              why.className = "hint protection-text";
              why.textContent = " " + b.text;
              ui.state.appendChild(why);
            }
          });
          // The thumbnail shows up as soon as the worker has rendered it.
          if (s.thumb && s.thumb.ready) {
            const img = document.createElement("img");
            img.className = "upload-thumb";
            img.alt = "";
            img.src = s.thumb.url;
            a.prepend(img);
          } else if ((ui.thumbTries = (ui.thumbTries || 0) + 1) < 60) {
            setTimeout(function () { poll(ui, result); }, 2000);
          }
        } else if (s.status === "failed") {
          fail(ui, "Encoding failed: " + (s.error || "unknown error"));
        } else {
          ui.state.textContent = (s.status === "encoding" ? "Encoding the latent…" : "Uploaded; waiting for a worker…") +
            (s.queue_text ? " " + s.queue_text : "") + (s.error ? " " + s.error : "");
          setTimeout(function () { poll(ui, result); }, 1500);
        }
      })
      .catch(function () { setTimeout(function () { poll(ui, result); }, 4000); });
  }

  function send(file, ui) {
    return new Promise(function (resolve) {
      if (file.size > maxBytes) {
        fail(ui, "Not uploaded: the file is " + humanBytes(file.size) + "; the limit is " + humanBytes(maxBytes) + ".");
        return resolve();
      }
      const data = new FormData();
      data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      const size = form.querySelector('input[name="size"]:checked');
      data.append("size", size ? size.value : "standard");
      data.append("budget_bytes", form.querySelector('[name="budget_bytes"]').value);
      const gps = form.querySelector('[name="keep_location"]');
      if (gps && gps.checked) data.append("keep_location", "1");
      data.append("files", file, file.name);
      let tries = 0;
      (function attempt() {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.addEventListener("progress", function (e) {
          if (e.lengthComputable) {
            ui.bar.value = Math.round((e.loaded / e.total) * 100);
            ui.state.textContent = "Uploading… " + Math.round((e.loaded / e.total) * 100) + " %";
          }
        });
        xhr.addEventListener("load", function () {
          // A busy or briefly unavailable server (503 + Retry-After) stored nothing: send again.
          if (xhr.status === 503 && tries++ < 3) {
            const wait = Math.min(Number(xhr.getResponseHeader("Retry-After")) || 2, 30);
            ui.bar.value = 0;
            ui.state.textContent = "The server is busy; trying again in " + wait + " s…";
            setTimeout(attempt, wait * 1000);
            return;
          }
          let body = null;
          try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
          const result = body && body.results && body.results[0];
          if (result && result.ok) {
            ui.bar.value = 100; // the upload is complete; the text says what the worker does next
            ui.state.textContent = "Uploaded; waiting for a worker…";
            poll(ui, result);
          } else if (result) {
            fail(ui, "Not accepted: " + result.error);
          } else if (body && body.errors) {
            fail(ui, "Not accepted: " + Object.values(body.errors).flat().map(function (e) { return e.message; }).join(" "));
          } else {
            fail(ui, "Upload failed (HTTP " + xhr.status + "). Please try again.");
          }
          resolve();
        });
        xhr.addEventListener("error", function () { fail(ui, "Network error; the file was not uploaded."); resolve(); });
        xhr.send(data);
      })();
    });
  }

  form.addEventListener("submit", function (e) {
    const budget = form.querySelector('input[name="size"][value="budget"]');
    if (!picked.length) return; // let the server answer with its message
    e.preventDefault();
    if (budget && budget.checked && !form.querySelector('[name="budget_bytes"]').value) {
      form.querySelector('[name="budget_bytes"]').focus();
      return;
    }
    queue.hidden = false;
    const jobs = picked.map(function (f) { return { file: f, ui: row(f) }; });
    picked = [];
    input.value = "";
    setPicked([]);
    let next = 0;
    function worker() {
      if (next >= jobs.length) return Promise.resolve();
      const job = jobs[next++];
      return send(job.file, job.ui).then(worker);
    }
    for (let i = 0; i < PARALLEL; i++) worker();
  });
})();
