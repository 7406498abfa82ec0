"""Exactly-once submission: one provider POST per uploaded object, whatever S3 and Lambda do.

Counted by the provider server itself (`posts`: every POST with the job id from its fal_webhook URL).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
import tally
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from resilience_rig import FakeContext, Rig, fast_client

from faceswap_common.job_store import JobStatus
from faceswap_common.submission import SubmitDeps, idempotent_submitter, object_ref_from_record, submit_object

N = 10


def accepted(rig: Rig) -> int:
    return sum(1 for _job, ok in rig.provider.posts if ok)


class Killed(BaseException):
    """The sandbox dies at the Lambda timeout: no except clause, no cleanup runs."""


def container(rig: Rig, *, idempotent: bool) -> Any:
    """A separate Lambda sandbox: its own clients, deps and (optionally) Powertools idempotency layer."""
    settings = rig.stack.submit.deps.settings
    extra = {"token_key": rig.token_key} if rig.token_key is not None else {}
    deps = SubmitDeps.from_settings(settings, provider_factory=lambda: fast_client(rig.provider.base_url), **extra)
    deps.sleep = lambda _s: None
    if not idempotent:
        submit: Any = lambda obj: submit_object(obj, deps).model_dump(mode="json")  # noqa: E731
    else:
        client = boto3.client("dynamodb", endpoint_url=rig.stack.endpoint, region_name="us-east-1")
        persistence = DynamoDBPersistenceLayer(table_name=rig.names.idempotency_table, boto3_client=client)
        submit = idempotent_submitter(deps, persistence, IdempotencyConfig(expires_after_seconds=3600))
    submit.deps = deps
    return submit


def test_same_event_delivered_many_times(rig: Rig) -> None:
    event = rig.drop_video()
    outcomes = [rig.submit_one(event) for _ in range(N)]
    tally.add("duplicate_deliveries", N - 1)
    tally.case("exactly_once", "same S3 event x10, sequential")
    assert accepted(rig) == 1
    assert outcomes[0]["outcome"] == "submitted"
    assert {o["job_id"] for o in outcomes} == {outcomes[0]["job_id"]}
    rig.deliver(rig.complete(outcomes[0]["job_id"]))
    rig.check("fault", "same S3 event x10 then completed")




@pytest.mark.parametrize("idempotent", [
    pytest.param(True, id="with-powertools-idempotency"),
    pytest.param(False, id="job-record-guard-only"),
])
def test_same_event_delivered_concurrently(rig: Rig, idempotent: bool) -> None:
    """Ten sandboxes get the same record at the same instant; losers of the in-progress lock are retried
    by Lambda later (here: once the winner is done)."""
    event = rig.drop_video()
    obj = object_ref_from_record(event["Records"][0])
    submitters = [container(rig, idempotent=idempotent) for _ in range(N)]
    barrier = threading.Barrier(N)
    results: list[Any] = []
    retry: list[Any] = []

    def run(submit: Any) -> None:
        barrier.wait()
        try:
            results.append(submit(obj))
        except IdempotencyAlreadyInProgressError:
            retry.append(submit)

    threads = [threading.Thread(target=run, args=(s,)) for s in submitters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for submit in retry:  # Lambda's async retry of the throttled duplicates
        results.append(submit(obj))
    tally.add("duplicate_deliveries", N - 1)
    tally.case("exactly_once", f"same S3 event x10 concurrently ({'idempotency' if idempotent else 'record only'})")
    tally.add("duplicate_submissions", max(0, accepted(rig) - 1))
    assert accepted(rig) == 1, rig.provider.posts
    # The duplicates answer "duplicate" or replay the winner's stored outcome: one request id in all.
    assert len(results) == N
    assert len({r["request_id"] for r in results if r.get("request_id")}) == 1, results
    submitted = [r for r in results if r["outcome"] == "submitted"]
    rig.deliver(rig.complete(submitted[0]["job_id"]))
    rig.check("fault", "concurrent duplicate S3 events then completed")


def test_lambda_timeout_between_answer_and_record(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The POST was answered, then the sandbox died before mark_submitted: Lambda retries the event."""
    event = rig.drop_video()
    jobs = rig.stack.submit.deps.jobs

    def die(*_a: Any, **_k: Any) -> bool:
        raise Killed()

    monkeypatch.setattr(jobs, "mark_submitted", die)
    with pytest.raises(Killed):
        rig.submit(event, FakeContext(remaining_ms=1))  # the in-progress lock expires at the deadline
    monkeypatch.undo()
    time.sleep(0.01)
    tally.add("injected_faults")
    retries = [rig.submit_one(event) for _ in range(2)]  # Lambda's two async retries
    tally.add("duplicate_deliveries", 2)
    tally.case("exactly_once", "Lambda timeout between provider answer and record, then retries")
    assert accepted(rig) == 1, rig.provider.posts
    assert all(r["outcome"] == "duplicate" for r in retries), retries
    job_id = retries[0]["job_id"]
    assert rig.job(job_id).status == JobStatus.PENDING and rig.job(job_id).request_id is None
    status, _ = rig.deliver(rig.complete(job_id))  # the provider ran it: its webhook settles the job
    assert status == 200
    rig.check("fault", "timeout between answer and record")
    assert rig.job(job_id).status == JobStatus.COMPLETED


