"""``python -m codec fetch-weights``: put the weight files a fresh machine needs in place, verified.

Each file is looked up like at run time (``codec.resources``) and downloaded into the user cache
when no location has it — or, with ``--dest DIR``, made present in ``DIR`` (kept when intact,
otherwise downloaded). One line per file on stdout; progress on stderr; any failure ends with a
setup error (exit 4) naming the URL that failed and how to place the file by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codec.errors import ModelNotFoundError, UsageError, WeightsChecksumError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``fetch-weights`` sub-command on the CLI's sub-parsers."""
    p = sub.add_parser(
        "fetch-weights",
        help="download and verify model / metric weights (pinned upstream or $CODEC_WEIGHTS_MIRROR)",
    )
    p.add_argument("--model", action="append", metavar="NAME",
                   help="model whose weights to fetch (repeatable; 'all' for every model; default taesd)")
    p.add_argument("--metrics", action="store_true", help="also fetch the LPIPS metric weights")
    p.add_argument("--dest", type=Path, help="put the files in this folder (default: the usual lookup, "
                                             "downloading into the user cache)")


def wanted_files(models: list[str] | None, metrics: bool) -> list[str]:
    """The catalogued file names for ``models`` (registry names, or 'all') and the LPIPS weights."""
    from codec.metrics.weights import ALEX_FEATURES, ALEX_LIN
    from codec.models.registry import DEFAULT_MODEL, get_spec, list_models

    names = models if models else ([] if metrics else [DEFAULT_MODEL])
    if "all" in names:
        names = [m for m in list_models() if get_spec(m).encoder_file]
    files: list[str] = []
    for name in names:
        spec = get_spec(name)
        if not (spec.encoder_file and spec.decoder_file):
            raise UsageError(f"model {spec.name!r} has no downloadable weights (it loads from --model-path)")
        files += [spec.encoder_file, spec.decoder_file]
    if metrics:
        files += [ALEX_FEATURES, ALEX_LIN]
    return list(dict.fromkeys(files))


def run(args: argparse.Namespace) -> int:
    """Fetch every wanted file; raise the first failure (a SetupError) after trying them all."""
    from codec.resources import ensure_file

    failures: list[tuple[str, Exception]] = []
    names = wanted_files(args.model, args.metrics)
    for name in names:
        try:
            path, downloaded = ensure_file(name, args.dest)
        except (ModelNotFoundError, WeightsChecksumError) as exc:
            print(f"FAILED {name}: {exc}", file=sys.stderr)
            failures.append((name, exc))
            continue
        print(f"{'fetched' if downloaded else 'present'} {name} {path}")
    if failures:
        failed = ", ".join(n for n, _ in failures)
        message = f"{len(failures)} of {len(names)} file(s) not fetched: {failed} (see above)"
        raise type(failures[0][1])(message)
    return 0
