"""Entry point: python -m agent <instance dir>/agent.json"""
import asyncio
import json
import sys
from pathlib import Path

from plumbing import logs

from .manager import InstanceConfig
from .runtime import Agent


def main() -> None:
    path = Path(sys.argv[1]).resolve()
    raw = json.loads(path.read_text())
    fields = InstanceConfig.__dataclass_fields__
    config = InstanceConfig(**{k: v for k, v in raw.items() if k in fields}, directory=path.parent)
    logs.setup(f"agent/{config.instance_id}")
    asyncio.run(run(config))


async def run(config: InstanceConfig) -> None:
    await Agent(config).run()  # aiokafka clients must be made inside the event loop


if __name__ == "__main__":
    main()
