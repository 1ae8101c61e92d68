"""A real Keystone for the identity tests (reference keystone.md): keystone from
PyPI in a virtualenv of its own (pinned by tests/keystone-constraints.txt, never
the project's .venv), SQLite, Fernet tokens, served by gunicorn.

Installing (~20 s) and bootstrapping (~10 s: four keystone-manage runs) happen once
per machine: the venv and a small archive of the bootstrapped data directory are
kept under the system temp dir, keyed by the pins. A session restores the archive,
points the identity endpoints at its port and starts gunicorn: ~2 s.
When Keystone cannot be installed the tests FAIL saying why; a skipped identity
test would look like a passing one."""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from plumbing import broker

CONSTRAINTS = Path(__file__).with_name("keystone-constraints.txt")
ADMIN_PASSWORD = "keystone-admin-secret"
BOOTSTRAP_PORT = 5000  # the port written at bootstrap; each session rewrites it
INSTALL_TIMEOUT = 600
QUIET = {**os.environ, "PYTHONWARNINGS": "ignore"}

CONFIG = """\
[DEFAULT]
log_file = {dir}/keystone.log
[database]
connection = sqlite:///{dir}/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = {dir}/fernet-keys
[fernet_receipts]
key_repository = {dir}/fernet-receipts
[credential]
key_repository = {dir}/credential-keys
[identity]
password_hash_rounds = 4
[cache]
enabled = true
backend = dogpile.cache.memory
"""
# keystone's oslo.config parses sys.argv when the app loads: under gunicorn it would
# choke on gunicorn's own flags (and be respawned forever), so the app sees none.
# Each request also starts with an empty oslo context: Keystone checks X-Auth-Token
# before it makes the request's context, so the check ran in the one this thread's
# previous request left behind, whose request-local cache can hold the token cache's
# region id from before a revocation. The first request on each of gunicorn's threads
# after a password reset then accepted the user's revoked token (while refusing the
# same token as X-Subject-Token, checked in the new context).
WSGI_WRAPPER = """\
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application as keystone  # noqa: E402
from oslo_context.context import RequestContext  # noqa: E402


def application(environ, start_response):
    RequestContext()  # the thread's current context from now on: nothing cached yet
    return keystone(environ, start_response)
"""


def _fail(what: str, output: str = "") -> NoReturn:
    pytest.fail(f"cannot run a real Keystone: {what}\nIt is installed from PyPI ({CONSTRAINTS.name}) into its own "
                f"virtualenv under {tempfile.gettempdir()} on first use; this machine must reach PyPI.\n"
                + (f"--- output ---\n{output[-3000:]}" if output else ""), pytrace=False)


def _home() -> Path:
    key = hashlib.sha256(CONSTRAINTS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"coffer-keystone-{key}"


def _run(cmd: list[str], what: str, timeout: float = 120) -> None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=QUIET)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _fail(f"{what}: {exc}")
    if out.returncode != 0:
        _fail(f"{what} exited with {out.returncode}", out.stdout + out.stderr)


def _write_config(directory: Path) -> Path:
    config = directory / "keystone.conf"
    config.write_text(CONFIG.format(dir=directory))
    (directory / "keystone_app.py").write_text(WSGI_WRAPPER)
    return config


def installed() -> tuple[Path, bytes]:
    """(the venv's bin directory, the bootstrapped data archive), made once per machine."""
    home = _home()
    venv_bin, archive = home / "venv" / "bin", home / "bootstrapped.tar"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{home}.lock", "w") as lock:  # one installer at a time, across sessions
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "ready").exists():
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            _run([sys.executable, "-m", "venv", str(home / "venv")], "creating the virtualenv")
            _run([str(venv_bin / "pip"), "install", "--disable-pip-version-check", "-q", "-c", str(CONSTRAINTS),
                  "keystone", "gunicorn"], "pip install keystone gunicorn", INSTALL_TIMEOUT)
            archive.write_bytes(_bootstrap(venv_bin))
            (home / "ready").touch()
    return venv_bin, archive.read_bytes()


def _bootstrap(venv_bin: Path) -> bytes:
    with tempfile.TemporaryDirectory(prefix="keystone-bootstrap-") as tmp:
        directory = Path(tmp)
        for sub in ("fernet-keys", "fernet-receipts", "credential-keys"):
            (directory / sub).mkdir(mode=0o700)
        config = _write_config(directory)
        manage = [str(venv_bin / "keystone-manage"), "--config-file", str(config)]
        owner = ["--keystone-user", "root", "--keystone-group", "root"]
        _run(manage + ["db_sync"], "keystone-manage db_sync")
        _run(manage + ["fernet_setup", *owner], "keystone-manage fernet_setup")
        _run(manage + ["credential_setup", *owner], "keystone-manage credential_setup")
        url = f"http://127.0.0.1:{BOOTSTRAP_PORT}/v3/"
        _run(manage + ["bootstrap", "--bootstrap-password", ADMIN_PASSWORD, "--bootstrap-region-id", "RegionOne",
                       "--bootstrap-admin-url", url, "--bootstrap-internal-url", url,
                       "--bootstrap-public-url", url], "keystone-manage bootstrap")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name in ("keystone.db", "fernet-keys", "fernet-receipts", "credential-keys"):
                tar.add(directory / name, arcname=name)
        return buffer.getvalue()


