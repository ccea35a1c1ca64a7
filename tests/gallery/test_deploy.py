"""Settings from the environment, the production profile, and the docker-compose stack."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

SECRET = "k3y-" + "x9Qz" * 15


def run_python(project_root, code: str, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_STORAGE_BUCKET_NAME"}}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=project_root,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s;"
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']),"
    "'storage': s.STORAGES['default']['BACKEND'], 'opts': s.STORAGES['default'].get('OPTIONS', {}),"
    "'broker': s.CELERY_BROKER_URL, 'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS}, default=str))"
)


def test_defaults_sqlite_under_var_and_local_media(project_root, tmp_path):
    out = run_python(
        project_root,
        SHOW,
        DJANGO_SETTINGS_MODULE="config.settings",
        GALLERY_VAR_DIR=str(tmp_path),
        REDIS_URL="redis://127.0.0.1:6379/3",
        ALLOWED_HOSTS="a.example,b.example",
        DEBUG="0",
    )
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)
    assert cfg["db"] == "django.db.backends.sqlite3" and cfg["name"] == str(tmp_path / "db.sqlite3")
    assert cfg["storage"] == "django.core.files.storage.FileSystemStorage"
    assert cfg["broker"] == "redis://127.0.0.1:6379/3"
    assert cfg["hosts"] == ["a.example", "b.example"] and cfg["debug"] is False


def test_database_url_and_s3_from_environment(project_root, tmp_path):
    out = run_python(
        project_root,
        SHOW,
        DJANGO_SETTINGS_MODULE="config.settings",
        GALLERY_VAR_DIR=str(tmp_path),
        DATABASE_URL="postgres://u:p@db.example:5432/gallery",
        AWS_STORAGE_BUCKET_NAME="photos",
        AWS_S3_ENDPOINT_URL="http://minio:9000",
        CELERY_BROKER_URL="redis://broker:6379/0",
    )
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)
    assert cfg["db"] == "django.db.backends.postgresql" and cfg["name"] == "gallery"
    assert cfg["storage"] == "storages.backends.s3.S3Storage"
    assert cfg["opts"]["bucket_name"] == "photos" and cfg["opts"]["endpoint_url"] == "http://minio:9000"
    assert cfg["opts"]["default_acl"] == "private"
    assert cfg["broker"] == "redis://broker:6379/0"


def test_production_check_deploy_is_clean(project_root, tmp_path):
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": SECRET,
            "ALLOWED_HOSTS": "gallery.example.com",
            "GALLERY_VAR_DIR": str(tmp_path),
        },
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_production_refuses_missing_secret(project_root, tmp_path):
    out = run_python(
        project_root,
        "import django; django.setup()",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="",
        ALLOWED_HOSTS="x.example",
        GALLERY_VAR_DIR=str(tmp_path),
    )
    assert out.returncode != 0 and "SECRET_KEY must be set" in out.stderr


# Compose's variable syntax: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR
_COMPOSE_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation (what `docker compose config` does before it parses)."""

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        value, op = env.get(name), match["op"]
        if op in {":-", "-"}:
            missing = not value if op == ":-" else value is None
            return match["arg"] if missing else value
        if op in {":?", "?"} and (not value if op == ":?" else value is None):
            raise ValueError(f"required variable {name} is missing: {match['arg']}")
        return value or ""

    return _COMPOSE_VAR.sub(substitute, text)


def parse_compose(text: str, env: dict[str, str]) -> dict:
    """Interpolate, resolve YAML anchors/merge keys, then parse and validate with ``compose_spec``
    (Python bindings of the Rust compose_spec crate, a typed model of the compose specification:
    unknown keys, wrong types, bad durations or enum values are errors)."""
    from compose_spec import PyCompose

    data = yaml.safe_load(interpolate(text, env))
    compose = PyCompose.from_json(json.dumps(data))
    compose.validate()
    return compose.to_dict()


COMPOSE_ENV = {"SECRET_KEY": SECRET, "POSTGRES_PASSWORD": "pw"}


def _compose_config(project_root) -> dict:
    """`docker compose config` when the client has the compose plugin, else the compose_spec parser."""
    env = {**os.environ, **COMPOSE_ENV}
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        out = subprocess.run(
            [docker, "compose", "config", "--format", "json"],
            cwd=project_root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)
    return parse_compose((project_root / "docker-compose.yml").read_text(), COMPOSE_ENV)


def test_compose_parser_is_strict(project_root):
    """The parser used above really checks the specification (so a passing test means something)."""
    text = (project_root / "docker-compose.yml").read_text()
    parse_compose(text, COMPOSE_ENV)
    broken = {
        "misspelt key": text.replace("restart: unless-stopped", "restrat: unless-stopped", 1),
        "bad duration": text.replace("stop_grace_period: 2m", "stop_grace_period: forever"),
        "bad device count": text.replace("count: 1", "count: many"),
        "capabilities not a list": text.replace("capabilities: [gpu]", "capabilities: gpu"),
        "unknown depends_on condition": text.replace("condition: service_healthy", "condition: healthy", 1),
    }
    for what, variant in broken.items():
        assert variant != text, what
        with pytest.raises(ValueError):
            parse_compose(variant, COMPOSE_ENV)
    with pytest.raises(ValueError, match="SECRET_KEY"):
        parse_compose(text, {"POSTGRES_PASSWORD": "pw"})


