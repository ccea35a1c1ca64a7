"""Optional CPU inference backends for the TAESD family: ONNX Runtime or OpenVINO on an ONNX export.

torch stays the reference and the default. With ``CODEC_BACKEND=openvino`` (or ``openvino-bf16``,
``onnxruntime``, or ``get_model(..., backend=...)``) the registry wraps the torch model in
:class:`OnnxAutoencoder`. Measured on the 2-core dev CPU (docs/bench/inference/2026-11-30.md, 2
threads, warm medians, loaded machine): OpenVINO f32 decodes 1.6× and encodes 1.7× faster than torch
at ~96 dB PSNR against it; ``openvino-bf16`` 3.2–3.5× at ~54 dB (bf16 arithmetic: near-exact, not
exact); ONNX Runtime 1.3–1.8×. ``openvino-bf16enc`` (the worker default of ``make run`` and
docker-compose) runs the image→latent graphs in bf16 where that is faster on the CPU at hand (measured
once per graph, `fastest_runner`; else f32) and decodes in f32, bit-identical to ``openvino``: on the
AMD EPYC of 2026-12-01 bf16 took a 768×512 photo's Upload→READY from 1.71–1.75 s to 1.44 s
(`scripts/bench_gallery.py --kodak 6`, A/B twice) at the same bytes and quality (12 photos × 3
budgets: mean LPIPS and MS-SSIM within 0.005 of f32; README "Measured"); on an Intel Xeon with
``avx512_bf16`` and no AMX the bf16 encoder was 1.8× slower than f32, so there it runs f32.

- The torch encoder/decoder (``(x*2-1)`` / ``(y+1)/2`` included, so the graphs speak the
  ``LatentAutoencoder`` convention) is exported to ONNX **at run time** with dynamic N, H, W into
  ``<cache root>/onnx/`` (``CODEC_CACHE_DIR``, see `codec.resources.locations.cache_root`). The file
  name carries a hash of the weights, the torch version and the opset, so new weights get a new file.
  Nothing exported is ever committed.
- Inference calls (no gradient wanted: ``torch.no_grad``/``inference_mode``, or an input that does not
  require grad) run on the engine; calls that need a gradient (the encoder-side RDO differentiates
  through ``decode``) and everything else (``.ae``) go to the wrapped torch model. The tuned encoder
  of effort ``default`` is exported the same way (`OnnxAutoencoder.engine_encoder`).
- Any spatial size works (dynamic axes), so the tiled decode of `codec.tiling` runs unchanged.
- Thread count: torch's (``CODEC_NUM_THREADS`` when set). Each engine is deterministic for a fixed
  thread count (checked in tests/codec/test_inference_backend.py and scripts/bench_inference.py);
  results differ from torch by float rounding only (PSNR numbers in docs/bench/inference/).
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codec.container.cost import TilingConfig
from codec.errors import UsageError
from codec.models.base import check_image_batch, check_latent_batch

BACKEND_ENV = "CODEC_BACKEND"
#: backend name → pip package that runs it (pinned in requirements.txt; the export also needs ``onnx``)
ENGINES: dict[str, str] = {"onnxruntime": "onnxruntime", "openvino": "openvino", "openvino-bf16": "openvino",
                           "openvino-bf16enc": "openvino"}
BACKENDS = ("torch", *ENGINES)
OPSET = 17
#: the tuned encoder runs on the engine only for inputs up to this many pixels (a whole photo up to
#: 1 MP, where it saves ≈ 40 % of the encoder pass); larger inputs (the 1.6 MP tiles of a big photo) run
#: on torch: OpenVINO's activation memory on them took a 12 MP photo's encode from 2.88 GB peak RSS
#: (torch) to 4.12 GB for 17 s saved (measured 2026-12-01), against a 3 GB target
ENGINE_ENCODER_MAX_PIXELS = 1_000_000
#: tiles of a large decode on the engine (`codec.tiling.decode_latent` reads ``decode_tiling``): cores of
#: 768 px, ≤ 1024² ≈ 1.05 MP with margins, instead of the default 1024 (≤ 1.6 MP). OpenVINO keeps the
#: buffers of the largest input it ran, so the tile bounds its memory: the 12 MP photo of bench-gallery
#: (fresh process, one face protected) peaked at 2.08 GB instead of 2.48 GB, in 109.9 s against 106.1 s
#: (run-to-run noise is ±5 s), the same file (2026-12-01; the encoder's tiles alone at 768: 2.49 GB,
#: both at 768: 2.01 GB / 101.7 s). The decode cost
#: estimate (`codec.container.cost`) keeps pricing the default tiles: ~14 % fewer pass pixels than these
#: on a huge image, but measured on torch, which decodes 1.6× slower than the engine — still an upper bound
ENGINE_DECODE_TILING = TilingConfig(tile=768)


def resolve_backend(backend: str | None = None) -> str:
    """``backend`` or ``$CODEC_BACKEND`` (default ``torch``), checked against :data:`BACKENDS`."""
    raw = backend if backend is not None else os.environ.get(BACKEND_ENV, "")
    name = (raw or "torch").strip().lower()
    if name not in BACKENDS:
        where = f"{BACKEND_ENV}={raw!r}" if backend is None else f"backend {raw!r}"
        raise UsageError(f"unknown inference backend ({where}); choose one of {', '.join(BACKENDS)}")
    return name


def import_engine(name: str) -> Any:
    """Import the engine's package (``name``: a key of :data:`ENGINES` or ``"onnx"``, the exporter's).

    A missing package raises a UsageError that says what to install.
    """
    package = ENGINES.get(name, name)
    try:
        return __import__(package)
    except ImportError as exc:
        raise UsageError(
            f"inference backend {name!r} needs the Python package {package!r}, which is not installed: "
            f"`pip install {package}` (version pinned in requirements.txt), or unset {BACKEND_ENV} "
            "to use torch"
        ) from exc


class DecodeGraph(torch.nn.Module):
    """Latent → image in [0, 1]: the decoder with the wrapper's affine, as one exportable module."""

    def __init__(self, ae: torch.nn.Module) -> None:
        super().__init__()
        self.decoder = ae.decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (self.decoder(z) + 1) / 2


