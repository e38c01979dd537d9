"""API keys (deployments/auth.py, storage/api_keys.py): every API and WebSocket route needs
one once ADMIN_API_KEY is set, the admin makes and revokes them, the docs stay open."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.testclient import WebSocketDenialResponse

import main
from config.settings import Settings
from deployments.api import create_app
from storage.repository import JobRepository
from tests.unit.test_api import UNKNOWN, make_services
from tests.unit.test_api import repo as repo  # the fixture

ADMIN = "admin-key-" + "x" * 20
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
OPEN_PATHS = {"/health", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}


@pytest.fixture
def secured(tmp_path: Path, repo: JobRepository) -> TestClient:
    return TestClient(create_app(make_services(tmp_path, repo, admin_api_key=ADMIN)))


def new_key(client: TestClient, name: str = "alice") -> dict[str, Any]:
    r = client.post("/api/v1/keys", json={"name": name}, headers=ADMIN_HEADERS)
    assert r.status_code == 201, r.text
    return dict(r.json())


def routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the app's OpenAPI schema, path parameters filled in."""
    schema = client.get("/openapi.json").json()
    found = []
    for path, operations in schema["paths"].items():
        filled = re.sub(r"\{[^}]+\}", UNKNOWN, path)
        found += [(method.upper(), filled) for method in operations]
    return found


# -- without a key ---------------------------------------------------------------------------


def test_every_api_route_answers_401_without_a_key(secured: TestClient) -> None:
    called = routes(secured)
    assert len(called) > 20  # the whole API, not a handful
    for method, path in called:
        r = secured.request(method, path)
        if path in OPEN_PATHS:
            assert r.status_code != 401, (method, path)
            continue
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer", (method, path)
        body = r.json()  # the OpenAI-compatible routes answer in OpenAI's shape
        message = body["error"]["message"] if path.startswith("/v1/") else body["detail"]
        assert "API key is required" in message


def test_the_schema_says_which_routes_need_a_key(secured: TestClient) -> None:
    schema = secured.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert schema["security"] == [{"bearer": []}, {"apiKey": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "security" not in schema["paths"]["/api/v1/jobs/"]["get"]  # the global one


def test_the_docs_and_health_stay_open(secured: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert secured.get(path).status_code == 200, path
    assert secured.get("/health").status_code in (200, 503)  # answered, never 401


@pytest.mark.parametrize("path", ["/ws/jobs/broadcast", f"/ws/{UNKNOWN}", "/ws/health"])
def test_a_websocket_without_a_key_is_refused_with_401(secured: TestClient, path: str) -> None:
    with pytest.raises(WebSocketDenialResponse) as refused, secured.websocket_connect(path):
        pass
    assert refused.value.status_code == 401
    assert refused.value.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer vpa_not-a-key"},
        {"X-API-Key": "vpa_not-a-key"},
        {"Authorization": f"Basic {ADMIN}"},  # only the Bearer scheme carries a key
    ],
)
def test_a_wrong_key_is_refused(secured: TestClient, headers: dict[str, str]) -> None:
    r = secured.get("/api/v1/jobs/", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_a_key_in_the_query_counts_for_websockets_only(secured: TestClient) -> None:
    key = new_key(secured)["key"]
    assert secured.get(f"/api/v1/jobs/?api_key={key}").status_code == 401
    with secured.websocket_connect(f"/ws/jobs/broadcast?api_key={key}") as ws:
        assert ws.receive_json()["type"] == "connected"


# -- keys -----------------------------------------------------------------------------------


def test_a_new_key_works_in_either_header_and_is_stored_hashed(
    secured: TestClient, repo: JobRepository
) -> None:
    made = new_key(secured, "ci runner")
    assert set(made) >= {"id", "name", "key", "created_at"}
    assert made["name"] == "ci runner" and made["key"].startswith("vpa_")
    key = made["key"]
    assert secured.get("/api/v1/jobs/", headers={"Authorization": f"Bearer {key}"}).is_success
    assert secured.get("/api/v1/jobs/", headers={"X-API-Key": key}).is_success
    with secured.websocket_connect("/ws/jobs/broadcast", headers={"X-API-Key": key}) as ws:
        assert ws.receive_json()["type"] == "connected"
    with repo.engine.connect() as conn:
        stored = [str(v) for row in conn.execute(sa.text("SELECT * FROM api_keys")) for v in row]
    assert key not in stored  # not the key, only its hash and first characters
    listed = secured.get("/api/v1/keys", headers=ADMIN_HEADERS).json()
    assert [k["id"] for k in listed] == [made["id"]]
    assert "key" not in listed[0] and key.startswith(listed[0]["key_prefix"])


def test_a_revoked_key_is_refused_at_once(secured: TestClient) -> None:
    made = new_key(secured)
    headers = {"X-API-Key": made["key"]}
    assert secured.get("/api/v1/jobs/", headers=headers).status_code == 200
    r = secured.delete(f"/api/v1/keys/{made['id']}", headers=ADMIN_HEADERS)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    refused = secured.get("/api/v1/jobs/", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    revoked_socket = f"/ws/jobs/broadcast?api_key={made['key']}"
    with pytest.raises(WebSocketDenialResponse), secured.websocket_connect(revoked_socket):
        pass
    # revoking again changes nothing; an unknown key is a 404
    again = secured.delete(f"/api/v1/keys/{made['id']}", headers=ADMIN_HEADERS)
    assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
    assert secured.delete(f"/api/v1/keys/{UNKNOWN}", headers=ADMIN_HEADERS).status_code == 404


def test_only_the_admin_manages_keys(secured: TestClient) -> None:
    made = new_key(secured)
    user = {"X-API-Key": made["key"]}
    assert secured.post("/api/v1/keys", json={"name": "b"}, headers=user).status_code == 403
    assert secured.get("/api/v1/keys", headers=user).status_code == 403
    assert secured.delete(f"/api/v1/keys/{made['id']}", headers=user).status_code == 403


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 201}, {"name": "a", "b": 1}])
def test_a_bad_key_request_is_a_422(secured: TestClient, body: dict[str, Any]) -> None:
    assert secured.post("/api/v1/keys", json=body, headers=ADMIN_HEADERS).status_code == 422


