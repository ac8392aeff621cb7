from django.db import OperationalError


def test_healthz_answers_without_the_database(client):
    # No `db` fixture: pytest-django makes any query here an error.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_database(client, db, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_readyz_is_a_json_503_when_the_database_is_down(client, db, monkeypatch):
    class BrokenConnection:
        def cursor(self):
            raise OperationalError("could not connect to server")

    monkeypatch.setattr("oauth.views.connection", BrokenConnection())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}
    # A load balancer or an orchestrator polling it learns when to look again.
    assert int(response["Retry-After"]) > 0
    assert b"could not connect" not in response.content
