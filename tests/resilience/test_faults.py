"""Fault injection on loopback (moto server + a fal-protocol server with switchable faults).

Every case ends with `rig.check()`: the reconciler and the copy worker are run forward in time until
every job is COMPLETED or FAILED with a reason; no job may be left behind, no job submitted twice,
and no output object may exist that is not a COMPLETED job's whole result.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import tally
from botocore.exceptions import ClientError
from resilience_rig import Rig, free_port
from fault_provider import Fault

from faceswap_common.job_store import JobStatus
from faceswap_common.webhook_intake import WebhookDeps, handle_webhook

MiB = 1024 * 1024


def fault(n: int = 1) -> None:
    tally.add("injected_faults", n)


def submitted(rig: Rig, event: dict[str, Any] | None = None) -> str:
    outcome = rig.submit_one(event or rig.drop_video())
    assert outcome["outcome"] == "submitted", outcome
    return outcome["job_id"]


# -- baseline ------------------------------------------------------------------------------------------
def test_happy_path_through_the_rig(rig: Rig) -> None:
    job_id = submitted(rig)
    status, body = rig.deliver(rig.complete(job_id))
    assert status == 200, body
    rig.check("fault", "baseline")
    assert rig.job(job_id).status == JobStatus.COMPLETED


# -- provider faults during submit ---------------------------------------------------------------------
def test_provider_down_during_submit_fails_with_reason(rig: Rig) -> None:
    rig.use_provider(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    fault(3)  # first try + two inline retries
    outcome = rig.submit_one(rig.drop_video())
    assert outcome["outcome"] == "failed"
    assert outcome["error"]["code"] == "PROVIDER_UNAVAILABLE"
    jobs = rig.check("fault", "provider down during submit")
    assert [j.status for j in jobs] == [JobStatus.FAILED]
    assert rig.provider.posts == []


@pytest.mark.parametrize("codes", [(429,), (503,), (429, 503)])
def test_submit_refused_then_accepted(rig: Rig, codes: tuple[int, ...]) -> None:
    rig.provider.inject("submit", *(Fault(status=c) for c in codes))
    fault(len(codes))
    job_id = submitted(rig)
    assert len(rig.provider.posts) == len(codes) + 1
    rig.deliver(rig.complete(job_id))
    rig.check("fault", f"submit refused {codes} then accepted")
    assert rig.job(job_id).status == JobStatus.COMPLETED


def test_submit_refused_every_time_fails(rig: Rig) -> None:
    rig.provider.inject("submit", Fault(status=429), Fault(status=429), Fault(status=503))
    fault(3)
    outcome = rig.submit_one(rig.drop_video())
    assert outcome["outcome"] == "failed" and outcome["error"]["code"] == "PROVIDER_UNAVAILABLE"
    rig.check("fault", "submit refused every time")


def test_submit_slow_answer_lost_then_webhook_completes(rig: Rig) -> None:
    """Enqueued, but the answer comes after our timeout: unknown outcome, no resubmission, the webhook settles it."""
    rig.provider.inject("submit", Fault(delay=1.0))
    fault()
    outcome = rig.submit_one(rig.drop_video())
    assert outcome["outcome"] == "unknown", outcome
    job_id = outcome["job_id"]
    assert rig.job(job_id).status == JobStatus.PENDING
    rig.reconcile(120)  # past the PENDING retry delay: must NOT resubmit (an attempt was made)
    assert len(rig.provider.posts) == 1
    status, _ = rig.deliver(rig.complete(job_id))
    assert status == 200
    rig.check("fault", "submit answer lost (slow), webhook arrives")
    assert rig.job(job_id).status == JobStatus.COMPLETED


def test_submit_500_after_enqueue_and_no_webhook_fails_unknown(rig: Rig) -> None:
    rig.provider.inject("submit", Fault(status=500, delay=0.01))
    fault()
    outcome = rig.submit_one(rig.drop_video())
    assert outcome["outcome"] == "unknown"
    jobs = rig.check("fault", "submit 500 after enqueue, webhook lost")
    assert jobs[0].status == JobStatus.FAILED and jobs[0].error.code == "SUBMIT_OUTCOME_UNKNOWN"
    assert len(rig.provider.posts) == 1


def test_webhook_before_the_submit_answer_is_recorded(rig: Rig) -> None:
    """The provider calls back before it answers the POST: the job goes PENDING -> STORING -> COMPLETED."""
    answers: list[tuple[int, dict[str, Any]]] = []

    def deliver_first(req: Any) -> None:
        assert rig.job(req.job_id).status == JobStatus.PENDING
        answers.append(rig.deliver(rig.complete(req.job_id)))

    rig.provider.on_submit = deliver_first
    fault()
    outcome = rig.submit_one(rig.drop_video())
    assert answers and answers[0][0] == 200, answers
    job = rig.job(outcome["job_id"])
    assert job.status == JobStatus.STORING and job.request_id == outcome["request_id"]
    rig.check("fault", "webhook before submit answer recorded")
    assert rig.job(outcome["job_id"]).status == JobStatus.COMPLETED


# -- missed webhooks: the reconciler polls status and result ---------------------------------------------
def test_lost_webhook_recovered_by_polling(rig: Rig) -> None:
    job_id = submitted(rig)
    rig.complete(job_id)  # done at the provider; the webhook never arrives
    fault()
    report = rig.reconcile(120)
    assert report.recovered == 1, report
    rig.check("fault", "webhook lost, reconciler polls")
    assert rig.job(job_id).status == JobStatus.COMPLETED


def test_lost_error_webhook_recovered_as_failed(rig: Rig) -> None:
    job_id = submitted(rig)
    rig.complete(job_id, outcome="error")
    fault()
    jobs = rig.check("fault", "error webhook lost, reconciler polls")
    assert jobs[0].status == JobStatus.FAILED and jobs[0].error.code == "PROVIDER_FAILED"
    assert "No face found" in jobs[0].error.message


@pytest.mark.parametrize("route,codes", [("status", (429, 429, 429)), ("status", (503, 503, 503)),
                                         ("result", (503, 503, 503)), ("result", (429, 429, 429))])
def test_status_or_result_refused_then_recovered(rig: Rig, route: str, codes: tuple[int, ...]) -> None:
    job_id = submitted(rig)
    rig.complete(job_id)
    rig.provider.inject(route, *(Fault(status=c) for c in codes))  # one whole poll's retries fail
    fault(len(codes))
    report = rig.reconcile(120)
    assert report.poll_errors == 1, report
    assert rig.job(job_id).status == JobStatus.SUBMITTED
    rig.check("fault", f"{route} answers {codes[0]} during a poll")
    assert rig.job(job_id).status == JobStatus.COMPLETED


@pytest.mark.parametrize("route", ["status", "result"])
def test_status_or_result_slow_then_recovered(rig: Rig, route: str) -> None:
    job_id = submitted(rig)
    rig.complete(job_id)
    rig.provider.inject(route, *(Fault(delay=1.0) for _ in range(3)))  # every retry of one poll times out
    fault(3)
    report = rig.reconcile(120)
    assert report.poll_errors == 1, report
    rig.check("fault", f"{route} slow (timeouts)")
    assert rig.job(job_id).status == JobStatus.COMPLETED


def test_provider_down_during_polls_until_max_age(rig: Rig) -> None:
    job_id = submitted(rig)
    rig.use_provider(f"http://127.0.0.1:{free_port()}")
    fault()
    jobs = rig.check("fault", "provider down for every poll")
    assert jobs[0].status == JobStatus.FAILED and jobs[0].error.code == "JOB_TIMED_OUT"
    assert jobs[0].job_id == job_id


def test_stuck_in_queue_is_cancelled_and_failed(rig: Rig) -> None:
    job_id = submitted(rig)
    fault()
    jobs = rig.check("fault", "provider never finishes")
    assert jobs[0].status == JobStatus.FAILED and jobs[0].error.code == "JOB_TIMED_OUT"
    assert rig.provider.request_for(job_id).cancelled
    assert jobs[0].error.detail["cancel_requested"] is True


def test_pending_never_sent_is_submitted_by_the_reconciler(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between the PENDING record and the POST: the reconciler sends it (once)."""
    import faceswap_common.submission as submission

    def crash(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("Lambda crashed before the POST (injected)")

    monkeypatch.setattr(submission, "_submit", crash)
    fault()
    with pytest.raises(RuntimeError):
        rig.submit(rig.drop_video())
    monkeypatch.undo()
    (job,) = rig.all_jobs()
    assert job.status == JobStatus.PENDING and job.submit_attempted_at is None
    rig.reconcile(0)  # too early: the submitter may still be running
    assert rig.provider.posts == []
    report = rig.reconcile(120)
    assert report.resubmitted == 1, report
    rig.reconcile(130)  # a second run must not send it again
    assert len(rig.provider.posts) == 1
    rig.deliver(rig.complete(job.job_id))
    rig.check("fault", "crash between record and POST")
    assert rig.job(job.job_id).status == JobStatus.COMPLETED


# -- result copy faults ----------------------------------------------------------------------------------
def test_download_breaks_mid_stream_then_completes(rig: Rig) -> None:
    job_id = submitted(rig)
    rig.provider.break_files = 2
    fault(2)
    rig.deliver(rig.complete(job_id, size=64 * 1024))
    assert rig.run_store() == 2
    rig.check("fault", "result download breaks mid-stream")
    assert rig.job(job_id).status == JobStatus.COMPLETED


def test_result_host_503_then_completes(rig: Rig) -> None:
    job_id = submitted(rig)
    rig.provider.inject("files", Fault(status=503), Fault(status=503))
    fault(2)
    rig.deliver(rig.complete(job_id))
    rig.check("fault", "result host answers 503")
    assert rig.job(job_id).status == JobStatus.COMPLETED


class S3Faults:
    """botocore event hook on the StoreResult client: fail the named S3 operation `times` times."""

    def __init__(self, rig: Rig, operation: str, times: int, exc: BaseException | None = None) -> None:
        self.client = rig.stack.store.deps.s3
        self.event = f"before-call.s3.{operation}"
        self.left = times
        self.exc = exc
        self.client.meta.events.register(self.event, self)

    def __call__(self, **_kwargs: Any) -> None:
        if self.left > 0:
            self.left -= 1
            tally.add("injected_faults")
            if self.exc is not None:
                raise self.exc
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "S3")

    def remove(self) -> None:
        self.client.meta.events.unregister(self.event, self)


