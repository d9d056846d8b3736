"""The victims' page in a real browser: every journey, in every language, checked by axe-core.

Debian's headless chromium and chromedriver drive the page against a live
server; the files are hashed by the page's own worker. Screenshots of each
step go to tests/artifacts/ (git-ignored). Select these tests with
``-m browser``; they skip when chromium is not installed.
"""

from __future__ import annotations

import base64
import csv
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from cases import services
from cases.models import Case
from hashbank.models import Hash
from hashbank.services import HashInput

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO.parent / "shared" / "testdata"
ARTIFACTS = REPO / "tests" / "artifacts"
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
WORKER = REPO / "cases" / "static" / "cases" / "hash-worker.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

PHOTO = TESTDATA / "pdq" / "bridge-mods" / "aaa-orig.jpg"
PHOTO_2 = TESTDATA / "pdq" / "misc" / "pen-and-coaster.png"
LOW_QUALITY = TESTDATA / "pdq" / "misc" / "q0003.jpg"
VIDEO = TESTDATA / "video" / "chair-19-sd-bar.mp4"


def _missing() -> str | None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return "needs Debian's chromium and chromium-driver (apt-get install them)"
    if not WORKER.exists():
        return "needs cases/static/cases/hash-worker.js (the in-browser PDQ/MD5 worker)"
    if not TESTDATA.exists():
        return f"needs the test data in {TESTDATA}"
    return None


pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(_missing() is not None, reason=str(_missing())),
    # serialized_rollback: the flush after a transactional test would also drop the
    # lists that the first migration creates.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def expected() -> dict[str, dict[str, str]]:
    with (TESTDATA / "expected.csv").open(newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


def distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hashbank-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1000,1300",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    browser.set_script_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(driver: Any, live_server: Any, settings: Any) -> Iterator[Page]:
    # The quick exit must not leave this machine during tests.
    settings.HASHBANK_QUICK_EXIT_URL = "about:blank"
    driver.set_window_size(1000, 1300)
    driver.get("about:blank")
    driver.get_log("performance")  # drop what earlier tests left
    driver.get_log("browser")
    yield Page(driver, live_server.url)
    driver.get("about:blank")


class Page:
    """The page under test, with the steps a person takes."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver = driver
        self.base = base

    # -- looking --

    def open(self, path: str = "/") -> None:
        self.driver.get(self.base + path)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")

    def wait(self, condition: Any, timeout: float = 30) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        found: list[Any] = self.driver.find_elements(By.CSS_SELECTOR, selector)
        return found

    def visible_step(self) -> str:
        return str(
            self.driver.execute_script(
                "return [...document.querySelectorAll('.step')].find(s => !s.hidden).id"
            )
        )

    def wait_step(self, name: str) -> None:
        self.wait(lambda d: self.visible_step() == f"step-{name}")

    def text(self, selector: str) -> str:
        return str(self.css(selector).text)

    def shot(self, name: str) -> None:
        """A full-page screenshot, and an axe-core check of the same state."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        width = self.driver.get_window_size()["width"]
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        (ARTIFACTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
        self.assert_accessible(name)

    def assert_accessible(self, name: str) -> None:
        if not self.driver.execute_script("return typeof window.axe === 'object'"):
            self.driver.execute_script(AXE.read_text(encoding="utf-8"))
        violations = self.driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ["violations"]}).then(
              (r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact,
                nodes: v.nodes.map((n) => n.target.join(" "))}))),
              (e) => done([{id: "axe-error", impact: "critical", nodes: [String(e)]}]));
            """
        )
        serious = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert not serious, f"{name}: {json.dumps(serious, indent=1)}"

    # -- doing, with the keyboard where a person can --

    def keys(self, *keys: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).send_keys(*keys).perform()

    def start(self) -> None:
        self.css('[data-action="start"]').click()
        self.wait_step("questions")

    def answer(self, **answers: bool) -> None:
        """Answer the four questions in the page's order, by keyboard."""
        from selenium.webdriver.common.keys import Keys

        for _ in range(4):
            name = self.driver.execute_script(
                "return document.querySelector('fieldset.question:not([hidden])').dataset.question"
            )
            # Focus is on the first choice ("yes"); the arrow key moves to "no".
            self.keys(Keys.SPACE if answers[name] else Keys.ARROW_DOWN, Keys.TAB, Keys.ENTER)

    def add_files(self, *paths: Path) -> None:
        self.css("#file-input").send_keys("\n".join(str(p) for p in paths))

    def wait_files_done(self) -> None:
        self.wait(
            lambda d: (
                not d.execute_script(
                    "return [...document.querySelectorAll('.file')]"
                    ".some(f => ['waiting', 'hashing'].includes(f.dataset.status))"
                )
            ),
            timeout=60,
        )

    def file_states(self) -> dict[str, str]:
        return dict(
            self.driver.execute_script(
                "return [...document.querySelectorAll('.file')]"
                ".map(f => [f.querySelector('.file-name').textContent, f.dataset.status])"
            )
        )

    def reviewed_hashes(self) -> list[str]:
        return [node.text for node in self.all("#review-list code")]

    def send(self, pin: str = "", email: str = "") -> dict[str, str]:
        if pin:
            self.css("#new-pin").send_keys(pin)
        if email:
            self.css("#email").send_keys(email)
        self.css('#review-form button[type="submit"]').click()
        self.wait_step("result")
        return {"case_number": self.text("#result-number"), "pin": self.text("#result-pin")}

    def requests(self) -> list[dict[str, Any]]:
        """Every request the browser sent since the last call (Network.requestWillBeSent)."""
        sent = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                sent.append(message["params"]["request"])
        return sent


