"""The codec inside a worker process: loaded once, checked before the worker consumes, kept warm.

* ``check_setup()`` (torch-free): the configured model and effort exist and the model's weight
  files resolve with the right sha256. A Celery worker runs it with the gallery's system checks
  (``gallery.checks.worker_errors``) before it starts consuming (``RefuseWithoutModel`` bootstep
  below): a worker that cannot encode exits with a clear log line instead of taking photos off the
  queue only to put each back as "waiting".
* ``warm_up()``: each prefork child loads the model with a tiny encode when it starts (a threads-pool
  worker, the GPU worker with dynamic batching, warms once when it is ready).
* ``is_setup_problem(exc)``: errors about the machine, not the photo (kept originals, not counted).
"""

from __future__ import annotations

import logging
import time

from celery import bootsteps
from django.conf import settings

log = logging.getLogger(__name__)

#: exit status of a worker that refused to start (sysexits EX_CONFIG): supervisors can tell it
#: from a crash and should not restart it in a tight loop
EX_CONFIG = 78

_torch_configured = False


def decode_limits():
    """The limits of every decode a worker does (previews, downloads): the stored latent is bounded
    like an upload (``GALLERY_MAX_PIXELS``) and by its header's work estimate
    (``GALLERY_DECODE_MAX_WORK``, 0 = none), so a corrupted or forged row cannot hold a worker."""
    from codec.options import DecodeLimits

    work = settings.GALLERY_DECODE_MAX_WORK
    return DecodeLimits(max_pixels=settings.GALLERY_MAX_PIXELS, max_work=float(work) if work else None)


def load_codec():
    """Import the codec (and torch) lazily and cap torch's threads once per process."""
    global _torch_configured
    import codec

    if not _torch_configured:
        import torch

        torch.set_num_threads(max(1, settings.GALLERY_TORCH_THREADS))
        _torch_configured = True
    return codec


def codec_on_cuda() -> bool:
    """Whether this process's codec runs on a CUDA GPU (the codec's own device choice:
    ``CODEC_DEVICE``, else CUDA when available)."""
    from codec.device import resolve_device

    return resolve_device(None).type == "cuda"


def is_setup_problem(exc: BaseException) -> bool:
    """True for errors about the machine, not the photo: codec setup errors and out-of-memory."""
    import codec

    if isinstance(exc, codec.SetupError | MemoryError):
        return True
    # torch.OutOfMemoryError (CUDA or CPU allocator) without importing torch here
    return type(exc).__name__ == "OutOfMemoryError"


def model_files(model: str) -> list[str]:
    """Weight file names of a registered model (none for a model loaded from a directory)."""
    from codec.models import get_spec

    spec = get_spec(model)
    return [f for f in (spec.encoder_file, spec.decoder_file) if f]


def weight_problems(model: str, *, fetch: bool = False) -> list[str]:
    """Why the weight files of a registered ``model`` cannot be used here (empty: they can).

    ``fetch``: allow the codec to download a missing catalogued file (a worker may; the web process
    only checks). Never imports torch.
    """
    import codec
    from codec import resources

    problems = []
    for name in model_files(model):
        try:
            resources.resolve_file("models", name, fetch=fetch)
        except codec.CodecError as exc:  # missing (ModelNotFoundError) or damaged (WeightsChecksumError)
            problems.append(f"weights of {model!r}: {exc}")
        except OSError as exc:
            problems.append(f"weights of {model!r}: {name}: {exc}")
    return problems


def check_setup(*, fetch: bool = False) -> list[str]:
    """Problems that keep this process from encoding (empty when it can): effort, model, weights."""
    import codec
    from codec import options

    problems = []
    try:
        options.check_effort(settings.GALLERY_ENCODE_EFFORT)
    except codec.CodecError as exc:
        problems.append(f"GALLERY_ENCODE_EFFORT: {exc}")
    try:
        model_files(settings.GALLERY_CODEC_MODEL)
    except codec.CodecError as exc:
        return [*problems, f"GALLERY_CODEC_MODEL: {exc}"]
    return problems + weight_problems(settings.GALLERY_CODEC_MODEL, fetch=fetch)


def warm_up() -> None:
    """Load the configured model into this process (the codec registry keeps it) with a tiny encode."""
    import numpy as np

    codec = load_codec()
    started = time.monotonic()
    # "max" refines iteratively; its encoder network is the "default" one, which is what must load
    effort = "default" if settings.GALLERY_ENCODE_EFFORT == "max" else settings.GALLERY_ENCODE_EFFORT
    codec.encode(
        np.full((64, 64, 3), 128, np.uint8), max_bytes=4096, model=settings.GALLERY_CODEC_MODEL, effort=effort
    )
    log.info("codec warmed up in %.1f s", time.monotonic() - started)
    from gallery.checks import check_text_ocr

    for warning in check_text_ocr():  # a worker's log says when photos' text goes unchecked
        log.warning("%s (%s) %s", warning.msg, warning.id, warning.hint or "")


def limit_memory(limit_bytes: int) -> bool:
    """Cap this process's address space (``RLIMIT_AS``) at ``limit_bytes`` (never above the hard
    limit already set); False where the platform has no such limit. Called in each pool child."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return False
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    value = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (value, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not limit the worker's memory to %d bytes: %s", limit_bytes, exc)
        return False
    log.info("pool process memory limited to %.1f GiB (address space)", value / 2**30)
    return True


def consumes_encodes(queue_names) -> bool:
    """Whether a worker consuming ``queue_names`` runs codec tasks (a maintenance-only one does not)."""
    return settings.GALLERY_GPU_QUEUE in set(queue_names)


class RefuseWithoutModel(bootsteps.StartStopStep):
    """Worker bootstep, created before the consumer starts: exit when this worker cannot encode.

    Runs ``check_setup`` (settings + weight files with sha256; may download a catalogued file) in
    the worker's main process. On a problem it logs one CRITICAL line naming it and exits with
    status 78 (EX_CONFIG) without having taken a single message from the broker. A worker that
    consumes only the ``maintenance`` queue is not checked (it never loads the model).
    """

    label = "gallery: codec setup check"

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        amqp_queues = worker.app.amqp.queues
        queues = list(amqp_queues.consume_from) if amqp_queues else []
        if not settings.GALLERY_WORKER_CHECK_MODEL or (queues and not consumes_encodes(queues)):
            return
        from gallery import checks

        check_setup(fetch=True)  # a catalogued weight file missing everywhere is downloaded here
        problems = [m.msg for m in checks.worker_errors()]
        if problems:
            log.critical(
                "worker refuses to consume: %s. Fix the deployment and start the worker again; "
                "queued photos wait with their originals kept.",
                "; ".join(problems),
            )
            raise SystemExit(EX_CONFIG)
