"""gunicorn's access log without client secrets (config/gunicorn.conf.py
names this logger).

The access log must never hold a client secret. gunicorn's default format
logs two things a careless client can fill with one: the Basic user name
(%(u)s), which is the secret itself when a client swaps its ID and secret
(`curl -u secret:id`), and the URL, where a client may send
`?client_secret=...` (the token endpoint refuses that, but only after the
server has logged the URL). This logger leaves the user name out and masks
credentials in URLs; everything else is gunicorn's default format.
Found by tests/hardening/test_secret_leaks.py.
"""

import re

from gunicorn.glogging import Logger

_CREDENTIAL_PARAM = re.compile(
    r"((?:^|[?&;])(?:client_secret|client_password|password|token)=)[^&;#\s]*", re.IGNORECASE
)
# Ours (client secrets, personal access tokens), wherever they appear.
_SECRET = re.compile(r"(acsec|acpat)_[A-Za-z0-9_-]+", re.IGNORECASE)


def _mask(text: str) -> str:
    return _SECRET.sub(
        lambda m: m.group(1).lower() + "_[withheld]",
        _CREDENTIAL_PARAM.sub(r"\1[withheld]", text),
    )


class AccessLogWithoutSecrets(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["u"] = "-"
        for key in ("r", "q", "U", "f"):  # request line, query, path, referer
            if isinstance(atoms.get(key), str):
                atoms[key] = _mask(atoms[key])
        return atoms
