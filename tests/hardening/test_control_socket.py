"""gunicorn's control socket (gunicornc): never the one path per user that
every gunicorn on the host would share; a server's own path when the
operator names one (GUNICORN_CONTROL_SOCKET)."""

import time
from pathlib import Path

from tests.hardening.servers import app_env, gunicorn


def _env(tmp_path: Path, **overrides) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = app_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", HOME=home, **overrides)
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def _appears(path: Path, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.1)
    return False


def test_no_control_socket_is_shared_between_servers(tmp_path):
    home = tmp_path / "home"
    with (
        gunicorn(_env(tmp_path), tmp_path / "a.log", workers=1),
        gunicorn(_env(tmp_path), tmp_path / "b.log", workers=1),
    ):
        time.sleep(1)  # the arbiter makes its control socket once it runs
        assert not list(home.rglob("*.ctl"))
    assert "control socket" not in (tmp_path / "a.log").read_text().lower()


def test_each_server_has_the_control_socket_it_is_given(tmp_path):
    first, second = tmp_path / "first.ctl", tmp_path / "second.ctl"
    with (
        gunicorn(_env(tmp_path, GUNICORN_CONTROL_SOCKET=first), tmp_path / "a.log", workers=1),
        gunicorn(_env(tmp_path, GUNICORN_CONTROL_SOCKET=second), tmp_path / "b.log", workers=1),
    ):
        assert _appears(first) and _appears(second)
    assert not list((tmp_path / "home").rglob("*.ctl"))
