"""Nobody gets more through the management API than they hold.

- A caller grants only permissions it holds itself (an admin holds them all;
  a client, the scopes of its token).
- API Clients permissions, and a client's leave to rotate its own secret,
  are granted by a person only: a client could otherwise mint peers that
  outlive its own revocation.
- A caller changes, resets, rotates or deletes only clients whose
  permissions it holds itself: a new secret for a more powerful client would
  be those permissions in its hands.
- A client never changes itself (its grants least of all); it may rotate its
  own secret, and end that rotation's overlap, when an admin allowed it.
"""

from apiclients.api.callers import Caller, require_write
from apiclients.api.problems import Problem
from apiclients.catalog import ADMIN_ONLY_SCOPES
from apiclients.client_roles import client_effective_grants
from apiclients.models import ApiClient


def _names(scopes) -> str:
    return ", ".join(sorted(scopes))


def check_grants(caller: Caller, grants, *, allow_self_rotation: bool = False) -> None:
    """For a new client, or the grants an edit gives."""
    grants = set(grants)
    if not caller.is_person:
        admin_only = grants & ADMIN_ONLY_SCOPES
        if admin_only:
            raise Problem(
                403,
                f"Only an admin can grant {_names(admin_only)}: use a personal access token "
                "or the console.",
            )
        if allow_self_rotation:
            raise Problem(403, "Only an admin can allow a client to rotate its own secret.")
    beyond = grants - caller.held
    if beyond:
        raise Problem(
            403,
            f"You can grant only permissions you hold yourself; you do not hold {_names(beyond)}.",
            permissions=sorted(beyond),
        )


def check_manage(caller: Caller, client: ApiClient) -> None:
    """For any change to an existing client other than a self-rotation."""
    require_write(caller)
    if caller.client_pk == client.pk:
        raise Problem(
            403,
            "A client cannot change, reset or delete itself; ask an admin. "
            "(It may rotate its own secret when an admin allowed it.)",
        )
    beyond = set(client_effective_grants(client)) - caller.held
    if beyond:
        raise Problem(
            403,
            f"This client holds permissions you do not hold ({_names(beyond)}); "
            "only a caller holding them can change it or its secret.",
            permissions=sorted(beyond),
        )


def check_rotate(caller: Caller, client: ApiClient) -> None:
    if caller.client_pk == client.pk:
        if not client.allow_self_rotation:
            raise Problem(
                403,
                "This client may not rotate its own secret: an admin can allow it "
                "(Allow self-rotation, in the console or through this API).",
            )
        return
    check_manage(caller, client)
