"""schemathesis drives the live server from its own OpenAPI description: no 5xx, whatever it sends."""

from __future__ import annotations

import copy
import uuid
from typing import Any, Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test dependency of the TAXII server")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from tests.taxii.support import LiveServer, indicator  # noqa: E402
from threatmesh.node import init_node  # noqa: E402
from threatmesh.store.protocol import Collection  # noqa: E402
from threatmesh.taxii.openapi import openapi_spec  # noqa: E402
from threatmesh.web.app import create_app  # noqa: E402

COLLECTION_ID = "4a7c8b2e-9d1f-4e3a-8b6c-2f5e7d9a1c3b"
OBJECT_ID = indicator(1)["id"]


def _spec_with_examples() -> dict[str, Any]:
    """The served description, with path parameters narrowed to resources that exist
    (and one that does not), so that generated requests reach the handlers' logic
    instead of stopping at 404."""
    spec = copy.deepcopy(openapi_spec())
    known = {
        "api_root": ["default", "missing"],
        "collection_id": [COLLECTION_ID, "default", str(uuid.UUID(int=7, version=4))],
        "object_id": [OBJECT_ID, indicator(2)["id"]],
    }
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation["parameters"]:
                if parameter["name"] in known:
                    parameter["schema"] = {"type": "string", "enum": known[parameter["name"]]}
    return spec


schema = schemathesis.openapi.from_dict(_spec_with_examples())


@pytest.fixture(scope="module")
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    created = init_node(tmp_path_factory.mktemp("fuzz") / "node", "fuzzed", environ={})
    node = created.node
    node.store.add_collection(Collection(id=COLLECTION_ID, title="fuzzed", public=True))
    from threatmesh.stix.parse import parse_object

    node.store.put_objects([parse_object(indicator(1)), parse_object(indicator(1, 1))], collection_id=COLLECTION_ID,
                           source="test")
    with LiveServer(create_app(node.settings, node.store)) as server:
        yield server, created.admin_key
    node.close()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error(case: Any, live_node: tuple[LiveServer, str]) -> None:
    server, key = live_node
    for headers in ({"Authorization": f"Bearer {key}"}, {}):
        response = case.call(base_url=server.url, headers=headers, timeout=30)
        case.validate_response(response, checks=[not_a_server_error])
