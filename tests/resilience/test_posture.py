"""Security posture of template.yaml (issue 5, point 5), read from the template itself so it cannot drift:
least privilege per function, the bucket locked down, the public webhook capped, the reconciler scheduled
and alone, and an alarm on every dead-letter / on-failure queue and on failed jobs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import tally

from faceswap_local.template_resources import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(os.environ.get("RESILIENCE_TEMPLATE", ROOT / "template.yaml"))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == kind}


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in function["Properties"].get("Policies") or []:
        if isinstance(policy, dict) and "Statement" in policy:
            out.extend(policy["Statement"])
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_least_privilege_no_wildcards(template: dict[str, Any]) -> None:
    tally.case("hostile", "template: no wildcard action or resource")
    functions = resources(template, "AWS::Serverless::Function")
    assert functions
    for name, function in functions.items():
        for policy in function["Properties"].get("Policies") or []:
            assert isinstance(policy, dict) and "Statement" in policy, f"{name}: managed/templated policy {policy}"
        for st in statements(function):
            for action in _as_list(st["Action"]):
                assert "*" not in action, f"{name}: wildcard action {action}"
            for resource in _as_list(st["Resource"]):
                if isinstance(resource, str):
                    assert resource != "*", f"{name}: wildcard resource"


def test_bucket_locked_down(template: dict[str, Any]) -> None:
    tally.case("hostile", "template: bucket encrypted, public access blocked, TLS only")
    bucket = template["Resources"]["MediaBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    policy = template["Resources"]["MediaBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in policy)


def test_webhook_capped_and_reconciler_alone(template: dict[str, Any]) -> None:
    tally.case("hostile", "template: webhook reserved concurrency, reconciler scheduled and single")
    webhook = template["Resources"]["WebhookFunction"]["Properties"]
    assert webhook["FunctionUrlConfig"]["AuthType"] == "NONE" and "ReservedConcurrentExecutions" in webhook
    reconciler = template["Resources"]["ReconcileJobsFunction"]["Properties"]
    assert reconciler["ReservedConcurrentExecutions"] == 1
    assert reconciler["CodeUri"].rstrip("/") == "functions/reconcile_jobs"
    assert any(e["Type"] in ("Schedule", "ScheduleV2") for e in reconciler["Events"].values())
    actions = {a for st in statements(template["Resources"]["ReconcileJobsFunction"]) for a in _as_list(st["Action"])}
    assert {"dynamodb:Query", "dynamodb:UpdateItem", "secretsmanager:GetSecretValue", "events:PutEvents",
            "sqs:SendMessage"} <= actions
    assert "dynamodb:Scan" not in actions and "dynamodb:DeleteItem" not in actions and "s3:PutObject" not in actions
    env = reconciler["Environment"]["Variables"]
    assert {"RECONCILE_AFTER_SECONDS", "MAX_JOB_AGE_SECONDS", "WEBHOOK_URL"} <= set(env)


def test_alarms_on_every_failure_queue_and_on_failed_jobs(template: dict[str, Any]) -> None:
    tally.case("hostile", "template: alarms on dead-letter/on-failure queues and failed jobs")
    res = template["Resources"]
    failure_queues = set()
    for props in (r.get("Properties") or {} for r in res.values()):
        redrive = props.get("RedrivePolicy") or {}
        if "deadLetterTargetArn" in redrive:
            failure_queues.add(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0])
        on_failure = ((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure") or {}
        if on_failure.get("Type") == "SQS":
            failure_queues.add(on_failure["Destination"]["Fn::GetAtt"][0])
    assert failure_queues
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    watched = set()
    for alarm in alarms:
        for dim in alarm["Properties"].get("Dimensions") or []:
            value = dim["Value"]
            if isinstance(value, dict) and "Fn::GetAtt" in value:
                watched.add(value["Fn::GetAtt"][0])
    assert failure_queues <= watched, f"queues without an alarm: {failure_queues - watched}"
    assert any(a["Properties"].get("MetricName") == "JobsFailed" for a in alarms)
