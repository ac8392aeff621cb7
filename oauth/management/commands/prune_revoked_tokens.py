from django.core.management.base import BaseCommand

from oauth.tokens import revoked_tokens_prune


class Command(BaseCommand):
    help = "Forget revoked tokens that have expired (revocation also does this as it goes)."

    def handle(self, *args, **options):
        self.stdout.write(f"Removed {revoked_tokens_prune()} expired revoked token(s).")
