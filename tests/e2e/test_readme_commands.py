"""The README's commands, and the runbook's (docs/operations.md), run as shown beside `make run`,
each from a fresh shell.

The commands come from README.md itself ("Try it", "Orders and sagas", "Flash sales"), so the
README and this test cannot drift apart. Each runs in its own `bash -c` with a bare environment:
no ORDERSAGA_* variable, nothing special on PATH, as in a new terminal. The variables the README
assigns (`TOKEN=...`) carry over, as they do in the reader's shell, and its placeholders are
filled in from what `make run` printed and what the earlier commands answered.

`make run` runs in a copy of the checkout, so that its var/ (database, settings file, beat
schedule) is its own and a developer's `make run` in the repository is left alone. Its API and
Flower listen on free ports; its Redis is a private one on a random port, which the saga commands
can only find through make run's settings file.

The saga commands need a FAILED saga. So the payment provider (the sandbox, which the API serves)
is made unreachable: ORDERSAGA_PUBLIC_URL, where the worker reaches it, names a port nobody
listens on, while the API listens elsewhere (ORDERSAGA_API_BIND), and a step gets a single quick
retry. The order's saga then fails at create_payment within seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts import servers
from scripts.promtool import ensure_promtool
from tests.support.browser import PAGE_TIMEOUT, chromium
from tests.support.env import REPO
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow

README_URL = "http://127.0.0.1:8000"
SECTIONS = ("Try it:", "## Orders and sagas", "## Flash sales")
# What a new terminal has: the system's programs, and none of the service's settings.
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
NOT_COPIED = {".git", ".venv", "var", ".env", "__pycache__", ".pytest_cache", ".mypy_cache"}
NOT_COPIED |= {".ruff_cache", ".hypothesis", "ordersaga.egg-info", "build", "dist"}


def readme_commands(readme: str) -> list[str]:
    """Every shell command of the README's sections in SECTIONS, in order, one at a time."""
    commands: list[str] = []
    for heading in SECTIONS:
        start = readme.index(heading)
        end = readme.find("\n## ", start + len(heading))
        section = readme[start : end if end != -1 else None]
        for block in re.findall(r"^```sh\n(.*?)^```", section, flags=re.S | re.M):
            commands += split_commands(block)
    return commands


def split_commands(block: str) -> list[str]:
    """The commands a reader types one by one: lines joined by a trailing backslash, an open
    quote, or a here-document."""
    commands: list[str] = []
    lines: list[str] = []
    heredoc: str | None = None
    for line in block.splitlines():
        if not lines and not line.strip():
            continue
        lines.append(line)
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            else:
                continue
        elif match := re.search(r"<<-?\s*'?(\w+)'?", line):
            heredoc = match.group(1)
            continue
        text = "\n".join(lines)
        if line.endswith("\\") or not _quotes_closed(text):
            continue
        commands.append(text)
        lines = []
    assert not lines, f"the README's block ends inside a command: {lines}"
    return commands


