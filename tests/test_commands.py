import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from apiclients.models import Role


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_user_creates_the_tenant_and_prints_a_generated_password(db):
    output = run("add_user", "erin", "--tenant", "Initech", "--role", "auditor")
    password = output.split("Password: ")[1].strip()
    user = authenticate(username="erin", password=password)
    assert user is not None
    assert user.membership.tenant.name == "Initech"
    assert user.membership.role == Role.AUDITOR


def test_add_user_with_a_password_does_not_print_it(db):
    output = run(
        "add_user",
        "erin",
        "--tenant",
        "Initech",
        "--role",
        "cloud-admin",
        "--password",
        "a long given password",
    )
    assert "a long given password" not in output
    assert authenticate(username="erin", password="a long given password") is not None


def test_add_user_refuses_a_duplicate_username(alice):
    with pytest.raises(CommandError, match="already exists"):
        run("add_user", "ALICE", "--tenant", "Acme", "--role", "auditor")


def test_add_user_refuses_an_unknown_role(db):
    with pytest.raises(CommandError, match="Unknown role 'owner'"):
        run("add_user", "erin", "--tenant", "Initech", "--role", "owner")
    assert not get_user_model().objects.exists()


def test_bootstrap_creates_a_first_admin_only_on_an_empty_database(db):
    output = run("bootstrap")
    password = output.split("password: ")[1].split()[0]
    admin = authenticate(username="admin", password=password)
    assert admin.membership.role == Role.CLOUD_ADMIN
    assert run("bootstrap") == ""
    assert get_user_model().objects.count() == 1
