"""template.yaml: lint-clean, no reference cycle after the SAM transform, and the properties the design relies on."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from faceswap_local.template_resources import load_template, submit_s3_filters

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CONTRACT_ENV = {
    "MEDIA_BUCKET", "JOBS_TABLE", "IDEMPOTENCY_TABLE", "PROVIDER_BASE_URL", "PROVIDER_APP_ID", "FAL_KEY_SECRET_ARN",
    "JWKS_URL", "ALLOWED_RESULT_HOSTS", "PRESIGN_EXPIRY_SECONDS", "MAX_IMAGE_BYTES", "MAX_VIDEO_BYTES",
    "MAX_MANIFEST_BYTES", "MAX_RESULT_BYTES", "RESULT_COPY_QUEUE_URL", "EVENT_BUS_NAME", "JOB_TTL_DAYS",
    "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE", "AWS_ENDPOINT_URL",
}  # fmt: skip


class _NoManagedPolicies:
    """The transform asks IAM for managed policy ARNs only for names; offline we know none."""

    def load(self) -> dict[str, str]:
        return {}


def transformed(template: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(template)
    for res in template["Resources"].values():  # what `sam package` does to local code paths
        for key in ("CodeUri", "ContentUri"):
            if key in res.get("Properties", {}):
                res["Properties"][key] = "s3://artifacts/code.zip"
    params = {"FalKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:fal-AbCdEf"}
    return transform(template, params, _NoManagedPolicies())


def _references(node: Any) -> Iterator[str]:
    """Logical ids a CloudFormation value points at (Ref, Fn::GetAtt, ${X} / ${X.Attr} in Fn::Sub)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                yield value[0] if isinstance(value, list) else str(value).split(".")[0]
            elif key == "Fn::Sub":
                text, local = (value[0], value[1]) if isinstance(value, list) else (value, {})
                for name in re.findall(r"\$\{([^}!]+)\}", text):
                    base = name.split(".")[0]
                    if base not in local:
                        yield base
                if isinstance(local, Mapping):
                    yield from _references(local)
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def dependency_graph(cfn: Mapping[str, Any]) -> dict[str, set[str]]:
    resources = cfn["Resources"]
    graph: dict[str, set[str]] = {}
    for rid, res in resources.items():
        deps = {r for r in _references(res.get("Properties", {})) if r in resources}
        depends_on = res.get("DependsOn", [])
        deps |= set([depends_on] if isinstance(depends_on, str) else depends_on)
        graph[rid] = deps
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def cfn(template: dict[str, Any]) -> dict[str, Any]:
    return transformed(template)


def test_cfn_lint_is_clean() -> None:
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATE)
    assert [str(m) for m in matches] == []


def test_transformed_template_has_no_circular_dependency(cfn: dict[str, Any]) -> None:
    assert find_cycle(dependency_graph(cfn)) is None


def test_cycle_detector_catches_the_classic_bucket_policy_cycle(template: dict[str, Any]) -> None:
    """Sanity check of the detector: S3ReadPolicy on !Ref of the triggering bucket closes a cycle."""
    broken = copy.deepcopy(template)
    broken["Resources"]["SubmitJobFunction"]["Properties"]["Policies"].append(
        {"S3ReadPolicy": {"BucketName": {"Ref": "MediaBucket"}}}
    )
    cycle = find_cycle(dependency_graph(transformed(broken)))
    assert cycle is not None and "MediaBucket" in cycle


def test_submit_triggers_only_on_inbox_and_json_manifests(template: dict[str, Any]) -> None:
    rules = sorted(
        tuple((r["Name"], r["Value"]) for r in f["Filter"]["Key"]["FilterRules"]) for f in submit_s3_filters(template)
    )
    assert rules == [(("prefix", "inbox/"),), (("prefix", "jobs/"), ("suffix", ".json"))]


def test_no_wildcards_in_our_inline_policies(template: dict[str, Any]) -> None:
    for rid, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for policy in res["Properties"].get("Policies", []):
            for stmt in policy.get("Statement", []):
                actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
                assert all("*" not in a for a in actions), (rid, stmt)
                assert stmt["Resource"] != "*", (rid, stmt)


def test_bucket_is_private_encrypted_and_tls_only(template: dict[str, Any]) -> None:
    props = template["Resources"]["MediaBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    stmt = template["Resources"]["MediaBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert stmt["Effect"] == "Deny" and stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_webhook_is_a_public_function_url_with_capped_concurrency(template: dict[str, Any]) -> None:
    props = template["Resources"]["WebhookFunction"]["Properties"]
    assert props["FunctionUrlConfig"]["AuthType"] == "NONE"
    assert "ReservedConcurrentExecutions" in props


def test_result_copy_queue_outlives_six_worker_timeouts_and_redrives(template: dict[str, Any]) -> None:
    queue = template["Resources"]["ResultCopyQueue"]["Properties"]
    worker = template["Resources"]["StoreResultFunction"]["Properties"]
    assert int(queue["VisibilityTimeout"]) >= 6 * int(worker["Timeout"])
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ResultCopyDLQ", "Arn"]}
    assert worker["Events"]["ResultCopy"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_submit_has_async_retries_and_an_on_failure_queue(template: dict[str, Any]) -> None:
    cfg = template["Resources"]["SubmitJobFunction"]["Properties"]["EventInvokeConfig"]
    assert cfg["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    assert 0 <= cfg["MaximumRetryAttempts"] <= 2


def test_globals_carry_every_contract_env_var(template: dict[str, Any]) -> None:
    assert CONTRACT_ENV <= set(template["Globals"]["Function"]["Environment"]["Variables"])
    submit_env = template["Resources"]["SubmitJobFunction"]["Properties"]["Environment"]["Variables"]
    assert submit_env["WEBHOOK_URL"] == {"Fn::GetAtt": ["WebhookFunctionUrl", "FunctionUrl"]}


def test_layer_is_built_by_the_makefile_with_hash_pycs(template: dict[str, Any]) -> None:
    layer = template["Resources"]["CommonLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = (ROOT / "layers/common/Makefile").read_text()
    assert "build-CommonLayer:" in makefile and "--invalidation-mode unchecked-hash" in makefile
    assert "manylinux2014_aarch64" in makefile and "--only-binary=:all:" in makefile


def test_store_handler_knows_the_redrive_count(template: dict[str, Any]) -> None:
    """On the last delivery the worker fails the job instead of leaving it to the DLQ; it must know which one is last."""
    source = (ROOT / "functions/store_result/app.py").read_text()
    count = template["Resources"]["ResultCopyQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    assert f"MAX_RECEIVES = {count}" in source
