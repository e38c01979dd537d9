"""The web app's files (open, strict CSP, no way out of web/) and the signed links its
players use with API keys on (deployments/media_links.py), on the app with fakes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deployments import media_links
from deployments.api import create_app
from deployments.routes.web import WEB_DIR
from deployments.services import IngressServices
from storage.artifacts import job_key
from storage.models import Artifact, Job
from storage.repository import JobRepository
from storage.schemas import JobCreate
from tests.unit.test_api import NEW, T0, completed_job, make_services
from tests.unit.test_api import repo as repo  # the fixture
from tests.unit.test_api_keys import ADMIN, ADMIN_HEADERS, new_key


@pytest.fixture
def services(tmp_path: Path, repo: JobRepository) -> IngressServices:
    return make_services(tmp_path, repo, admin_api_key=ADMIN)


@pytest.fixture
def secured(services: IngressServices) -> TestClient:
    return TestClient(create_app(services))


def test_page_and_assets_are_open_with_a_strict_policy(secured: TestClient) -> None:
    page = secured.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    assert page.headers["cache-control"] == "no-cache"
    assert secured.head("/").status_code == 200
    assert '<script type="module" src="/app/app.js">' in page.text
    assert "<script>" not in page.text  # no inline script: the policy would refuse it
    for name in ("app.js", "api.js", "keys.js", "style.css"):
        asset = secured.get(f"/app/{name}")
        assert asset.status_code == 200, name
        assert asset.content == (WEB_DIR / name).read_bytes()
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert "javascript" in secured.get("/app/app.js").headers["content-type"]
    again = secured.get("/app/app.js", headers={"If-None-Match": asset_etag(secured)})
    assert again.status_code == 304
    assert secured.get("/api/v1/jobs/").status_code == 401  # the API still needs a key


def asset_etag(client: TestClient) -> str:
    return str(client.get("/app/app.js").headers["etag"])


@pytest.mark.parametrize(
    "path",
    ["/app/nope.js", "/app/", "/app/%2e%2e/deployments/auth.py", "/app/..%2fserve_app.py",
     "/app/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/index.html"],
)  # fmt: skip
def test_unknown_files_and_traversal_are_404(secured: TestClient, path: str) -> None:
    r = secured.get(path)
    assert r.status_code == 404, (path, r.text[:200])
    assert "import" not in r.text


def link_for(client: TestClient, job_id: uuid.UUID, headers: dict[str, str]) -> str:
    r = client.post(f"/api/v1/jobs/{job_id}/links", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["expires_at"].endswith("Z")
    return str(r.json()["query"])


def test_signed_links_open_one_jobs_downloads_only(
    secured: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    job, artifact = completed_job(services, tmp_path)
    download = f"/api/v1/jobs/{job.id}/artifacts/{artifact.id}/download"
    assert secured.get(download).status_code == 401
    query = link_for(secured, job.id, ADMIN_HEADERS)
    assert query.startswith("link=")
    r = secured.get(f"{download}?{query}", headers={"Range": "bytes=2-4"})
    assert r.status_code == 206 and r.content == b"234"
    assert secured.get(f"/api/v1/jobs/{job.id}/download?{query}").status_code == 200  # the zip
    # the job itself, its events, another job's downloads: not with a link
    assert secured.get(f"/api/v1/jobs/{job.id}?{query}").status_code == 401
    assert secured.get(f"/api/v1/jobs/{job.id}/artifacts?{query}").status_code == 401
    other, _ = services.repo.create_job(_new(), default_max_retries=3, now=T0)
    r = secured.get(f"/api/v1/jobs/{other.id}/artifacts/{artifact.id}/download?{query}")
    assert r.status_code == 401 and "signature" in r.json()["detail"]
    tampered = query[:-2] + ("AA" if not query.endswith("AA") else "BB")
    assert secured.get(f"{download}?{tampered}").status_code == 401
    assert secured.get(f"{download}?link=12.admin").status_code == 401
    assert secured.get(f"{download}?link=").status_code == 401
    expired = media_links.sign(ADMIN, job.id, None, time.time() - media_links.LINK_TTL_S - 1)
    r = secured.get(f"{download}?link={expired}")
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def _new() -> JobCreate:
    return JobCreate.model_validate(NEW)


def owned_file(services: IngressServices, tmp_path: Path, owner: str) -> tuple[Job, Artifact]:
    """A job of `owner` with one stored file."""
    job, _ = services.repo.create_job(_new(), default_max_retries=3, now=T0, owner=owner)
    (tmp_path / "a.txt").write_bytes(b"hello")
    key = job_key(job.id, "a.txt")
    size = services.store.put_file(tmp_path / "a.txt", key)
    artifact = services.repo.add_artifact(
        Artifact(id=uuid.uuid4(), job_id=job.id, kind="transcript_txt", filename="a.txt",
                 storage_path=key, format="txt", content_type="text/plain", size_bytes=size)
    )  # fmt: skip
    return job, artifact


def test_a_keys_links_open_its_own_jobs_until_it_is_revoked(
    secured: TestClient, services: IngressServices, tmp_path: Path
) -> None:
    admins_job, admins_file = completed_job(services, tmp_path)
    alice = new_key(secured)
    alice_headers = {"Authorization": f"Bearer {alice['key']}"}
    r = secured.post(f"/api/v1/jobs/{admins_job.id}/links", headers=alice_headers)
    assert r.status_code == 404  # another owner's job: no link to it
    # a link signed for alice's key on the admin's job still opens nothing of it
    forged = media_links.sign(ADMIN, admins_job.id, uuid.UUID(alice["id"]), time.time())
    download = f"/api/v1/jobs/{admins_job.id}/artifacts/{admins_file.id}/download"
    assert secured.get(f"{download}?link={forged}").status_code == 404
    job, artifact = owned_file(services, tmp_path, owner=str(uuid.UUID(alice["id"])))
    query = link_for(secured, job.id, alice_headers)
    download = f"/api/v1/jobs/{job.id}/artifacts/{artifact.id}/download"
    r = secured.get(f"{download}?{query}")
    assert r.status_code == 200 and r.content == b"hello"
    assert secured.delete(f"/api/v1/keys/{alice['id']}", headers=ADMIN_HEADERS).status_code == 200
    r = secured.get(f"{download}?{query}")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_links_need_no_signature_with_keys_off(tmp_path: Path, repo: JobRepository) -> None:
    services = make_services(tmp_path, repo)
    client = TestClient(create_app(services))
    job, artifact = completed_job(services, tmp_path)
    assert client.post(f"/api/v1/jobs/{job.id}/links").json() == {"query": "", "expires_at": None}
    r = client.get(f"/api/v1/jobs/{job.id}/artifacts/{artifact.id}/download")
    assert r.status_code == 200 and r.content == b"0123456789"
