"""`encode_result`: encode AND hand back what the decoder will show, without decoding twice.

The encoder already decodes the file it writes (the measured choice decodes its candidates, the
fidelity guard decodes the chosen stream to score it). A caller that needs the picture too (the
gallery writes its previews right after the encode) would otherwise decode the stored file a second
time — on a CPU that is the single most expensive step after the encoder passes.

How: for the duration of one encode the model's ``decode`` is memoized by the latent's bytes
(`_DecoderMemo`), and so is the latent denoiser (`codec.decoder.FILTER_MEMO`, ≈ 0.2 s per 768×512).
The decoder network is deterministic per backend, so a memo hit returns exactly
what a fresh pass would; every other step of the decode (entropy decoding, dequantization, crop,
resize, patch layer, AVIF fallback) runs as usual through `codec.decoder.decode_rgb`, so the
reconstruction is, bit for bit, what ``codec.decode(data)`` returns. A side effect: when the guard
decodes the stream the measured choice already decoded, that pass is shared too. The memo keeps at
most `MEMO_MAX_BYTES` of decoder outputs (a miss only costs a decoder pass, never a wrong answer) and
is dropped when the encode returns.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from codec import memory
from codec.container.describe import info as describe
from codec.decoder import FILTER_MEMO, decode_rgb
from codec.encoder.encode import encode
from codec.models import tuned_decoder
from codec.models.registry import get_model
from codec.models.specs import latent_filter_for

#: decoder outputs kept during one encode (a 12 MP output is 144 MB in float32)
MEMO_MAX_BYTES = 320 * 1024 * 1024

_install_lock = threading.Lock()


@dataclass
class EncodeResult:
    """The file, what ``codec.decode(data)`` shows for it, and its ``codec.info``."""

    data: bytes
    #: (H, W, 3) uint8 at the display (output) size: identical to ``codec.decode(data)``
    reconstruction: np.ndarray
    info: dict[str, Any]
    #: decoder passes served from the memo during the encode and the final decode
    decoder_passes_saved: int = 0
    #: decoder passes run (the encoder's own, plus the final one when it missed the memo)
    decoder_passes: int = 0
    #: True when the reconstruction needed no decoder pass of its own
    reconstruction_reused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class _DecoderMemo:
    """``model.decode`` memoized by the latent's exact bytes (bounded; thread-safe)."""

    def __init__(self, decode: Callable[[torch.Tensor], torch.Tensor], max_bytes: int) -> None:
        self.decode, self.max_bytes = decode, max_bytes
        self.cache: dict[tuple, torch.Tensor] = {}
        self.bytes = self.hits = self.misses = 0
        self.lock = threading.Lock()

    @staticmethod
    def key(z: torch.Tensor) -> tuple:
        arr = z.detach().to("cpu").contiguous().numpy()
        return (tuple(arr.shape), str(arr.dtype), hashlib.blake2b(arr.tobytes(), digest_size=20).digest())

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        k = self.key(z)
        with self.lock:
            found = self.cache.get(k)
            if found is not None:
                self.hits += 1
                return found.clone()
        out = self.decode(z)
        with self.lock:
            self.misses += 1
            size = out.element_size() * out.nelement()
            if self.bytes + size <= self.max_bytes:  # keep the earliest (the chosen stream comes first)
                self.cache[k] = out.detach().clone()
                self.bytes += size
        return out


class _PerThreadMemos:
    """Installed as ``model.decode`` while any `encode_result` runs on ``model``: each thread's calls
    go to that thread's own memo (or straight to the decoder), so concurrent encodes on one shared
    model (a GPU worker's threads, `codec.models.batching`) neither see nor remove each other's."""

    def __init__(self, decode: Callable[[torch.Tensor], torch.Tensor], had_own: bool, previous: Any) -> None:
        self.decode, self.had_own, self.previous = decode, had_own, previous
        self.local = threading.local()
        self.users = 0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        memo = getattr(self.local, "memo", None)
        return memo(z) if memo is not None else self.decode(z)


@contextmanager
def _memoized_decoder(model: Any, max_bytes: int = MEMO_MAX_BYTES) -> Iterator[_DecoderMemo]:
    """Memoize ``model.decode`` for the calling thread for the duration of the block."""
    with _install_lock:
        dispatch = vars(model).get("decode")
        if not isinstance(dispatch, _PerThreadMemos):
            had_own = "decode" in vars(model)
            dispatch = _PerThreadMemos(model.decode, had_own, vars(model).get("decode"))
            model.decode = dispatch
        dispatch.users += 1
    memo = _DecoderMemo(dispatch.decode, max_bytes)
    outer = getattr(dispatch.local, "memo", None)
    dispatch.local.memo = memo
    try:
        yield memo
    finally:
        dispatch.local.memo = outer
        with _install_lock:
            dispatch.users -= 1
            if dispatch.users == 0:
                if dispatch.had_own:
                    model.decode = dispatch.previous
                else:
                    del model.decode
        memo.cache.clear()


def encode_result(image: Any, **options: Any) -> EncodeResult:
    """`codec.encoder.encode.encode` (same arguments) plus the reconstruction it already decoded.

    ``reconstruction`` equals ``codec.decode(data)`` (RGB uint8 at the output size); it reuses the
    encoder's own decode of the chosen file, so no extra decoder pass runs in the common case.
    """
    model = get_model(options.get("model", "taesd"), device=options.get("device"),
                      model_path=options.get("model_path"))
    spec = latent_filter_for(model.name)
    # the tuned decoder the newest latent filter names decodes that filter's files: memoized the same way
    tuned = tuned_decoder.decoder_model(model, spec) if spec is not None else model
    filters = FILTER_MEMO.set({})  # the latent denoiser's outputs, shared the same way
    try:
        with _memoized_decoder(model) as memo:
            if tuned is model:
                return _encode_with_memos(image, model, [memo], options)
            with _memoized_decoder(tuned) as tuned_memo:
                return _encode_with_memos(image, model, [memo, tuned_memo], options)
    finally:
        FILTER_MEMO.reset(filters)


def _encode_with_memos(image: Any, model: Any, memos: list[_DecoderMemo],
                       options: dict[str, Any]) -> EncodeResult:
    data = encode(image, **options)
    misses_before = sum(m.misses for m in memos)
    meta = describe(data)
    # the header's model is the encoder's (an AVIF fallback needs none)
    rgb = decode_rgb(data, model=model, max_pixels=None)
    reused = sum(m.misses for m in memos) == misses_before
    # its buffers, before the next photo
    memory.release_if_large(model, rgb.shape[0] * rgb.shape[1], memory.RELEASE_AFTER_PIXELS)
    return EncodeResult(data=data, reconstruction=rgb, info=meta,
                        decoder_passes_saved=sum(m.hits for m in memos),
                        decoder_passes=sum(m.misses for m in memos), reconstruction_reused=reused)
