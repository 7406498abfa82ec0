"""Issue 2 point 5: the whole flow, S3 event → protocol server → signed webhook → output in S3 + COMPLETED job."""

from __future__ import annotations

import json

from pipeline_harness import FACE, FACE_BOB, IMAGE, VIDEO, Pipeline, job_token, load_event



def _assert_completed(p: Pipeline, job_id: str, kind: str, warning: str | None = None) -> None:
    job = p.job(job_id)
    assert job.status.value == "COMPLETED", job.error
    sub = p.provider.submissions[job.request_id]
    assert job.output is not None
    assert job.output.bucket == p.names.bucket
    assert job.output.key.startswith(f"outputs/{job_id}/")
    stored = p.get(job.output.key)
    assert stored == p.provider.files[f"{job.request_id}/swapped.{'mp4' if kind == 'video' else 'png'}"]
    assert job.output.size == len(stored)
    assert job.output.content_type == ("video/mp4" if kind == "video" else "image/png")
    assert job.processing_time_ms == 1234
    assert job.warning == warning
    assert sub.webhook_url == f"https://webhook.example.lambda-url.us-east-1.on.aws/?job_id={job_id}&token={job_token(job_id)}"
    events = p.captured_events()
    assert [e["detail-type"] for e in events] == ["Face Swap Job Completed"]
    assert events[0]["source"] == "faceswap-pipeline"
    assert events[0]["detail"]["job_id"] == job_id and events[0]["detail"]["output"]["key"] == job.output.key


def test_drop_folder_video(pipeline: Pipeline) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("inbox/alice/party.mp4", VIDEO)
    before = pipeline.inputs_snapshot()
    job_id = pipeline.run_job(pipeline.s3_event("s3_put_inbox_video.json"), warning="video truncated to 25 minutes")
    _assert_completed(pipeline, job_id, "video", warning="video truncated to 25 minutes")
    sub = pipeline.provider.only_submission()
    assert sub.endpoint == "faceswapvideo"
    assert sub.fetched == {"source_face_url": FACE, "target_video_url": VIDEO}  # presigned URLs really served them
    job = pipeline.job(job_id)
    assert job.inputs["target_video_url"] == f"s3://{pipeline.names.bucket}/inbox/alice/party.mp4"
    assert job.trigger.key == "inbox/alice/party.mp4"
    assert pipeline.inputs_snapshot() == before


def test_drop_folder_image(pipeline: Pipeline) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("inbox/alice/portrait.jpg", IMAGE)
    before = pipeline.inputs_snapshot()
    job_id = pipeline.run_job(pipeline.s3_event("s3_put_inbox_image.json"))
    _assert_completed(pipeline, job_id, "image")
    sub = pipeline.provider.only_submission()
    assert sub.endpoint == "faceswapimage"
    assert sub.fetched == {"source_face_url": FACE, "target_image_url": IMAGE}
    assert pipeline.inputs_snapshot() == before


def test_multi_manifest(pipeline: Pipeline) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("faces/bob.png", FACE_BOB)
    pipeline.put("media/party.mp4", VIDEO)
    manifest = {"target": "media/party.mp4", "enable_occlusion_prevention": True,
                "faces": [{"image": "faces/alice.jpg", "gender": "female"},
                          {"image": f"s3://{pipeline.names.bucket}/faces/bob.png", "gender": "male"}]}
    pipeline.put("jobs/multi.json", json.dumps(manifest).encode())
    before = pipeline.inputs_snapshot()
    job_id = pipeline.run_job(pipeline.s3_event("s3_put_manifest_multi.json"))
    _assert_completed(pipeline, job_id, "video")
    sub = pipeline.provider.only_submission()
    assert sub.endpoint == "faceswapvideomulti"
    assert sub.input["source_gender_1"] == "female" and sub.input["source_gender_2"] == "male"
    assert sub.input["enable_occlusion_prevention"] is True
    assert sub.fetched == {"source_face_url_1": FACE, "source_face_url_2": FACE_BOB, "target_video_url": VIDEO}
    assert pipeline.inputs_snapshot() == before