@dataclass
class Keystone:
    """A running Keystone: its URL, and admin calls over its REST API."""
    directory: Path
    port: int
    proc: subprocess.Popen | None = None
    _admin_token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    def start(self, venv_bin: Path, archive: bytes, timeout: float = 60) -> None:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(self.directory, filter="fully_trusted")
        for sub in ("fernet-keys", "fernet-receipts", "credential-keys"):
            os.chmod(self.directory / sub, 0o700)
        _write_config(self.directory)
        with sqlite3.connect(self.directory / "keystone.db") as db:  # the identity endpoints: this port
            db.execute("UPDATE endpoint SET url = replace(url, ?, ?)",
                       (f":{BOOTSTRAP_PORT}/", f":{self.port}/"))
        log = open(self.directory / "gunicorn.log", "ab")
        self.proc = subprocess.Popen(
            [str(venv_bin / "gunicorn"), "--no-control-socket", "--workers", "1", "--threads", "4",
             "--access-logfile", str(self.directory / "access.log"),
             "--bind", f"127.0.0.1:{self.port}", "--chdir", str(self.directory), "keystone_app:application"],
            env={**QUIET, "OS_KEYSTONE_CONFIG_FILES": str(self.directory / "keystone.conf")},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _fail(f"gunicorn exited with {self.proc.returncode}",
                      (self.directory / "gunicorn.log").read_text(errors="replace"))
            try:
                self.admin_token()
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        _fail(f"Keystone did not answer within {timeout:.0f} s",
              (self.directory / "gunicorn.log").read_text(errors="replace"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- the REST API ------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        request = urllib.request.Request(self.url + path, method=method, data=json.dumps(body).encode()
                                         if body is not None else None,
                                         headers={"Content-Type": "application/json",
                                                  **({"X-Auth-Token": token} if token else {})})
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            return response.headers, json.loads(payload) if payload else None

    def token(self, user: str, password: str, project: str | None = None, system: bool = False) -> str:
        scope = {"system": {"all": True}} if system else {
            "project": {"name": project, "domain": {"id": "default"}}} if project else None
        auth = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}}
        if scope:
            auth["scope"] = scope
        headers, _ = self._call("POST", "/auth/tokens", {"auth": auth})
        return headers["X-Subject-Token"]

    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token = self.token("admin", ADMIN_PASSWORD, system=True)
        return self._admin_token

    def admin(self, method: str, path: str, body: dict | None = None):
        return self._call(method, path, body, self.admin_token())[1]

    def _find(self, collection: str, name: str):
        items = self.admin("GET", f"/{collection}?name={name}")[collection]
        return items[0] if items else None

    def project(self, name: str) -> str:
        found = self._find("projects", name)
        if found is None:
            found = self.admin("POST", "/projects", {"project": {"name": name, "domain_id": "default"}})["project"]
        return found["id"]

    def user(self, name: str, password: str, project: str, roles: list[str]) -> str:
        """A user with `roles` on `project` (a project id); returns the user id."""
        found = self._find("users", name)
        if found is None:
            found = self.admin("POST", "/users", {"user": {"name": name, "password": password,
                                                            "domain_id": "default"}})["user"]
        for role in roles:
            role_id = self._find("roles", role)["id"]
            self.admin("PUT", f"/projects/{project}/users/{found['id']}/roles/{role_id}")
        return found["id"]

    def catalog(self, token: str) -> list[dict]:
        return self._call("GET", "/auth/catalog", token=token)[1]["catalog"]

    def requests_seen(self, method: str, path_prefix: str) -> int:
        """How many requests gunicorn's access log shows for `method` on `path_prefix`."""
        log = (self.directory / "access.log").read_text(errors="replace")
        return sum(1 for line in log.splitlines() if f'"{method} /v3{path_prefix}' in line)


def start_keystone() -> Keystone:
    venv_bin, archive = installed()
    keystone = Keystone(Path(tempfile.mkdtemp(prefix="coffer-keystone-run-")), broker.free_port())
    keystone.start(venv_bin, archive)
    return keystone
