from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from oauth import keys


class Command(BaseCommand):
    help = (
        "Make a new token signing key current. The old key is retired but stays in "
        "/.well-known/jwks.json until the tokens it signed have expired."
    )

    def handle(self, *args, **options):
        try:
            row = keys.rotate()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        window = settings.OAUTH["TOKEN_LIFETIME"] + int(keys.RELOAD_AFTER)
        self.stdout.write(
            f"New signing key {row.kid} is current. Running processes switch to it within "
            f"{int(keys.RELOAD_AFTER)} s; the retired key stays published for {window} s."
        )