def test_docker_compose_services(project_root):
    cfg = _compose_config(project_root)
    services = cfg["services"]
    assert {"web", "worker", "maintenance", "redis", "postgres"} <= set(services)
    web, worker, maintenance = services["web"], services["worker"], services["maintenance"]

    web_cmd = web["command"] if isinstance(web["command"], str) else " ".join(web["command"])
    assert "gunicorn config.wsgi" in web_cmd and "migrate" in web_cmd
    assert web["build"]["target"] == "web" and worker["build"]["target"] == "worker"
    assert web["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert web["environment"]["DATABASE_URL"].startswith("postgres://")
    assert web["environment"]["REDIS_URL"].startswith("redis://redis:6379")
    assert "/healthz" in " ".join(web["healthcheck"]["test"])

    # GPU worker: the codec queue, one process of threads whose passes are batched, one reserved
    # NVIDIA device, no beat
    worker_cmd = " ".join(worker["command"]) if isinstance(worker["command"], list) else worker["command"]
    assert "-Q gpu" in worker_cmd and "-P threads" in worker_cmd and " -B" not in worker_cmd
    concurrency = int(worker_cmd.split("-c ", 1)[1].split()[0])
    assert int(worker["environment"]["CODEC_BATCH_MAX"]) > 1 and concurrency >= int(
        worker["environment"]["CODEC_BATCH_MAX"])
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"] and int(device["count"]) == 1
    assert "ports" not in worker
    # Comparisons worker: the queue the app env names, no GPU, no beat
    comparisons = services["comparisons"]
    comparisons_cmd = " ".join(comparisons["command"])
    queue = web["environment"]["GALLERY_COMPARISONS_QUEUE"]
    assert f"-Q {queue}" in comparisons_cmd and " -B" not in comparisons_cmd and "deploy" not in comparisons
    assert worker["environment"]["GALLERY_COMPARISONS_QUEUE"] == queue and "-Q gpu" in worker_cmd
    # Maintenance worker: the sweeper queue and the stack's only beat, no GPU
    maint_cmd = " ".join(maintenance["command"])
    assert "-Q maintenance" in maint_cmd and " -B" in maint_cmd and "deploy" not in maintenance
    beats = [name for name, svc in services.items() if " -B" in " ".join(svc.get("command") or [])]
    assert beats == ["maintenance"]

    # Redis keeps queued work across restarts (append-only file on a volume)
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd

    volumes = set(cfg["volumes"])
    assert {"pgdata", "redisdata", "media"} <= volumes

    def mounts(svc):
        return " ".join(
            v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in svc["volumes"]
        )

    for name, svc in services.items():  # every named volume a service mounts is declared
        for mount in (svc.get("volumes") or []):
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                assert source in volumes, (name, source)
    assert "media:/data/media" in mounts(web) and "media:/data/media" in mounts(worker)
    assert "media:/data/media" in mounts(maintenance)
    assert "redisdata:/data" in mounts(services["redis"])
    assert "pgdata" in mounts(services["postgres"])
    for svc in ("web", "worker", "maintenance"):
        assert {"postgres", "redis"} <= set(services[svc]["depends_on"])


def test_dockerfile_web_image_has_no_torch(project_root):
    text = (project_root / "Dockerfile").read_text()
    assert "AS web" in text and "AS worker" in text
    web_stage = text.split("AS web", 1)[1].split("FROM base AS worker", 1)[0]
    assert "grep -vE '^(torch|" in web_stage and "collectstatic" in web_stage and "gunicorn" in web_stage


def test_web_process_never_imports_torch(project_root, tmp_path):
    """URLconf, views, tasks, admin and a rendered page: torch stays out of the web process."""
    code = (
        "import sys, django; django.setup();"
        "from django.test.utils import setup_test_environment; setup_test_environment();"
        "from django.core.management import call_command; call_command('migrate', verbosity=0);"
        "import config.urls, gallery.views, gallery.tasks, gallery.admin, gallery.services, gallery.stats;"
        "import codec, codec.errors;"
        "from django.urls import resolve; resolve('/'); resolve('/upload/');"
        "from django.contrib.auth.models import User; from django.test import Client;"
        "u = User.objects.create_user('w', password='pw-pw-pw-1', is_staff=True);"
        "c = Client(); c.force_login(u);"
        "assert c.get('/').status_code == 200; assert c.get('/upload/').status_code == 200;"
        "assert c.get('/stats/').status_code == 200;"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    out = run_python(
        project_root,
        code,
        DJANGO_SETTINGS_MODULE="config.settings",
        GALLERY_VAR_DIR=str(tmp_path),
        REDIS_URL="redis://127.0.0.1:1/0",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["False", "False"]


@pytest.mark.django_db
def test_ensure_admin_from_environment(monkeypatch, capsys, django_user_model):
    from django.core.management import call_command

    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "boss")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-very-long-password-7")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "boss@example.com")
    call_command("ensure_admin")
    boss = django_user_model.objects.get(username="boss")
    assert boss.is_superuser and boss.check_password("a-very-long-password-7")
    call_command("ensure_admin")  # idempotent
    assert "exists" in capsys.readouterr().out


@pytest.mark.django_db
def test_ensure_admin_generates_and_prints(monkeypatch, capsys, settings, tmp_path, django_user_model):
    from django.core.management import call_command

    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    settings.VAR_DIR = tmp_path
    call_command("ensure_admin", "--only-from-env")
    assert not django_user_model.objects.exists()
    call_command("ensure_admin")
    out = capsys.readouterr().out
    password = out.split("password ", 1)[1].split()[0]
    assert django_user_model.objects.get(username="admin").check_password(password)
    assert password in (tmp_path / "admin-credentials.txt").read_text()
