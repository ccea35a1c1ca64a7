"""The torch-free container: wire primitives, header pack/parse, the patch-layer section, the
embedded classical images and the JSON description. The web process may import all of it.

Layout in ``codec/FORMAT.md``. Modules:

* `codec.container.wire` — varints, the bounds-checked reader, the one TLV parser, 4-bit packing;
* `codec.container.header` — `Header`, `pack`, `parse` (strict), limits and enumerations;
* `codec.container.patchlayer` — the fidelity guard's patch-layer section (grid, pack, parse, apply);
* `codec.container.images` — format table, JPEG XL registration, the strict embedded-image decoder;
* `codec.container.describe` — `info(data)`: the header as JSON.
"""

from codec.container.describe import header_to_dict, info
from codec.container.header import (
    DOWNSCALES,
    ENTROPY_CODERS,
    FORMAT_VERSION,
    MAGIC,
    MAX_PIXELS,
    PAYLOAD_AVIF,
    PAYLOAD_KINDS,
    PAYLOAD_LATENT,
    Header,
    latent_size,
    max_payload_bytes,
    pack,
    parse,
)
from codec.container.wire import varint_bytes

__all__ = [
    "DOWNSCALES",
    "ENTROPY_CODERS",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_PIXELS",
    "PAYLOAD_AVIF",
    "PAYLOAD_KINDS",
    "PAYLOAD_LATENT",
    "Header",
    "header_to_dict",
    "info",
    "latent_size",
    "max_payload_bytes",
    "pack",
    "parse",
    "varint_bytes",
]
