"""Every operation of the OpenAPI document, fuzzed by Schemathesis through the ASGI app.

The operations are read from the running app's document, so routes added later are covered
by themselves. Each runs with a valid admin token, without one and with a wrong one; every
answer must be no 5xx and match the document: a declared status, content type, headers and
body schema; input that breaks the schema must be refused with a 4xx. Generation is
derandomized, so a failure comes back on every run with the same example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from tests.support.helpers import build_fake_index

TOKEN = "schemathesis-admin-token"
CREDENTIALS = {
    "valid token": {"Authorization": f"Bearer {TOKEN}"},
    "no token": {},
    "wrong token": {"Authorization": "Bearer not-the-token"},
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
#: Examples per operation: the full run with the token; without it most answers are a 401.
EXAMPLES = {"valid token": {"positive": 25, "negative": 15}, "other": {"positive": 5}}


@pytest.fixture
def schema(tmp_path: Path) -> Any:
    """The app's document, loaded from the app itself; its lifespan runs until the test ends."""
    settings, _ = build_fake_index(
        tmp_path / "data",
        admin_token=TOKEN,
        redis_url=None,
        # Fuzzing posts far more drafts and events than a reader would.
        draft_rate_per_second=0,
        event_rate_per_second=0,
    )
    loaded = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    # Each run sends its own credentials (CREDENTIALS): none generated from the declared scheme.
    loaded.config.generation.update(with_security_parameters=False)
    return loaded


def takes_input(operation: Any) -> bool:
    """Whether the operation has parameters or a body (else nothing can be made invalid)."""
    return bool(operation.definition.raw.get("parameters") or operation.body)


@pytest.mark.parametrize("credentials", sorted(CREDENTIALS))
def test_every_operation_answers_as_documented(
    schema: Any, credentials: str, subtests: pytest.Subtests
) -> None:
    headers = CREDENTIALS[credentials]
    examples = EXAMPLES.get(credentials, EXAMPLES["other"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        for mode, count in examples.items():
            if mode == "negative" and not takes_input(operation):
                continue

            @settings(
                max_examples=count,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
            def answers_as_documented(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            with subtests.test(msg=f"{operation.label} ({mode}, {credentials})"):
                answers_as_documented()
