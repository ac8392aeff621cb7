"""Who may read the console and who may change it: decided here, once.

`console_reader` and `console_admin` wrap every console view. They set
`request.tenant` and `request.can_manage`; templates get the same answer as
`can_manage` (and `can_read`) from the context processor.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.shortcuts import render

from apiclients.models import Membership, Role
from config.proxies import client_address

READ_ROLES = frozenset({Role.CLOUD_ADMIN, Role.AUDITOR})
MANAGE_ROLES = frozenset({Role.CLOUD_ADMIN})


def membership_of(user) -> Membership | None:
    """The user's membership with its tenant, in one query per request."""
    if not user.is_authenticated:
        return None
    if not hasattr(user, "_console_membership"):
        user._console_membership = (
            Membership.objects.select_related("tenant").filter(user=user).first()
        )
    return user._console_membership


def can_read(user) -> bool:
    m = membership_of(user)
    return m is not None and m.role in READ_ROLES


def can_manage(user) -> bool:
    m = membership_of(user)
    return m is not None and m.role in MANAGE_ROLES


def _forbidden(request: HttpRequest, *, needs_admin: bool):
    membership = membership_of(request.user)
    return render(
        request,
        "403.html",
        {
            "needs_admin": needs_admin,
            "membership": membership,
        },
        status=403,
    )


def _gate(predicate, *, needs_admin: bool):
    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not predicate(request.user):
                return _forbidden(request, needs_admin=needs_admin)
            membership = membership_of(request.user)
            request.tenant = membership.tenant
            request.can_manage = membership.role in MANAGE_ROLES
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


console_reader = _gate(can_read, needs_admin=False)
console_admin = _gate(can_manage, needs_admin=True)


def context_processor(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_manage": False, "can_read": False, "membership": None}
    # can_read decides whether the console's navigation is shown at all: a
    # user without a role gets no links to pages that would refuse them.
    return {
        "can_manage": can_manage(user),
        "can_read": can_read(user),
        "membership": membership_of(user),
    }


def source_ip(request: HttpRequest) -> str | None:
    """The client's address: behind trusted proxies, the one they name
    (config.proxies decides it)."""
    return client_address(request)
