"""The files the project can fetch: name, kind, sha256, size and where upstream keeps them (data only).

Provenance (checked for this table; see docs in ``codec/resources/__init__.py``):

* ``taef2_*.pth`` are byte-identical to ``madebyollin/taesd`` on GitHub (the sha256 below equal the
  ones a third-party build pins for ``github.com/madebyollin/taesd/raw/main/taef2_*.pth``); we pin
  the commit :data:`TAESD_COMMIT`, the one our source index holds those files at.
* The SD-family ``*.safetensors`` (bfloat16, sequential keys) are **not** what ``madebyollin/taesd``
  ships: upstream has float32 pickles ``taesd_encoder.pth`` … (other bytes) and its Hugging Face
  repositories float32 safetensors (4.9 MB, other bytes). Our files match, byte for byte, the
  ``*.safetensors`` the ComfyUI portable release copies from the ``comfyanonymous/taesd`` fork of
  upstream; no commit of that fork could be verified offline, so its ref is a branch here and the
  sha256 is the only pin — a changed upstream file is refused, never used.
* ``lpips_{alex,squeeze}_v0.1_lin.pth`` are byte-identical to ``weights/v0.1/{alex,squeeze}.pth`` of
  the ``lpips`` 0.1.4 wheel on PyPI (checked with ``pip download lpips==0.1.4``), i.e. the official
  LPIPS files of ``richzhang/PerceptualSimilarity``.
* ``squeezenet1_1_features.pth`` is copied as-is from ``delldu/LPIPS``.
* ``alexnet_features.pth`` was *converted* for this project (torchvision AlexNet conv weights, see
  ``../shared/models/metrics/README.md``): no upstream URL serves these bytes, so it comes only from
  a mirror (``CODEC_WEIGHTS_MIRROR``) or by hand.

This module imports nothing heavy: it is a table.
"""

from __future__ import annotations

from dataclasses import dataclass

#: madebyollin/taesd commit pinned for the files upstream serves with our exact bytes.
TAESD_REPO = "madebyollin/taesd"
TAESD_COMMIT = "5cccb12dc72074a4be35680c3b108548a7c69978"
#: Fork whose ``*.safetensors`` (bfloat16) match ours; ref not pinned (no commit verifiable offline).
TAESD_SAFETENSORS_REPO = "comfyanonymous/taesd"
TAESD_SAFETENSORS_REF = "main"
#: Official LPIPS repository (linear layers) and the commit pinned for them.
LPIPS_REPO = "richzhang/PerceptualSimilarity"
LPIPS_COMMIT = "c33f89e9f46522a584cf41d8880eb0afa982708b"
SQUEEZE_REPO = "delldu/LPIPS"
SQUEEZE_COMMIT = "a82763183ed8fe504e21b0bfbb0f21f8c2c0fd4e"


def github_raw(repo: str, ref: str, path: str) -> str:
    """``https://raw.githubusercontent.com/<repo>/<ref>/<path>`` (no redirect needed)."""
    return f"https://raw.githubusercontent.com/{repo}/{ref}/{path}"


@dataclass(frozen=True)
class RemoteFile:
    """One fetchable file. ``url`` None: no upstream serves these bytes (mirror or by hand only)."""

    name: str
    kind: str  # a key of codec.resources.locations.KINDS
    sha256: str
    size: int  # exact size in bytes (also the download cap)
    url: str | None
    source: str  # one line for error messages: what the file is and where it comes from


_SD_NOTE = (
    "bfloat16 safetensors with upstream's sequential keys; note: madebyollin/taesd itself ships these "
    "weights as float32 .pth pickles (different bytes, not accepted here)"
)


