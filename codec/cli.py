"""Command line: ``python -m codec encode|decode|info|bench|fetch-weights``.

Exit codes: 0 ok, 2 usage error, 3 invalid or corrupt input (any `CodecError` caused by the
input), 4 setup error (model weights missing or damaged). Errors are one line on stderr,
never a traceback. A stream over the decode limits (``decode --max-pixels / --max-work /
--max-sparse-work``, `codec.options.DecodeLimits`) is invalid input: exit 3.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from codec import fetch as fetch_weights
from codec.errors import CodecError, ModelNotFoundError, UsageError, WeightsChecksumError
from codec.options import EFFORTS

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INVALID = 3
EXIT_SETUP = 4


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `main` owns every exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return value


def _fidelity(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m codec", description="SD-latent image codec")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    enc = sub.add_parser("encode", help="image → bitstream")
    enc.add_argument("input", type=Path)
    enc.add_argument("output", type=Path)
    rate = enc.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=_quality, help="1..100 (default 75 when no budget is given)")
    rate.add_argument("--max-bytes", type=_positive_int, help="hard upper bound on the file size")
    rate.add_argument("--bpp", type=_positive_float, help="bits per pixel budget (upper bound)")
    enc.add_argument("--model", default="taesd", help="autoencoder backend (default taesd)")
    enc.add_argument("--model-path", type=Path, help="local directory of a diffusers model (sd-vae)")
    enc.add_argument("--effort", choices=EFFORTS, default="default")
    enc.add_argument("--device", help="cpu | cuda | cuda:N (default: CUDA when available)")
    enc.add_argument("--min-fidelity", type=_fidelity, help="worst-block fidelity floor (0..1)")
    enc.add_argument("--no-fidelity-guard", action="store_true", help="skip the fidelity check")
    enc.add_argument("--target", choices=("faithful",),
                     help="smallest file that keeps the block floor and every face, up to --max-bytes/--bpp")
    enc.add_argument("--base-bytes", type=_positive_int,
                     help="with --target: the nominal budget; more bytes (up to the cap) only when the "
                          "target needs them, never fewer")
    enc.add_argument("--check-text", action="store_true",
                     help="also OCR the text lines (Tesseract) and protect them (slow: ~10 s per photo)")
    enc.add_argument("--probe-faces", action="store_true",
                     help="look for faces below the detector's minimum (20-39 px) in photos over 0.25 MP "
                          "too, and protect them (seconds per photo)")

    dec = sub.add_parser("decode", help="bitstream → image (PNG/JPEG/WebP by extension)")
    dec.add_argument("input", type=Path)
    dec.add_argument("output", type=Path)
    dec.add_argument("--device")
    dec.add_argument("--model-path", type=Path, help="local directory of a diffusers model (sd-vae)")
    dec.add_argument("--max-pixels", type=_positive_int,
                     help="refuse streams claiming more pixels (default 50,000,000)")
    dec.add_argument("--max-work", type=_positive_float,
                     help="refuse streams whose estimated decode work (`codec info` decode_cost) is "
                          "larger; 1 unit ≈ 1 MP through TAESD ≈ 6 s on 2 cores (default 80)")
    dec.add_argument("--max-sparse-work", type=_positive_float,
                     help="the same for implausibly small payloads (< 0.01 bits per latent value; "
                          "default 4); raise it only for files you trust")

    inf = sub.add_parser("info", help="print the header as JSON")
    inf.add_argument("input", type=Path)

    bench = sub.add_parser("bench", help="rate–distortion benchmark against classical codecs")
    bench.add_argument("--images", type=Path, required=True)
    bench.add_argument("--bpp", default="0.05,0.10,0.15", help="comma-separated budgets")
    bench.add_argument("--limit", type=_positive_int)
    bench.add_argument("--effort", choices=EFFORTS, default="default")
    bench.add_argument("--out", type=Path, required=True)
    bench.add_argument("--codecs", help="comma-separated subset (latent,seed,jpeg,webp,avif,jxl)")
    bench.add_argument("--no-speed", action="store_true", help="skip the decode-speed section")
    bench.add_argument("--no-fidelity", action="store_true", help="skip the fidelity-guard section")
    fetch_weights.add_parser(sub)
    return parser


_OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _InputFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


class _InputFileError(CodecError):
    """An input file that cannot be read (missing, a directory, no permission)."""


def _cmd_encode(args: argparse.Namespace) -> int:
    import codec

    data = _read_bytes(args.input)
    options: dict[str, object] = {
        "model": args.model,
        "effort": args.effort,
        "device": args.device,
    }
    if args.model_path is not None:
        options["model_path"] = str(args.model_path)
    if args.quality is not None:
        options["quality"] = args.quality
    if args.max_bytes is not None:
        options["max_bytes"] = args.max_bytes
    if args.bpp is not None:
        options["bpp"] = args.bpp
    if args.no_fidelity_guard:
        options["min_fidelity"] = 0.0
    elif args.min_fidelity is not None:
        options["min_fidelity"] = args.min_fidelity
    if args.target is not None:
        options["target"] = args.target
    if args.base_bytes is not None:
        options["base_bytes"] = args.base_bytes
    if args.check_text:
        options["check_text"] = True
    if args.probe_faces:
        options["probe_faces"] = True
    stream = codec.encode(data, **options)
    _write_output(args.output, stream)
    return EXIT_OK


def _cmd_decode(args: argparse.Namespace) -> int:
    import codec

    fmt = _OUTPUT_FORMATS.get(args.output.suffix.lower())
    if fmt is None:
        raise UsageError(f"output extension must be one of {', '.join(sorted(_OUTPUT_FORMATS))}")
    data = _read_bytes(args.input)
    options: dict[str, object] = {"device": args.device}
    if args.model_path is not None:
        options["model_path"] = str(args.model_path)
    if args.max_pixels is not None:
        options["max_pixels"] = args.max_pixels
    if args.max_work is not None:
        options["max_work"] = args.max_work
    if args.max_sparse_work is not None:
        options["sparse_work"] = args.max_sparse_work
    image = codec.decode(data, **options)
    save_kwargs: dict[str, object] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    try:
        image.save(args.output, format=fmt, **save_kwargs)
    except OSError as exc:
        raise _OutputError(f"cannot write {args.output}: {exc}") from exc
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    import codec

    meta = codec.info(_read_bytes(args.input))
    print(json.dumps(meta, indent=2, sort_keys=True))
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from codec.tools.bench import run_bench  # the CLI is the one library module that reaches a tool

    try:
        bpps = [float(x) for x in args.bpp.split(",") if x.strip()]
    except ValueError as exc:
        raise UsageError(f"--bpp must be comma-separated numbers: {args.bpp!r}") from exc
    if not bpps or any(b <= 0 for b in bpps):
        raise UsageError("--bpp needs at least one positive budget")
    if not args.images.is_dir():
        raise UsageError(f"--images {args.images} is not a directory")
    codecs = [c.strip() for c in args.codecs.split(",")] if args.codecs else None
    run_bench(
        args.images, bpps, args.limit, args.effort, args.out, codecs=codecs,
        speed=not args.no_speed, fidelity=not args.no_fidelity,
    )
    print(f"results in {args.out}/results.json, report in {args.out}/report.md")
    return EXIT_OK


class _OutputError(CodecError):
    """The output file cannot be written."""


def _write_output(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise _OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


_COMMANDS = {
    "encode": _cmd_encode, "decode": _cmd_decode, "info": _cmd_info, "bench": _cmd_bench,
    "fetch-weights": fetch_weights.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        _fail(str(exc))
        return EXIT_USAGE
    except (ModelNotFoundError, WeightsChecksumError) as exc:
        _fail(str(exc))
        return EXIT_SETUP
    except _OutputError as exc:
        _fail(str(exc))
        return 1
    except CodecError as exc:
        _fail(str(exc))
        return EXIT_INVALID
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130


def _fail(message: str) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else "error"
    print(f"error: {first_line}", file=sys.stderr)