def _quotes_closed(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return False
    return True


def copy_checkout(destination: Path) -> Path:
    """The working tree without its state; the virtualenv is the repository's own."""
    shutil.copytree(REPO, destination, ignore=lambda _dir, names: [n for n in names if n in NOT_COPIED])
    (destination / ".venv").symlink_to(REPO / ".venv")
    return destination


@dataclass
class MakeRun:
    """`make run` in a checkout, and what it printed."""

    checkout: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    api: str
    flower: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def printed(self, label: str) -> str:
        match = re.search(rf"^  {label} +(\S+)", self.log(), flags=re.M)
        assert match, f"make run did not print its {label}:\n{self.log()}"
        return match.group(1)

    def wait_ready(self) -> None:
        """The API answers, and Flower's API answers without credentials (development)."""
        try:
            wait_until(lambda: _answers(f"{self.api}/readyz"), timeout=60, what="the API")
            wait_until(lambda: _answers(f"{self.flower}/api/workers"), timeout=30, what="Flower's API")
        except AssertionError as error:
            raise AssertionError(f"{error}; make run printed:\n{self.log()}") from None

    def interrupt(self) -> None:
        """Ctrl-C: the terminal sends SIGINT to the foreground process group, make's."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)


@dataclass
class Shell:
    """A reader's terminal: each command in a fresh `bash -c`, the README's variables kept."""

    cwd: Path
    env: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)
    assignments: list[str] = field(default_factory=list)

    def fill_in(self, command: str, api: str) -> str:
        command = re.sub(r"<demo token[^>]*>", "<demo token>", command.replace(README_URL, api))
        for placeholder, value in self.values.items():
            command = command.replace(placeholder, value)
        left = re.findall(r"<[a-z][a-z ]*>", command)
        assert not left, f"the test does not know the README's {left} in:\n{command}"
        return command

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        script = "\n".join([*self.assignments, command])
        result = subprocess.run(
            ["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60
        )
        if re.fullmatch(r"[A-Z_]+=\S+", command):
            self.assignments.append(command)
        return result


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A private Redis on a random port, as `make run` starts when none answers on 6379."""
    server = servers.start_redis(tmp_path / "redis")
    yield server.url
    server.stop()


@pytest.fixture
def make_run(tmp_path: Path, private_redis: str) -> Iterator[MakeRun]:
    checkout = copy_checkout(tmp_path / "checkout")
    home = tmp_path / "home"
    home.mkdir()
    api_port, flower_port, nobody = servers.free_port(), servers.free_port(), servers.free_port()
    env = {
        "PATH": BARE_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "REDIS_URL": private_redis,
        "CELERY_BROKER_URL": private_redis,
        "ORDERSAGA_PUBLIC_URL": f"http://127.0.0.1:{nobody}",  # the provider, unreachable
        "ORDERSAGA_API_BIND": f"127.0.0.1:{api_port}",
        "ORDERSAGA_FLOWER_PORT": str(flower_port),
        "ORDERSAGA_STEP_MAX_RETRIES": "1",
        "ORDERSAGA_STEP_RETRY_BACKOFF_SECONDS": "1",
    }
    log_path = tmp_path / "make-run.log"
    with log_path.open("wb") as log:
        # -o: never reinstall into the shared virtualenv from this copy.
        proc = subprocess.Popen(
            ["make", "-o", ".venv/.installed", "run"],
            cwd=checkout,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = MakeRun(
        checkout, proc, log_path, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{flower_port}"
    )
    try:
        yield stack
    finally:
        if proc.poll() is None:
            stack.interrupt()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def learn(values: dict[str, str], answer: Any) -> None:
    """The ids a reader copies from the answers into the next commands."""
    if not isinstance(answer, dict):
        return
    for item in answer.get("items") or []:
        if isinstance(item, dict) and item.get("sku") == "DEMO-TEA":
            values.setdefault("<goods id>", item["id"])
    identifier = str(answer.get("id", ""))
    if identifier.startswith("ord_"):
        values.setdefault("<order id>", identifier)
    if identifier.startswith("fls_"):
        values.setdefault("<sale id>", identifier)
    if isinstance(answer.get("saga"), dict):
        values.setdefault("<saga id>", answer["saga"]["id"])


def test_the_readme_commands_work_as_shown_beside_make_run(make_run: MakeRun) -> None:
    make_run.wait_ready()

    terminal = {"PATH": BARE_PATH, "HOME": os.environ.get("HOME", "/"), "LANG": "C.UTF-8"}
    shell = Shell(make_run.checkout, terminal)
    shell.values = {
        "<demo token>": make_run.printed("Demo token"),
        "<coupon id>": make_run.printed("Demo coupon"),
    }
    admin = {"Authorization": "Bearer dev-admin-token"}

    def saga_status() -> str:
        url = f"{make_run.api}/api/v1/admin/sagas/{shell.values['<saga id>']}"
        return str(requests.get(url, headers=admin, timeout=10).json()["status"])

    commands = readme_commands((make_run.checkout / "README.md").read_text())
    assert len(commands) >= 10, commands
    outputs: list[str] = []
    purchased = ""  # the flash-sale order
    for command in commands:
        if "FAILED" in command or "retry" in command:  # these need the saga to have FAILED (see above)
            wait_until(lambda: saga_status() == "FAILED", timeout=30, what="the order's saga to be FAILED")
        filled = shell.fill_in(command, make_run.api)
        result = shell.run(filled)
        shown = f"$ {filled}\n{result.stdout}\n{result.stderr}"
        assert result.returncode == 0, shown
        answer = _json(result.stdout)
        if filled.startswith("curl"):
            assert isinstance(answer, dict), f"not a JSON object:\n{shown}"
            assert not isinstance(answer.get("status"), int), f"a problem answer:\n{shown}"
        learn(shell.values, answer)
        if "/purchase" in filled:
            purchased = answer["order_id"]
        outputs.append(shown)

    everything = "\n".join(outputs)
    saga_id = shell.values["<saga id>"]
    assert f"{saga_id}  FAILED" in everything  # saga list --status FAILED
    assert f"saga {saga_id} (order) for order {shell.values['<order id>']}: FAILED" in everything
    assert f"saga {saga_id} resumed" in everything
    assert purchased and "<sale id>" in shell.values  # the flash-sale purchase

    # What is checked below is a clean stop of a service at rest. The purchase just made is
    # still in its saga, and so is the saga the README's retry resumed; their payment step fails
    # here as every one does (the module docstring): stopped while that step still retries, its
    # last failure would be logged during the stop.
    buyer = {"Authorization": f"Bearer {shell.values['<demo token>']}"}

    def sagas_settled() -> bool:
        url = f"{make_run.api}/api/v1/orders/{purchased}"
        purchase = requests.get(url, headers=buyer, timeout=10).json()["saga"]
        statuses = {purchase["id"]: purchase["status"], saga_id: saga_status()}
        if "RUNNING" in statuses.values():
            return False
        # A saga is FAILED once its last attempt's failure is committed; the worker logs that
        # attempt's traceback after it. Stopping before then would log it during the stop.
        log = make_run.log()
        failed = [saga for saga, status in statuses.items() if status == "FAILED"]
        if not failed:
            return True
        marks = [log.rfind(f"saga {saga} FAILED at") for saga in failed]
        return min(marks) >= 0 and log[min(marks) :].count("raised unexpected") >= len(failed)

    wait_until(sagas_settled, timeout=120, what="the purchase's and the retried saga to settle")
    running = len(make_run.log())
    make_run.interrupt()
    make_run.proc.wait(60)
    log = make_run.log()
    stopping = log[running:]
    assert "make: ***" not in log, stopping  # make run exited 0: make reports no error
    assert "Traceback" not in stopping, stopping
    assert "stopped" in stopping, stopping
    assert not (make_run.checkout / "var" / "make-run.json").exists()
    assert not _answers(f"{make_run.api}/readyz") and not _answers(f"{make_run.flower}/api/workers")

    def none_survive() -> bool:  # what honcho stopped may take a moment to exit
        return not [pid for pid in _pids() if f"{make_run.checkout}/" in _cmdline(pid)]

    wait_until(none_survive, timeout=20, what="every process of make run to exit")
    assert log.count("using fixed development secrets") == 1, log  # make run said it, not its five


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


RUNBOOK_FLOWER_URL = "http://127.0.0.1:5555"


def runbook_commands(runbook: str) -> list[str]:
    """Every shell command of docs/operations.md, in order."""
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", runbook, flags=re.S | re.M):
        commands += split_commands(block)
    return commands


def _failed_saga(make_run: MakeRun) -> str:
    """The saga of a demo order, once it has FAILED (its provider cannot be reached)."""
    make_run.wait_ready()
    buyer = {"Authorization": f"Bearer {make_run.printed('Demo token')}"}
    admin = {"Authorization": "Bearer dev-admin-token"}
    goods = requests.get(f"{make_run.api}/api/v1/goods", timeout=10).json()["items"]
    tea = next(item for item in goods if item["sku"] == "DEMO-TEA")
    body = {"items": [{"goods_id": tea["id"], "quantity": 1}]}
    placed = requests.post(f"{make_run.api}/api/v1/orders", json=body, headers=buyer, timeout=10)
    assert placed.status_code == 202, placed.text
    saga_id: str = placed.json()["saga"]["id"]

    def failed() -> bool:
        saga = requests.get(f"{make_run.api}/api/v1/admin/sagas/{saga_id}", headers=admin, timeout=10).json()
        return saga["status"] == "FAILED"

    wait_until(failed, timeout=60, what="the order's saga to be FAILED")
    return saga_id


def test_the_runbook_commands_work_beside_make_run(make_run: MakeRun) -> None:
    """docs/operations.md's commands, each run once as the runbook shows it, against a saga that
    has FAILED (its provider cannot be reached, as in the README's test). A worker the runbook
    starts is stopped again once it answers."""
    ensure_promtool()
    saga_id = _failed_saga(make_run)
    terminal = {"PATH": BARE_PATH, "HOME": os.environ.get("HOME", "/"), "LANG": "C.UTF-8"}
    shell = Shell(make_run.checkout, terminal, values={"<saga id>": saga_id})
    commands = runbook_commands((make_run.checkout / "docs" / "operations.md").read_text())
    assert len(commands) >= 10, commands
    for command in commands:
        filled = shell.fill_in(command.replace(RUNBOOK_FLOWER_URL, make_run.flower), make_run.api)
        if " worker " in filled:
            _start_and_stop(shell, filled)
            continue
        result = shell.run(filled)
        shown = f"$ {filled}\n{result.stdout}\n{result.stderr}"
        assert result.returncode == 0, shown
        if "saga list" in filled:
            assert f"{saga_id}  FAILED" in result.stdout, shown
        if "saga retry" in filled:
            assert f"saga {saga_id} resumed" in result.stdout, shown
        if filled.startswith("curl") and "/metrics" in filled:
            assert (
                "ordersaga_queue_depth{" in result.stdout and "ordersaga_outbox_unsent " in result.stdout
            ), shown


def _start_and_stop(shell: Shell, command: str) -> None:
    """A long-running command (a worker): started, seen ready, stopped as an operator would."""
    log = shell.cwd / "runbook-worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=shell.cwd,
            env=shell.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    node = re.search(r"--hostname (\S+)", command)
    assert node, f"a worker the runbook starts names itself, so that it can be told apart: {command}"
    name = node.group(1).replace("%h", socket.gethostname())
    ping = f".venv/bin/celery -A celery_worker inspect ping --timeout 2 --destination {name}"
    try:
        wait_until(lambda: shell.run(ping).returncode == 0, timeout=90, what=f"{command}: answering\n{log}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text(errors="replace")


def test_the_runbooks_screenshots_come_from_a_real_run(make_run: MakeRun, tmp_path: Path) -> None:
    """In a browser: one FAILED saga in the saga console, retried with its button, and its tasks
    found in Flower. ORDERSAGA_SCREENSHOTS=docs/images writes the runbook's pictures."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    saga_id = _failed_saga(make_run)
    pictures = Path(os.environ.get("ORDERSAGA_SCREENSHOTS") or tmp_path)
    pictures.mkdir(parents=True, exist_ok=True)
    with chromium(
        tmp_path / "profile", tmp_path / "chromedriver.log", ("--window-size=1280,900",)
    ) as browser:
        # An element found on one page goes stale when the next one loads: looked for again.
        wait = WebDriverWait(browser, PAGE_TIMEOUT, ignored_exceptions=(StaleElementReferenceException,))
        browser.get(f"{make_run.api}/admin/sagas/{saga_id}")  # the console asks the operator to sign in
        wait.until(lambda b: b.find_elements(By.NAME, "token"))
        browser.find_element(By.NAME, "token").send_keys("dev-admin-token")
        browser.find_element(By.CSS_SELECTOR, "form button, form input[type=submit]").click()
        wait.until(lambda b: "FAILED" in b.find_element(By.TAG_NAME, "h1").text)
        assert "ran out of retries" in browser.page_source and "create_payment" in browser.page_source
        browser.save_screenshot(str(pictures / "console-failed-saga.png"))
        browser.find_element(By.XPATH, "//button[normalize-space()='Retry']").click()
        wait.until(lambda b: "Retry sent" in b.page_source)
        browser.save_screenshot(str(pictures / "console-retried.png"))

        browser.get(f"{make_run.flower}/tasks")
        search = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "input[type=search]"))[0]
        search.send_keys(f"kwargs:{saga_id}")
        wait.until(lambda b: "orders.saga.create_payment" in b.find_element(By.ID, "tasks-table").text)
        browser.save_screenshot(str(pictures / "flower-saga-tasks.png"))
    for name in ("console-failed-saga.png", "console-retried.png", "flower-saga-tasks.png"):
        assert (pictures / name).read_bytes().startswith(b"\x89PNG"), name
