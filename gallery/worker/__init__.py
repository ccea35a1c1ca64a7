"""The worker side of the gallery (Celery processes; the only place that imports torch).

* ``tasks``: the Celery tasks (names are stable: ``gallery.encode_photo``, ``gallery.render_previews``
  on queue ``gpu``; ``gallery.sweep`` on queue ``maintenance``). Thin wrappers.
* ``pipeline``: a photo's life on the worker: staged original → latent + comparisons → ready.
* ``runtime``: loading the codec and its model once per process, the start-up check that makes a
  worker refuse to consume when its model cannot load, and the warm-up.

Importing this package (or ``tasks``) does not import torch; the task bodies do.
"""