def _adult(**overrides: bool) -> dict[str, bool]:
    return {
        "in_image": True,
        "intimate": True,
        "has_media": True,
        "under_18_at_capture": False,
        **overrides,
    }


def test_an_adult_makes_a_case_with_a_photo_and_a_video(page: Page) -> None:
    page.open("/")
    page.shot("adult-1-welcome")
    assert "never leave your device" in page.text("#step-welcome")
    page.start()
    page.shot("adult-2-question")
    page.answer(**_adult())
    page.wait_step("files")
    assert page.css("#step-files .for-adult").is_displayed()
    assert not page.css("#step-files .for-minor").is_displayed()
    page.shot("adult-3-files-empty")
    page.add_files(PHOTO, VIDEO, LOW_QUALITY)
    page.wait_files_done()
    page.shot("adult-4-files-hashed")
    assert page.file_states() == {
        PHOTO.name: "hashed",
        VIDEO.name: "hashed",
        LOW_QUALITY.name: "low-quality",
    }
    assert "use the original" in page.text(".file[data-status='low-quality'] .file-detail")
    page.css('[data-action="to-review"]').click()
    page.wait_step("review")
    page.shot("adult-5-review")
    want = expected()
    photo_hash, video_hash = page.reviewed_hashes()
    assert distance(photo_hash, want["pdq/bridge-mods/aaa-orig.jpg"]["pdq_hex"]) <= 10
    assert video_hash == want["video/chair-19-sd-bar.mp4"]["md5_hex"]
    credentials = page.send(pin="correct horse")
    page.shot("adult-6-result")
    assert credentials["pin"] == "correct horse"
    assert "shown only this once" in page.text("#result-warning")
    page.driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": page.base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    page.css('[data-action="copy"]').click()
    page.wait(lambda d: page.text("#result-status"))
    assert page.text("#result-status").startswith("Copied.")
    copied = page.driver.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0](String(e)))"
    )
    assert copied == f"Case number: {credentials['case_number']}\nPIN: correct horse"
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    page.shot("adult-7-print")
    assert not page.css("#quick-exit").is_displayed()
    assert page.css("#result-number").is_displayed()
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    case = services.case_authenticate(**credentials)
    assert case.hash_list.slug == "adult"
    stored = Hash.objects.filter(hash_list=case.hash_list).values_list("value", flat=True)
    assert sorted(stored) == sorted([photo_hash, video_hash])


