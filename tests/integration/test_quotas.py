"""Quotas with python-troveclient: limits shown, set by an admin only, enforced with
413 when an instance would pass them, and nothing created then."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from troveclient import exceptions as trove_exc

from tests.conftest import trove
from tests.e2e.support import installed_pg_version

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tenant(stack):
    from coffer.cli import _create_token
    project = f"quota-{uuid.uuid4().hex[:6]}"
    member = asyncio.run(_create_token(project, "member"))
    admin = asyncio.run(_create_token(project, "admin"))
    return project, trove(stack, member, project), trove(stack, admin, project)


def test_limits_and_quota_usage_start_from_the_defaults(tenant):
    project, member, _admin = tenant
    absolute = member.limits.list()[0]
    assert (absolute.max_instances, absolute.max_volumes, absolute.max_ram) == (10, 40, -1)
    shown = {q.resource: (q.in_use, q.limit) for q in member.quota.show(project)}
    assert shown["instances"] == (0, 10) and shown["volumes"] == (0, 40)


def test_only_an_admin_sets_quotas_and_bad_values_are_refused(tenant):
    project, member, admin = tenant
    with pytest.raises(trove_exc.Unauthorized):
        member.quota.update(project, {"instances": 100})
    with pytest.raises(trove_exc.BadRequest):
        admin.quota.update(project, {"instances": -2})
    with pytest.raises(trove_exc.NotFound):
        admin.quota.update(project, {"gpus": 1})
    assert admin.quota.update(project, {"instances": 0, "ram": None})["instances"] == 0


def test_a_create_past_the_quota_is_413_and_creates_nothing(tenant):
    project, member, admin = tenant
    admin.quota.update(project, {"instances": 0})
    with pytest.raises(trove_exc.RequestEntityTooLarge) as raised:
        member.instances.create("too-many", "d1", volume={"size": 1}, datastore="postgresql",
                                datastore_version=installed_pg_version())
    assert "instances" in str(raised.value)
    assert member.instances.list() == []
    admin.quota.update(project, {"instances": 10, "volumes": 1})
    with pytest.raises(trove_exc.RequestEntityTooLarge):
        member.instances.create("too-big", "d1", volume={"size": 2}, datastore="postgresql",
                                datastore_version=installed_pg_version())
    assert member.instances.list() == []
