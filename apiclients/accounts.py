"""Console users: create a user with a tenant and a role (operator commands)."""

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from apiclients.models import Membership, Role, Tenant
from oauth import clientcache


class UserExists(Exception):
    pass


def user_create(
    *, username: str, tenant_name: str, role: str, password: str | None = None
) -> tuple[object, str]:
    """Creates the tenant when needed and the user with that role. Returns the
    user and the password (generated when none was given)."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}: choose one of {', '.join(Role.values)}")
    User = get_user_model()
    password = password or secrets.token_urlsafe(12)
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise UserExists(username)
        tenant, _ = Tenant.objects.get_or_create(name=tenant_name)
        user = User.objects.create_user(username=username, password=password)
        Membership.objects.create(user=user, tenant=tenant, role=role)
        # The users API's pages of the tenant, in every process (oauth.coherence).
        clientcache.users_changed(tenant.pk)
    return user, password
