"""The minimal consumer in docs/events.md works as printed: copied, pointed at this
stack, it reads and decodes the project's instance events."""
from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import trove
from tests.e2e.support import installed_pg_version, wait_active, wait_gone

pytestmark = pytest.mark.e2e
DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_the_documented_consumer_reads_instance_events(stack, tmp_path):
    client = trove(stack)
    inst = client.instances.create("documented", "d1", volume={"size": 1}, datastore="postgresql",
                                   datastore_version=installed_pg_version())
    wait_active(client, inst.id)

    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    for printed, here in (('"http://127.0.0.1:8779"', repr(stack.api_url)), ('"demo"', repr(stack.project)),
                          ('"cft_..."', repr(stack.member_token)), ('"127.0.0.1:9092"', repr(stack.bootstrap)),
                          ('"my-integration"', repr(f"docs-{uuid.uuid4().hex}"))):
        assert printed in code, f"the documented consumer no longer has {printed}"
        code = code.replace(printed, here)
    script = tmp_path / "consumer.py"
    script.write_text(code)
    out = tmp_path / "out.txt"
    with open(out, "w") as sink:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        wanted = f"coffer.instance.active.v1 {inst.id}"
        while wanted not in out.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        printed = out.read_text()
        assert wanted in printed, printed[-2000:]
        line = next(line for line in printed.splitlines() if line.startswith(wanted))
        assert "'operating_status': 'HEALTHY'" in line  # the Avro data, decoded
    finally:
        proc.kill()
        proc.wait()
    client.instances.delete(inst.id)
    wait_gone(client, inst.id)
