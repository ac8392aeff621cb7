from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apiclients.accounts import user_create
from apiclients.models import Role


class Command(BaseCommand):
    help = "On an empty database, create a first tenant and Customer Cloud Admin."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--tenant", default="My Organisation")

    def handle(self, *args, username, tenant, **options):
        if get_user_model().objects.exists():
            return
        user, password = user_create(username=username, tenant_name=tenant, role=Role.CLOUD_ADMIN)
        self.stdout.write(
            "\nFirst Customer Cloud Admin created (this is shown once):\n"
            f"  username: {user.username}\n"
            f"  password: {password}\n"
            f"  tenant:   {tenant}\n"
        )
