from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Latent gallery"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        from . import checks  # noqa: F401  (registers the system checks)

        # Pillow's decompression-bomb guard: warn above the limit, refuse at twice the limit. The
        # upload validator turns the warning into a rejection too (gallery/validation.py).
        Image.MAX_IMAGE_PIXELS = settings.GALLERY_MAX_PIXELS
