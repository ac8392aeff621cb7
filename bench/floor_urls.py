"""The floor under the token endpoint, for `bench/run --floor`: views that do
only the work no token endpoint of this design can skip, with the app's own
parts, behind the same middleware. Each adds one step:

- /bench/floor/sign: sign a token's worth of claims (ES256) and answer JSON;
- /bench/floor/lookup: and before that, load the client with the prepared
  lookup the token endpoint uses (one PostgreSQL round trip);
- /bench/floor/limits-only: sign, after the rate-limit check (one Redis
  round trip) but no lookup;
- /bench/floor/limits: the rate-limit check, the lookup, and sign.

With the client cache (oauth.clientcache) the token endpoint makes neither
round trip for a client in memory: its floor is /bench/floor/sign, and what it
does beyond it (parsing, the secret, status, expiry, IP restriction, scopes,
claims, rate limits counted in memory) is the difference between the two rows."""

import time

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from config.urls import handler404, handler500  # noqa: F401 (the app's error pages)
from oauth import keys, throttle, tokens
from oauth.clients import client_and_revocation


def _signed() -> JsonResponse:
    now = int(time.time())
    claims = {
        "iss": tokens.issuer(),
        "sub": "key-" + "x" * 22,
        "aud": tokens.audience(),
        "iat": now,
        "exp": now + 900,
        "jti": "y" * 22,
        "client_id": "key-" + "x" * 22,
        "scope": "users:read audit-log:read alerts:read",
        "tid": "00000000-0000-0000-0000-000000000000",
        "sgen": 1,
    }
    token = tokens._jws(keys.signing_key(), claims)
    return JsonResponse(
        {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": 900,
            "scope": claims["scope"],
        },
        headers={"Cache-Control": "no-store"},
    )


@csrf_exempt
def sign(request: HttpRequest) -> JsonResponse:
    return _signed()


@csrf_exempt
def lookup(request: HttpRequest) -> JsonResponse:
    client_and_revocation(request.headers.get("X-Client-Id", ""))
    return _signed()


@csrf_exempt
def limits_only(request: HttpRequest) -> JsonResponse:
    client_id = request.headers.get("X-Client-Id", "")
    throttle.check(endpoint="token", client_id=client_id, ip=request.META.get("REMOTE_ADDR"))
    return _signed()


@csrf_exempt
def limits(request: HttpRequest) -> JsonResponse:
    client_id = request.headers.get("X-Client-Id", "")
    throttle.check(endpoint="token", client_id=client_id, ip=request.META.get("REMOTE_ADDR"))
    client_and_revocation(client_id)
    return _signed()


urlpatterns = [
    path("bench/floor/sign", sign),
    path("bench/floor/lookup", lookup),
    path("bench/floor/limits-only", limits_only),
    path("bench/floor/limits", limits),
    path("", include("config.urls")),
]
