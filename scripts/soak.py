#!/usr/bin/env python
"""``make soak``: a long soak drill of the whole gallery stack with the SHIPPED defaults (issue 10).

A private stack (tests/reliability/stack.py) in its own folder under /tmp: its own redis-server on a
free port (never the shared 6379), its own SQLite database and MEDIA_ROOT, gunicorn, an encoding
worker (``-Q gpu -c 1``) and a model-free maintenance worker with the only beat scheduler (the
docker-compose shape). Nothing is shortened: leases, sweep intervals, visibility timeout and time
limits are the defaults of config/settings; only the encode effort is ``fast`` (2 shared cores).

For ``--minutes`` (default 30) a few signed-in users run a mixed load: uploads of small real photos
(random crops of ../shared/data/train/, some Kodak-size 768x512 ones), page views (home, photo
pages, status.json, previews, comparisons, latent and decoded downloads) and deletes. At random
times it injects faults: kill -9 of the encoding worker (restarted after a pause), kill -9 + restart
of Redis (no persistence: its queue is gone), SIGSTOP/SIGCONT of Redis. Every 10 s it samples the
RSS of web, worker and maintenance process trees and the load average.

After the load it drains (until nothing is pending/encoding and ready photos dropped their staged
originals, at most ``--drain-minutes``), then checks (tests/reliability/soakcheck.py): 0 lost, 0
stuck, 0 5xx outside the fault windows, memory flat; and writes
docs/bench/reliability/soak-<date>.json and .md (``--out`` to change).

    python scripts/soak.py                      # 30 minutes (make soak)
    python scripts/soak.py --minutes 3 --out /tmp/soak-smoke   # a short smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import requests  # noqa: E402
from PIL import Image  # noqa: E402

from scripts.procinfo import tree_rss_mib  # noqa: E402
from tests.reliability import soakcheck  # noqa: E402
from tests.reliability.stack import PY, Client, Proc, Stack  # noqa: E402

USERS = [
    ("loadtester", "a-long-load-test-password-42"),
    ("soak-bob", "a-long-soak-password-bob-7"),
    ("soak-eve", "a-long-soak-password-eve-9"),
]
FAULT_KINDS = ("worker-kill9", "redis-kill9", "redis-pause")


def log(msg: str) -> None:
    print(f"[soak {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


# --- photos ------------------------------------------------------------------------------------
class Photos:
    """Small real photos: random crops of the training set (JPEG or PNG), sometimes a whole Kodak image."""

    def __init__(self, seed: int, kodak_share: float) -> None:
        from codec.resources import kodak_dir, train_dir

        self.rng = random.Random(seed)
        self.train = sorted(
            p for p in train_dir().rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        )
        self.kodak = sorted(kodak_dir().glob("*.png"))
        if not self.train or not self.kodak:
            raise SystemExit("soak: no training photos or Kodak images (CODEC_TRAIN_DIR / CODEC_KODAK_DIR)")
        self.kodak_share = kodak_share
        self.lock = threading.Lock()

    def next(self) -> tuple[str, bytes, str]:
        with self.lock:
            if self.rng.random() < self.kodak_share:
                path = self.rng.choice(self.kodak)
                return path.name, path.read_bytes(), "kodak"
            path = self.rng.choice(self.train)
            img = Image.open(path).convert("RGB")
            w = self.rng.randint(96, min(320, img.width))
            h = self.rng.randint(96, min(320, img.height))
            x, y = self.rng.randint(0, img.width - w), self.rng.randint(0, img.height - h)
            fmt = self.rng.choice(["JPEG", "PNG"])
        out = io.BytesIO()
        img.crop((x, y, x + w, y + h)).save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        return f"{path.stem}-{w}x{h}.{fmt.lower().replace('jpeg', 'jpg')}", out.getvalue(), "crop"


# --- the load ----------------------------------------------------------------------------------
class Soak:
    def __init__(self, args: argparse.Namespace, stack: Stack) -> None:
        self.args = args
        self.stack = stack
        self.rng = random.Random(args.seed)
        self.photos = Photos(args.seed, args.kodak_share)
        self.t0 = time.monotonic()
        self.stop_load = threading.Event()
        self.stop_sampling = threading.Event()
        self.lock = threading.Lock()
        self.uploads: list[dict] = []
        self.deleted: list[str] = []
        self.http_errors: list[dict] = []
        self.http: dict[str, dict] = {}  # kind → {"n", "status": {code: n}, "ms": [...]} (ms for percentiles)
        self.faults: list[dict] = []
        self.events: list[str] = []
        self.memory: dict[str, list[list[float]]] = {"web": [], "worker": [], "maintenance": [], "redis": []}
        self.loadavg: list[list[float]] = []
        self.backlog_skips = 0
        self.owned: dict[str, list[str]] = {u: [] for u, _ in USERS}
        self.maint: Proc | None = None
        self.worker_down = threading.Event()  # set while the soak itself keeps the worker down

    def now(self) -> float:
        return time.monotonic() - self.t0

    # -- bookkeeping
    def note(self, kind: str, status: int | None, ms: float, error: str = "") -> None:
        with self.lock:
            h = self.http.setdefault(kind, {"n": 0, "status": {}, "ms": []})
            h["n"] += 1
            key = str(status) if status is not None else "no answer"
            h["status"][key] = h["status"].get(key, 0) + 1
            h["ms"].append(ms)
            if status is None or status >= 500:
                self.http_errors.append(
                    {
                        "t": round(self.now(), 1),
                        "kind": kind,
                        "status": status,
                        "ms": round(ms),
                        "error": error[:300],
                    }
                )

    def event(self, msg: str) -> None:
        line = f"t={self.now():.0f}s {msg}"
        log(line)
        with self.lock:
            self.events.append(line)

    def request(self, client: Client, kind: str, method: str, path: str, **kw) -> requests.Response | None:
        started = time.monotonic()
        try:
            r = client.http.request(method, self.stack.url + path, timeout=self.args.http_timeout, **kw)
        except requests.RequestException as exc:
            self.note(kind, None, (time.monotonic() - started) * 1000, f"{type(exc).__name__}: {exc}")
            return None
        self.note(
            kind,
            r.status_code,
            (time.monotonic() - started) * 1000,
            r.text[:300] if r.status_code >= 500 else "",
        )
        return r

    # -- actions
    def backlog(self) -> int:
        try:
            rows = self.stack.query(
                "SELECT COUNT(*) FROM gallery_photo WHERE status IN ('pending', 'encoding')"
            )
            return int(rows[0][0])
        except Exception:
            return 10**6

    def upload(self, client: Client, user: str, rng: random.Random) -> None:
        if self.backlog() >= self.args.max_backlog:
            with self.lock:
                self.backlog_skips += 1
            return
        name, data, kind = self.photos.next()
        t = self.now()
        size = rng.choice(["small", "standard", "standard", "tiny"])
        r = self.request(
            client,
            "upload",
            "POST",
            "/upload/",
            data={"size": size, "csrfmiddlewaretoken": client.csrf},
            files=[("files", (name, data, "application/octet-stream"))],
            headers={"Accept": "application/json", "X-CSRFToken": client.csrf},
        )
        entry = {
            "t": round(t, 1),
            "user": user,
            "name": name,
            "kind": kind,
            "bytes": len(data),
            "size": size,
            "http": None if r is None else r.status_code,
            "id": None,
            "error": "",
        }
        if r is not None:
            entry.update(Client.upload_result(r))
        with self.lock:
            self.uploads.append(entry)
            if entry["id"]:
                self.owned[user].append(entry["id"])

    def pick(self, user: str, rng: random.Random) -> str | None:
        with self.lock:
            ids = self.owned[user]
            return rng.choice(ids) if ids else None

    def view(self, client: Client, user: str, rng: random.Random) -> None:
        choice = rng.choices(
            ["home", "photo", "status", "thumb", "display", "compare", "latent", "download", "stats"],
            weights=[3, 2, 3, 2, 1, 1, 1, 0.3, 0.3],
        )[0]
        if choice == "home":
            self.request(client, "home", "GET", rng.choice(["/", "/?page=2", "/?sort=taken"]))
            return
        if choice == "stats":
            self.request(client, "healthz", "GET", "/healthz")
            return
        pid = self.pick(user, rng)
        if pid is None:
            return
        path = {
            "photo": f"/photos/{pid}/",
            "status": f"/photos/{pid}/status.json",
            "thumb": f"/photos/{pid}/preview/thumb/",
            "display": f"/photos/{pid}/preview/display/",
            "compare": f"/photos/{pid}/compare/{rng.choice(['jpeg', 'webp', 'avif'])}/",
            "latent": f"/photos/{pid}/latent/",
            "download": f"/photos/{pid}/download/{rng.choice(['png', 'jpeg'])}/",
        }[choice]
        headers = {"Accept": "application/json"} if choice == "download" else {}
        self.request(client, choice, "GET", path, headers=headers, allow_redirects=False)

    def delete(self, client: Client, user: str, rng: random.Random) -> None:
        with self.lock:
            accepted = sum(1 for u in self.uploads if u["id"])
            if len(self.deleted) >= self.args.delete_ratio * accepted:
                return
        pid = self.pick(user, rng)
        if pid is None:
            return
        r = self.request(
            client,
            "delete",
            "POST",
            f"/photos/{pid}/delete/",
            data={"csrfmiddlewaretoken": client.csrf},
            allow_redirects=False,
        )
        if r is not None and r.status_code == 302:
            with self.lock:
                self.owned[user].remove(pid)
                self.deleted.append(pid)

    def user_loop(self, index: int) -> None:
        user, password = USERS[index]
        rng = random.Random(self.args.seed * 100 + index)
        client = Client(self.stack, timeout=self.args.http_timeout)
        while not self.stop_load.is_set():
            try:
                client.login(user, password)
                break
            except Exception as exc:
                self.event(f"{user}: login failed ({exc}); retrying")
                self.stop_load.wait(5)
        upload_every = self.args.upload_every * len(USERS)
        delete_every = upload_every / self.args.delete_ratio
        next_upload = self.now() + rng.uniform(0, upload_every)
        next_delete = self.now() + rng.expovariate(1 / delete_every)
        while not self.stop_load.is_set():
            try:
                if self.now() >= next_upload:
                    next_upload = self.now() + rng.expovariate(1 / upload_every)
                    self.upload(client, user, rng)
                elif self.now() >= next_delete:
                    next_delete = self.now() + rng.expovariate(1 / delete_every)
                    self.delete(client, user, rng)
                else:
                    self.view(client, user, rng)
            except Exception as exc:
                self.event(f"{user}: load error {type(exc).__name__}: {exc}")
            self.stop_load.wait(rng.expovariate(1 / self.args.think))

    # -- faults
    def fault_schedule(self) -> list[tuple[float, str]]:
        """Random fault times (exponential gaps, mean --fault-every), kinds in shuffled rounds so each
        kind comes up; none in the first minute or the last two minutes of a 30-minute load (a tenth
        and 7 % of a shorter one), so the drain starts from a healthy stack."""
        total = self.args.minutes * 60
        end = total - min(120.0, 0.07 * total)
        t, out, kinds = min(60.0, 0.1 * total), [], []
        while True:
            t += self.rng.expovariate(1 / self.args.fault_every) + min(20.0, self.args.fault_every / 3)
            if t >= end:
                return out
            if not kinds:
                kinds = list(FAULT_KINDS)
                self.rng.shuffle(kinds)
            out.append((t, kinds.pop()))

    def inject(self, kind: str) -> None:
        note = ""
        extra: dict = {}
        if kind == "worker-kill9":
            # prefer a kill mid-encode (what the leases are for): wait up to 30 s for one
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not self._encoding():
                time.sleep(0.5)
            start = self.now()
            self.worker_down.set()
            extra["encoding_ids"] = self._encoding_ids()
            extra["wall"] = time.time()
            self.stack.worker.kill(signal.SIGKILL)
            down = self.rng.uniform(5, 30)
            note = f"{len(extra['encoding_ids'])} encoding at the kill; restarted after {down:.0f} s"
            time.sleep(down)
            self.stack.start_worker()
            self.worker_down.clear()
        elif kind == "redis-kill9":
            start = self.now()
            self.stack.redis.kill(signal.SIGKILL)
            down = self.rng.uniform(5, 30)
            time.sleep(down)
            self.stack.start_redis()
            note = f"down {down:.0f} s, restarted empty (no persistence)"
        elif kind == "redis-pause":
            pause = self.rng.uniform(10, 90)
            start = self.now()
            os.kill(self.stack.redis.pid, signal.SIGSTOP)
            time.sleep(pause)
            os.kill(self.stack.redis.pid, signal.SIGCONT)
            note = f"SIGSTOP {pause:.0f} s"
        fault = {"kind": kind, "start": round(start, 1), "end": round(self.now(), 1), "note": note, **extra}
        with self.lock:
            self.faults.append(fault)
        self.event(f"fault {kind}: {note}")

    def _encoding_ids(self) -> list[str]:
        try:
            rows = self.stack.query("SELECT id FROM gallery_photo WHERE status = 'encoding'")
        except Exception:
            return []
        return [str(uuid.UUID(r[0])) for r in rows]

    def _encoding(self) -> bool:
        return bool(self._encoding_ids())

    def recovery(self) -> list[str]:
        """For each photo that was mid-encode at a worker kill: seconds from the kill to READY."""
        out = []
        for f in self.faults:
            for pid in f.get("encoding_ids", []):
                rows = self.stack.query(
                    "SELECT status, ready_at, attempts FROM gallery_photo WHERE id = ?",
                    (pid.replace("-", ""),),
                )
                if not rows:
                    out.append(f"{pid} (killed at t={f['start']:.0f}s): deleted since")
                    continue
                status, ready_at, attempts = rows[0]
                took = ""
                if ready_at:
                    ready = datetime.fromisoformat(str(ready_at)).replace(tzinfo=UTC).timestamp()
                    took = f" {ready - f['wall']:.0f} s after the kill"
                out.append(f"{pid} (killed at t={f['start']:.0f}s): {status}{took}, attempts {attempts}")
        return out

    def _db_ok(self) -> bool:
        try:
            self.stack.query("SELECT 1")
            return True
        except Exception:
            return False

    # -- watchdog + sampling
    def watch(self) -> None:
        """Every 10 s: RSS of each process tree and the load average; restart anything that died by
        itself (recorded as an event: a finding)."""
        while not self.stop_sampling.is_set():
            try:
                self._watch_once()
            except Exception as exc:
                self.event(f"watchdog error {type(exc).__name__}: {exc}")
            self.stop_sampling.wait(self.args.sample_every)

    def _watch_once(self) -> None:
        t = round(self.now(), 1)
        for name, proc in (
            ("web", self.stack.web),
            ("worker", self.stack.worker),
            ("maintenance", self.maint),
            ("redis", self.stack.redis),
        ):
            if proc is not None and proc.running():
                self.memory[name].append([t, round(tree_rss_mib(proc.pid), 1)])
        self.loadavg.append([t, *(round(x, 2) for x in os.getloadavg())])
        if not self.worker_down.is_set() and self.stack.worker and not self.stack.worker.running():
            self.event(
                f"the worker exited by itself (code {self.stack.worker.proc.returncode}); restarting\n"
                + self.stack.worker.tail(15)
            )
            self.stack.start_worker()
        if self.maint is not None and not self.maint.running():
            self.event(
                f"the maintenance worker exited by itself (code {self.maint.proc.returncode}); restarting"
            )
            self.maint = start_maintenance(self.stack)
        if self.stack.web is not None and not self.stack.web.running():
            self.event("gunicorn exited by itself; restarting")
            self.stack.start_web()

    # -- drain + final state
    def drained(self) -> bool:
        try:
            busy = self.stack.query(
                "SELECT COUNT(*) FROM gallery_photo WHERE status IN ('pending', 'encoding')"
            )[0][0]
            held = self.stack.query(
                "SELECT COUNT(*) FROM gallery_stagedupload s JOIN gallery_photo p ON p.id = s.photo_id "
                "WHERE p.status = 'ready'"
            )[0][0]
        except Exception:
            return False
        return busy == 0 and held == 0

    def final_state(self) -> dict:
        media = self.stack.base / "media"
        rows = self.stack.query(
            "SELECT id, status, error, latent, latent_bytes, latent_sha256 FROM gallery_photo"
        )
        staged = {str(r[0]) for r in self.stack.query("SELECT photo_id FROM gallery_stagedupload")}
        ids = {str(r[0]) for r in rows}
        photos = {}
        for hexid, status, error, latent, nbytes, sha in rows:
            key = str(uuid.UUID(hexid))
            ok, detail = False, ""
            if status == "ready":
                path = media / latent if latent else None
                if path is None or not path.is_file():
                    detail = f"no file {latent!r}"
                else:
                    data = path.read_bytes()
                    ok = len(data) == nbytes and (not sha or hashlib.sha256(data).hexdigest() == sha)
                    detail = (
                        ""
                        if ok
                        else f"{len(data)} bytes (row says {nbytes}), sha256 match: "
                        f"{hashlib.sha256(data).hexdigest() == sha}"
                    )
            photos[key] = {
                "status": status,
                "error": error,
                "latent_ok": ok,
                "latent_detail": detail,
                "staged": hexid in staged,
            }
        hexes = {d.replace("-", "") for d in self.deleted}
        leftovers = []
        for d in self.deleted:
            for pattern in (f"latents/{d}.*", f"comparisons/{d}", f"previews/{d}"):
                leftovers += [str(p.relative_to(media)) for p in media.glob(pattern)]
        return {
            "photos": photos,
            "staged_orphans": sorted(staged - ids),
            "deleted_present": sorted(h for h in hexes if h in ids),
            "deleted_files_left": leftovers[:20],
            "outbox_left": self.stack.query("SELECT COUNT(*) FROM gallery_outboxmessage")[0][0],
        }


def start_maintenance(stack: Stack) -> Proc:
    """The model-free maintenance worker with the only beat scheduler (docker-compose's shape)."""
    cmd = [
        PY,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        "maintenance",
        "-n",
        "maint@soak",
        "-c",
        "1",
        "--pool",
        "prefork",
        "--loglevel",
        "INFO",
        "-B",
        "-s",
        str(stack.base / "celerybeat-schedule"),
    ]
    return Proc("maintenance", cmd, stack.env(), stack.base / "maintenance.log").start()


def source_commit() -> str:
    """The commit under test: ``SOAK_COMMIT`` (a snapshot made with git archive has no .git), else
    ``git rev-parse HEAD`` (+ "-dirty" when tracked files differ from it)."""
    if os.environ.get("SOAK_COMMIT"):
        return os.environ["SOAK_COMMIT"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty else "") if head.returncode == 0 else "unknown"


def percentiles(ms: list[float]) -> dict:
    if not ms:
        return {}
    a = np.asarray(ms)
    return {
        "p50_ms": round(float(np.percentile(a, 50))),
        "p95_ms": round(float(np.percentile(a, 95))),
        "max_ms": round(float(a.max())),
    }


def request_summary(soak: Soak) -> dict:
    out = {}
    for kind, h in sorted(soak.http.items()):
        out[kind] = {"n": h["n"], "status": h["status"], **percentiles(h["ms"])}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the mixed load")
    parser.add_argument(
        "--drain-minutes", type=float, default=15.0, help="at most this long to finish the work"
    )
    parser.add_argument(
        "--upload-every", type=float, default=10.0, help="mean seconds between uploads (all users)"
    )
    parser.add_argument(
        "--max-backlog", type=int, default=6, help="skip an upload while this many are unfinished"
    )
    parser.add_argument("--think", type=float, default=1.5, help="mean pause between one user's requests (s)")
    parser.add_argument(
        "--delete-ratio", type=float, default=0.15, help="deletes per accepted upload (at most)"
    )
    parser.add_argument(
        "--kodak-share", type=float, default=0.1, help="share of uploads that are 768x512 Kodak"
    )
    parser.add_argument("--fault-every", type=float, default=150.0, help="mean seconds between faults")
    parser.add_argument(
        "--fault-grace", type=float, default=30.0, help="seconds after a fault still in its window"
    )
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument("--http-timeout", type=float, default=30.0)
    parser.add_argument("--effort", default="fast", help="GALLERY_ENCODE_EFFORT (fast keeps 2 cores usable)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "bench" / "reliability",
        help="folder for soak-<date>.json/.md",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the stack folder under /tmp (logs, db, media)"
    )
    parser.add_argument("--report", type=Path, help="only re-write the .md of an existing soak .json")
    args = parser.parse_args(argv)
    if args.report:
        record = json.loads(args.report.read_text())
        checks = soakcheck.evaluate(record)
        args.report.with_suffix(".md").write_text(soakcheck.markdown(record, checks))
        return 0 if soakcheck.passed(checks) else 1

    base = Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp"))
    stack = Stack(base, effort=args.effort, beat=False)
    started_at = datetime.now(UTC)
    log(f"stack folder {base}; seed {args.seed}; load {args.minutes} min")
    soak: Soak | None = None
    code = 1
    try:
        stack.start_redis()
        stack.setup_database()
        for username, password in USERS[1:]:
            stack.manage(
                "shell",
                "-c",
                "from django.contrib.auth import get_user_model; U = get_user_model(); "
                f"U.objects.filter(username='{username}').exists() or "
                f"U.objects.create_user('{username}', '{username}@example.com', '{password}')",
            )
        stack.start_worker()
        stack.start_web(workers=2, threads=4)
        maint = start_maintenance(stack)
        stack.wait_worker_ready()
        log(f"stack up: web {stack.url}, redis {stack.redis_url}")

        soak = Soak(args, stack)
        soak.maint = maint
        schedule = soak.fault_schedule()
        log(f"faults planned at {[f'{t:.0f}s {k}' for t, k in schedule]}")
        threads = [threading.Thread(target=soak.user_loop, args=(i,), daemon=True) for i in range(len(USERS))]
        watcher = threading.Thread(target=soak.watch, daemon=True)
        watcher.start()
        for th in threads:
            th.start()
        for at, kind in schedule:
            time.sleep(max(0.0, at - soak.now()))
            soak.inject(kind)
        time.sleep(max(0.0, args.minutes * 60 - soak.now()))
        soak.stop_load.set()
        for th in threads:
            th.join(args.http_timeout + 10)
        load_end = soak.now()
        log(f"load over after {load_end:.0f} s; draining (at most {args.drain_minutes} min)")
        deadline = time.monotonic() + args.drain_minutes * 60
        while time.monotonic() < deadline and not soak.drained():
            time.sleep(5)
        complete = soak.drained()
        drain_s = round(soak.now() - load_end, 1)
        time.sleep(args.sample_every)  # one more memory sample after the drain
        soak.stop_sampling.set()
        watcher.join(30)

        final = soak.final_state()
        loads = [row[1] for row in soak.loadavg]
        record = {
            "started_at": started_at.strftime("%Y-%m-%d %H:%M UTC"),
            "config": {
                "command": "python scripts/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "minutes": args.minutes,
                "effort": args.effort,
                "seed": args.seed,
                "upload_every_s": args.upload_every,
                "max_backlog": args.max_backlog,
                "think_s": args.think,
                "delete_ratio": args.delete_ratio,
                "kodak_share": args.kodak_share,
                "fault_every_s": args.fault_every,
                "fault_grace_s": args.fault_grace,
                "memory_growth_ratio": 1.25,
                "memory_growth_mib": 64,
                "stack": "private redis-server (no persistence), SQLite file, gunicorn -w 2 --threads 4, "
                "celery worker -Q gpu -c 1 (prefork), maintenance worker -Q maintenance -B",
                "users": len(USERS),
                "commit": source_commit(),
                "cpus": os.cpu_count(),
            },
            "faults": soak.faults,
            "uploads": soak.uploads,
            "deleted": soak.deleted,
            "backlog_skips": soak.backlog_skips,
            "http_errors": soak.http_errors,
            "requests": request_summary(soak),
            "drain": {"seconds": drain_s, "complete": complete},
            "final": final,
            "memory": soak.memory,
            "load_average": {
                "1min_min": min(loads, default=0),
                "1min_median": float(np.median(loads)) if loads else 0,
                "1min_max": max(loads, default=0),
                "samples": len(loads),
            },
            "loadavg_series": soak.loadavg,
            "events": soak.events,
            "recovery": soak.recovery(),
        }
        checks = soakcheck.evaluate(record)
        record["checks"] = checks
        record["notes"] = [
            f"uploads skipped while {args.max_backlog}+ photos were unfinished: {soak.backlog_skips}",
            f"deleted photos' files still on disk after the drain: {len(final['deleted_files_left'])} "
            f"{final['deleted_files_left'][:3]}",
            f"outbox rows left: {final['outbox_left']}",
        ]
        args.out.mkdir(parents=True, exist_ok=True)
        stem = f"soak-{started_at:%Y-%m-%d-%H%M}"
        (args.out / f"{stem}.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
        (args.out / f"{stem}.md").write_text(soakcheck.markdown(record, checks))
        print(soakcheck.markdown(record, checks))
        log(f"written {args.out / stem}.json/.md")
        code = 0 if soakcheck.passed(checks) else 1
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        if soak is not None:
            soak.stop_load.set()
            soak.stop_sampling.set()
            if soak.maint is not None:
                soak.maint.stop()
        stack.stop()
        if args.keep or code != 0:
            log(f"stack folder kept: {base} (logs: *.log)")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
