"""`make bench-gallery`: photos through the REAL worker pipeline, with a per-stage profile (issue 13).

Runs ``gallery.worker.pipeline.encode`` in-process (the function the ``gallery.encode_photo`` task
calls) with the real codec and weights against a throw-away SQLite database and media folder, and
then, like the worker, the ``gallery.render_previews`` task body for whatever previews the encode
left to a render task (nothing is published to a broker: the preview backend is replaced by one that
records what would have been queued).

Photos: Kodak (768×512), a few ≥ 4 MP ones tiled from upscaled training photos, and one 12 MP
one tiled from training photos; generated at run time into a temp dir (never committed).

Stages are timed by wrapping the functions that do them (exclusive time: a stage nested in another is
subtracted from it): decode input, encoder passes, rate search, measured choice, guard (+ faces),
comparisons, previews (incl. the render task's latent decode), storage, db commit.

Also measures ONE warm decode of a same-size latent by the stock TAESD decoder in plain torch fp32
(2 threads) and reports Upload→READY (with its thumbnail) / that decode for the 768×512 photos —
the issue's load-independent ratio. The machine is shared: every time is an upper bound; the load
average is reported.

    .venv/bin/python scripts/bench_gallery.py --kodak 3 --large 1 --twelve 1 --label after
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAGES = (
    "decode input", "encoder passes", "rate search", "measured choice", "faces", "guard",
    "codec other", "second look", "comparisons", "previews", "storage", "db commit", "pipeline other",
)


class Profiler:
    """Exclusive wall time per stage for the current photo (nested stages are subtracted)."""

    def __init__(self) -> None:
        self.stack: list[list] = []  # [start, child_time, stage]
        self.times: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.times = defaultdict(float)
        self.calls = defaultdict(int)

    def wrap(self, stage: str, fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            self.stack.append([time.perf_counter(), 0.0, stage])
            try:
                return fn(*args, **kwargs)
            finally:
                start, child, _ = self.stack.pop()
                elapsed = time.perf_counter() - start
                self.times[stage] += elapsed - child
                self.calls[stage] += 1
                if self.stack:
                    self.stack[-1][1] += elapsed

        return inner

    def current(self) -> str:
        """The innermost stage running now (read by the RSS sampler thread)."""
        stack = list(self.stack)
        return stack[-1][2] if stack else "outside stages"

    def patch(self, obj, attr: str, stage: str) -> None:
        if hasattr(obj, attr):
            setattr(obj, attr, self.wrap(stage, getattr(obj, attr)))


def instrument(prof: Profiler) -> None:
    import codec.decoder
    import codec.encoder.encode as enc
    import codec.encoder.guard as guard
    import codec.encoder.session as session
    import codec.imageio
    from codec.encoder import ratecontrol
    from gallery import previews, storage
    from gallery.worker import pipeline

    prof.patch(codec.imageio, "load_image", "decode input")
    prof.patch(session, "encode_latent", "encoder passes")
    prof.patch(ratecontrol, "candidates", "rate search")
    prof.patch(session.EncodeSession, "pick_measured", "measured choice")
    prof.patch(session, "detect_faces", "faces")
    prof.patch(enc, "guard_result", "guard")
    prof.patch(enc, "encode", "codec other")
    with contextlib.suppress(ImportError):  # the one-pass entry point (after issue 13 item 2)
        import codec.encoder.result as result

        prof.patch(result, "guard_result", "guard")
        prof.patch(result, "encode_result", "codec other")
    del guard
    prof.patch(codec.decoder, "decode", "previews")
    prof.patch(pipeline, "make_comparisons", "comparisons")
    if hasattr(pipeline, "second_look"):  # the small-face audit after READY (issue 12)
        prof.patch(pipeline, "second_look", "second look")
    prof.patch(previews, "render", "previews")
    prof.patch(previews, "write_from_image", "previews")
    prof.patch(storage, "save", "storage")
    prof.patch(pipeline, "commit", "db commit")
    prof.patch(pipeline, "commit_ready", "db commit")
    prof.patch(pipeline, "commit_comparisons", "db commit")
    prof.patch(pipeline, "encode", "pipeline other")


class RssSampler:
    """Samples this process's resident set every 20 ms and remembers the stage that ran at the peak.

    ``ru_maxrss`` gives the peak of the whole run only; this gives each photo's own peak and where it
    happened (the 12 MP target is about peak memory, so the stage that sets it is what to work on).
    """

    def __init__(self, prof: Profiler, period_s: float = 0.02) -> None:
        import threading

        self.prof, self.period_s = prof, period_s
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak_mb, self.peak_stage = 0.0, ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def rss_mb(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page / 2**20

    def reset(self) -> None:
        self.peak_mb, self.peak_stage = self.rss_mb(), "outside stages"

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            rss = self.rss_mb()
            if rss > self.peak_mb:
                self.peak_mb, self.peak_stage = rss, self.prof.current()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------ photos


def make_photos(tmp: Path, kodak: int, large: int, twelve: int, onemp: int = 0) -> list[tuple[str, Path]]:
    from codec.resources import resolve_dir

    out: list[tuple[str, Path]] = []
    kdir = resolve_dir("kodak")
    for i in range(1, kodak + 1):
        out.append((f"kodim{i:02d}", kdir / f"kodim{i:02d}.png"))
    train = sorted(p for p in resolve_dir("train").rglob("*.jpg"))
    rng = np.random.default_rng(13)
    for n in range(large):  # 2448×1632 (4.0 MP): 2×2 training photos, each upscaled ×2.5
        picks = rng.choice(len(train), 4, replace=False)
        canvas = Image.new("RGB", (2448, 1632))
        for k, idx in enumerate(picks):
            tile = Image.open(train[idx]).convert("RGB").resize((1224, 816), Image.Resampling.LANCZOS)
            canvas.paste(tile, ((k % 2) * 1224, (k // 2) * 816))
        path = tmp / f"large{n}.jpg"
        canvas.save(path, "JPEG", quality=92)
        out.append((f"large{n} 2448x1632", path))
    for n, idx in enumerate(rng.choice(len(train), onemp, replace=False) if onemp else []):
        # 1224×816 (1.0 MP, "a phone's worth" of issue 13): one training photo each, upscaled ×2.5
        photo = Image.open(train[idx]).convert("RGB")
        size = (1224, 816) if photo.width >= photo.height else (816, 1224)
        path = tmp / f"onemp{n}.jpg"
        photo.resize(size, Image.Resampling.LANCZOS).save(path, "JPEG", quality=92)
        out.append((f"1MP{n} {size[0]}x{size[1]}", path))
    for n in range(twelve):  # 4000×3000 (12 MP): training photos at native size, tiled
        canvas = Image.new("RGB", (4000, 3000))
        picks = rng.choice(len(train), 90, replace=True)
        k = 0
        for y in range(0, 3000, 321):
            for x in range(0, 4000, 481):
                canvas.paste(Image.open(train[picks[k % 90]]).convert("RGB").resize((481, 321)), (x, y))
                k += 1
        path = tmp / f"twelve{n}.jpg"
        canvas.save(path, "JPEG", quality=92)
        out.append((f"12MP{n} 4000x3000", path))
    return out


def reference_decode_seconds(width: int, height: int, repeats: int = 3) -> list[float]:
    """Warm decodes of a same-size latent by the stock TAESD decoder, plain torch fp32, 2 threads."""
    import copy

    import torch

    from codec.models.registry import get_model

    torch.set_num_threads(2)
    # the stock weights (the decoder is never tuned), as a plain contiguous fp32 module
    vae = copy.deepcopy(get_model("taesd", device="cpu").ae).float().to(memory_format=torch.contiguous_format)
    z = torch.randn(1, 4, height // 8, width // 8, generator=torch.Generator().manual_seed(0))
    out = []
    with torch.inference_mode():
        vae.decode(z)  # warm-up
        for _ in range(repeats):
            t = time.perf_counter()
            vae.decode(z)
            out.append(time.perf_counter() - t)
    return out


# ------------------------------------------------------------------------------ run


def setup_django(tmp: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["CACHE_URL"] = ""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp / "media"), "allow_overwrite": True},
        },
    }
    call_command("migrate", verbosity=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kodak", type=int, default=3, help="Kodak photos (768×512)")
    ap.add_argument("--large", type=int, default=1, help="≈4 MP photos tiled from training photos")
    ap.add_argument("--twelve", type=int, default=1, help="12 MP photos (0 or 1)")
    ap.add_argument("--onemp", type=int, default=0, help="1 MP photos (one training photo each, upscaled)")
    ap.add_argument("--effort", default="default")
    ap.add_argument("--label", default="run")
    ap.add_argument("--out", default=str(ROOT / "docs/bench/gallery"))
    ap.add_argument("--pipeline-file", default=None,
                    help="run another version of gallery/worker/pipeline.py (A/B in the same tree and load), "
                         "e.g. `git show 2bfedd7:gallery/worker/pipeline.py > /tmp/old.py`")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gallery-"))
    setup_django(tmp)
    if args.pipeline_file:
        import importlib.util

        spec = importlib.util.spec_from_file_location("gallery.worker.pipeline", args.pipeline_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules["gallery.worker.pipeline"] = module
        spec.loader.exec_module(module)
        import gallery.worker

        gallery.worker.pipeline = module
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from gallery import previews, sizes
    from gallery.models import Photo, StagedUpload
    from gallery.previews import backends
    from gallery.worker import tasks
    from gallery.worker.runtime import load_codec

    settings.GALLERY_ENCODE_EFFORT = args.effort
    queued: list[tuple[str, list[str]]] = []

    def record(self, photo, spec_names):  # no broker: remember what a worker would have rendered
        queued.append((str(photo.pk), sorted(spec_names)))
        return True

    backends.CeleryBackend.schedule = record
    prof = Profiler()
    instrument(prof)
    sampler = RssSampler(prof)
    user = get_user_model().objects.create_user("bench", "bench@example.com", "x-bench-password-1")
    photos = make_photos(tmp, args.kodak, args.large, args.twelve, args.onemp)

    t = time.perf_counter()
    load_codec()
    import codec

    codec.decode(codec.encode(np.zeros((64, 64, 3), np.uint8), quality=50))  # warm the model
    warm_s = time.perf_counter() - t
    ref = reference_decode_seconds(768, 512)
    ref_s = statistics.median(ref)

    rows = []
    t_all = time.perf_counter()
    for name, path in photos:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
        budget, bpp = sizes.target_for(sizes.DEFAULT, w, h)
        photo = Photo.objects.create(
            owner=user, title=path.name, target_bytes=budget, target_bpp=bpp, original_bytes=len(data),
            original_format=path.suffix.lstrip(".").upper(), original_width=w, original_height=h,
        )
        StagedUpload.objects.create(photo=photo, data=data, size=len(data),
                                    sha256=hashlib.sha256(data).hexdigest())
        # the reference decode right before each 768×512 photo: the load moves, the ratio should not
        near_ref = reference_decode_seconds(w, h, repeats=1)[0] if (w, h) == (768, 512) else None
        prof.reset()
        sampler.reset()
        queued.clear()
        from django.utils import timezone

        uploaded = timezone.now()
        t0 = time.perf_counter()
        outcome = tasks.encode_photo.apply(args=[str(photo.pk)]).get()
        task_s = time.perf_counter() - t0
        photo.refresh_from_db()
        eager = sorted(n for n, s in previews.SPECS.items() if not s.on_demand)
        render_s = 0.0
        rendered_by_task = False
        for pid, names in list(queued):  # what the worker's next task would do
            if pid == str(photo.pk) and set(names) & set(eager):
                t1 = time.perf_counter()
                tasks.render_previews.apply(args=[pid, names]).get()
                render_s += time.perf_counter() - t1
                rendered_by_task = True
        total_s = time.perf_counter() - t0
        ready_s = (photo.ready_at - uploaded).total_seconds() if photo.ready_at else None
        # READY with its thumbnail: a render task adds its time after the commit
        ready_thumb_s = None if ready_s is None else ready_s + render_s
        has_thumb = previews.lookup(photo, "thumb") is not None
        comparisons = sorted(photo.comparisons.values_list("fmt", flat=True))
        stages = {s: round(prof.times.get(s, 0.0), 3) for s in STAGES}
        row = dict(
            photo=name, width=w, height=h, megapixels=round(w * h / 1e6, 2), outcome=outcome,
            latent_bytes=photo.latent_bytes, target_bytes=budget, task_s=round(task_s, 2),
            render_task_s=round(render_s, 2), total_s=round(total_s, 2),
            upload_to_ready_s=None if ready_s is None else round(ready_s, 2),
            upload_to_ready_with_thumb_s=None if ready_thumb_s is None else round(ready_thumb_s, 2),
            thumbnail=has_thumb, previews_by_render_task=rendered_by_task, comparisons=comparisons,
            reference_decode_just_before_s=None if near_ref is None else round(near_ref, 2),
            ratio_vs_decode_just_before=None if (near_ref is None or ready_thumb_s is None)
            else round(ready_thumb_s / near_ref, 2),
            stages=stages, calls=dict(prof.calls),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            # this photo's own peak (sampled every 20 ms) and the stage that ran at that moment
            photo_peak_rss_mb=round(sampler.peak_mb, 1), photo_peak_stage=sampler.peak_stage,
            loadavg=[round(x, 2) for x in os.getloadavg()],
        )
        rows.append(row)
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{args.label}.partial.json").write_text(  # a run stopped early keeps its photos
            json.dumps(dict(reference_decode_768x512_s=ref, photos=rows), indent=1) + "\n")
        keys = ("photo", "outcome", "total_s", "upload_to_ready_with_thumb_s", "peak_rss_mb",
                "photo_peak_rss_mb", "photo_peak_stage", "stages")
        print(json.dumps({k: row[k] for k in keys}), flush=True)
    elapsed = time.perf_counter() - t_all
    sampler.stop()
    kodak_ready = [r["upload_to_ready_with_thumb_s"] for r in rows if (r["width"], r["height"]) in
                   ((768, 512), (512, 768)) and r["upload_to_ready_with_thumb_s"] is not None]
    totals = defaultdict(float)
    for r in rows:
        for s, v in r["stages"].items():
            totals[s] += v
    grand = sum(totals.values()) or 1.0
    summary = dict(
        label=args.label, effort=args.effort, photos=len(rows), elapsed_s=round(elapsed, 1),
        photos_per_min=round(60 * len(rows) / elapsed, 2),
        model_warm_up_s=round(warm_s, 2),
        reference_decode_768x512_s=[round(x, 3) for x in ref], reference_decode_median_s=round(ref_s, 3),
        kodak_upload_to_ready_median_s=round(statistics.median(kodak_ready), 2) if kodak_ready else None,
        ratio_ready_over_decode=round(statistics.median(kodak_ready) / ref_s, 2) if kodak_ready else None,
        ratio_interleaved_median=(round(statistics.median(r["ratio_vs_decode_just_before"] for r in rows
                                                          if r["ratio_vs_decode_just_before"]), 2)
                                  if any(r["ratio_vs_decode_just_before"] for r in rows) else None),
        twelve_mp_s=next((r["total_s"] for r in rows if r["photo"].startswith("12MP")), None),
        # issue 13 target: 20 × 1 MP all READY with thumbnails ≤ 7 min (one worker, one after another)
        one_mp_photos=sum(1 for r in rows if r["photo"].startswith("1MP")),
        one_mp_total_s=round(sum(r["total_s"] for r in rows if r["photo"].startswith("1MP")), 1),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        stage_totals_s={s: round(v, 2) for s, v in totals.items()},
        stage_shares={s: round(v / grand, 3) for s, v in totals.items()},
        loadavg_start=[round(x, 2) for x in load_start], loadavg_end=[round(x, 2) for x in os.getloadavg()],
        cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
        note="shared 2-core machine under load: every time is an upper bound",
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.label}.json").write_text(json.dumps(dict(summary=summary, photos=rows), indent=1) + "\n")
    (out / f"{args.label}.md").write_text(markdown(summary, rows))
    (out / f"{args.label}.partial.json").unlink(missing_ok=True)
    print(markdown(summary, rows))
    return 0


def markdown(s: dict, rows: list[dict]) -> str:
    lines = [
        f"# bench-gallery: {s['label']} (effort {s['effort']})", "",
        f"- {s['photos']} photos in {s['elapsed_s']} s → **{s['photos_per_min']} photos/min**; "
        f"peak RSS {s['peak_rss_mb']} MB",
        f"- stock TAESD decode 768×512 (fp32, 2 threads, warm): {s['reference_decode_768x512_s']} s "
        f"(median {s['reference_decode_median_s']} s)",
        f"- Kodak Upload→READY (with thumbnail), median: {s['kodak_upload_to_ready_median_s']} s → "
        f"**ratio {s['ratio_ready_over_decode']}×** (target ≤ 1.5×); with a reference decode right "
        f"before each photo (median of the per-photo ratios): **{s['ratio_interleaved_median']}×**",
        f"- 12 MP photo: {s['twelve_mp_s']} s",
        f"- 1 MP photos: {s['one_mp_photos']} READY with thumbnails in {s['one_mp_total_s']} s "
        "(target: 20 in ≤ 420 s on an idle machine)",
        f"- load average start {s['loadavg_start']} end {s['loadavg_end']} ({s['cpu_count']} CPUs): "
        "times are upper bounds",
        "", "| stage | seconds (all photos) | share |", "|---|---:|---:|",
    ]
    for st in STAGES:
        sec, share = s["stage_totals_s"].get(st, 0), s["stage_shares"].get(st, 0)
        lines.append(f"| {st} | {sec:.2f} | {100 * share:.1f} % |")
    lines += ["", "| photo | MP | task s | render task s | Upload→READY+thumb s | decode just before s | "
              "ratio | bytes/target | peak RSS MB (run so far) | photo's own peak MB, at stage | load |",
              "|---|" + "---:|" * 10]
    for r in rows:
        lines.append(f"| {r['photo']} | {r['megapixels']} | {r['task_s']} | {r['render_task_s']} | "
                     f"{r['upload_to_ready_with_thumb_s']} | {r.get('reference_decode_just_before_s')} | "
                     f"{r.get('ratio_vs_decode_just_before')} | {r['latent_bytes']}/{r['target_bytes']} | "
                     f"{r['peak_rss_mb']} | {r.get('photo_peak_rss_mb')}, {r.get('photo_peak_stage')} | "
                     f"{r['loadavg'][0]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
