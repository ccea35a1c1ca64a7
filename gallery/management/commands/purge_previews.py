"""Delete preview cache files; they are re-rendered from the latents on the next request."""


from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from gallery import previews
from gallery.models import Photo
from gallery.sweeper import is_uuid


class Command(BaseCommand):
    help = "Delete preview cache files (all, or those of the given photo ids). The latents are untouched."

    def add_arguments(self, parser):
        parser.add_argument("photo_ids", nargs="*", help="photo UUIDs; default: every photo")

    def handle(self, *args, photo_ids, **options):
        if photo_ids:
            bad = [p for p in photo_ids if not is_uuid(p)]
            if bad:
                raise CommandError(f"not a photo id: {', '.join(bad)}")
            photos = list(Photo.objects.filter(pk__in=photo_ids))
            missing = set(photo_ids) - {str(p.pk) for p in photos}
            if missing:
                raise CommandError(f"unknown photo id(s): {', '.join(sorted(missing))}")
            results = [previews.purge(p.pk) for p in photos]
        else:
            results = [previews.purge()]
        files = sum(f for f, _ in results)
        total = sum(b for _, b in results)
        self.stdout.write(self.style.SUCCESS(f"Removed {files} preview file(s), {filesizeformat(total)}."))