def _taesd_safetensors(name: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(
        name, "models", sha256, size,
        github_raw(TAESD_SAFETENSORS_REPO, TAESD_SAFETENSORS_REF, name),
        f"TAESD weights (MIT, upstream github.com/{TAESD_REPO}); {_SD_NOTE}",
    )


def _taef2(name: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(
        name, "models", sha256, size, github_raw(TAESD_REPO, TAESD_COMMIT, name),
        f"TAEF2 weights (MIT) from github.com/{TAESD_REPO} at {TAESD_COMMIT[:12]}",
    )


_FILES: tuple[RemoteFile, ...] = (
    _taesd_safetensors("taesd_encoder.safetensors",
                       "a6b8c0fda4aad50784e543389e0239c72c5e31e9775c9e612ea8333bf3a77dcb", 2_450_568),
    _taesd_safetensors("taesd_decoder.safetensors",
                       "d903e7cc3ae58f21d985a3498a841fa8b230edccff7ac5d27607b0c557945c6f", 2_450_590),
    _taesd_safetensors("taesdxl_encoder.safetensors",
                       "3d78013286676a1a51074831230f90972e573698fe4b11416d6f28e0cd5bbe7e", 2_450_568),
    _taesd_safetensors("taesdxl_decoder.safetensors",
                       "ae5256b046b01d577279ed93a55bbb1fb2689e55aa14cfc0f7f841e0160202a5", 2_450_590),
    _taesd_safetensors("taesd3_encoder.safetensors",
                       "e5c96f3476bd26fe73e96d701a694f40d7ab48a290494cbbf70a3697d09cab4a", 2_464_424),
    _taesd_safetensors("taesd3_decoder.safetensors",
                       "e940e227e2a41919f0735ec423129724666f8b949c8bbce7a04b78ecfb4667de", 2_464_414),
    _taesd_safetensors("taef1_encoder.safetensors",
                       "19f5a854ce575fd0a1c0a52938410cf5fb4dc4b8ae71c8887533646d8fe47030", 2_464_424),
    _taesd_safetensors("taef1_decoder.safetensors",
                       "bb41500b646d5b8b592b7f3ca5d20d888c3075e209d178d99af609cd7e02a1d4", 2_464_414),
    _taef2("taef2_encoder.pth",
           "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6", 2_704_692),
    _taef2("taef2_decoder.pth",
           "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5", 2_704_756),
    RemoteFile(
        "alexnet_features.pth", "metrics",
        "1454cf628f565bb39c929b4ab19c33d8c662292055b946c48daaeb6ccaf8811d", 9_882_965, None,
        "torchvision AlexNet (alexnet-owt-7be5be79) conv weights converted for this project "
        "(keys features.{0,3,6,8,10}.*); no upstream URL serves these bytes",
    ),
    RemoteFile(
        "lpips_alex_v0.1_lin.pth", "metrics",
        "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", 6_009,
        github_raw(LPIPS_REPO, LPIPS_COMMIT, "lpips/weights/v0.1/alex.pth"),
        "official LPIPS v0.1 alex linear layers (BSD-2-Clause; = lpips wheel weights/v0.1/alex.pth)",
    ),
    RemoteFile(
        "lpips_squeeze_v0.1_lin.pth", "metrics",
        "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76", 10_811,
        github_raw(LPIPS_REPO, LPIPS_COMMIT, "lpips/weights/v0.1/squeeze.pth"),
        "official LPIPS v0.1 squeeze linear layers (BSD-2-Clause; = lpips wheel weights/v0.1/squeeze.pth)",
    ),
    RemoteFile(
        "squeezenet1_1_features.pth", "metrics",
        "435cedb387e95bc8291893f61a3a64f0345b8c23a05139aceef43947efb3d52d", 2_899_197,
        github_raw(SQUEEZE_REPO, SQUEEZE_COMMIT, "project/image_likeness/models/squeeze.backbone.pth"),
        "torchvision SqueezeNet 1.1 features (BSD-3-Clause) as stored in github.com/delldu/LPIPS",
    ),
)

FILES: dict[str, RemoteFile] = {f.name: f for f in _FILES}
#: name → expected sha256 for every known file (weights and metric weights).
SHA256: dict[str, str] = {f.name: f.sha256 for f in _FILES}


def files_of_kind(kind: str) -> list[RemoteFile]:
    """Every catalogued file of ``kind`` ("models", "metrics"), in table order."""
    return [f for f in _FILES if f.kind == kind]
