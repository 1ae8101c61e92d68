"""Entry point: python -m services.notifier"""
import asyncio

from plumbing import catalog
from plumbing import topics as T
from plumbing.service import ServiceRuntime

from .delivery import SUBSCRIPTION_TYPES, Notifier
from .tables import metadata


async def main() -> None:
    rt = ServiceRuntime("notifier", metadata)
    notifier = Notifier(rt.store)
    # subscriptions and events in one loop, so a subscription applies from the
    # moment it was made
    rt.consume("coffer-notifier", catalog.PUBLIC_TOPICS + [T.SUBSCRIPTION_EVENTS], notifier.handle,
               SUBSCRIPTION_TYPES | set(catalog.BY_TYPE), batch_handler=notifier.handle_batch)
    await rt.serve(notifier.run)


if __name__ == "__main__":
    asyncio.run(main())
