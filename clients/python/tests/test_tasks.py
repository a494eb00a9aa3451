"""genworker_client.tasks held to docs/schemas/job.schema.json (the repository's copy)."""
import json
import pathlib

import pytest

from genworker_client import tasks

SCHEMA = pathlib.Path(__file__).resolve().parents[3] / "docs" / "schemas" / "job.schema.json"


@pytest.fixture(scope="module")
def schema():
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} not found: run the tests from the genworker repository")
    return json.loads(SCHEMA.read_text())


def per_task(schema):
    out = {}
    for rule in schema["allOf"]:
        task = rule["if"]["properties"]["task"]["const"]
        out[task] = rule["then"]["properties"]["params"]
    return out


def test_tasks_match_schema(schema):
    assert tuple(schema["properties"]["task"]["enum"]) == tasks.TASKS
    rules = per_task(schema)
    assert set(rules) == set(tasks.TASKS) == set(tasks.TASK_PARAMS)
    for task, rule in rules.items():
        assert tasks.REQUIRED_PARAMS[task] == frozenset(rule["required"]), task
        assert tasks.ACCEPTED_PARAMS[task] == frozenset(rule["propertyNames"]["enum"]), task


def test_sizes_match_schema(schema):
    all_sizes = schema["properties"]["params"]["properties"]["size"]["enum"]
    assert list(tasks.Size.__args__) == all_sizes
    for task, rule in per_task(schema).items():
        sizes = rule.get("properties", {}).get("size", {}).get("enum", all_sizes)
        assert tasks.TASK_SIZES[task] == sizes, task


def test_solver_and_param_names_exist_in_schema(schema):
    props = schema["properties"]["params"]["properties"]
    assert list(tasks.SampleSolver.__args__) == props["sample_solver"]["enum"]
    for cls in tasks.TASK_PARAMS.values():
        assert set(cls.__annotations__) <= set(props)


def test_extras_match_schema(schema):
    out = schema["properties"]["output"]
    assert tasks.Output.__required_keys__ == frozenset(out["required"])
    assert set(tasks.Output.__annotations__) == set(out["properties"])
    hook = schema["properties"]["webhook"]
    assert tasks.Webhook.__required_keys__ == frozenset(hook["required"])
    assert list(tasks.WebhookEvent.__args__) == hook["properties"]["events"]["items"]["enum"]


def test_result_event_matches_event_schema():
    ev = json.loads((SCHEMA.parent / "event.schema.json").read_text())
    assert set(tasks.ResultEvent.__annotations__) == set(ev["properties"])
