"""Structure-aware bitstream fuzzer for ``codec.decode`` and ``codec.info``.

Cases are derived deterministically from ``(seed, index)``: pick a valid seed stream (real encodes
and synthetic streams for every entropy coder and quantizer domain), then apply 1-4 mutations:
bit flips, byte sets, inserts, deletes, truncation, random tails, header-field rewrites (through an
unchecked writer, so absurd sizes, channel counts, levels, ranges, coders, kinds, flags and metadata
reach the parser), payload replacement (random bytes, LZMA/zlib bombs, image payloads claiming huge
sizes) or pure random bytes. About half the cases get a fixed CRC so that mutations reach the
entropy decoders and the model instead of stopping at the checksum.

The contract checked per case: ``info`` and ``decode`` either return (a decoded image has the size
``info`` reports) or raise ``CodecError``; any other exception, a crash of the process, more than
``time_limit`` seconds or more than ``mem_limit_mb`` of RSS growth is a failure.

Run in a child process (``python -m tests.reliability.fuzzing``) so that a hard crash (segfault,
OOM kill) or a hang in C code is observed by the parent (tests/reliability/test_fuzz.py), which
records the case and restarts the child after it.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import lzma
import random
import resource
import signal
import struct
import sys
import time
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
#: the pixel limit the harness decodes with, as a service decoding untrusted streams would set one:
#: a stream of any size is a few dozen bytes when its latent is flat, so only this bounds the work
#: (4 MP ≈ 8 s of CPU decode on one thread, inside the 10 s per-case bound)
DECODE_MAX_PIXELS = 4_000_000
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))


class CaseTimeout(Exception):
    """Raised by the per-case alarm; not a CodecError, so it counts as a failure (hang)."""


# --------------------------------------------------------------------------- unchecked writer
def varint(value: int) -> bytes:
    value = max(0, int(value))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@dataclass
class Fields:
    """Every field of a format-1 stream, written without any validation (see codec/bitstream.py)."""

    version: int = 1
    model_id: int = 1
    kind: int = 0
    tanh: bool = False
    reserved_flags: int = 0
    coder: int = 0
    effort: int = 0
    coder_reserved: int = 0
    width: int = 64
    height: int = 48
    coded: tuple[int, int] | None = None
    channels: int = 4
    downscale_index: int = 0
    levels: int = 16
    ranges: bytes = b""
    metadata: bytes | None = None
    payload: bytes = b""
    payload_length: int | None = None
    sections: bytes | None = None  # raw extension sections (count + TLVs) after the payload

    def to_bytes(self, fix_crc: bool = True, magic: bytes = b"\x89LAT") -> bytes:
        flags = (self.kind & 0x03) | (0x04 if self.coded else 0) | (0x08 if self.metadata is not None else 0)
        flags |= (0x10 if self.tanh else 0) | (0x20 if self.sections is not None else 0)
        flags |= self.reserved_flags & 0xC0
        out = bytearray(magic)
        out += bytes([self.version & 0xFF, self.model_id & 0xFF, flags & 0xFF])
        out.append(((self.coder & 0x0F) | ((self.effort & 0x03) << 4) | (self.coder_reserved & 0xC0)) & 0xFF)
        out += varint(self.width) + varint(self.height)
        if self.coded:
            out += varint(self.coded[0]) + varint(self.coded[1])
        if self.kind == 0:
            out.append((((self.channels - 1) & 0x3F) | ((self.downscale_index & 0x03) << 6)) & 0xFF)
            out.append((self.levels - 1) & 0xFF)
            out += self.ranges
        if self.metadata is not None:
            out += varint(len(self.metadata)) + self.metadata
        n = len(self.payload) if self.payload_length is None else self.payload_length
        out += varint(n) + self.payload
        if self.sections is not None:
            out += self.sections
        crc = zlib.crc32(out) if fix_crc else random.getrandbits(32)
        return bytes(out) + struct.pack("<I", crc)


def fields_of(data: bytes) -> Fields:
    """The Fields of a valid stream (parsed by the real parser)."""
    from codec import bitstream

    h, payload = bitstream.parse(data)
    f = Fields(
        model_id=h.model_id,
        kind=h.payload_kind,
        coder=h.entropy_coder,
        effort=h.effort,
        width=h.width,
        height=h.height,
        coded=(h.coded_width, h.coded_height)
        if (h.coded_width, h.coded_height) != (h.width, h.height)
        else None,
        payload=payload,
    )
    if h.payload_kind == 0:
        f.channels = h.latent_channels
        f.downscale_index = bitstream.DOWNSCALES.index(h.downscale)
        f.levels = h.quant.levels
        f.tanh = h.quant.domain == "tanh"
        rng = np.empty((h.latent_channels, 2), "<f2")
        rng[:, 0], rng[:, 1] = h.quant.lo, h.quant.hi
        f.ranges = rng.tobytes()
    meta = bytearray()
    for tag, (name, kind) in bitstream._TAGS.items():
        value = getattr(h, name)
        if value is None:
            continue
        raw = (
            struct.pack("<f", value)
            if kind == "f32"
            else bytes([1 if value else 0])
            if kind == "bool"
            else str(value).encode()
        )
        meta += bytes([tag]) + varint(len(raw)) + raw
    f.metadata = bytes(meta) if meta else None
    present = [
        (sid, getattr(h, name)) for sid, name in bitstream._SECTIONS.items() if getattr(h, name) is not None
    ]
    if present:
        f.sections = varint(len(present)) + b"".join(
            bytes([sid]) + varint(len(b)) + bytes(b) for sid, b in present
        )
    return f


# ------------------------------------------------------------------------------------- seeds
def synthetic_seeds(rng: random.Random) -> list[bytes]:
    """Valid streams for every entropy coder × quantizer domain, packed by the real writer."""
    from codec import bitstream, entropy
    from codec.entropy.base import CoderUnsuitable
    from codec.quant import QuantParams

    out = []
    nprng = np.random.default_rng(rng.getrandbits(32))
    for cid, coder in sorted(entropy.CODERS.items()):
        for domain, levels, (w, h) in (("raw", 16, (64, 48)), ("tanh", 64, (40, 72)), ("raw", 256, (24, 24))):
            c = 4
            lh, lw = -(-h // 8), -(-w // 8)
            symbols = nprng.integers(0, levels, size=(c, lh, lw)).astype(np.uint16)
            lim = 2.5 if domain == "tanh" else 4.0
            qp = QuantParams(levels, tuple([-lim] * c), tuple([lim] * c), domain)
            try:
                payload = coder.encode(symbols, levels)
            except CoderUnsuitable:
                continue
            header = bitstream.Header(
                model_id=1, width=w, height=h, latent_channels=c, quant=qp, entropy_coder=cid, effort=0
            )
            out.append(bitstream.pack(header, payload))
    # The whole image as AVIF (payload kind 1, the fidelity guard's last resort).
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 24), (200, 30, 90)).save(buf, "AVIF", quality=60)
    out.append(
        bitstream.pack(bitstream.Header(model_id=1, width=40, height=24, payload_kind=1), buf.getvalue())
    )
    return out


def real_seeds() -> list[bytes]:
    """Streams from the real encoder (small images; a coded-size variant via a tiny budget)."""
    import codec

    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 64)[None, :]
    rgb[..., 1] = np.linspace(255, 0, 48)[:, None]
    rgb[16:32, 20:44] = (240, 200, 30)
    seeds = [codec.encode(rgb, quality=q, effort="fast") for q in (20, 80)]
    for kwargs in ({"max_bytes": 300}, {"quality": 60, "min_fidelity": 0.97}):
        try:  # a coded-size (downscaled) stream; a stream with the fidelity guard's extras
            seeds.append(codec.encode(np.repeat(np.repeat(rgb, 4, 0), 4, 1), effort="fast", **kwargs))
        except codec.CodecError:
            pass
    return seeds


# ----------------------------------------------------------------------------------- mutators
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x40, 0x3F, 0xC0, 0x10, 0xFE]
BIG_SIDES = [0, 1, 2, 7, 8, 9, 65535, 65536, 1 << 20, (1 << 35) - 1, 10_000, 4096]


def _bomb_payload(rng: random.Random, kind: str) -> bytes:
    return _bomb(kind, rng.choice([1 << 20, 1 << 24, 1 << 26]))


@functools.lru_cache(maxsize=8)
def _bomb(kind: str, n: int) -> bytes:
    """``n`` zero bytes compressed with raw LZMA2 or zlib (a few KB that inflate to ``n``)."""
    block = b"\x00" * (1 << 20)
    if kind == "lzma":
        comp = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])
    else:
        comp = zlib.compressobj(9)
    return b"".join(comp.compress(block) for _ in range(n >> 20)) + comp.flush()


def _image_payload(rng: random.Random) -> bytes:
    """A real WebP/PNG/AVIF/JXL file, sometimes with a header patched to claim a huge size."""
    from PIL import Image

    fmt = rng.choice(["WEBP", "PNG", "AVIF", "JXL"])
    w, h = rng.choice([(1, 1), (8, 8), (16, 4), (300, 2)])
    img = Image.new(rng.choice(["L", "RGB", "RGBA"]), (w, h), rng.randrange(256))
    buf = io.BytesIO()
    try:
        if fmt == "JXL":
            import pillow_jxl  # noqa: F401
        img.save(buf, fmt, lossless=True) if fmt in ("WEBP", "JXL") else img.save(buf, fmt)
    except Exception:
        img.save(buf, "PNG")
        fmt = "PNG"
    data = bytearray(buf.getvalue())
    if fmt == "PNG" and rng.random() < 0.7:  # claim 30000×30000 in IHDR, fix its CRC
        data[16:24] = struct.pack(">II", 30000, 30000)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def mutate_bytes(data: bytearray, rng: random.Random) -> None:
    op = rng.randrange(7)
    n = len(data)
    if n == 0:
        data.extend(rng.randbytes(rng.randrange(1, 64)))
        return
    if op == 0:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(n)
            data[i] ^= 1 << rng.randrange(8)
    elif op == 1:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(n)] = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.randrange(256)
    elif op == 2:
        i = rng.randrange(n + 1)
        data[i:i] = rng.randbytes(rng.randint(1, 32))
    elif op == 3:
        i = rng.randrange(n)
        del data[i : i + rng.randint(1, 32)]
    elif op == 4:
        del data[rng.randrange(n) :]
    elif op == 5:
        data.extend(rng.randbytes(rng.randint(1, 256)))
    else:
        i, j = sorted(rng.randrange(n) for _ in range(2))
        k = rng.randrange(n)
        data[k:k] = data[i : j + 1]


def mutate_fields(f: Fields, rng: random.Random) -> None:
    op = rng.randrange(17)
    if op == 16:  # extension sections: unknown, critical, duplicate, empty, oversized, patch-layer garbage
        body = bytearray()
        count = rng.choice([0, 1, 2, 5])
        for _ in range(count):
            sid = rng.choice([1, 1, 2, 0x81, 0x82, 0x7F])
            value = rng.randbytes(rng.choice([0, 1, 7, 64, 500]))
            body += bytes([sid]) + varint(len(value) + rng.choice([0, 0, 0, 1, 1 << 20])) + value
        f.sections = varint(count) + bytes(body)
        return
    if op == 0:
        f.width = rng.choice([*BIG_SIDES, f.width + rng.randint(-3, 3)])
    elif op == 1:
        f.height = rng.choice([*BIG_SIDES, f.height + rng.randint(-3, 3)])
    elif op == 2:
        f.coded = (rng.choice([*BIG_SIDES, f.width - 1, f.width]), rng.choice([*BIG_SIDES, f.height - 1]))
    elif op == 3:
        f.channels = rng.choice([1, 3, 4, 5, 16, 32, 64])
    elif op == 4:
        f.downscale_index = rng.randrange(4)
    elif op == 5:
        f.levels = rng.choice([0, 1, 2, 3, 17, 255, 256])
    elif op == 6:
        vals = np.frombuffer(f.ranges, "<f2").copy() if f.ranges else np.zeros(8, "<f2")
        if len(vals):
            i = rng.randrange(len(vals))
            vals[i] = rng.choice([np.nan, np.inf, -np.inf, 0.0, 65504.0, -65504.0, 1e-8, 3.0, 2.97, -1024.0])
        f.ranges = vals.astype("<f2").tobytes()
    elif op == 7:
        f.coder = rng.randrange(16)
    elif op == 8:
        f.kind = rng.randrange(4)
    elif op == 9:
        f.version = rng.choice([0, 2, 255])
    elif op == 10:
        f.model_id = rng.choice([0, 1, 2, 3, 4, 5, 6, 200, 255])
    elif op == 11:
        f.reserved_flags, f.coder_reserved = rng.choice([(0x40, 0), (0, 0x40), (0xC0, 0xC0)])
    elif op == 12:
        f.tanh = not f.tanh
    elif op == 13:  # metadata: unknown / critical / duplicate / oversized / garbage TLVs
        tlv = bytearray()
        for _ in range(rng.randint(0, 4)):
            tag = rng.choice([1, 2, 3, 4, 5, 0x81, 0x84, 0x7F])
            value = rng.randbytes(rng.choice([0, 1, 4, 5, 64, 65, 300]))
            tlv += bytes([tag]) + varint(len(value) + rng.choice([0, 0, 0, 1, -1, 1 << 20])) + value
        f.metadata = bytes(tlv) if rng.random() < 0.9 else b""
    elif op == 14:
        f.payload_length = rng.choice([0, len(f.payload) + 1, max(0, len(f.payload) - 1), 1 << 31])
    else:
        f.effort = rng.randrange(4)


def mutate_payload(f: Fields, rng: random.Random) -> None:
    op = rng.randrange(5)
    if op == 0:
        f.payload = rng.randbytes(rng.choice([0, 1, 3, 16, 100, len(f.payload), 5000]))
    elif op == 1:
        p = bytearray(f.payload)
        mutate_bytes(p, rng)
        f.payload = bytes(p)
    elif op == 2:
        f.payload = _bomb_payload(rng, rng.choice(["lzma", "zlib"]))
    elif op == 3:
        f.payload = _image_payload(rng)
        if rng.random() < 0.5:
            f.kind = 1  # the whole image as a payload (AVIF kind)
    else:
        f.payload = f.payload[: rng.randrange(len(f.payload) + 1)]


def make_case(seeds: list[bytes], seed: int, index: int) -> tuple[bytes, str]:
    """Case ``index`` of run ``seed``: (bytes, short description of what was done)."""
    rng = random.Random(f"{seed}:{index}")
    roll = rng.random()
    if roll < 0.04:
        n = rng.choice([0, 1, 4, 8, 12, 20, 64, 1000])
        magic = b"\x89LAT" if rng.random() < 0.5 else b""
        return magic + rng.randbytes(n), f"random[{n}]"
    base_i = rng.randrange(len(seeds))
    base = seeds[base_i]
    steps = []
    if roll < 0.45:  # byte-level, CRC fixed for about half of them
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            mutate_bytes(data, rng)
        steps.append("bytes")
        if rng.random() < 0.5 and len(data) > 4:
            data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
            steps.append("crc")
        return bytes(data), f"seed{base_i}:" + "+".join(steps)
    f = fields_of(base)
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.65:
            mutate_fields(f, rng)
            steps.append("fields")
        else:
            mutate_payload(f, rng)
            steps.append("payload")
    fix = rng.random() < 0.9
    if not fix:
        steps.append("badcrc")
    return f.to_bytes(fix_crc=fix), f"seed{base_i}:" + "+".join(steps)


# --------------------------------------------------------------------------------- case runner
def _rss_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _alarm(_signum, _frame):
    raise CaseTimeout("case exceeded its time limit")


def run_case(data: bytes, time_limit: float) -> dict:
    """Run info + decode on ``data``; returns the outcome (never raises)."""
    import codec

    result: dict = {"outcome": "rejected"}
    _rss_reset()
    start_rss = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    try:
        meta = None
        try:
            meta = codec.info(data)
            result["info"] = "ok"
        except codec.CodecError as exc:
            result["info"] = type(exc).__name__
        try:
            img = codec.decode(data, max_pixels=DECODE_MAX_PIXELS)
            result["outcome"] = "decoded"
            if meta is None:
                raise AssertionError("decode succeeded where info raised")
            if img.size != (meta["width"], meta["height"]):
                raise AssertionError(f"decoded {img.size}, info says {meta['width']}x{meta['height']}")
        except codec.CodecError as exc:
            result["error"] = type(exc).__name__
    except CaseTimeout:
        result["outcome"] = "failure"
        result["failure"] = f"hang: more than {time_limit} s"
    except BaseException as exc:  # anything but a CodecError breaks the contract
        result["outcome"] = "failure"
        result["failure"] = f"{type(exc).__name__}: {exc}"[:300]
        result["traceback"] = traceback.format_exc()[-3000:]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    result["seconds"] = time.perf_counter() - t0
    result["rss_growth_mib"] = max(0, _rss_kib("VmHWM") - start_rss) / 1024
    return result


def _write_maxrss(out: Path, start: int) -> None:
    """This process's peak RSS so far (the parent reports the largest)."""
    mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (out / f"maxrss-{start}.json").write_text(json.dumps({"maxrss_mib": mib}))


