"""Sudo mode: the admin's password again before a destructive action on a
credential (reset, rotation, deletion), as GitHub's sudo mode and Stripe's
roll-key dialog ask. A correct password opens a window of
CONSOLE_SUDO_SECONDS (300 by default; 0 asks every time) in the session, in
which the next such actions do not ask again.

Wrong passwords count against the sign-in limits (apiclients.signin), under
the same names and subjects: a stolen session gets no more guesses here than
the sign-in page gives.
"""

import time

from django.conf import settings
from django.http import HttpRequest

from apiclients import signin
from apiclients.roles import source_ip

SESSION_KEY = "console_sudo_until"


def window_seconds() -> int:
    return settings.CONSOLE_SUDO_SECONDS


def is_active(request: HttpRequest) -> bool:
    until = request.session.get(SESSION_KEY)
    return isinstance(until, int | float) and until > time.time()


def start(request: HttpRequest) -> None:
    if window_seconds() > 0:
        request.session[SESSION_KEY] = time.time() + window_seconds()


def _who(request: HttpRequest) -> tuple[str, str]:
    return signin.username_subject(request.user.get_username()), source_ip(request) or "unknown"


def throttled_minutes(request: HttpRequest) -> int | None:
    """Minutes until another password may be tried, when over a sign-in
    limit (the same limits as signing in: apiclients.signin)."""
    wait = signin.password_wait(*_who(request))
    return None if wait is None else max(1, round(wait / 60))


def check_password(request: HttpRequest, password: str) -> bool:
    """Checks the signed-in user's password; a correct one starts sudo mode,
    a wrong one counts as a failed sign-in."""
    succeeded = request.user.check_password(password)
    signin.password_tried(*_who(request), succeeded=succeeded)
    if succeeded:
        start(request)
    return succeeded
