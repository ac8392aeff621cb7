"""Sign-in with limits on password guessing.

Failed attempts are counted per (username, source address), per source
address and per username, on the shared cache. A per-username limit alone
would let anyone lock an admin out; the pair limit stops guessing against one
account from one place early, the wider ones stop spraying and distributed
guessing. Once over a limit the password is not even checked (no Argon2 CPU
burnt), and the form says when to try again.
"""

import logging

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from apiclients.models import Membership
from apiclients.roles import source_ip
from config import ratelimit, redis
from config.ratelimit import Limit
from oauth import clientcache, coherence

logger = logging.getLogger(__name__)


def _limits() -> list[tuple[Limit, str]]:
    window = settings.LOGIN_FAILURE_WINDOW
    return [
        (Limit("login-pair", settings.LOGIN_FAILURES_PER_USER_AND_IP, window), "pair"),
        (Limit("login-ip", settings.LOGIN_FAILURES_PER_IP, window), "ip"),
        (Limit("login-user", settings.LOGIN_FAILURES_PER_USER, window), "user"),
    ]


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-in attempts. Try again in %(minutes)s.",
    }

    def _subjects(self) -> dict[str, str]:
        username = (self.data.get("username") or "").strip().lower()[:150]
        ip = source_ip(self.request) or "unknown"
        return {"pair": f"{username}|{ip}", "ip": ip, "user": username}

    def clean(self):
        subjects = self._subjects()
        for limit, kind in _limits():
            # peek + 1: this attempt would be one more failure.
            outcome = _unless_down(ratelimit.peek, limit, subjects[kind])
            if outcome is not None and outcome.count >= limit.limit:
                minutes = max(1, round(outcome.reset_after / 60))
                raise ValidationError(
                    self.error_messages["throttled"],
                    code="throttled",
                    params={"minutes": f"{minutes} minute{'s' if minutes != 1 else ''}"},
                )
        try:
            return super().clean()
        except ValidationError:
            for limit, kind in _limits():
                _unless_down(ratelimit.hit, limit, subjects[kind])
            raise


def _unless_down(call, *args):
    """Sign-in goes on without its limits while Redis is unavailable: the
    password is still checked (with Argon2, slow on purpose)."""
    try:
        return call(*args)
    except redis.ERRORS as exc:
        logger.warning("Sign-in limits not enforced: Redis is unavailable (%r)", exc)
        return None


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
        response = super().form_invalid(form)
        if form.has_error("__all__", "throttled"):
            response.status_code = 429
            response["Retry-After"] = str(settings.LOGIN_FAILURE_WINDOW)
        return response