@pytest.mark.parametrize("operation", ["UploadPart", "CompleteMultipartUpload", "CreateMultipartUpload"])
def test_s3_errors_during_the_copy(rig: Rig, operation: str) -> None:
    job_id = submitted(rig)
    hook = S3Faults(rig, operation, times=2)
    try:
        rig.deliver(rig.complete(job_id))
        assert rig.run_store() == 2
        assert rig.keys("outputs/") == [] or rig.job(job_id).status == JobStatus.COMPLETED
        rig.check("fault", f"S3 {operation} fails twice")
    finally:
        hook.remove()
    assert rig.job(job_id).status == JobStatus.COMPLETED


def test_s3_down_for_good_ends_failed_not_stuck(rig: Rig) -> None:
    """Every UploadPart fails: 5 receives, the DLQ, then the reconciler's bounded re-enqueues, then FAILED."""
    job_id = submitted(rig)
    hook = S3Faults(rig, "UploadPart", times=10_000)
    try:
        rig.deliver(rig.complete(job_id))
        jobs = rig.check("fault", "S3 UploadPart fails for good")
    finally:
        hook.remove()
    assert jobs[0].status == JobStatus.FAILED
    # S3 errors are not PipelineErrors, so StoreResult never gives up by itself: the DLQ, then the reconciler.
    assert jobs[0].error.code == "RESULT_COPY_STUCK", jobs[0].error
    assert rig.keys("outputs/") == []