def test_without_an_admin_key_everything_is_open_and_keys_are_off(
    tmp_path: Path, repo: JobRepository
) -> None:
    client = TestClient(create_app(make_services(tmp_path, repo)))
    assert client.get("/api/v1/jobs/").status_code == 200
    r = client.post("/api/v1/keys", json={"name": "x"})
    assert r.status_code == 409 and "ADMIN_API_KEY" in r.json()["detail"]


# -- settings and start-up --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["short", "x" * 15])
def test_a_short_admin_key_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(_env_file=None, admin_api_key=value)


def test_an_empty_admin_key_means_off() -> None:
    assert Settings(_env_file=None, admin_api_key="  ").admin_api_key is None


@pytest.mark.parametrize(
    ("host", "settings", "refused"),
    [
        ("0.0.0.0", {}, True),
        ("192.168.1.10", {}, True),
        ("vpa.example.com", {}, True),
        ("::", {}, True),
        ("127.0.0.1", {}, False),
        ("127.0.1.1", {}, False),
        ("localhost", {}, False),
        ("::1", {}, False),
        ("0.0.0.0", {"admin_api_key": ADMIN}, False),
        ("0.0.0.0", {"allow_anonymous": True}, False),
    ],
)
def test_anonymous_use_beyond_loopback_must_be_asked_for(
    host: str, settings: dict[str, Any], refused: bool
) -> None:
    problem = Settings(_env_file=None, api_host=host, **settings).anonymous_exposure()
    assert (problem is not None) is refused
    if problem is not None:
        assert "ADMIN_API_KEY" in problem and "ALLOW_ANONYMOUS=true" in problem


def test_main_refuses_to_start_anonymous_on_all_interfaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("API_HOST", "0.0.0.0")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'vpa.db'}")
    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    monkeypatch.delenv("ALLOW_ANONYMOUS", raising=False)
    handlers = {signum: signal.getsignal(signum) for signum in main.STOP_SIGNALS}
    try:
        code = main.main()  # Ray must not start: the unit tests' ray.init raises
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("vpa cannot start: API_HOST=0.0.0.0 lets other machines reach")
    assert "ALLOW_ANONYMOUS=true" in err and "Traceback" not in err
    assert not (tmp_path / "vpa.db").exists()  # refused before it touched anything