def test_overwrite_with_new_etag_is_a_new_job(rig: Rig) -> None:
    first = rig.drop_video(body=b"\x00\x00\x00\x18ftypmp42 first version")
    second = rig.drop_video(body=b"\x00\x00\x00\x18ftypmp42 second version")
    a = rig.submit_one(first)
    b = rig.submit_one(second)
    for _ in range(3):  # and their duplicates change nothing
        rig.submit_one(first)
        rig.submit_one(second)
    tally.add("duplicate_deliveries", 6)
    tally.case("exactly_once", "overwrite (new etag) is a new job")
    assert a["outcome"] == b["outcome"] == "submitted"
    assert a["job_id"] != b["job_id"]
    assert accepted(rig) == 2
    assert rig.provider.accepted_posts_by_job() == {a["job_id"]: 1, b["job_id"]: 1}
    for outcome in (a, b):
        rig.deliver(rig.complete(outcome["job_id"]))
    jobs = rig.check("fault", "overwrite then both completed")
    assert sorted(j.status for j in jobs) == [JobStatus.COMPLETED, JobStatus.COMPLETED]


def test_submitter_retry_and_reconciler_resubmit_post_once(rig: Rig) -> None:
    """A (a late async retry of SubmitJob, with idempotency) resumes the never-sent job and is building its
    input; B (the reconciler's resubmit: submit_object) reads the record (no attempt yet), stamps its attempt
    and POSTs; A then stamps its own attempt and POSTs too."""
    event = rig.drop_video()
    obj_a = obj_b = object_ref_from_record(event["Records"][0])
    submit_a = container(rig, idempotent=True)
    submit_b = container(rig, idempotent=False)  # what reconcile._resubmit calls
    deps_a = submit_a.deps
    presign = deps_a.presign
    b_posted, a_posted = threading.Event(), threading.Event()

    def slow_presign(key: str) -> str:  # A pauses between its PENDING record and its attempt stamp
        b_posted.wait(3)
        return presign(key)

    def on_submit(_req: Any) -> None:
        if not b_posted.is_set():
            b_posted.set()
            a_posted.wait(2)  # B's answer is held until A has posted (or gave up)
        else:
            a_posted.set()

    deps_a.presign = slow_presign
    rig.provider.on_submit = on_submit
    thread_a = threading.Thread(target=submit_a, args=(obj_a,))
    thread_a.start()
    while rig.job_or_none(obj_a.job_id) is None:
        time.sleep(0.005)
    submit_b(obj_b)
    thread_a.join()
    tally.add("duplicate_deliveries")
    tally.case("exactly_once", "late submitter retry vs reconciler resubmit, interleaved")
    tally.add("duplicate_submissions", max(0, accepted(rig) - 1))
    assert accepted(rig) == 1, rig.provider.posts
