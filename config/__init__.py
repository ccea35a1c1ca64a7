"""Django project package. Importing it makes the Celery app available for ``@shared_task``."""

from .celery import app as celery_app

__all__ = ("celery_app",)
