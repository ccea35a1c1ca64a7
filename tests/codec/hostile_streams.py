"""The decode bombs of issue 10 as regression files (``tests/codec/corpus/hostile_*.bin``).

Made from a real stream: a 64×64 grey image through `codec.encode` (effort fast), whose quantizer,
levels and model are kept; the header's size is rewritten to a large claim with the container's own
`pack`, and the payload is the real entropy coder's code of a flat latent of the claimed shape (the
symbol the small stream uses most, per channel). Each is a *valid* stream of a few hundred bytes
that, before `codec.options.DecodeLimits`, ran the TAESD decoder for minutes. Regenerate with
``.venv/bin/python -m tests.codec.hostile_streams`` (the files are committed; tests only read them).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).parent / "corpus"
#: name → (claimed side, entropy coder)
CLAIMS = {
    "hostile_2048px_lzma": (2048, "lzma"),
    "hostile_4096px_lzma": (4096, "lzma"),
    "hostile_4096px_jxl": (4096, "jxl"),
    "hostile_7071px_jxl": (7071, "jxl"),
}


def make() -> dict[str, bytes]:
    import codec
    from codec import container, entropy
    from codec.container.header import latent_size

    small = codec.encode(np.full((64, 64, 3), 128, np.uint8), effort="fast", min_fidelity=0.0)
    header, payload = container.parse(small)
    sym = entropy.decode_symbols(header.entropy_coder, payload, header.latent_shape, header.quant.levels)
    mode = [int(np.bincount(ch.ravel()).argmax()) for ch in sym]
    out = {}
    for name, (side, coder) in CLAIMS.items():
        lh, lw = latent_size(side, side, header.downscale)
        flat = np.empty((header.latent_channels, lh, lw), np.uint16)
        flat[:] = np.asarray(mode, np.uint16)[:, None, None]
        cid, body = entropy.encode_symbols(flat, header.quant.levels, coders=[coder])
        big = replace(header, width=side, height=side, coded_width=side, coded_height=side,
                      latent_height=lh, latent_width=lw, entropy_coder=cid, patch_layer=None)
        out[name] = container.pack(big, body)
    return out


if __name__ == "__main__":
    for name, data in make().items():
        (CORPUS / f"{name}.bin").write_bytes(data)
        print(f"{name}.bin: {len(data)} bytes")
