"""`EncodeSession`: everything computed for one image during one encode (latents cached per scale,
streams cached per setting), shared by the rate control, the RDO and the fidelity guard."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from codec import entropy
from codec.container.header import Header, pack
from codec.decoder import latent_to_rgb
from codec.encoder import ratecontrol
from codec.encoder.faces import OriginalFaces
from codec.encoder.faces import detect as detect_faces
from codec.encoder.rdo import encode_latent, refine_latent
from codec.imageio import pad_to_multiple, resize_rgb, to_tensor
from codec.metrics import lpips, ms_ssim
from codec.models import denoiser, tuned_decoder
from codec.models.base import LatentAutoencoder
from codec.models.specs import LatentFilterSpec, latent_filter_for
from codec.options import effort_code
from codec.quant import QuantParams, dequantize, params_for_latent, quantize

#: centroid reconstruction offsets (`codec.quant.with_offsets`, levels/2 header bytes per channel) up to
#: this level count. Measured on 6 Kodak images with the `default` encoder, same symbols: L=6 +0.65 dB,
#: MS-SSIM +0.017, LPIPS −0.004; L=8 +0.32 dB, +0.005, +0.003; L≥10 ≤ +0.2 dB, +0.001 and LPIPS
#: +0.002..0.003 (worse), so coarse quantizers only.
OFFSETS_MAX_LEVELS = 8

#: per-image choice between fitting settings by measured quality, only up to this many pixels
#: (each candidate costs one decoder pass; bigger images use the calibrated order alone)
MEASURED_CHOICE_MAX_PIXELS = 4_000_000
MEASURED_CHOICE_CANDIDATES = 3
#: `EncodeSession.quality_of` measures images above this many pixels on a copy shrunk to it (original and
#: decode alike). Measured on a 12 MP pair (2026-12-01, 2 cores): MS-SSIM 9.5 s and +2.0 GB peak RSS,
#: LPIPS 7.9 s; a 12 MP gallery photo whose face needed protection spent 42.6 s of its 239 s encode in
#: three such measurements and peaked at 4.0 GB (issue 13's ceiling is 3 GB). The score only compares
#: files of one photo with each other (a protected file against the unprotected one), which a 2 MP view
#: still ranks; photos up to 2 MP (Kodak, 1 MP exports) are measured at full size, as before.
QUALITY_MAX_PIXELS = 2_000_000
#: photos with a side below this are scored on a magnified view (LPIPS-alex needs 32 px a side, MS-SSIM
#: 11): every pixel repeated ⌈32 / side⌉ times; a strip too long for that is edge-padded to 32 px instead
QUALITY_MIN_SIDE = 32
#: bytes an upgraded stream (`EncodeSession.upgrade`) leaves for the guard's tags (fidelity 22 B, faces
#: and target tags ≤ ~40 B)
UPGRADE_RESERVE = 64


def quant_params(latent: np.ndarray, levels: int) -> QuantParams:
    """The quantizer of ``latent`` at ``levels`` (with reconstruction offsets for coarse ones)."""
    return params_for_latent(latent, levels, offsets=levels <= OFFSETS_MAX_LEVELS)


@dataclass
class EncodeSession:
    """One image being encoded with one model at one effort.

    ``rgb`` is the (H, W, 3) uint8 original at display size. Latents are computed once per resolution
    scale (`latent`), bitstreams once per (setting, search) (`stream`), so a byte-budget search costs
    one encoder pass per scale, not per try.
    """

    model: LatentAutoencoder
    rgb: np.ndarray
    effort: str
    #: resolution scales the rate control searches (`codec.encoder.flat`: one tiny scale for an image
    #: without fine detail)
    search_scales: tuple[float, ...] = ratecontrol.ALL_SCALES
    #: a view of another session: its latents with the display boxes ``masked`` filled flat (the base
    #: under region latents, `codec.encoder.regions`: bits spent there would be painted over)
    source: EncodeSession | None = None
    masked: tuple[tuple[int, int, int, int], ...] = ()
    #: the face detection's probe pass for faces below the detector's minimum (`codec.encoder.faces.probes`:
    #: None = only where cheap, True = forced, e.g. the gallery's re-encode after a second look)
    probe_faces: bool | None = None
    _latents: dict[float, np.ndarray] = field(default_factory=dict)
    _streams: dict[tuple[ratecontrol.Setting, bool], bytes] = field(default_factory=dict)
    _memo: dict[str, object] = field(default_factory=dict)
    #: measured quality (MS-SSIM − LPIPS) per setting: (stock decode, decode after the latent denoiser)
    _denoise: dict[ratecontrol.Setting, tuple[float, float]] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the original."""
        return self.rgb.shape[1], self.rgb.shape[0]

    def faces(self) -> OriginalFaces | None:
        """Faces of the original, detected once per encode (`codec.encoder.faces`; None without the
        face models)."""
        if "faces" not in self._memo:
            self._memo["faces"] = detect_faces(self.rgb, probe=self.probe_faces)
        return self._memo["faces"]  # type: ignore[return-value]

    def coded_rgb(self, scale: float) -> np.ndarray:
        """The original resized to the coded size of ``scale``."""
        width, height = ratecontrol.Setting(scale, 2).coded_size(*self.size)
        if (width, height) == self.size:
            return self.rgb
        return resize_rgb(self.rgb, width, height)

    def latent(self, scale: float) -> np.ndarray:
        """The encoder's latent (C, h, w) float32 at ``scale`` (one encoder pass, then cached)."""
        if scale not in self._latents and self.source is not None:
            from codec.encoder.regions import flatten_boxes

            coded_w, _coded_h = ratecontrol.Setting(scale, 2).coded_size(*self.size)
            self._latents[scale] = flatten_boxes(self.source.latent(scale), self.masked,
                                                 coded_w / self.size[0], self.model.downscale)
        if scale not in self._latents:
            # two scales with the same coded size (an up-scale capped at the image size by
            # ratecontrol.MAX_UP_PIXELS, or tiny images) share one encoder pass
            def coded(sc: float) -> tuple[int, int]:
                return ratecontrol.Setting(sc, 2).coded_size(*self.size)

            twin = next((s for s in self._latents if coded(s) == coded(scale)), None)
            self._latents[scale] = (self._latents[twin] if twin is not None
                                    else encode_latent(self.model, self.coded_rgb(scale), self.effort))
        return self._latents[scale]

    def set_latent(self, scale: float, latent: np.ndarray) -> None:
        """Use ``latent`` for ``scale`` (e.g. a refined one); drops the streams built from another."""
        self._latents[scale] = latent
        self._streams = {k: v for k, v in self._streams.items() if k[0].scale != scale}
        self._denoise = {k: v for k, v in self._denoise.items() if k.scale != scale}

    def stream(self, setting: ratecontrol.Setting, *, search: bool = False) -> bytes:
        """The bitstream for ``setting``. ``search=True`` tries only the fast entropy coders (used
        inside the rate-control loop); the final stream tries every coder, which can only make it
        smaller, so a setting that fit during the search still fits."""
        key = (setting, search)
        if key not in self._streams:
            self._streams[key] = self._write_stream(setting, search=search)
        return self._streams[key]

    def _write_stream(self, setting: ratecontrol.Setting, *, search: bool) -> bytes:
        latent = self.latent(setting.scale)
        qp = quant_params(latent, setting.levels)
        symbols = quantize(latent, qp)
        coders = entropy.FAST_CODERS if search else None
        coder_id, payload = entropy.encode_symbols(symbols, qp.levels, coders=coders)
        width, height = self.size
        coded_w, coded_h = setting.coded_size(width, height)
        header = Header(
            model_id=self.model.model_id,
            width=width,
            height=height,
            coded_width=coded_w,
            coded_height=coded_h,
            latent_channels=latent.shape[0],
            latent_height=latent.shape[1],
            latent_width=latent.shape[2],
            quant=qp,
            entropy_coder=coder_id,
            effort=effort_code(self.effort),
        )
        # the latent denoiser's tag: in every search stream (so the size the search saw is an upper
        # bound), in the final stream only when the denoised decode measured better
        spec = self.latent_filter()
        if spec is not None and (search or self.denoise_wins(setting)):
            header.latent_filter = spec.filter_id
        return pack(header, payload)

    def latent_filter(self) -> LatentFilterSpec | None:
        """The latent denoiser this encode may ask for (effort default/max, images the encoder can
        measure: ≤ `MEASURED_CHOICE_MAX_PIXELS`), else None."""
        width, height = self.size
        if self.effort == "fast" or width * height > MEASURED_CHOICE_MAX_PIXELS:
            return None
        return latent_filter_for(self.model.name)

    def denoise_wins(self, setting: ratecontrol.Setting) -> bool:
        """Whether the file asks for the latent denoiser: effort ``max`` when the denoised decode
        measured better than the stock one; effort ``default`` whenever a denoiser exists (trained
        and checked on held-out training crops; measuring both paths costs one more decoder pass and
        two LPIPS/MS-SSIM runs per encode — estimated +20–30 % encode time, not measured idle — for a
        gain of ≈ 0.01 LPIPS)."""
        if self.latent_filter() is None:
            return False
        if self.effort != "max":
            return True
        stock, denoised = self._measured(setting)
        return denoised > stock

    def quality_of(self, decoded: np.ndarray) -> float:
        """Whole-image quality of a decode against the original: MS-SSIM − LPIPS, the score every
        encoder-side choice uses (measured choice, guard, target search), on a ≤ `QUALITY_MAX_PIXELS`
        view of large photos. On the model's device: a GPU worker must not queue its photos' metrics on
        the CPU (≈ 0.5 s per 768×512 there)."""
        device = str(self.model.device)
        original = self.rgb
        h, w = original.shape[:2]
        if min(h, w) < QUALITY_MIN_SIDE:  # below what LPIPS/MS-SSIM accept: a magnified (or padded) view
            original, decoded = _metric_view(original), _metric_view(decoded)
        elif h * w > QUALITY_MAX_PIXELS:  # a shrunk view of both (see QUALITY_MAX_PIXELS)
            f = math.sqrt(QUALITY_MAX_PIXELS / (h * w))
            size = (max(1, round(w * f)), max(1, round(h * f)))
            if self._memo.get("quality_size") != size:
                self._memo["quality_size"], self._memo["quality_rgb"] = size, resize_rgb(original, *size)
            original = self._memo["quality_rgb"]  # type: ignore[assignment]
            decoded = resize_rgb(decoded, *size)
        return ms_ssim(original, decoded, device=device) - lpips(original, decoded, device=device)

    def _measured(self, setting: ratecontrol.Setting) -> tuple[float, float]:
        """(stock, denoised) MS-SSIM − LPIPS of ``setting`` (denoised = stock without a denoiser).
        Below effort ``max`` only the path the file will use is decoded (the other is −inf)."""
        if setting not in self._denoise:
            quality = self.quality_of
            has_filter = self.latent_filter() is not None
            if has_filter and self.effort != "max":
                self._denoise[setting] = (-math.inf, quality(self.reconstruction(setting, denoise=True)))
                return self._denoise[setting]
            stock = quality(self.reconstruction(setting))
            denoised = quality(self.reconstruction(setting, denoise=True)) if has_filter else stock
            self._denoise[setting] = (stock, denoised)
        return self._denoise[setting]

    def reconstruction(self, setting: ratecontrol.Setting, *, denoise: bool = False) -> np.ndarray:
        """What the stock decoder shows for ``setting`` (RGB uint8 at display size); ``denoise=True``:
        after the latent denoiser (`latent_filter`), by the decoder that filter names."""
        latent = self.latent(setting.scale)
        qp = quant_params(latent, setting.levels)
        coded_w, coded_h = setting.coded_size(*self.size)
        z = dequantize(quantize(latent, qp), qp)
        spec = self.latent_filter() if denoise else None
        model = self.model
        if spec is not None:
            z = denoiser.apply(denoiser.get_denoiser(spec.filter_id), z, qp)
            model = tuned_decoder.decoder_model(self.model, spec)
        return latent_to_rgb(model, z, coded_w, coded_h, *self.size)

    def pick_measured(self, fitting: list[ratecontrol.Setting]) -> ratecontrol.Setting:
        """Encoder-side RD decision between the best fitting setting of each resolution scale.

        The calibrated ladder says which (scale, levels) is better *on average*; per image the answer
        differs (a smooth photo survives half resolution, a detailed one does not). With effort
        ``default``/``max`` the encoder decodes the top candidates and keeps the one with the best
        MS-SSIM − LPIPS against the original. ``fast`` trusts the ladder.
        """
        width, height = self.size
        if self.effort == "fast" or len(fitting) == 1 or width * height > MEASURED_CHOICE_MAX_PIXELS:
            return fitting[0]

        def quality(setting: ratecontrol.Setting) -> float:
            return max(self._measured(setting))  # the final stream keeps the better decoder path

        return max(fitting[:MEASURED_CHOICE_CANDIDATES], key=quality)

    def upgrade(self, setting: ratecontrol.Setting, max_bytes: int) -> ratecontrol.Setting:
        """One quantizer rung finer at the same scale when its *final* stream still fits.

        The rate search sizes files with the fast coders (`codec.entropy.FAST_CODERS`); the final
        stream tries every coder, and the learned one (coder 5) is ≈ 3–7 % smaller on Kodak latents,
        often enough for one more level in the same bytes. One try (one extra final stream, no
        decoder pass), with `UPGRADE_RESERVE` bytes left for the tags the guard appends."""
        rungs = [q for q in ratecontrol.levels_for(setting.scale) if q > setting.levels]
        if not rungs:
            return setting
        finer = ratecontrol.Setting(setting.scale, min(rungs))
        if len(self.stream(finer)) + UPGRADE_RESERVE <= max_bytes:
            return finer
        return setting

    def refine_max(self, setting: ratecontrol.Setting, data: bytes, max_bytes: int | None) -> bytes:
        """Iterative RDO (effort ``max``) at the chosen setting; kept only when the file still fits the
        budget (refinement moves the latent, so its rate may change)."""
        latent = self.latent(setting.scale)
        qp = quant_params(latent, setting.levels)
        padded = pad_to_multiple(self.coded_rgb(setting.scale), self.model.downscale)
        image = to_tensor(padded).to(self.model.device)
        start = torch.from_numpy(latent).unsqueeze(0).to(self.model.device)
        refined = refine_latent(self.model, image, qp, "max", latent=start)
        candidate = EncodeSession(self.model, self.rgb, self.effort)
        candidate.set_latent(setting.scale, refined[0].detach().float().cpu().numpy())
        stream = candidate.stream(setting)
        if max_bytes is not None and len(stream) > max_bytes:
            return data
        return stream


def _metric_view(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` (H, W, 3) with its short side brought to at least `QUALITY_MIN_SIDE` px for the metrics:
    each pixel repeated (a nearest-neighbour magnification, so nothing is invented), or, when that would
    exceed `QUALITY_MAX_PIXELS`, edge-padded (a 2×40,000 strip)."""
    h, w = rgb.shape[:2]
    f = -(-QUALITY_MIN_SIDE // max(1, min(h, w)))
    if h * w * f * f <= QUALITY_MAX_PIXELS:
        return np.repeat(np.repeat(rgb, f, axis=0), f, axis=1)
    ph, pw = max(0, QUALITY_MIN_SIDE - h), max(0, QUALITY_MIN_SIDE - w)
    return np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="edge")
