"""Hand memory back to the OS around large photos (issue 13: a 12 MP photo within 3 GB of RSS).

A long-lived worker process holds more than its models: OpenVINO keeps the intermediate buffers of
the largest input each compiled graph has run (`codec.models.onnx_runtime.OvRunner.release`), and
glibc keeps freed heap pages in its arenas (one per thread that allocated: the text check's OCR thread,
the engines' threads). Measured in one process that coded 3 Kodak, one 4 MP and four 1 MP photos before
a 12 MP one (2026-12-01, `openvino-bf16enc`): 2.2–2.8 GB resident before the 12 MP photo started, and
its peak on top of that reached 3.9–4.2 GB; the same photo in a fresh process peaked at 2.65 GB.

So before a photo over `LARGE_PHOTO_PIXELS`, and after every photo over `RELEASE_AFTER_PIXELS`, the
encoder calls `release`: the model's engine buffers (0.08 s) and `malloc_trim` (milliseconds). With the
encoder graphs in f32 (`codec.models.onnx_runtime.fastest_runner` on a CPU where bf16 is slow) a worker
that had coded 1 MP photos sat at 2.9 GB between photos and peaked at 3.05 GB per photo; releasing
after each: 0.78 GB between photos, 2.6 GB peak, for ≈ +0.5 s on a 6–7 s encode (5 photos, same
process, 2026-12-01). Kodak-size photos skip it: the next one re-uses the buffers, and re-allocating
them would cost a measurable share of their ≈ 2.7 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

#: photos above this many pixels release memory before they are coded (what earlier photos left): the
#: tiled ones (`codec.tiling`). At 4 MP a 2448×1632 photo after three Kodak ones peaked at 3.15 GB in
#: bench-gallery; at 2 MP 2.61 GB, its Upload→READY 33.0 s (32.6–41.4 s in the runs before)
LARGE_PHOTO_PIXELS = 2_000_000
#: photos above this many pixels release memory after they are coded (their own buffers)
RELEASE_AFTER_PIXELS = 500_000


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None on another C library, e.g. musl or macOS)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim_heap() -> bool:
    """Return the C heap's free pages to the OS (all arenas); False where there is no ``malloc_trim``."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


def release(model: object) -> None:
    """The model's engine buffers (where its backend keeps any) and the heap's free pages."""
    free = getattr(model, "release_memory", None)
    if callable(free):
        free()
    from codec.models import tuned_decoder  # the tuned decoders built from it keep buffers of their own

    tuned_decoder.release(model)
    trim_heap()


def release_if_large(model: object, pixels: int, threshold: int = LARGE_PHOTO_PIXELS) -> bool:
    """`release` for a photo of more than ``threshold`` pixels; True when it ran."""
    if pixels <= threshold:
        return False
    release(model)
    return True
