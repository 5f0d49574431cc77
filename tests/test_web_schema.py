"""Schemathesis against the OpenAPI document, calling the real app served on a loopback port
with seeded data: every operation, valid and invalid inputs, with and without the token. No
response may be a 5xx, and every response must match the document (status, type, schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from bot.web import create_web_app
from bot.web.openapi import document
from tests.web_support import WebEnv, seeded_env, served

# Loaded from the same function the app serves (the first test checks they are one document);
# schemathesis' fixture-based loader does not run on this pytest.
schema = schemathesis.openapi.from_dict(document())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebEnv]:
    e = seeded_env(tmp_path_factory.mktemp("web-schema"))
    yield e
    e.app.engine.dispose()


@pytest.fixture(scope="module")
def base_url(env: WebEnv) -> Iterator[str]:
    with served(create_web_app(env.app)) as url:
        yield url


def test_the_app_serves_this_document(base_url: str) -> None:
    r = requests.get(f"{base_url}/api/openapi.json", timeout=10)
    assert r.status_code == 200 and r.json() == document()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_matches_its_openapi_document(case: schemathesis.Case, base_url: str, env: WebEnv) -> None:
    # A township token: "unit" values outside its subtree must come back 404, as documented.
    case.call_and_validate(base_url=base_url, headers=env.auth("huayuan"))