def test_single_manifest_with_image_target(pipeline: Pipeline) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("media/portrait.png", IMAGE)
    pipeline.put("jobs/single.json", json.dumps({"target": "media/portrait.png",
                                                  "faces": [{"image": "faces/alice.jpg"}]}).encode())
    before = pipeline.inputs_snapshot()
    job_id = pipeline.run_job(pipeline.s3_event("s3_put_manifest_single.json"))
    _assert_completed(pipeline, job_id, "image")
    assert pipeline.provider.only_submission().endpoint == "faceswapimage"
    assert pipeline.inputs_snapshot() == before


def test_key_with_spaces_and_plus_sign(pipeline: Pipeline) -> None:
    key = "inbox/alice/my clip+1.mp4"
    event = load_event("s3_put_key_spaces_plus.json")
    assert event["Records"][0]["s3"]["object"]["key"] == "inbox/alice/my+clip%2B1.mp4"  # as S3 encodes it
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put(key, VIDEO)
    before = pipeline.inputs_snapshot()
    job_id = pipeline.run_job(pipeline.s3_event("s3_put_key_spaces_plus.json"))
    _assert_completed(pipeline, job_id, "video")
    assert pipeline.job(job_id).trigger.key == key
    assert pipeline.provider.only_submission().fetched["target_video_url"] == VIDEO
    assert pipeline.inputs_snapshot() == before


def test_duplicate_s3_event_gives_one_submission(pipeline: Pipeline) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("inbox/alice/party.mp4", VIDEO)
    before = pipeline.inputs_snapshot()
    event = pipeline.s3_event("s3_put_inbox_video.json")
    first = pipeline.submit(event)
    second = pipeline.submit(event)  # same record again: the idempotency layer answers
    assert len(pipeline.provider.submissions) == 1
    assert first == second and first[0]["outcome"] == "submitted"
    # Idempotency record gone (expired / other container): the deterministic job id still collapses it.
    pipeline.ddb.delete_item(TableName=pipeline.names.idempotency_table,
                             Key={"id": pipeline.ddb.scan(TableName=pipeline.names.idempotency_table)["Items"][0]["id"]})
    third = pipeline.submit(event)
    assert third[0]["outcome"] == "duplicate" and third[0]["job_id"] == first[0]["job_id"]
    assert len(pipeline.provider.submissions) == 1
    assert len(pipeline.all_jobs()) == 1
    assert pipeline.inputs_snapshot() == before


def test_overwritten_key_is_a_new_job(pipeline: Pipeline) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("inbox/alice/party.mp4", VIDEO)
    first = pipeline.submit(pipeline.s3_event("s3_put_inbox_video.json"))
    pipeline.put("inbox/alice/party.mp4", VIDEO + b"v2")
    second = pipeline.submit(pipeline.s3_event("s3_put_inbox_video.json"))
    assert first[0]["job_id"] != second[0]["job_id"]
    assert len(pipeline.provider.submissions) == 2


def test_error_webhook_fails_the_job_with_the_providers_message(pipeline: Pipeline) -> None:
    pipeline.put("faces/alice.jpg", FACE)
    pipeline.put("inbox/alice/party.mp4", VIDEO)
    before = pipeline.inputs_snapshot()
    outcome = pipeline.submit(pipeline.s3_event("s3_put_inbox_video.json"))[0]
    sub = pipeline.provider.only_submission()
    status, body = pipeline.deliver(pipeline.provider.complete(sub, outcome="error"), template="webhook_error.json")
    assert status == 200 and body["status"] == "FAILED"
    job = pipeline.job(outcome["job_id"])
    assert job.status.value == "FAILED"
    assert job.error is not None and job.error.code == "PROVIDER_FAILED"
    assert "Invalid status code: 422" in job.error.message
    assert "No face found in the source image" in job.error.message
    assert pipeline.copy_messages() == []
    assert pipeline.keys("outputs/") == []
    assert [e["detail-type"] for e in pipeline.captured_events()] == ["Face Swap Job Failed"]
    # fal retries deliveries: the same webhook again is a no-op answering 200
    status, body = pipeline.deliver(pipeline.provider.complete(sub, outcome="error"), template="webhook_error.json")
    assert status == 200 and pipeline.job(outcome["job_id"]).status.value == "FAILED"
    assert pipeline.captured_events() == []
    assert pipeline.inputs_snapshot() == before
