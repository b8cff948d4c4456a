"""End to end: a system run by ``python -m actors run``, ``python -m actors dashboard``
beside it, and a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by Selenium) that watches a mailbox's depth change live and replays a dead letter.

Screenshots go to ``$ACTORS_TEST_ARTIFACTS`` (default: ``test-artifacts/`` in the
repository).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.client import Client

from .support import address_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(
    os.environ.get("ACTORS_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts"
)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytest.importorskip("hypercorn", reason="the dashboard extra is not installed")
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(
        "no browser: the end-to-end dashboard test needs Debian's chromium and "
        "chromium-driver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SYSTEM = """
import os
from pathlib import Path

import trio

from actors import Actor, ActorSystem, Reject, list_mailbox

system = ActorSystem(node="shop-1")
HOLD = Path(os.environ["E2E_HOLD"])  # while it exists, jobs wait: the mailbox fills
STRICT = Path(os.environ["E2E_STRICT"])  # while it exists, negative jobs are rejected
DONE = Path(os.environ["E2E_DONE"])


@system.actor
class Jobs(Actor):
    mailbox = list_mailbox("e2e-jobs")
    batch_size = 1

    async def receive(self, n: int) -> None:
        if n < 0 and STRICT.exists():
            raise Reject("negative job")
        while HOLD.exists():
            await trio.sleep(0.05)
        with DONE.open("a") as done:
            done.write(f"{n}\\n")
"""


@pytest.fixture
def processes(tmp_path: Path, redis_url: str) -> Iterator[dict[str, Any]]:
    (tmp_path / "system.py").write_text(SYSTEM)
    files = {name: tmp_path / name for name in ("hold", "strict", "done")}
    files["done"].write_text("")
    env = {**os.environ, **{f"E2E_{name.upper()}": str(path) for name, path in files.items()}}
    logs = {name: (tmp_path / f"{name}.log").open("w+") for name in ("system", "dashboard")}
    started = []
    try:
        for name, args in [
            ("system", ["run", str(tmp_path / "system.py")]),
            ("dashboard", ["dashboard", "--port", "0", "--token", "e2e-token"]),
        ]:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "actors", *args, "--url", redis_url],
                    stdout=logs[name],
                    stderr=logs[name],
                    env=env,
                    cwd=tmp_path,
                )
            )
        with open(logs["dashboard"].name) as log:
            base = address_of(started[1], log)
        yield {"base": base, "files": files, "logs": logs}
    finally:
        for process in started:
            process.send_signal(signal.SIGINT)
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs.values():
            log.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]:
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def cell(driver: Any, mailbox: str, column: str) -> str:
    """The text of a mailbox's cell; read again when a live update replaced the row
    between finding it and reading it."""
    for _ in range(50):
        found = driver.find_element(By.CSS_SELECTOR, f'tr[data-mailbox="{mailbox}"] td.{column}')
        try:
            return str(found.text)
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"the {column} of {mailbox} never stayed long enough to read")


def test_a_browser_watches_a_mailbox_and_replays_a_dead_letter(
    processes: dict[str, Any], browser: Any, redis_url: str
) -> None:
    files = processes["files"]
    # Live updates replace rows: an element found may be gone when read.
    wait = WebDriverWait(
        browser, 30, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
    )
    browser.get(processes["base"] + "/")
    # The node, its tree (started) and its mailbox show up, and live updates run.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-mailbox="list:e2e-jobs"]'))
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "1")
    nodes = browser.find_element(By.ID, "nodes").text
    assert "shop-1" in nodes and "jobs-0" in nodes and "running" in nodes
    assert cell(browser, "list:e2e-jobs", "depth") == "0"

    # Messages sent while the jobs are held: the depth rises on the page, without a reload.
    files["hold"].write_text("")
    with Client(redis_url) as client:
        client.tell_many("list:e2e-jobs", list(range(1, 6)))

    def waiting(driver: Any) -> bool:
        return (
            int(cell(driver, "list:e2e-jobs", "depth"))
            + int(cell(driver, "list:e2e-jobs", "pending"))
            == 5
            and int(cell(driver, "list:e2e-jobs", "depth")) >= 4
        )

    wait.until(waiting)
    files["hold"].unlink()
    wait.until(lambda d: cell(d, "list:e2e-jobs", "depth") == "0")
    wait.until(lambda d: cell(d, "list:e2e-jobs", "pending") == "0")

    # A poison job is dead-lettered: its row appears on the mailbox's page.
    files["strict"].write_text("")
    with Client(redis_url) as client:
        client.tell("list:e2e-jobs", -1)
    wait.until(lambda d: cell(d, "list:e2e-jobs", "dead") == "1")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    browser.find_element(By.CSS_SELECTOR, 'tr[data-mailbox="list:e2e-jobs"] a').click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-letter]"))
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-letter]")
    assert "rejected: negative job" in row.text
    browser.save_screenshot(str(ARTIFACTS / "dashboard-mailbox.png"))

    # Fixed, then replayed from the page (token, confirmation): the job is handled.
    files["strict"].unlink()
    browser.find_element(By.NAME, "token").send_keys("e2e-token")
    row.find_element(By.CSS_SELECTOR, 'button[value^="replay:"]').click()
    alert = wait.until(lambda d: d.switch_to.alert)
    assert "Replay dead letter" in alert.text
    alert.accept()
    wait.until(lambda d: d.find_elements(By.ID, "done"))
    done = browser.find_element(By.ID, "done").text
    assert "replayed 1 dead letter(s) into list:e2e-jobs" in done
    wait.until(lambda d: "-1" in files["done"].read_text().split())
    wait.until(lambda d: "no dead letters" in d.find_element(By.ID, "letters").text)
    wait.until(lambda d: cell(d, "list:e2e-jobs", "dead") == "0")
    assert files["done"].read_text().split() == ["1", "2", "3", "4", "5", "-1"]