class EncodeGraph(torch.nn.Module):
    """Image in [0, 1] → latent."""

    def __init__(self, ae: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = ae.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x * 2 - 1)


def graph_of(ae: torch.nn.Module, part: str) -> torch.nn.Module:
    """The exportable module of ``part`` ("enc" | "dec") of a diffusers ``AutoencoderTiny``."""
    return (DecodeGraph(ae) if part == "dec" else EncodeGraph(ae)).eval()


def export_onnx(module: torch.nn.Module, part: str, channels: int, path: str | os.PathLike[str]) -> Path:
    """Export ``module`` ("dec": latent → image, "enc": image → latent) to ``path`` with dynamic N, H, W.

    Exported in float32 and contiguous layout from a copy-free view of the weights; written to a
    temporary name and renamed, so a concurrent reader never sees half a file.
    """
    import_engine("onnx")  # torch's exporter needs it; say so before torch's own error
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    in_ch = channels if part == "dec" else 3
    example = torch.zeros(1, in_ch, 16, 16)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                module,
                (example,),
                str(tmp),
                dynamo=False,  # the TorchScript exporter needs no onnxscript and handles this graph
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "oh", 3: "ow"}},
                opset_version=OPSET,
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def onnx_cache_path(module: torch.nn.Module, model_name: str, part: str) -> Path:
    """``<cache root>/onnx/<model>-<part>-<hash>.onnx``; the hash covers weights, torch and opset."""
    from codec.resources import cache_root

    h = hashlib.sha256(f"{torch.__version__}|{OPSET}|{part}".encode())
    for key, t in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return cache_root() / "onnx" / f"{model_name}-{part}-{h.hexdigest()[:16]}.onnx"


