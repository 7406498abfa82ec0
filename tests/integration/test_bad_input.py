"""Issue 2 point 6: each bad input ends with a clear outcome, and the input objects are untouched."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fal_protocol_server import Delivery
from pipeline_harness import FACE, MAX_VIDEO_BYTES, VIDEO, Pipeline, job_token


@pytest.fixture
def drop(pipeline: Pipeline) -> Pipeline:
    """A registered face and a video in the drop folder."""
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("inbox/alice/party.mp4", VIDEO)
    return pipeline


def _failed(p: Pipeline, job_id: str, code: str) -> dict:
    job = p.job(job_id)
    assert job.status.value == "FAILED"
    assert job.error is not None and job.error.code == code, job.error
    assert [e["detail-type"] for e in p.captured_events()] == ["Face Swap Job Failed"]
    return job.error.model_dump()


@pytest.mark.parametrize("key", ["media/party.mp4", "inbox/alice/notes.txt", "jobs/readme.md", "outputs/x/y.mp4"])
def test_key_outside_the_trigger_or_with_unknown_extension_is_ignored(pipeline: Pipeline, key: str) -> None:
    pipeline.put(key, b"some bytes")
    before = pipeline.inputs_snapshot()
    event = pipeline.s3_event("s3_put_inbox_video.json", key=key)
    outcome = pipeline.submit(event)[0]
    assert outcome["outcome"] == "ignored" and outcome["reason"]
    assert pipeline.all_jobs() == [] and pipeline.provider.submissions == {}
    assert pipeline.captured_events() == []
    assert pipeline.inputs_snapshot() == before


def test_no_registered_face(pipeline: Pipeline) -> None:
    pipeline.put("inbox/carol/party.mp4", VIDEO)
    before = pipeline.inputs_snapshot()
    outcome = pipeline.submit(pipeline.s3_event("s3_put_inbox_video.json", key="inbox/carol/party.mp4"))[0]
    assert outcome["outcome"] == "failed"
    error = _failed(pipeline, outcome["job_id"], "NO_REGISTERED_FACE")
    assert "carol" in error["message"]
    assert pipeline.provider.submissions == {}
    assert pipeline.inputs_snapshot() == before


def test_manifest_that_is_not_json(pipeline: Pipeline) -> None:
    pipeline.put("jobs/single.json", b"{not json")
    before = pipeline.inputs_snapshot()
    outcome = pipeline.submit(pipeline.s3_event("s3_put_manifest_single.json"))[0]
    _failed(pipeline, outcome["job_id"], "MANIFEST_NOT_JSON")
    assert pipeline.provider.submissions == {}
    assert pipeline.inputs_snapshot() == before


@pytest.mark.parametrize(
    ("manifest", "field"),
    [
        ({"faces": [{"image": "faces/alice.jpg"}]}, "target"),
        ({"target": "media/party.mp4", "faces": [{"image": "faces/alice.txt"}]}, "faces[0].image"),
        ({"target": "media/party.mp4", "faces": [{"image": "faces/alice.jpg", "gender": "robot"}]}, "faces[0].gender"),
        ({"target": "s3://another-bucket/party.mp4", "faces": [{"image": "faces/alice.jpg"}]}, "target"),
    ],
)
def test_manifest_that_breaks_the_schema_names_the_field(pipeline: Pipeline, manifest: dict, field: str) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("media/party.mp4", VIDEO)
    pipeline.put("jobs/single.json", json.dumps(manifest).encode())
    before = pipeline.inputs_snapshot()
    outcome = pipeline.submit(pipeline.s3_event("s3_put_manifest_single.json"))[0]
    error = _failed(pipeline, outcome["job_id"], "MANIFEST_INVALID")
    assert field in [d["loc"] for d in error["detail"]], error
    assert pipeline.provider.submissions == {}
    assert pipeline.inputs_snapshot() == before


def test_two_faces_without_genders(pipeline: Pipeline) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("faces/bob.jpg", FACE)
    pipeline.put("media/party.mp4", VIDEO)
    manifest = {"target": "media/party.mp4", "faces": [{"image": "faces/alice.jpg"}, {"image": "faces/bob.jpg"}]}
    pipeline.put("jobs/multi.json", json.dumps(manifest).encode())
    before = pipeline.inputs_snapshot()
    outcome = pipeline.submit(pipeline.s3_event("s3_put_manifest_multi.json"))[0]
    error = _failed(pipeline, outcome["job_id"], "MANIFEST_INVALID")
    assert {d["loc"] for d in error["detail"]} == {"faces[0].gender", "faces[1].gender"}
    assert pipeline.provider.submissions == {}
    assert pipeline.inputs_snapshot() == before


@pytest.mark.parametrize(("size", "code"), [(0, "OBJECT_EMPTY"), (MAX_VIDEO_BYTES + 1, "OBJECT_TOO_LARGE")])
def test_zero_byte_or_over_limit_object(pipeline: Pipeline, size: int, code: str) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("inbox/alice/party.mp4", b"\0" * size)
    before = pipeline.inputs_snapshot()
    outcome = pipeline.submit(pipeline.s3_event("s3_put_inbox_video.json"))[0]
    _failed(pipeline, outcome["job_id"], code)
    assert pipeline.provider.submissions == {}
    assert pipeline.inputs_snapshot() == before


def test_provider_4xx_on_submit(drop: Pipeline) -> None:
    before = drop.inputs_snapshot()
    drop.provider.submit_reply = (400, {"detail": "Input too large for this tier", "error_type": "bad_request"})
    outcome = drop.submit(drop.s3_event("s3_put_inbox_video.json"))[0]
    error = _failed(drop, outcome["job_id"], "PROVIDER_REJECTED")
    assert "Input too large for this tier" in error["message"]
    assert drop.job(outcome["job_id"]).attempts == 1  # one POST, never retried
    assert drop.inputs_snapshot() == before


def test_provider_422_on_result(drop: Pipeline) -> None:
    """An OK webhook without a usable payload: the worker asks the queue for the result and gets a 422."""
    before = drop.inputs_snapshot()
    outcome = drop.submit(drop.s3_event("s3_put_inbox_video.json"))[0]
    sub = drop.provider.only_submission()
    status, _ = drop.deliver(drop.provider.complete(sub, outcome="no_payload"))
    assert status == 200 and drop.job(outcome["job_id"]).status.value == "STORING"
    assert drop.run_store() == []
    error = _failed(drop, outcome["job_id"], "PROVIDER_FAILED")
    assert "422" in error["message"] and "No face found" in error["message"]
    assert drop.keys("outputs/") == []
    assert drop.inputs_snapshot() == before


def _nothing_written(p: Pipeline, job_id: str, before_job: dict) -> None:
    assert p.job(job_id).model_dump() == before_job
    assert p.copy_messages() == []
    assert p.keys("outputs/") == []
    assert p.captured_events() == []


@pytest.mark.parametrize("case", ["missing", "bad", "stale", "wrong_key", "tampered_body"])
def test_webhook_with_missing_or_bad_signature_or_stale_timestamp(drop: Pipeline, case: str) -> None:
    before = drop.inputs_snapshot()
    outcome = drop.submit(drop.s3_event("s3_put_inbox_video.json"))[0]
    sub = drop.provider.only_submission()
    delivery = drop.provider.complete(sub)
    job_before = drop.job(outcome["job_id"]).model_dump()
    headers = dict(delivery.headers)
    body = delivery.body
    if case == "missing":
        headers.pop("x-fal-webhook-signature")
    elif case == "bad":
        headers["x-fal-webhook-signature"] = "00" * 64
    elif case == "stale":
        headers = drop.provider.sign(body, sub.request_id, timestamp=int(time.time()) - 301)
    elif case == "wrong_key":
        headers = drop.provider.sign(body, sub.request_id, key=Ed25519PrivateKey.generate())
    elif case == "tampered_body":
        body = body.replace(b"swapped.mp4", b"evil.mp4")
    template = "webhook_bad_signature.json"
    status, _ = drop.deliver(Delivery(delivery.url, headers, body), template=template)
    assert status == 401
    _nothing_written(drop, outcome["job_id"], job_before)
    assert drop.provider.file_gets == []
    assert drop.inputs_snapshot() == before


def test_webhook_bad_signature_event_file_as_is_is_rejected(drop: Pipeline) -> None:
    from pipeline_harness import FakeContext, load_event

    answer = drop.stack.webhook.lambda_handler(load_event("webhook_bad_signature.json"), FakeContext())
    assert answer["statusCode"] == 401
    assert drop.all_jobs() == []


def test_unknown_job_id_or_mismatched_request_id(drop: Pipeline) -> None:
    before = drop.inputs_snapshot()
    outcome = drop.submit(drop.s3_event("s3_put_inbox_video.json"))[0]
    sub = drop.provider.only_submission()
    delivery = drop.provider.complete(sub)
    job_before = drop.job(outcome["job_id"]).model_dump()
    unknown = "0" * 32
    status, _ = drop.deliver(delivery, query={"job_id": unknown, "token": job_token(unknown)})
    assert status == 404
    _nothing_written(drop, outcome["job_id"], job_before)
    # A correctly signed webhook of another request, aimed at this job.
    other = json.loads(delivery.body)
    other["request_id"] = other["gateway_request_id"] = "another-request"
    raw = json.dumps(other, sort_keys=True).encode()
    forged = Delivery(delivery.url, drop.provider.sign(raw, "another-request"), raw)
    status, _ = drop.deliver(forged)
    assert status == 409
    _nothing_written(drop, outcome["job_id"], job_before)
    assert drop.provider.file_gets == []
    assert drop.inputs_snapshot() == before


@pytest.mark.parametrize(
    "url",
    ["https://evil.example.com/files/swapped.mp4", "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:9/x.mp4",
     "file:///etc/passwd"],
)
def test_result_url_outside_the_allowed_hosts(drop: Pipeline, url: str) -> None:
    before = drop.inputs_snapshot()
    outcome = drop.submit(drop.s3_event("s3_put_inbox_video.json"))[0]
    sub = drop.provider.only_submission()
    status, body = drop.deliver(drop.provider.complete(sub, result_url=url))
    assert status == 200 and body["status"] == "FAILED"
    error = _failed(drop, outcome["job_id"], "RESULT_URL_NOT_ALLOWED")
    assert "refused" in error["message"]
    assert drop.copy_messages() == [] and drop.keys("outputs/") == []
    assert drop.provider.file_gets == []  # nothing fetched
    assert drop.inputs_snapshot() == before


def test_result_download_that_breaks_mid_stream_is_retried(drop: Pipeline) -> None:
    before = drop.inputs_snapshot()
    outcome = drop.submit(drop.s3_event("s3_put_inbox_video.json"))[0]
    job_id = outcome["job_id"]
    sub = drop.provider.only_submission()
    drop.provider.break_downloads = 1
    status, _ = drop.deliver(drop.provider.complete(sub))
    assert status == 200
    failures = drop.run_store()  # first delivery: the stream breaks halfway
    assert len(failures) == 1
    assert drop.job(job_id).status.value == "STORING"
    assert drop.keys("outputs/") == []  # no partial object
    assert drop.s3.list_multipart_uploads(Bucket=drop.names.bucket).get("Uploads", []) == []
    assert drop.run_store() == []  # SQS delivers again: now it completes
    job = drop.job(job_id)
    assert job.status.value == "COMPLETED"
    assert drop.get(job.output.key) == drop.provider.files[f"{sub.request_id}/swapped.mp4"]
    assert len(drop.provider.file_gets) == 2
    assert drop.inputs_snapshot() == before


def test_duplicate_ok_webhook_is_a_no_op(drop: Pipeline) -> None:
    job_id = drop.run_job(drop.s3_event("s3_put_inbox_video.json"))
    drop.captured_events()
    sub = drop.provider.only_submission()
    status, body = drop.deliver(drop.provider.complete(sub))
    assert status == 200 and body["status"] == "COMPLETED"
    assert drop.copy_messages() == [] and drop.captured_events() == []
    assert drop.job(job_id).status.value == "COMPLETED"


@pytest.mark.parametrize("token", [None, "0" * 32, "another-jobs-token"])
def test_valid_delivery_replayed_at_another_jobs_url_without_its_token(drop: Pipeline, token: str | None) -> None:
    """fal signs the body, not the URL: a genuine delivery of job A aimed at job B (PENDING, no request_id yet)."""
    drop.put("inbox/alice/second.mp4", VIDEO + b"2")
    first = drop.submit(drop.s3_event("s3_put_inbox_video.json"))[0]
    victim = drop.submit(drop.s3_event("s3_put_inbox_video.json", key="inbox/alice/second.mp4"))[0]
    drop.jobs._table.update_item(  # the victim's submit answer not recorded yet: PENDING without request_id
        Key={"job_id": victim["job_id"]}, UpdateExpression="SET #s = :p REMOVE request_id",
        ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":p": "PENDING"})
    before_job = drop.job(victim["job_id"]).model_dump()
    genuine = drop.provider.complete(drop.provider.submissions[first["request_id"]])
    query = {"job_id": victim["job_id"]}
    if token is not None:
        query["token"] = job_token(first["job_id"]) if token == "another-jobs-token" else token
    status, _ = drop.deliver(genuine, query=query)
    assert status == 401
    _nothing_written(drop, victim["job_id"], before_job)
    assert drop.provider.file_gets == []
