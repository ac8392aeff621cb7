from django.core.management.base import BaseCommand, CommandError

from apiclients.accounts import UserExists, user_create
from apiclients.models import Role


class Command(BaseCommand):
    help = "Create a console user in a tenant (created when missing) with a role."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--tenant", required=True, help="Tenant (organisation) name")
        parser.add_argument("--role", required=True, help=f"One of: {', '.join(Role.values)}")
        parser.add_argument("--password", help="Generated and printed when omitted")

    def handle(self, *args, username, tenant, role, password, **options):
        if role not in Role.values:
            raise CommandError(f"Unknown role {role!r}: choose one of {', '.join(Role.values)}")
        try:
            user, pw = user_create(
                username=username, tenant_name=tenant, role=role, password=password
            )
        except UserExists as exc:
            raise CommandError(f"A user named {username!r} already exists") from exc
        label = Role(role).label
        self.stdout.write(f"Created {user.username} ({label}) in tenant {tenant!r}.")
        if not password:
            self.stdout.write(f"Password: {pw}")
