"""Re-queue photos whose encode task was lost and delete orphaned stored files (see gallery/sweeper.py)."""

from django.core.management.base import BaseCommand

from gallery import sweeper


class Command(BaseCommand):
    help = (
        "Re-queue photos left pending/encoding whose task is no longer in the broker, and delete stored "
        "files of photos that no longer exist. Safe to run at any time (the encode task is idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--pending-after", type=float, help="seconds a pending photo may wait")
        parser.add_argument("--encoding-after", type=float, help="seconds an encode may take")
        parser.add_argument("--orphans-after", type=float, help="minimum age of an orphaned file to delete")
        parser.add_argument("--dry-run", action="store_true", help="only report what would be done")

    def handle(self, *args, pending_after, encoding_after, orphans_after, dry_run, **options):
        report = sweeper.sweep(
            pending_after=pending_after,
            encoding_after=encoding_after,
            orphans_after=orphans_after,
            dry_run=dry_run,
        )
        for pid in report.requeued:
            self.stdout.write(f"{'would re-queue' if dry_run else 're-queued'} {pid}")
        for pid in report.requeue_failed:
            self.stderr.write(f"could not queue {pid} (broker unreachable?)")
        for name in report.orphans_deleted:
            self.stdout.write(f"{'would delete' if dry_run else 'deleted'} orphan {name}")
        style = self.style.WARNING if report.requeue_failed else self.style.SUCCESS
        self.stdout.write(style(report.summary()))
