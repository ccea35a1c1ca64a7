"""Celery application. Workers: ``celery -A config worker -Q gpu -c 1``.

Configuration comes from Django settings (``CELERY_*`` names). Gallery tasks are routed to the
``gpu`` queue; the codec (and torch) is only imported inside those tasks.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