class Killed(BaseException):
    """The Lambda sandbox dies (timeout / OOM): no except clause, no abort, nothing runs after it."""


def test_copy_killed_halfway(rig: Rig) -> None:
    """Killed after part 1 of 3 was uploaded (abort never runs): no object, job STORING, then redelivered."""
    store = rig.stack.store.deps
    store.part_size = 5 * MiB
    job_id = submitted(rig)
    hook = S3Faults(rig, "UploadPart", times=0, exc=Killed())
    calls = {"n": 0}

    def kill_on_second(**_kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            tally.add("injected_faults")
            raise Killed()

    abort_hook = S3Faults(rig, "AbortMultipartUpload", times=1, exc=Killed())  # the dead process aborts nothing
    store.s3.meta.events.register("before-call.s3.UploadPart", kill_on_second)
    try:
        rig.deliver(rig.complete(job_id, size=11 * MiB))
        with pytest.raises(Killed):
            rig.run_store()
        assert rig.keys("outputs/") == []
        assert rig.job(job_id).status == JobStatus.STORING
        uploads = rig.s3.list_multipart_uploads(Bucket=rig.names.bucket).get("Uploads", [])
        assert len(uploads) == 1  # invisible, and the bucket's lifecycle rule aborts it after a day
        # The message is in flight until its visibility timeout; the reconciler re-enqueues the stuck copy.
        rig.check("fault", "copy killed halfway")
    finally:
        store.s3.meta.events.unregister("before-call.s3.UploadPart", kill_on_second)
        hook.remove()
        abort_hook.remove()
        store.part_size = 8 * MiB
    job = rig.job(job_id)
    assert job.status == JobStatus.COMPLETED and job.output is not None and job.output.size == 11 * MiB


# -- duplicate and concurrent webhook deliveries -----------------------------------------------------------
def test_webhook_delivered_ten_times_at_once(rig: Rig) -> None:
    """Ten Lambda containers get the same delivery at once: one transition, one copy, one event."""
    job_id = submitted(rig)
    delivery = rig.complete(job_id)
    settings = rig.stack.webhook.deps.settings
    verifier = rig.stack.webhook.deps.verifier
    barrier = threading.Barrier(10)
    answers: list[int] = []

    def container() -> None:
        deps = WebhookDeps.from_settings(settings, verifier=verifier,  # own clients, as a separate sandbox
                                         token_key=getattr(rig.stack.webhook.deps, "token_key", None))
        barrier.wait()
        outcome = handle_webhook(delivery.headers, delivery.body, delivery.query, deps)
        answers.append(outcome.status_code)

    threads = [threading.Thread(target=container) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tally.add("duplicate_deliveries", 9)
    assert answers == [200] * 10
    rig.check("fault", "webhook delivered 10 times at once")
    assert rig.job(job_id).status == JobStatus.COMPLETED
    completed = [e for e in rig.captured_events() if e["detail-type"] == "Face Swap Job Completed"]
    assert len(completed) == 1, completed


def test_webhook_redelivered_after_completion_and_late_poll(rig: Rig) -> None:
    job_id = submitted(rig)
    delivery = rig.complete(job_id)
    for _ in range(3):
        assert rig.deliver(delivery)[0] == 200
    rig.run_store()
    assert rig.job(job_id).status == JobStatus.COMPLETED
    for _ in range(3):
        assert rig.deliver(delivery)[0] == 200
    tally.add("duplicate_deliveries", 5)
    report = rig.reconcile(8000)  # a reconciler run long after: nothing to do
    assert report.examined == 0
    rig.check("fault", "webhook redelivered before and after completion")
    assert len([e for e in rig.captured_events() if e["detail-type"] == "Face Swap Job Completed"]) == 1


def test_webhook_races_the_reconciler(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The webhook lands between the reconciler's result fetch and its write: exactly one transition."""
    import faceswap_common.reconcile as reconcile_module

    job_id = submitted(rig)
    delivery = rig.complete(job_id)
    original = reconcile_module._apply

    def webhook_first(job: Any, body: Any, report: Any, deps: Any) -> None:
        assert rig.deliver(delivery)[0] == 200
        original(job, body, report, deps)

    monkeypatch.setattr(reconcile_module, "_apply", webhook_first)
    tally.add("duplicate_deliveries")
    report = rig.reconcile(120)
    assert report.job_ids[job_id] == "settled_meanwhile", report
    monkeypatch.undo()
    rig.check("fault", "webhook races the reconciler")
    assert len([e for e in rig.captured_events() if e["detail-type"] == "Face Swap Job Completed"]) == 1


def test_late_webhook_after_submit_unknown_deadline_is_harmless(rig: Rig) -> None:
    """The reconciler failed a job as SUBMIT_OUTCOME_UNKNOWN; a very late webhook must not revive it."""
    rig.provider.inject("submit", Fault(status=502, delay=0.01))
    fault()
    outcome = rig.submit_one(rig.drop_video())
    assert outcome["outcome"] == "unknown"
    rig.reconcile(700)
    job = rig.job(outcome["job_id"])
    assert job.status == JobStatus.FAILED and job.error.code == "SUBMIT_OUTCOME_UNKNOWN"
    status, body = rig.deliver(rig.complete(outcome["job_id"]))
    assert status == 200 and body["status"] == "FAILED"
    rig.expected_outputs.pop(outcome["job_id"], None)
    rig.check("fault", "webhook after SUBMIT_OUTCOME_UNKNOWN verdict")
    assert rig.keys("outputs/") == []


# -- the reconciler acting on a record that changed under it ---------------------------------------------------
def stale_reads(rig: Rig, monkeypatch: pytest.MonkeyPatch, meanwhile: Any) -> None:
    """The reconciler's GSI query returns records, then `meanwhile()` changes the jobs before it acts."""
    jobs = rig.stack.reconcile.deps.jobs
    original = jobs.iter_by_status

    def iter_by_status(status: JobStatus, **kwargs: Any) -> Any:
        records = list(original(status, **kwargs))
        if records:
            meanwhile()
        return iter(records)

    monkeypatch.setattr(jobs, "iter_by_status", iter_by_status)


def test_webhook_between_read_and_submit_unknown_verdict(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.provider.inject("submit", Fault(status=502, delay=0.01))
    fault()
    outcome = rig.submit_one(rig.drop_video())
    job_id = outcome["job_id"]
    delivery = rig.complete(job_id)
    stale_reads(rig, monkeypatch, lambda: rig.deliver(delivery))
    report = rig.reconcile(700)  # past the SUBMIT_OUTCOME_UNKNOWN deadline, but the webhook got there first
    assert report.failed_submit_unknown == 0, report
    assert report.job_ids[job_id] == "settled_meanwhile" or rig.job(job_id).status != JobStatus.FAILED
    monkeypatch.undo()
    rig.check("fault", "webhook lands between reconciler read and SUBMIT_OUTCOME_UNKNOWN verdict")
    assert rig.job(job_id).status == JobStatus.COMPLETED


def test_copy_finishes_between_read_and_requeue(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = submitted(rig)
    rig.deliver(rig.complete(job_id))  # STORING; the copy message is waiting
    stale_reads(rig, monkeypatch, rig.run_store)
    report = rig.reconcile(400)  # past the STORING deadline as read, but the copy completes meanwhile
    assert report.copy_requeued == 0 and report.failed_copy_stuck == 0, report
    monkeypatch.undo()
    rig.check("fault", "copy completes between reconciler read and re-enqueue")
    assert rig.job(job_id).status == JobStatus.COMPLETED


def test_reconciler_stops_when_out_of_time(rig: Rig) -> None:
    import time

    from faceswap_common.reconcile import reconcile

    job_id = submitted(rig)
    report = reconcile(rig.stack.reconcile.deps, now=time.time() + 120, budget_seconds=-1)
    assert report.out_of_time and report.examined == 0
    assert rig.job(job_id).status == JobStatus.SUBMITTED
    rig.deliver(rig.complete(job_id))
    rig.check("fault", "reconciler out of time leaves jobs for the next run")


def _crash_before_post(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> str:
    import faceswap_common.submission as submission

    def crash(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("Lambda crashed before the POST (injected)")

    monkeypatch.setattr(submission, "_submit", crash)
    fault()
    with pytest.raises(RuntimeError):
        rig.submit(rig.drop_video())
    monkeypatch.undo()
    (job,) = rig.all_jobs()
    return job.job_id


def test_never_sent_job_whose_input_vanished_fails_with_reason(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = _crash_before_post(rig, monkeypatch)
    rig.s3.delete_object(Bucket=rig.names.bucket, Key="inbox/alice/clip.mp4")
    fault()
    jobs = rig.check("fault", "crash before POST, input deleted before the retry")
    assert jobs[0].job_id == job_id and jobs[0].status == JobStatus.FAILED
    assert jobs[0].error.code == "OBJECT_NOT_FOUND"
    assert rig.provider.posts == []


def test_never_sent_job_found_past_max_age_fails(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = _crash_before_post(rig, monkeypatch)
    report = rig.reconcile(4000)  # the reconciler was down for longer than MAX_JOB_AGE_SECONDS
    assert report.failed_never_sent == 1, report
    jobs = rig.check("fault", "crash before POST, reconciler back after max age")
    assert jobs[0].job_id == job_id and jobs[0].error.code == "SUBMIT_NEVER_SENT"
    assert rig.provider.posts == []
