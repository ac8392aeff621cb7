"""Sign-in with limits on password guessing.

Failed attempts are counted per (username, source address), per source
address and per username, on the shared cache. A per-username limit alone
would let anyone lock an admin out; the pair limit stops guessing against one
account from one place early, the wider ones stop spraying and distributed
guessing. Once over a limit the password is not even checked (no Argon2 CPU
burnt), and the form says when to try again.

The wider limits must not become a way to lock people out (OWASP's
authentication guidance; Keycloak's brute force detection counts the same
way). A user who has signed in from an address is remembered there for
LOGIN_KNOWN_ADDRESS_DAYS: the per-address and per-username limits do not
apply to them from it, so someone else's failures from a shared office NAT,
or a botnet guessing their password, do not lock them out. The pair limit
still does: guessing that user's password from that address stays as slow.

A username holding a client secret (pasted into the wrong field) is counted
and remembered under a digest, so the secret is in no cache key; a log line
shows it withheld, and the form does not show it again.

When the cache cannot be reached, sign-in goes on without the limits (a
warning is logged, at most once a minute per process): an outage of Redis
must not stop every admin from signing in, and the password is still checked.
"""

import logging
import time

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

from apiclients import secrets
from apiclients.models import Membership
from apiclients.roles import source_ip
from config import ratelimit, redis
from config.ratelimit import Count, Limit
from oauth import clientcache, coherence

logger = logging.getLogger("apiclients.signin")

_last_warning = [float("-inf")]


def _cache_unavailable(exc: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= 60:
        _last_warning[0] = now
        logger.warning(
            "Sign-in limits are not enforced: the cache is unavailable (%s)", type(exc).__name__
        )


def _limits() -> dict[str, Limit]:
    window = settings.LOGIN_FAILURE_WINDOW
    return {
        "pair": Limit("login-pair", settings.LOGIN_FAILURES_PER_USER_AND_IP, window),
        "ip": Limit("login-ip", settings.LOGIN_FAILURES_PER_IP, window),
        "user": Limit("login-user", settings.LOGIN_FAILURES_PER_USER, window),
    }


# Limits a user who has signed in from the address is exempt from.
_WAIVED_WHEN_KNOWN = frozenset({"ip", "user"})


def username_subject(username: str) -> str:
    """The name a username is counted and remembered under: itself
    (case-insensitive), or a digest when it holds a client secret."""
    normal = username.strip().lower()
    if secrets.contains_secret(username):
        return f"(secret-{secrets.digest(normal)[:16]})"
    return normal[:150]


def _known_key(user: str, ip: str) -> str:
    return f"login-known:{user}|{ip}"


def _subjects(user: str, ip: str) -> dict[str, str]:
    return {"pair": f"{user}|{ip}", "ip": ip, "user": user}


def password_wait(user: str, ip: str) -> int | None:
    """Seconds until a password may be tried for `user` (username_subject)
    from `ip`, or None: it may be now. Nothing is counted. Without Redis,
    None (and a warning): the password is still checked, with Argon2."""
    limits, subjects = _limits(), _subjects(user, ip)
    kinds = list(limits)
    try:
        outcomes = ratelimit.count_many(
            [Count(limits[kind], subjects[kind], cost=0) for kind in kinds]
        )
        known = cache.get(_known_key(user, ip)) is not None
    except redis.ERRORS as exc:
        _cache_unavailable(exc)
        return None
    waits = [
        outcome.reset_after
        for kind, outcome in zip(kinds, outcomes, strict=True)
        # count + 1 > limit: this attempt would be one failure too many.
        if outcome.count >= outcome.limit.limit and not (known and kind in _WAIVED_WHEN_KNOWN)
    ]
    return max(waits) if waits else None


def password_tried(user: str, ip: str, *, succeeded: bool) -> None:
    """Counts a wrong password, or remembers the address of a right one."""
    try:
        if succeeded:
            # Known here: refreshed on every sign-in.
            days = settings.LOGIN_KNOWN_ADDRESS_DAYS
            if days > 0 and ip != "unknown":
                cache.set(_known_key(user, ip), 1, timeout=days * 86400)
            return
        limits, subjects = _limits(), _subjects(user, ip)
        ratelimit.count_many([Count(limits[kind], subjects[kind]) for kind in limits])
    except redis.ERRORS as exc:
        _cache_unavailable(exc)


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-in attempts. Try again in %(minutes)s.",
    }

    def clean(self):
        user = username_subject(self.data.get("username") or "")
        ip = source_ip(self.request) or "unknown"
        wait = password_wait(user, ip)
        if wait is not None:
            logger.warning(
                "Sign-in refused for %r from %s: too many failed attempts",
                secrets.redact((self.data.get("username") or "")[:150]),
                ip,
            )
            self.retry_after = wait
            minutes = max(1, round(wait / 60))
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": f"{minutes} minute{'s' if minutes != 1 else ''}"},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            password_tried(user, ip, succeeded=False)
            raise
        password_tried(user, ip, succeeded=True)
        return cleaned


class SignInView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        # Signing in wrote the user's last login, which the users API shows.
        if coherence.enabled():
            tenants = Membership.objects.filter(user=form.get_user()).values_list("tenant_id")
            for (tenant_id,) in tenants:
                clientcache.users_changed(tenant_id)
        return response

    def form_invalid(self, form):
        if secrets.contains_secret(form.data.get("username") or ""):
            # A secret typed as the username is not shown back in the form.
            form.data = form.data.copy()
            form.data["username"] = ""
        response = super().form_invalid(form)
        if form.has_error("__all__", "throttled"):
            response.status_code = 429
            # What is left of the window (fixed windows).
            response["Retry-After"] = str(
                getattr(form, "retry_after", 0) or settings.LOGIN_FAILURE_WINDOW
            )
        return response
