"""The web app (web/) in a real browser: Debian's chromium driven by Playwright, against the
real deployment with API keys on and the models deployed.

One full_processing job on the speech video (submitted first, so it runs while the other
tests do) exercises the job page: a transcript timestamp seeks the player, the transcript
follows playback, the analysis and the clips are shown, a clip plays. The list is driven
through the form: a job submitted there reaches 100% live (the broadcast socket), a held
job is cancelled with its button. On the keys page the admin makes a key (shown once, it
works) and revokes it (then refused), the API's 422 shows under the form, and another key
sees only that the admin manages keys. Screenshots of each page land in tmp/screenshots/.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, StorageState, ViewportSize, expect, sync_playwright

from tests.integration.conftest import MODELS_ADMIN_KEY, ROOT, VpaApp

ADMIN = MODELS_ADMIN_KEY
SHOTS = ROOT / "tmp" / "screenshots"
PHONE: ViewportSize = {"width": 390, "height": 844}
WAIT_MS = 120_000  # a UI state the pipeline produces (jobs run on 2 shared cores)
SETTLE_MS = 15_000  # a UI state the page produces by itself


# A DataTransfer holding one file, as a drag from the desktop brings (its bytes in hex).
DROP_FILE = """([hex]) => {
  const bytes = new Uint8Array(hex.match(/../g).map((b) => parseInt(b, 16)));
  const data = new DataTransfer();
  data.items.add(new File([bytes], "dropped.mp4", { type: "video/mp4" }));
  return data;
}"""


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the browser tests need Debian's chromium: apt-get install chromium "
            "(`make test` installs it)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # the clip cards are played without a click on them first
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def app(models_app: VpaApp) -> VpaApp:
    return models_app  # keys on: its client sends the admin key


@pytest.fixture(scope="module")
def full_job(app: VpaApp, speech_video: str) -> str:
    """A full_processing job on the speech video (diarized: one voice), submitted at once."""
    options = {"clip_duration": 8, "max_clips": 2, "min_confidence": 0, "diarization": True}
    return str(app.submit(speech_video, job_type="full_processing", options=options)["id"])


def signed_in(
    browser: Browser, app: VpaApp, key: str = ADMIN, **context: Any
) -> tuple[Page, list[str]]:
    """A page whose browser holds `key` (the admin's), as after signing in once, and the
    list of the uncaught errors of its scripts."""
    storage: StorageState = {"origins": [{"origin": app.base_url,
                            "localStorage": [{"name": "vpa.apiKey", "value": key}]}]}  # fmt: skip
    page = browser.new_context(base_url=app.base_url, storage_state=storage, **context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def screenshot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    print(f"screenshot: {path}")
    return path


def no_horizontal_overflow(page: Page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px window"


def live_list(browser: Browser, app: VpaApp) -> tuple[Page, list[str]]:
    """A signed-in page on the job list, once its broadcast socket is connected."""
    page, errors = signed_in(browser, app)
    page.goto("/")
    expect(page.locator("#job-list")).to_have_attribute("data-live", "true", timeout=SETTLE_MS)
    return page, errors


def test_page_and_assets_are_served_open_and_nothing_else(app: VpaApp, full_job: str) -> None:
    anonymous = {"Authorization": ""}
    page = app.client.get("/", headers=anonymous)
    assert page.status_code == 200 and "/app/app.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = app.client.get("/app/app.js", headers=anonymous)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert app.client.get("/app/missing.js", headers=anonymous).status_code == 404
    for sneaky in ("/app/%2e%2e/serve_app.py", "/app/..%2fserve_app.py", "/app/../serve_app.py"):
        r = app.client.get(sneaky, headers=anonymous)
        assert r.status_code == 404 and "build_app" not in r.text, sneaky
    assert app.client.get("/api/v1/jobs/", headers=anonymous).status_code == 401


def test_key_prompt_keeps_the_key_and_forgets_it(browser: Browser, app: VpaApp) -> None:
    page = browser.new_context(base_url=app.base_url).new_page()
    page.goto("/")
    key = page.get_by_label("API key")
    expect(key).to_be_visible(timeout=SETTLE_MS)
    screenshot(page, "key-prompt")
    key.fill("not-the-key-at-all-000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That key is not valid.", timeout=SETTLE_MS)
    key.fill(ADMIN)
    key.press("Enter")  # the keyboard submits the form
    expect(page.get_by_role("heading", name="New job")).to_be_visible(timeout=SETTLE_MS)
    page.reload()
    expect(page.get_by_role("heading", name="New job")).to_be_visible(timeout=SETTLE_MS)
    assert page.evaluate("() => localStorage.getItem('vpa.apiKey')") == ADMIN
    page.get_by_role("button", name="Forget key").click()
    expect(page.get_by_label("API key")).to_be_visible(timeout=SETTLE_MS)
    assert page.evaluate("() => localStorage.getItem('vpa.apiKey')") is None
    page.context.close()


def test_a_job_from_the_form_reaches_100_live(
    browser: Browser, app: VpaApp, sample_media: Any
) -> None:
    page, errors = live_list(browser, app)
    page.get_by_label("Media URL").fill(sample_media.clip)
    page.get_by_label("Job type").select_option("audio_extraction")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator(".form-status")).to_contain_text("submitted", timeout=SETTLE_MS)
    job_id = page.locator(".form-status").inner_text().split()[1]
    row = page.locator(f'li.job[data-job-id^="{job_id}"]')
    # the list never polls: 100% and "completed" come over the broadcast socket
    expect(row.get_by_role("progressbar")).to_have_attribute(
        "aria-valuenow", "100", timeout=WAIT_MS
    )
    expect(row.locator(".badge")).to_have_text("completed", timeout=WAIT_MS)
    screenshot(page, "job-list")
    # a file dropped on the form: uploaded, then a job on its upload:// URL
    dropped = page.evaluate_handle(
        DROP_FILE, [str(sample_media.path("clip.mp4").read_bytes().hex())]
    )
    page.locator(".drop").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.locator("#file-chosen")).to_contain_text("dropped.mp4")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator(".form-status")).not_to_contain_text(job_id, timeout=SETTLE_MS)
    expect(page.locator(".form-status")).to_contain_text("submitted", timeout=SETTLE_MS)
    second = page.locator(".form-status").inner_text().split()[1]
    row = page.locator(f'li.job[data-job-id^="{second}"]')
    expect(row.locator(".badge")).to_have_text("completed", timeout=WAIT_MS)
    (upload_job,) = [j for j in app.client.get("/api/v1/jobs/").json()["data"]
                     if j["id"].startswith(second)]  # fmt: skip
    assert upload_job["youtube_url"].startswith("upload://")
    assert not errors, errors
    page.context.close()


def test_cancel_retry_and_delete_from_the_list(
    browser: Browser, app: VpaApp, media_server: Any
) -> None:
    page, errors = live_list(browser, app)
    hold = media_server.hold("long.mp4")  # the job cannot end before it is cancelled
    try:
        job_id = app.submit(hold.url)["id"]
        row = page.locator(f'li.job[data-job-id="{job_id}"]')
        expect(row.locator(".badge")).to_have_text("processing", timeout=WAIT_MS)
        row.get_by_role("button", name="Cancel").click()
        expect(row.locator(".badge")).to_have_text("cancelled", timeout=WAIT_MS)
    finally:
        hold.release()
    assert app.job(job_id)["status"] == "cancelled"
    row.get_by_role("button", name="Retry").click()  # released now: it runs to the end
    expect(row.locator(".badge")).to_have_text("completed", timeout=WAIT_MS)
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0, timeout=SETTLE_MS)
    assert app.client.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert not errors, errors
    page.context.close()


def test_the_job_page_seeks_follows_and_plays(browser: Browser, app: VpaApp, full_job: str) -> None:
    done = app.wait(full_job, timeout_s=300)
    assert done["status"] == "completed", done
    assert done["segments"] and done["generated_clips"], done
    page, errors = signed_in(browser, app)
    page.goto(f"/#/jobs/{full_job}")
    expect(page.locator("#job-status")).to_have_text("completed", timeout=SETTLE_MS)
    player = page.locator("#player")
    expect(player).to_be_visible(timeout=SETTLE_MS)
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1")

    index = min(2, len(done["segments"]) - 1)
    segment = done["segments"][index]
    page.locator("#transcript button.ts").nth(index).click()
    # the player moved to the segment (it plays on from there) and the transcript follows
    page.wait_for_function(
        "s => Math.abs(document.querySelector('#player').currentTime - s) < 1.5",
        arg=segment["start"],
    )
    page.wait_for_function(
        "() => !document.querySelector('#player').paused || "
        "document.querySelector('#player').currentTime > 0"
    )
    active = page.locator("#transcript li.active")
    expect(active).to_have_attribute("aria-current", "true", timeout=SETTLE_MS)

    analysis = done["analysis_results"]
    assert page.locator("#sentiment svg rect.bar").count() == len(analysis["sentiment_timeline"])
    for name in ("keywords", "entities"):
        expect(page.locator(f"#{name} li")).to_have_count(len(analysis[name]))
    expect(page.locator("#chapters li")).to_have_count(len(analysis["chapters"]))
    # diarized: each transcript line names its speaker; the speakers and their analysis
    expect(page.locator("#transcript li .speaker")).to_have_count(len(done["segments"]))
    expect(page.locator("#transcript li .speaker").first).to_have_text(
        done["segments"][0]["speaker"]
    )
    expect(page.locator("#speakers li")).to_have_count(len(done["speakers"]))
    first = done["speakers"][0]  # the job's own summary: talk time as m:ss, turns
    talk = int(first["talk_time"])
    expect(page.locator("#speakers li").first).to_contain_text(
        f"{talk // 60}:{talk % 60:02d} talk time · {first['turns']} turn"
    )
    expect(page.locator("#speaker-analysis li")).to_have_count(len(analysis["speakers"]))

    cards = page.locator("#clips article.clip")
    expect(cards).to_have_count(len(done["generated_clips"]))
    clip = done["generated_clips"][0]
    expect(cards.first.get_by_role("heading")).to_have_text(clip["title"])
    expect(cards.first).to_contain_text(clip["reason"])
    video = cards.first.locator("video")
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#clips video').currentTime > 0")
    # the clip's downloads carry a signed link: fetched with no header at all
    href = cards.first.get_by_role("link", name="Video").get_attribute("href")
    assert href is not None and "link=" in href
    status = page.evaluate("u => fetch(u, {method: 'GET'}).then(r => r.status)", href)
    assert status == 200
    screenshot(page, "job-page")
    assert not errors, errors
    page.context.close()


def test_the_admin_makes_a_key_sees_it_once_and_revokes_it(browser: Browser, app: VpaApp) -> None:
    page, errors = signed_in(browser, app, permissions=["clipboard-read", "clipboard-write"])
    page.goto("/")
    page.get_by_role("link", name="Keys").click()
    expect(page.get_by_role("link", name="Keys")).to_have_attribute("aria-current", "page")
    name = f"web key {uuid.uuid4().hex[:8]}"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Active jobs at most").fill("3")
    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_label("The new API key")
    expect(shown).to_have_value(re.compile(r"^vpa_"), timeout=SETTLE_MS)
    expect(page.locator("#created-key-warning")).to_contain_text("will not be shown again")
    key = shown.input_value()
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator(".created [role=status]")).to_have_text("Copied.", timeout=SETTLE_MS)
    assert page.evaluate("() => navigator.clipboard.readText()") == key
    as_key = {"Authorization": f"Bearer {key}"}
    assert app.client.get("/api/v1/jobs/", headers=as_key).status_code == 200  # it works
    row = page.locator("#key-table tbody tr").first  # newest first
    expect(row).to_contain_text(name)
    expect(row).to_contain_text(key[:12])  # its prefix
    expect(row).to_contain_text("requests/min: default · active jobs: 3")
    expect(row).to_have_attribute("data-status", "active")
    screenshot(page, "keys-page")
    page.reload()  # shown once: the list has it, the key itself is gone
    row = page.locator("#key-table tbody tr").first
    expect(row).to_contain_text(name, timeout=SETTLE_MS)
    expect(page.get_by_label("The new API key")).to_have_count(0)
    assert key not in page.content()
    row.get_by_role("button", name=f"Revoke {name}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(name)
    dialog.get_by_role("button", name="Revoke").click()
    expect(row).to_have_attribute("data-status", "revoked", timeout=SETTLE_MS)
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button")).to_have_count(0)
    expect(dialog).to_be_hidden()
    assert app.client.get("/api/v1/jobs/", headers=as_key).status_code == 401
    assert not errors, errors
    page.context.close()


def test_the_key_form_shows_the_api_s_error_and_the_browser_s_bounds(
    browser: Browser, app: VpaApp
) -> None:
    page, errors = signed_in(browser, app)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto("/#/keys")
    name = page.get_by_label("Name", exact=True)
    name.fill("x" * 201)  # the API's bound: its 422 and message, next to the form
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#key-form-error")).to_contain_text(
        "name: String should have at most 200 characters", timeout=SETTLE_MS
    )
    assert len(posts) == 1, posts
    name.fill("")  # required, and a limit under 1: the browser says no before any request
    page.get_by_role("button", name="Create key").click()
    assert name.evaluate("e => e.validity.valueMissing")
    name.fill("bounded")
    limit = page.get_by_label("Requests per minute")
    limit.fill("0")
    page.get_by_role("button", name="Create key").click()
    assert limit.evaluate("e => e.validity.rangeUnderflow")
    assert len(posts) == 1, posts
    names = [k["name"] for k in app.client.get("/api/v1/keys").json()]
    assert "bounded" not in names and "x" * 201 not in names
    assert not errors, errors
    page.context.close()


def test_the_keys_page_tells_another_key_only_the_admin_manages_keys(
    browser: Browser, app: VpaApp
) -> None:
    made = app.client.post("/api/v1/keys", json={"name": "web not the admin"})
    assert made.status_code == 201, made.text
    page, errors = signed_in(browser, app, key=made.json()["key"])
    page.goto("/#/keys")
    expect(page.get_by_role("alert")).to_have_text(
        "Only the admin key manages API keys.", timeout=SETTLE_MS
    )
    expect(page.locator("#key-form, #key-table")).to_have_count(0)  # nothing else
    expect(page.get_by_role("link", name="Keys")).to_be_visible()
    assert not errors, errors
    page.context.close()


def test_every_page_fits_a_phone(browser: Browser, app: VpaApp, full_job: str) -> None:
    app.wait(full_job, timeout_s=300)
    anonymous = browser.new_context(base_url=app.base_url, viewport=PHONE).new_page()
    anonymous.goto("/")
    expect(anonymous.get_by_label("API key")).to_be_visible(timeout=SETTLE_MS)
    no_horizontal_overflow(anonymous)
    anonymous.context.close()
    page, errors = signed_in(browser, app, viewport=PHONE)
    page.goto("/")
    expect(page.locator("li.job").first).to_be_visible(timeout=SETTLE_MS)
    no_horizontal_overflow(page)
    screenshot(page, "phone-job-list")
    page.goto(f"/#/jobs/{full_job}")
    expect(page.locator("#clips article.clip").first).to_be_visible(timeout=SETTLE_MS)
    page.wait_for_function("() => document.querySelector('#player').readyState >= 1")
    no_horizontal_overflow(page)
    screenshot(page, "phone-job-page")
    page.get_by_role("link", name="Keys").click()  # the table as cards, a new key's box
    page.get_by_label("Name", exact=True).fill("phone")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_label("The new API key")).to_be_visible(timeout=SETTLE_MS)
    expect(page.locator("#key-table tbody tr").first).to_contain_text("phone")
    no_horizontal_overflow(page)
    screenshot(page, "phone-keys-page")
    assert not errors, errors
    page.context.close()
