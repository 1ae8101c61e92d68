"""Entry point: python -m agent <instance dir>/agent.json

The engine's bring-up starts in a thread first; the heavier imports (Kafka,
crypto, database driver) happen while the engine boots."""
import time

STARTED = time.monotonic()

import concurrent.futures  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

from .manager import InstanceConfig, bootstrap_function  # noqa: E402


def main() -> None:
    path = Path(sys.argv[1]).resolve()
    raw = json.loads(path.read_text())
    fields = InstanceConfig.__dataclass_fields__
    config = InstanceConfig(**{k: v for k, v in raw.items() if k in fields}, directory=path.parent)

    engine_up: concurrent.futures.Future = concurrent.futures.Future()
    bootstrap = bootstrap_function(config)  # before the agent registers: it says whether a restart is pending

    def bring_up():
        try:
            bootstrap()
            engine_up.set_result(True)
        except Exception as exc:  # handed to the agent, which reports it
            engine_up.set_exception(exc)

    threading.Thread(target=bring_up, name="engine-bootstrap", daemon=True).start()

    import asyncio

    from plumbing import logs

    from .runtime import Agent

    logs.setup(f"agent/{config.instance_id}")

    async def run() -> None:
        await Agent(config, engine_up, STARTED).run()  # aiokafka clients must be made inside the event loop

    asyncio.run(run())


if __name__ == "__main__":
    main()
