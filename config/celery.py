"""Celery application. Workers: ``celery -A config worker -c 1`` (queues ``gpu`` + ``maintenance``).

Configuration comes from Django settings (``CELERY_*`` names). The tasks live in
``gallery.worker.tasks`` (names ``gallery.*``, routes in settings); the codec (and torch) is only
imported inside those tasks. A worker that cannot load its model refuses to start consuming
(``gallery.worker.runtime.RefuseWithoutModel``).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Django apps' ``tasks`` modules, and the gallery's worker package, whose module is not called that.
app.autodiscover_tasks()
app.autodiscover_tasks(["gallery.worker"])


def _add_worker_steps() -> None:
    from gallery.worker.runtime import RefuseWithoutModel

    app.steps["worker"].add(RefuseWithoutModel)


_add_worker_steps()