def ort_runner(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """An ONNX Runtime CPU session on ``path`` as a numpy → numpy callable."""
    ort = import_engine("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle threads sleep instead of spinning: the CPU is shared with the web process and other workers
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda a: sess.run(None, {name: a})[0]


class OvRunner:
    """OpenVINO on the CPU for one ONNX file as a numpy → numpy callable (``precision``: f32 or bf16).

    One dynamic-shape compiled model serves every size (measured: as fast as a static-shape compile
    per size and bit-identical to it); one infer request per call, so threads may share it.

    The compiled model keeps the intermediate buffers of the largest input it has run (measured: a
    tiled 12 MP decode left the process at 1.9 GB RSS against 0.64 GB with torch, and the guard's
    block scores then peaked on top of it, 3.2 GB against a 3 GB target); `release` hands them back
    (``CompiledModel.release_memory``, 0.08 s; the next small call re-allocates what it needs).
    """

    def __init__(self, path: Path, threads: int, precision: str = "f32") -> None:
        self.precision = precision
        #: probe seconds per precision when `fastest_runner` chose this one
        self.timings: dict[str, float] | None = None
        ov = import_engine("openvino")
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": precision}  # f32: OpenVINO may pick bf16 on its own otherwise
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return self.compiled.create_infer_request().infer({0: a})[0]

    def release(self) -> None:
        self.compiled.release_memory()


def precision_of(engine: str, part: str) -> str:
    """OpenVINO precision of one graph: ``openvino-bf16`` runs all in bf16; ``openvino-bf16enc`` runs the
    image→latent graphs in whichever of bf16 and f32 is faster on this CPU (``"fastest"``: measured once
    per graph, `fastest_runner`) and the decoder in f32, so a file decodes to the same picture as with
    ``openvino``: what the guard checked is what a viewer sees; the encoder's rounding only moves the
    latent it codes."""
    if engine == "openvino-bf16":
        return "bf16"
    if engine == "openvino-bf16enc" and part != "dec":
        return "fastest"
    return "f32"


#: input of the timing probe of `fastest_runner` (an image batch: N, 3, H, W) and its repeats
PROBE_SHAPE = (1, 3, 256, 256)
PROBE_REPEATS = 3
#: bf16 must be at least this much faster than f32 to be chosen (it rounds; f32 is the reference)
BF16_MIN_GAIN = 0.9


def fastest_runner(path: Path, threads: int) -> OvRunner:
    """The faster of an f32 and a bf16 compile of the image→latent graph ``path`` on this CPU.

    Why measured, not read from the CPU flags: on 2026-12-01 two 2-core machines with ``avx512_bf16``
    disagreed. On an AMD EPYC the bf16 encoder took a 768×512 photo's Upload→READY from 1.71 to 1.44 s;
    on an Intel Xeon (no AMX) the same bf16 graph encoded kodim01 in 1.09 s against 0.60 s in f32 (median
    of 4, warm; torch f32 0.89 s). Cost: one more compile and 2 × `PROBE_REPEATS` small runs, once per
    graph and process (≈ 1 s at warm-up)."""
    import time

    probe = np.random.default_rng(0).random(PROBE_SHAPE, dtype=np.float32)
    timed: list[tuple[float, str, OvRunner]] = []
    for precision in ("f32", "bf16"):
        run = OvRunner(path, threads, precision)
        run(probe)  # first call: allocation
        times = []
        for _ in range(PROBE_REPEATS):
            start = time.perf_counter()
            run(probe)
            times.append(time.perf_counter() - start)
        timed.append((float(np.median(times)), precision, run))
    (f32_s, _, f32_run), (bf16_s, _, bf16_run) = timed
    best = bf16_run if bf16_s < BF16_MIN_GAIN * f32_s else f32_run
    best.timings = {"f32": f32_s, "bf16": bf16_s}
    return best


def ov_runner(path: Path, threads: int, precision: str = "f32") -> OvRunner:
    """`OvRunner` on ``path`` (``precision="fastest"``: `fastest_runner`)."""
    if precision == "fastest":
        return fastest_runner(path, threads)
    return OvRunner(path, threads, precision)


class OnnxAutoencoder:
    """A torch TAESD-family model whose inference calls run on ONNX Runtime or OpenVINO.

    Attributes the interface does not cover (``ae``, ``spec``, …) come from the wrapped torch model.
    """

    #: tiles of large decodes (`codec.tiling.decode_latent`): smaller than torch's, see the constant
    decode_tiling = ENGINE_DECODE_TILING

    def __init__(self, base: Any, engine: str) -> None:
        if engine not in ENGINES:
            raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        if getattr(base, "device", None) is None or base.device.type != "cpu" or not hasattr(base, "ae"):
            raise UsageError(f"backend {engine!r} serves the TAESD family on the CPU only")
        import_engine(engine)  # fail at load time, not at the first decode
        import_engine("onnx")
        self.base = base
        self.engine = engine
        for name in ("name", "model_id", "latent_channels", "downscale", "device", "dtype"):
            setattr(self, name, getattr(base, name))
        self.threads = torch.get_num_threads()
        self._runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        #: other image→latent stacks of this model served by the engine (`engine_encoder`)
        self._encoders: dict[str, torch.nn.Module] = {}
        self._lock = threading.Lock()
        #: engine calls in flight (`release_memory` waits for none: OpenVINO frees buffers only then)
        self._active = 0

    def __getattr__(self, name: str) -> Any:
        base = self.__dict__.get("base")
        if base is None:  # during copy/unpickle, before __dict__ is filled
            raise AttributeError(name)
        return getattr(base, name)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """A deep copy is a copy of the torch model (what callers copy to fine-tune, see base.py)."""
        import copy

        return copy.deepcopy(self.base, memo)

    def runner(self, part: str) -> Callable[[np.ndarray], np.ndarray]:
        """The engine's callable for ``part`` (exported to the cache and loaded on first use)."""
        with self._lock:
            run = self._runners.get(part)
            if run is None:
                module = self._encoders.get(part) or graph_of(self.base.ae, part)
                path = onnx_cache_path(module, self.name, part)
                if not path.is_file():
                    import copy

                    cpu = copy.deepcopy(module).float().to(memory_format=torch.contiguous_format)
                    export_onnx(cpu, "dec" if part == "dec" else "enc", self.latent_channels, path)
                if self.engine == "onnxruntime":
                    run = ort_runner(path, self.threads)
                else:
                    run = ov_runner(path, self.threads, precision_of(self.engine, part))
                self._runners[part] = run
        return run

    def _run(self, part: str, t: torch.Tensor) -> torch.Tensor:
        a = np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())
        run = self.runner(part)
        with self._lock:
            self._active += 1
        try:
            return torch.from_numpy(np.asarray(run(a), dtype=np.float32))
        finally:
            with self._lock:
                self._active -= 1

    def release_memory(self) -> bool:
        """Hand the engine's intermediate buffers back to the OS (`OvRunner.release`); called by
        `codec.tiling` after a large pass. Skipped (False) while another thread's call is in flight
        or for ONNX Runtime, whose sessions have no such call."""
        with self._lock:
            if self._active:
                return False
            released = False
            for run in self._runners.values():
                if isinstance(run, OvRunner):
                    run.release()
                    released = True
            return released

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return self.base.encode(x)
        check_image_batch(x, self.downscale)
        return self._run("enc", x)

    def engine_encoder(self, layers: torch.nn.Module, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """Another image→latent stack of this model on the engine: the tuned encoder of effort
        ``default`` (`codec.encoder.rdo.get_encoder`; input in [0, 1]). Exported once like the stock
        parts (its own hash); a call that needs a gradient runs the torch stack."""
        part = f"enc-{name}"
        with self._lock:
            self._encoders[part] = layers

        def run(x: torch.Tensor) -> torch.Tensor:
            big = x.shape[-2] * x.shape[-1] > ENGINE_ENCODER_MAX_PIXELS
            if big or (torch.is_grad_enabled() and x.requires_grad):
                with torch.inference_mode(not x.requires_grad):
                    return layers(x.to(self.device, self.dtype)).float()
            check_image_batch(x, self.downscale)
            return self._run(part, x)

        return run

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and z.requires_grad:
            return self.base.decode(z)  # gradients (encoder-side RDO) need torch
        check_latent_batch(z, self.latent_channels)
        return self._run("dec", z)

    def __repr__(self) -> str:
        return f"OnnxAutoencoder(name={self.name!r}, engine={self.engine!r}, threads={self.threads})"
