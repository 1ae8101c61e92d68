"""Entry point: python -m services.notifier"""
import asyncio

from plumbing import catalog
from plumbing import topics as T
from plumbing.service import ServiceRuntime

from .delivery import Notifier
from .tables import metadata


async def main() -> None:
    rt = ServiceRuntime("notifier", metadata)
    notifier = Notifier(rt.store)
    routes = {"coffer.subscription.changed.v1": notifier.subscription_changed,
              "coffer.subscription.deleted.v1": notifier.subscription_deleted}
    routes.update({t: notifier.public_event for t in catalog.BY_TYPE})

    async def dispatch(event):
        await routes[event.type](event)

    # subscriptions and events in one loop, so a subscription applies from the
    # moment it was made
    rt.consume("coffer-notifier", catalog.PUBLIC_TOPICS + [T.SUBSCRIPTION_EVENTS], dispatch, set(routes))
    await rt.serve(notifier.run)


if __name__ == "__main__":
    asyncio.run(main())
