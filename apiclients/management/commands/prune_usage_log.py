from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apiclients import usagelog


class Command(BaseCommand):
    help = "Delete usage log rows older than USAGE_LOG_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Keep this many days (default: {settings.USAGE_LOG_RETENTION_DAYS})",
        )

    def handle(self, *args, days, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1")
        kept = settings.USAGE_LOG_RETENTION_DAYS if days is None else days
        deleted = usagelog.prune(timezone.now(), days)
        self.stdout.write(
            f"Deleted {deleted} usage log row{'s' if deleted != 1 else ''} older than {kept} days."
        )