def child_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--cases", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--time-limit", type=float, default=10.0)
    p.add_argument("--mem-limit-mb", type=float, default=1024.0)
    p.add_argument("--address-space-gb", type=float, default=0, help="RLIMIT_AS for this process (0 = none)")
    p.add_argument("--corpus", type=Path, help="replay these files instead of generating cases")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    if args.address_space_gb:
        lim = int(args.address_space_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    signal.signal(signal.SIGALRM, _alarm)
    out: Path = args.out
    (out / "failures").mkdir(parents=True, exist_ok=True)
    if args.corpus:
        files = sorted(args.corpus.glob("*.bin"))
        cases = [(p.read_bytes(), str(p.relative_to(args.corpus))) for p in files]
        seeds: list[bytes] = []
    else:
        rng = random.Random(args.seed)
        seeds = real_seeds() + synthetic_seeds(rng)
        cases = None
        (out / "seeds.json").write_text(json.dumps({"count": len(seeds)}))
    # Warm: load the model once so the first case is not charged for it.
    warm = run_case(seeds[0] if seeds else synthetic_seeds(random.Random(0))[0], 300.0)

    stats_path = out / f"stats-{args.start}.jsonl"
    total = len(cases) if cases is not None else args.cases
    with open(stats_path, "a", encoding="utf-8") as stats:
        if warm["outcome"] != "decoded":
            stats.write(
                json.dumps({"index": -1, "outcome": "failure", "failure": f"seed 0 does not decode: {warm}"})
                + "\n"
            )
        for i in range(args.start, total):
            t_gen = time.perf_counter()
            data, what = cases[i] if cases is not None else make_case(seeds, args.seed, i)
            gen_seconds = time.perf_counter() - t_gen
            (out / "current.json").write_text(json.dumps({"index": i, "what": what}))
            (out / "current.bin").write_bytes(data)
            res = run_case(data, args.time_limit)
            if res["outcome"] != "failure" and res["rss_growth_mib"] > args.mem_limit_mb:
                res["outcome"] = "failure"
                res["failure"] = (
                    f"allocation: RSS grew {res['rss_growth_mib']:.0f} MiB > {args.mem_limit_mb:.0f}"
                )
            line = {
                "index": i,
                "what": what,
                "bytes": len(data),
                "gen_seconds": gen_seconds,
                **{k: v for k, v in res.items() if k != "traceback"},
            }
            if res["outcome"] == "failure":
                name = f"{i:06d}-{hashlib.sha1(data).hexdigest()[:12]}"
                (out / "failures" / f"{name}.bin").write_bytes(data)
                (out / "failures" / f"{name}.txt").write_text(
                    f"{what}\n{res['failure']}\n{res.get('traceback', '')}"
                )
            stats.write(json.dumps(line) + "\n")
            stats.flush()
            if i % 100 == 0:
                _write_maxrss(out, args.start)
    _write_maxrss(out, args.start)
    (out / "current.json").write_text(json.dumps({"index": total, "what": "done"}))
    return 0


if __name__ == "__main__":
    sys.exit(child_main())


# ------------------------------------------------------------------------ regression corpus
def regression_corpus() -> dict[str, bytes]:
    """Hand-made hostile streams (stable bytes, committed under tests/codec/corpus/)."""
    from codec import bitstream, entropy
    from codec.quant import QuantParams

    def stream(w=64, h=48, enc=1, **fields) -> Fields:
        levels = 16
        c = 4
        lh, lw = -(-h // 8), -(-w // 8)
        sym = np.zeros((c, lh, lw), np.uint16)
        qp = QuantParams(levels, (-2.0,) * c, (2.0,) * c)
        header = bitstream.Header(
            model_id=1, width=w, height=h, latent_channels=c, quant=qp, entropy_coder=enc
        )
        f = fields_of(bitstream.pack(header, entropy.CODERS[enc].encode(sym, levels)))
        for k, v in fields.items():
            setattr(f, k, v)
        return f

    ok = stream().to_bytes()
    out: dict[str, bytes] = {
        "empty": b"",
        "magic-only": b"\x89LAT",
        "header-only": ok[:12],
        "no-crc": ok[:-4],
        "trailing-byte": stream(payload_length=None).to_bytes()[:-4] + b"\x00" + ok[-4:],
        "reserved-flags": stream(reserved_flags=0xC0).to_bytes(),
        "unknown-model-255": stream(model_id=255).to_bytes(),
        "unknown-coder-15": stream(coder=15).to_bytes(),
        "width-zero": stream(width=0).to_bytes(),
        "width-65536": stream(width=65536).to_bytes(),
        "width-overlong-varint": ok[:8] + b"\xc0\x80\x80\x80\x80\x00" + ok[9:],
        "coded-larger-than-image": stream(coded=(128, 96)).to_bytes(),
        "channels-64": stream(channels=64).to_bytes(),
        "levels-1": stream(levels=1).to_bytes(),
        "range-inverted": stream(ranges=np.array([1, -1] * 4, "<f2").tobytes()).to_bytes(),
        "range-inf": stream(ranges=np.array([-np.inf, np.inf] * 4, "<f2").tobytes()).to_bytes(),
        "tanh-range-too-wide": stream(tanh=True, ranges=np.array([-3, 3] * 4, "<f2").tobytes()).to_bytes(),
        "metadata-duplicate-tag": stream(
            metadata=b"\x01\x04\x00\x00\x80\x3f\x01\x04\x00\x00\x80\x3f"
        ).to_bytes(),
        "metadata-critical-unknown": stream(metadata=b"\x85\x01\x00").to_bytes(),
        "metadata-length-overflow": stream(metadata=b"\x04\xff\xff\xff\xff\x0f").to_bytes(),
        "metadata-f32-nan": stream(metadata=b"\x01\x04\x00\x00\xc0\x7f").to_bytes(),
        "payload-length-huge": stream(payload_length=(1 << 31)).to_bytes(),
        "payload-truncated": stream(payload=stream().payload[:-3]).to_bytes(),
        "payload-random-ctx": stream(payload=random.Random(5).randbytes(300)).to_bytes(),
        "payload-zlib-bomb-raw-coder": stream(enc=0, payload=_bomb("zlib", 1 << 24)).to_bytes(),
        "payload-random-webp": stream(enc=3, payload=random.Random(6).randbytes(200)).to_bytes(),
        "payload-random-jxl": stream(enc=4, payload=random.Random(7).randbytes(200)).to_bytes(),
        # Payload kind 1 (whole image) holding a PNG whose header claims 30000×30000 (found open,
        # fixed in codec.fidelity.decode_image_payload).
        "avif-kind-png-claiming-30000px": Fields(
            kind=1, width=64, height=48, payload=_image_payload(random.Random(3))
        ).to_bytes(),
        "raw-payload-one-byte-short": stream(enc=0, payload=stream(enc=0).payload[:-1]).to_bytes(),
        # Decode bombs (found open, fixed by codec.decode(max_pixels=...)): valid streams of all-zero
        # latents that claim 4096² (35 bytes, ctx) and 10000² (lzma); no byte-level check can refuse
        # them, only the caller's pixel limit (the harness: DECODE_MAX_PIXELS; the library default
        # of 50 MP refuses the 100 MP one too).
        "decode-bomb-4096px-from-ctx": _flat_stream(4096, 1),
        "decode-bomb-10000px-from-lzma": _flat_stream(10_000, 2),
    }
    return out


def _flat_stream(side: int, coder: int) -> bytes:
    """A valid stream of an all-zero latent for a ``side``×``side`` image (tiny whatever the size)."""
    from codec import bitstream, entropy
    from codec.quant import QuantParams

    c, n = 4, -(-side // 8)
    qp = QuantParams(16, (-1.0,) * c, (1.0,) * c)
    payload = entropy.CODERS[coder].encode(np.zeros((c, n, n), np.uint16), 16)
    header = bitstream.Header(model_id=1, width=side, height=side, latent_channels=c, quant=qp,
                              entropy_coder=coder)
    return bitstream.pack(header, payload)


def write_corpus(root: Path) -> None:
    """(Re)write our files: ``fuzz_<name>.bin`` in ``root``."""
    for name, data in regression_corpus().items():
        (root / f"fuzz_{name.replace('-', '_')}.bin").write_bytes(data)
