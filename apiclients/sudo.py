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

import environ
from django.conf import settings
from django.http import HttpRequest

from apiclients.roles import source_ip
from config import ratelimit
from config.ratelimit import Limit

SESSION_KEY = "console_sudo_until"
_DEFAULT_SECONDS = environ.Env().int("CONSOLE_SUDO_SECONDS", default=300)


def window_seconds() -> int:
    return int(getattr(settings, "CONSOLE_SUDO_SECONDS", _DEFAULT_SECONDS))


def is_active(request: HttpRequest) -> bool:
    until = request.session.get(SESSION_KEY)
    return isinstance(until, int | float) and until > time.time()


def start(request: HttpRequest) -> None:
    if window_seconds() > 0:
        request.session[SESSION_KEY] = time.time() + window_seconds()


def _limits(request: HttpRequest) -> list[tuple[Limit, str]]:
    window = settings.LOGIN_FAILURE_WINDOW
    username = request.user.get_username().strip().lower()[:150]
    ip = source_ip(request) or "unknown"
    return [
        (Limit("login-pair", settings.LOGIN_FAILURES_PER_USER_AND_IP, window), f"{username}|{ip}"),
        (Limit("login-ip", settings.LOGIN_FAILURES_PER_IP, window), ip),
        (Limit("login-user", settings.LOGIN_FAILURES_PER_USER, window), username),
    ]


def throttled_minutes(request: HttpRequest) -> int | None:
    """Minutes until another password may be tried, when over a limit."""
    for limit, subject in _limits(request):
        outcome = ratelimit.peek(limit, subject)
        if outcome.count >= limit.limit:
            return max(1, round(outcome.reset_after / 60))
    return None


def check_password(request: HttpRequest, password: str) -> bool:
    """Checks the signed-in user's password; a correct one starts sudo mode,
    a wrong one counts as a failed sign-in."""
    if request.user.check_password(password):
        start(request)
        return True
    for limit, subject in _limits(request):
        ratelimit.hit(limit, subject)
    return False