def test_the_whole_journey_sends_only_fingerprints_and_only_here(
    page: Page, mailoutbox: list[Any]
) -> None:
    page.open("/")
    page.start()
    page.answer(**_adult())
    page.wait_step("files")
    page.add_files(PHOTO, VIDEO)
    page.wait_files_done()
    page.css('[data-action="to-review"]').click()
    page.wait_step("review")
    credentials = page.send(email="someone@example.org")
    assert page.css("#result-email").is_displayed()
    (mail,) = mailoutbox
    assert mail.to == ["someone@example.org"]
    assert credentials["case_number"] in mail.body
    assert credentials["pin"] not in mail.body
    page.open("/status")
    page.css("#case-number").send_keys(credentials["case_number"])
    page.css("#pin").send_keys(credentials["pin"])
    page.css('#status-form button[type="submit"]').click()
    page.wait(lambda d: page.css("#case-status").is_displayed())

    sent = page.requests()
    base = urlsplit(page.base)
    posts = []
    for request in sent:
        url = urlsplit(request["url"])
        if url.scheme == "blob":  # a preview of the person's own file, inside the tab
            assert request["url"].startswith(f"blob:{page.base}/")
            continue
        if url.scheme == "data":  # e.g. an inline icon the browser builds itself
            continue
        assert (url.scheme, url.netloc) == (base.scheme, base.netloc), request["url"]
        if request["method"] == "GET":
            assert url.path in ("/", "/status", "/jsi18n.js") or url.path.startswith(
                "/static/cases/"
            ), request["url"]
            assert not url.query, request["url"]
        else:
            assert request["method"] == "POST"
            assert url.path in ("/api/v1/cases", "/api/v1/cases/status"), request["url"]
            posts.append((url.path, request.get("postData", "")))
    assert [path for path, _ in posts] == ["/api/v1/cases", "/api/v1/cases/status"]

    create_body = json.loads(posts[0][1])
    assert set(create_body) == {"eligibility", "hashes", "email"}
    assert all(set(h) <= {"algorithm", "value", "quality"} for h in create_body["hashes"])
    assert json.loads(posts[1][1]) == credentials
    # No request carries file bytes: every body is a small JSON document without them.
    for path in (PHOTO, VIDEO):
        data = path.read_bytes()
        samples = [data[i : i + 48] for i in range(1024, len(data) - 48, len(data) // 8)]
        for _, body in posts:
            assert len(body) < 4096
            for sample in samples:
                for encoded in (sample.hex(), base64.b64encode(sample).decode()):
                    assert encoded not in body
            assert path.name not in body
    # Nothing kept: no cookies, no storage, no secrets in the address or history.
    assert page.driver.get_cookies() == []
    assert page.driver.execute_script("return localStorage.length + sessionStorage.length") == 0
    assert credentials["case_number"] not in page.driver.current_url
    assert credentials["pin"] not in page.driver.current_url
    # Going back shows neither again: the pages are never cached, and are wiped when left.
    page.driver.back()
    page.wait(lambda d: d.current_url == page.base + "/")
    page.wait(lambda d: d.execute_script("return document.readyState") == "complete")
    assert credentials["case_number"] not in page.driver.page_source
    assert page.visible_step() == "step-welcome"
    page.driver.forward()
    page.wait(lambda d: d.current_url == page.base + "/status")
    page.wait(lambda d: d.execute_script("return document.readyState") == "complete")
    assert page.css("#case-number").get_attribute("value") == ""
    assert page.css("#pin").get_attribute("value") == ""
    assert credentials["case_number"] not in page.driver.page_source


def test_a_minor_at_capture_is_routed_to_the_minor_list_with_words_for_young_people(
    page: Page,
) -> None:
    page.open("/")
    page.start()
    page.answer(**_adult(under_18_at_capture=True))
    page.wait_step("files")
    assert page.css("#step-files .for-minor").is_displayed()
    assert "not in trouble" in page.text("#step-files")
    page.add_files(PHOTO_2)
    page.wait_files_done()
    page.shot("minor-1-files")
    assert Case.objects.count() == 0
    page.css('[data-action="to-review"]').click()
    page.wait_step("review")
    # A PIN the case API refuses is explained at the field, and announced.
    page.css("#new-pin").send_keys("123")
    page.css('#review-form button[type="submit"]').click()
    page.wait(lambda d: page.text("#new-pin-error"))
    assert "6" in page.text("#new-pin-error")
    assert page.css("#new-pin-error").get_attribute("role") == "alert"
    assert page.css("#new-pin").get_attribute("aria-invalid") == "true"
    assert page.driver.switch_to.active_element.get_attribute("id") == "new-pin"
    page.shot("minor-2-pin-error")
    page.css("#new-pin").clear()
    credentials = page.send()
    page.shot("minor-3-result")
    assert page.css("#step-result .for-minor").is_displayed()
    assert services.case_authenticate(**credentials).hash_list.slug == "minor"


def test_someone_not_in_the_image_is_refused_kindly_with_help(page: Page) -> None:
    page.open("/")
    page.start()
    page.answer(**_adult(in_image=False))
    page.wait_step("refused")
    page.shot("refused")
    assert "only take hashes from the person in the image" in page.text("#refused-message")
    assert "reporting tools" in page.text("#refused-help")
    page.css('[data-action="restart"]').click()
    page.wait_step("questions")


def test_unanswered_question_is_announced(page: Page) -> None:
    page.open("/")
    page.start()
    page.css('#question-form button[type="submit"]').click()
    assert page.text("#question-error") == "Please choose yes or no."
    assert page.css("#question-error").get_attribute("role") == "alert"
    page.shot("question-error")


def test_formats_a_browser_cannot_read_point_to_hashbank_hash(page: Page, tmp_path: Path) -> None:
    tiff = tmp_path / "holiday photo.tiff"
    tiff.write_bytes(b"II*\x00" + b"\x00" * 64)
    psd = tmp_path / "edit.psd"
    psd.write_bytes(b"8BPS" + b"\x00" * 64)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff" + b"\x00" * 64)
    page.open("/")
    page.start()
    page.answer(**_adult())
    page.wait_step("files")
    page.add_files(tiff, psd, broken, PHOTO)
    page.wait_files_done()
    page.shot("unsupported")
    assert page.file_states() == {
        tiff.name: "unsupported",
        psd.name: "unsupported",
        broken.name: "unsupported",
        PHOTO.name: "hashed",
    }
    # A file the browser should read but can't is not sent to the command-line tool.
    assert len(page.all(".command")) == 2
    assert "may be damaged" in page.all(".file-detail")[2].text
    commands = [node.text for node in page.all(".command")]
    assert commands[0] == f"hashbank-hash --submit {page.base}/ 'holiday photo.tiff'"
    page.css(f'button[aria-label="Remove {psd.name}"]').click()
    assert list(page.file_states()) == [tiff.name, broken.name, PHOTO.name]
    assert page.text("#file-count") == "3 of 20 files chosen"
    # The unreadable files are left out of the case.
    page.css('[data-action="to-review"]').click()
    page.wait_step("review")
    assert len(page.reviewed_hashes()) == 1


def test_a_case_takes_at_most_twenty_files(page: Page, tmp_path: Path) -> None:
    small = (TESTDATA / "pdq" / "misc" / "wee.jpg").read_bytes()
    files = []
    for number in range(21):
        path = tmp_path / f"photo-{number:02}.jpg"
        path.write_bytes(small)
        files.append(path)
    page.open("/")
    page.start()
    page.answer(**_adult())
    page.wait_step("files")
    page.add_files(*files)
    page.wait_files_done()
    assert len(page.file_states()) == 20
    assert "at most 20 files" in page.text("#files-error")
    assert page.text("#file-count") == "20 of 20 files chosen"
    assert not page.css("#file-input").is_enabled()
    # The same picture twenty times is one fingerprint, sent once.
    (kept,) = [name for name, state in page.file_states().items() if state == "hashed"]
    assert f"same fingerprint as {kept}" in page.text(".file[data-status='duplicate']")
    page.shot("twenty-files")


def test_status_shows_each_hash_and_withdrawal_needs_a_confirmation(page: Page) -> None:
    created = services.case_create(
        eligibility=services.Eligibility(
            in_image=True, under_18_at_capture=False, has_media=True, intimate=True
        ),
        hashes=[HashInput("md5", "0a21c8f85a55a9e276ffc2c53f6887c4", None)],
        pin="status-pin",
    )
    page.open("/status")
    page.css("#case-number").send_keys(created.case_number)
    page.css("#pin").send_keys("wrong-pin")
    page.css('#status-form button[type="submit"]').click()
    page.wait(lambda d: page.text("#status-error"))
    assert "not right" in page.text("#status-error")
    page.shot("status-1-wrong-pin")
    page.css("#pin").clear()
    page.css("#pin").send_keys("status-pin")
    page.css('#status-form button[type="submit"]').click()
    page.wait(lambda d: page.css("#case-status").is_displayed())
    page.shot("status-2-active")
    cells = [cell.text for cell in page.all("#status-rows td")]
    assert cells[0].endswith("0a21c8f85a55a9e276ffc2c53f6887c4")
    assert cells[1] == "Active: shared with platforms"
    assert cells[2:] == ["0", "0"]
    page.driver.set_window_size(390, 844)
    page.shot("status-2-active-phone")
    assert not page.driver.execute_script(
        "return document.documentElement.scrollWidth > window.innerWidth"
    )
    page.driver.set_window_size(1000, 1300)

    page.css('[data-action="withdraw"]').click()
    page.shot("status-3-confirm")
    page.css('[data-action="withdraw-cancel"]').click()
    assert Case.objects.get(pk=created.case.pk).withdrawn_at is None
    page.css('[data-action="withdraw"]').click()
    page.css('[data-action="withdraw-confirm"]').click()
    page.wait(lambda d: "withdrawn" in page.text("#case-state"))
    page.shot("status-4-withdrawn")
    assert Case.objects.get(pk=created.case.pk).withdrawn_at is not None
    assert page.text("#status-rows td:nth-child(2)") == "Withdrawn"
    assert created.case_number not in page.driver.current_url


@pytest.mark.parametrize(
    ("prefix", "label", "words"),
    [
        ("/", "Being reviewed", "Nobody has seen your image"),
        ("/nl/", "Wordt beoordeeld", "Niemand heeft je afbeelding gezien"),
    ],
)
def test_a_hash_under_review_is_explained_in_the_page_s_language(
    page: Page, prefix: str, label: str, words: str
) -> None:
    from hashbank.services import hash_review_start

    created = services.case_create(
        eligibility=services.Eligibility(
            in_image=True, under_18_at_capture=False, has_media=True, intimate=True
        ),
        hashes=[HashInput("md5", "1b21c8f85a55a9e276ffc2c53f6887c4", None)],
        pin="review-pin",
    )
    hash_review_start(hash_id=created.hashes[0].pk)
    page.open(f"{prefix}status")
    page.css("#case-number").send_keys(created.case_number)
    page.css("#pin").send_keys("review-pin")
    page.css('#status-form button[type="submit"]').click()
    page.wait(lambda d: page.css("#case-status").is_displayed())
    state = page.css("#status-rows td:nth-child(2)")
    assert label in state.text
    assert words in page.text("#status-rows td:nth-child(2) .explanation")
    page.shot(f"status-under-review-{prefix.strip('/') or 'en'}")


@pytest.mark.parametrize(
    ("prefix", "language", "title", "question", "hashed", "refusal"),
    [
        ("/", "en", "Stop the sharing", "Question 1 of 4", "Fingerprint made", "the person in"),
        (
            "/nl/",
            "nl",
            "Stop het delen",
            "Vraag 1 van 4",
            "Vingerafdruk gemaakt",
            "persoon op de afbeelding",
        ),
        (
            "/sv/",
            "sv",
            "Stoppa spridningen",
            "Fråga 1 av 4",
            "Fingeravtryck klart",
            "personen på bilden",
        ),
    ],
)
def test_the_journey_speaks_each_language(
    page: Page,
    prefix: str,
    language: str,
    title: str,
    question: str,
    hashed: str,
    refusal: str,
) -> None:
    page.open(prefix)
    assert page.driver.execute_script("return document.documentElement.lang") == language
    assert title in page.text("h1")
    page.start()
    assert page.text("#question-count") == question
    page.answer(**_adult())
    page.wait_step("files")
    page.add_files(PHOTO)
    page.wait_files_done()
    assert page.text(".file-status") == hashed
    page.shot(f"language-{language}-files")
    page.css('[data-action="to-review"]').click()
    page.wait_step("review")
    page.send()
    page.shot(f"language-{language}-result")
    page.open(prefix)
    page.start()
    page.answer(**_adult(in_image=False))
    page.wait_step("refused")
    assert refusal in page.text("#refused-message")
    page.open(prefix + "status")
    page.shot(f"language-{language}-status")


def test_the_language_switcher_keeps_the_page_and_sets_no_cookie(page: Page) -> None:
    page.open("/status")
    page.css('.languages a[hreflang="sv"]').click()
    page.wait(lambda d: d.current_url == page.base + "/sv/status")
    assert page.css('.languages a[aria-current="page"]').text == "Svenska"
    page.css('.languages a[hreflang="nl"]').click()
    page.wait(lambda d: d.current_url == page.base + "/nl/status")
    assert page.driver.get_cookies() == []


def test_the_quick_exit_replaces_the_page_and_its_history_entry(page: Page) -> None:
    page.open("/")
    page.open("/status")
    length = page.driver.execute_script("return history.length")
    exit_button = page.css("#quick-exit")
    assert exit_button.is_displayed()
    exit_button.click()
    page.wait(lambda d: d.current_url == "about:blank")
    assert page.driver.execute_script("return history.length") == length
    page.driver.back()
    # Back skips the page that was left: it goes to the one before it.
    page.wait(lambda d: d.current_url == page.base + "/")


def test_on_a_phone_the_page_fits_and_works_by_keyboard(page: Page) -> None:
    page.driver.set_window_size(390, 844)
    page.open("/")
    page.shot("phone-1-welcome")
    overflow = "return document.documentElement.scrollWidth > window.innerWidth"
    assert not page.driver.execute_script(overflow)
    # Keyboard only: Tab from the top reaches the quick exit first, then the start button.
    from selenium.webdriver.common.keys import Keys

    page.driver.execute_script("document.activeElement.blur()")
    page.keys(Keys.TAB)
    page.keys(Keys.TAB)
    assert page.driver.switch_to.active_element.get_attribute("id") == "quick-exit"
    page.css('[data-action="start"]').send_keys(Keys.ENTER)
    page.wait_step("questions")
    page.answer(**_adult())
    page.wait_step("files")
    page.add_files(PHOTO, LOW_QUALITY)
    page.wait_files_done()
    page.shot("phone-2-files")
    assert not page.driver.execute_script(overflow)


def test_the_page_loads_no_code_the_policy_forbids(page: Page) -> None:
    page.open("/")
    page.start()
    errors = [
        entry
        for entry in page.driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or entry["level"] == "SEVERE"
    ]
    assert errors == []
