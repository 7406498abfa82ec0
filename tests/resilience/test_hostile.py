"""Hostile inputs: forged / replayed / mis-signed webhooks, JWKS rotation, oversized bodies, result URLs
aimed at internal addresses (directly, via redirects, via DNS), manifests with path tricks, odd keys.

Each webhook case checks that the answer is a 4xx and that nothing was written: the job record is
byte-for-byte the same, no copy message was queued, no event was published.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from typing import Any

import httpx
import pytest
import tally
from resilience_rig import FACE, VIDEO, Rig, free_port
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fault_provider import Delivery

import faceswap_common.url_guard as url_guard
import faceswap_common.webhook_intake as webhook_intake
from faceswap_common.job_store import JobStatus, TriggerRef
from faceswap_common.api_models import Endpoint
from faceswap_common.signatures import JwksCache, WebhookVerifier

# -- helpers ------------------------------------------------------------------------------------------


def make_job(rig: Rig, status: JobStatus = JobStatus.SUBMITTED) -> tuple[str, str]:
    """A job record as the submitter leaves it (SUBMITTED with a request id, or PENDING after an attempt)."""
    job_id, request_id = uuid.uuid4().hex, str(uuid.uuid4())
    trigger = TriggerRef(bucket=rig.names.bucket, key=f"inbox/alice/{job_id}.mp4", etag="e")
    assert rig.jobs.create_pending(job_id, Endpoint.VIDEO, trigger, {"source_face_url": "s3://x/faces/a.png"})
    rig.jobs.mark_submit_attempt(job_id)
    if status == JobStatus.SUBMITTED:
        rig.jobs.mark_submitted(job_id, request_id)
    return job_id, request_id


def ok_delivery(rig: Rig, job_id: str, request_id: str, url: str | None = None, **sign: Any) -> Delivery:
    output = {"video": {"url": url or f"{rig.provider.base_url}/files/{request_id}.mp4", "content_type": "video/mp4",
                        "file_name": "swapped.mp4", "file_size": 4}, "processing_time_ms": 5}
    body = json.dumps({"error": None, "gateway_request_id": request_id, "payload": output,
                       "request_id": request_id, "status": "OK"}, sort_keys=True).encode()
    return Delivery(url=hook_url(rig, job_id), headers=rig.provider.sign(body, request_id, **sign), body=body)


def hook_url(rig: Rig, job_id: str) -> str:
    """The webhook URL SubmitJob gives the provider for this job (with its token where tokens exist)."""
    token = rig.token_for(job_id)
    return f"https://hook/?job_id={job_id}" + (f"&token={token}" if token else "")


def snapshot(rig: Rig, job_id: str) -> dict[str, Any]:
    return rig.stack.clients["dynamodb"].get_item(TableName=rig.names.jobs_table, Key={"job_id": {"S": job_id}},
                                                  ConsistentRead=True).get("Item", {})


def queued(rig: Rig) -> int:
    attrs = rig.sqs.get_queue_attributes(QueueUrl=rig.names.result_copy_queue_url,
                                         AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def expect_rejected(rig: Rig, job_id: str, delivery: Delivery, codes: tuple[int, ...], name: str,
                    **kwargs: Any) -> dict[str, Any]:
    before, before_queued = snapshot(rig, job_id), queued(rig)
    rig.captured_events()  # drain what earlier, genuine deliveries published
    status, body = rig.deliver(delivery, **kwargs)
    tally.add("hostile_inputs")
    tally.case("hostile", name)
    written = snapshot(rig, job_id) != before or queued(rig) != before_queued or rig.captured_events() != []
    if status < 300 or written:
        tally.add("accepted_forgeries")
    assert status in codes, (name, status, body)
    assert not written, name
    return body


# -- forged, mis-signed, replayed webhooks ---------------------------------------------------------------
def _mutations(rig: Rig, d: Delivery) -> list[tuple[str, dict[str, str], bytes]]:
    h = d.headers
    attacker = Ed25519PrivateKey.generate()
    tampered = d.body.replace(b"swapped.mp4", b"evil.mp4")
    rid = h["x-fal-webhook-request-id"]
    out = [
        ("signed by a key not in the JWKS", rig.provider.sign(d.body, rid, key=attacker), d.body),
        ("random signature", {**h, "x-fal-webhook-signature": "ab" * 64}, d.body),
        ("signature not hex", {**h, "x-fal-webhook-signature": "zz" * 64}, d.body),
        ("signature too short", {**h, "x-fal-webhook-signature": h["x-fal-webhook-signature"][:-2]}, d.body),
        ("signature too long", {**h, "x-fal-webhook-signature": h["x-fal-webhook-signature"] + "00"}, d.body),
        ("body tampered after signing", h, tampered),
        ("body with trailing whitespace", h, d.body + b" "),
        ("request id header changed", {**h, "x-fal-webhook-request-id": str(uuid.uuid4())}, d.body),
        ("user id header changed", {**h, "x-fal-webhook-user-id": "someone_else"}, d.body),
        ("timestamp header changed", {**h, "x-fal-webhook-timestamp": str(int(h["x-fal-webhook-timestamp"]) + 1)}, d.body),
        ("timestamp not a number", {**h, "x-fal-webhook-timestamp": "1e9"}, d.body),
        ("timestamp negative", {**h, "x-fal-webhook-timestamp": "-5"}, d.body),
        ("timestamp huge", {**h, "x-fal-webhook-timestamp": "9" * 40}, d.body),
        ("signature of another body", {**h, "x-fal-webhook-signature": rig.provider.sign(tampered, rid)[
            "x-fal-webhook-signature"]}, d.body),
    ]
    for name in list(h):
        out.append((f"header {name} missing", {k: v for k, v in h.items() if k != name}, d.body))
    out.append(("no signature headers at all", {}, d.body))
    out.append(("header values empty", {k: "" for k in h}, d.body))
    return out


def test_forged_and_mis_signed_webhooks_are_rejected(rig: Rig) -> None:
    job_id, request_id = make_job(rig)
    genuine = ok_delivery(rig, job_id, request_id)
    for name, headers, body in _mutations(rig, genuine):
        expect_rejected(rig, job_id, Delivery(genuine.url, headers, body), (401,), name)
    # The genuine delivery still works afterwards (the forgeries did not poison anything).
    assert rig.deliver(genuine)[0] == 200
    assert rig.job(job_id).status == JobStatus.STORING


@pytest.mark.parametrize("skew", [-301, 330, -3600, 86400 * 365])  # +330: margin for a slow run
def test_replay_outside_the_window_is_rejected(rig: Rig, skew: int) -> None:
    """A validly signed delivery captured earlier (or timestamped in the future) is refused."""
    job_id, request_id = make_job(rig)
    stale = ok_delivery(rig, job_id, request_id, timestamp=int(time.time()) + skew)
    expect_rejected(rig, job_id, stale, (401,), f"replay with timestamp skew {skew:+d} s")


def test_literal_replay_later_than_the_window_is_rejected(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bytes and headers that were accepted once, replayed 301 s later (to a fresh job, so that a
    'duplicate' answer cannot hide an acceptance)."""
    job_id, request_id = make_job(rig)
    genuine = ok_delivery(rig, job_id, request_id)
    assert rig.deliver(genuine)[0] == 200
    verifier = rig.stack.webhook.deps.verifier
    monkeypatch.setattr(verifier, "_clock", lambda: int(genuine.headers["x-fal-webhook-timestamp"]) + 301)
    job_2, _ = make_job(rig, JobStatus.PENDING)
    expect_rejected(rig, job_2, genuine, (401,), "literal replay 301 s later, to a PENDING job", query={"job_id": job_2})
    expect_rejected(rig, job_id, genuine, (401,), "literal replay 301 s later, to its own job")
    signed_at = int(genuine.headers["x-fal-webhook-timestamp"])
    monkeypatch.setattr(verifier, "_clock", lambda: signed_at - 301)
    expect_rejected(rig, job_id, genuine, (401,), "literal replay with the clock 301 s behind")


def test_replay_of_another_jobs_delivery_is_rejected(rig: Rig) -> None:
    job_a, rid_a = make_job(rig)
    job_b, _rid_b = make_job(rig)
    delivery_a = ok_delivery(rig, job_a, rid_a)
    token_a = delivery_a.query.get("token")
    expect_rejected(rig, job_b, delivery_a, (401, 409), "valid delivery of job A replayed to job B (SUBMITTED)",
                    query={"job_id": job_b, **({"token": token_a} if token_a else {})})
    expect_rejected(rig, job_b, delivery_a, (401, 409), "valid delivery of job A replayed to job B with B's token",
                    query={"job_id": job_b, "token": rig.token_for(job_b)})
    expect_rejected(rig, job_b, delivery_a, (401, 404), "valid delivery replayed to an unknown job",
                    query={"job_id": uuid.uuid4().hex})
    assert rig.deliver(delivery_a)[0] == 200  # A itself is unaffected


def test_replay_of_another_jobs_delivery_to_a_pending_job_is_rejected(rig: Rig) -> None:
    job_a, rid_a = make_job(rig)
    job_c, _ = make_job(rig, JobStatus.PENDING)  # attempt made, answer not recorded
    delivery_a = ok_delivery(rig, job_a, rid_a)
    for token in {delivery_a.query.get("token"), None}:
        expect_rejected(rig, job_c, delivery_a, (401, 403, 409),
                        f"valid delivery of job A replayed to job C (PENDING), token {'of A' if token else 'none'}",
                        query={"job_id": job_c, **({"token": token} if token else {})})


def test_webhook_tokens_missing_wrong_or_foreign_are_rejected(rig: Rig) -> None:
    job_a, rid_a = make_job(rig)
    job_b, _ = make_job(rig)
    genuine = ok_delivery(rig, job_a, rid_a)
    good = genuine.query["token"]
    for name, token in [("no token", None), ("empty token", ""), ("token of another job", rig.token_for(job_b)),
                        ("token with one char changed", ("0" if good[0] != "0" else "1") + good[1:]),
                        ("token truncated", good[:-1]), ("token too long", good + "0"), ("token upper-cased", good.upper())]:
        if token == good:
            continue
        expect_rejected(rig, job_a, genuine, (401,), f"webhook {name}",
                        query={"job_id": job_a, **({"token": token} if token is not None else {})})
    assert rig.deliver(genuine)[0] == 200


def test_oversized_and_malformed_bodies(rig: Rig) -> None:
    job_id, request_id = make_job(rig)
    huge = b'{"request_id": "' + b"x" * (1024 * 1024) + b'"}'
    expect_rejected(rig, job_id, Delivery(f"https://hook/?job_id={job_id}", rig.provider.sign(huge, request_id), huge),
                    (413, 400), "body over 1 MiB, validly signed")
    expect_rejected(rig, job_id, Delivery(f"https://hook/?job_id={job_id}", {}, huge), (413, 400),
                    "body over 1 MiB, unsigned")
    for name, body in [("signed non-JSON body", b"not json"), ("signed JSON array", b"[1,2,3]"),
                       ("signed body without request_id", b'{"status": "OK"}')]:
        expect_rejected(rig, job_id, Delivery(f"https://hook/?job_id={job_id}", rig.provider.sign(body, request_id),
                                              body), (400, 401), name)
    genuine = ok_delivery(rig, job_id, request_id)
    for name, query in [("no job_id in the query", {}), ("job_id too long", {"job_id": "a" * 500}),
                        ("job_id of another shape", {"job_id": "../../etc/passwd"})]:
        expect_rejected(rig, job_id, genuine, (400, 401, 404), name, query=query)


# -- JWKS key rotation --------------------------------------------------------------------------------------
def test_jwks_rotation(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"t": 1000.0}
    cache = JwksCache(f"{rig.provider.base_url}/.well-known/jwks.json", httpx.Client(), clock=lambda: clock["t"])
    monkeypatch.setattr(rig.stack.webhook.deps, "verifier", WebhookVerifier(cache))
    old_key = rig.provider.signing_keys[0]
    job_1, rid_1 = make_job(rig)
    assert rig.deliver(ok_delivery(rig, job_1, rid_1, key=old_key))[0] == 200  # keys fetched once
    fetches = rig.provider.jwks_gets
    new_key = rig.provider.rotate()  # the JWKS now lists only the new key

    # Until the next refetch the cached old key still verifies (removal takes effect at the refetch that a
    # non-matching signature triggers, or at the cache TTL).
    job_2, rid_2 = make_job(rig)
    expect_rejected(rig, job_2, ok_delivery(rig, job_2, rid_2, key=new_key), (401,),
                    "new key within the refetch rate limit (not yet fetched)")
    assert rig.provider.jwks_gets == fetches  # a refetch within min_refresh_interval is not made
    clock["t"] += 61
    assert rig.deliver(ok_delivery(rig, job_2, rid_2, key=new_key))[0] == 200  # refetched: new key accepted
    assert rig.provider.jwks_gets == fetches + 1
    assert rig.job(job_2).status == JobStatus.STORING
    job_3, rid_3 = make_job(rig)
    expect_rejected(rig, job_3, ok_delivery(rig, job_3, rid_3, key=old_key), (401,),
                    "old key after rotation (the refetched JWKS no longer lists it)")
    # Forged floods must not hammer the JWKS endpoint: refetches are rate-limited.
    for i in range(5):
        expect_rejected(rig, job_3, ok_delivery(rig, job_3, rid_3, key=Ed25519PrivateKey.generate()), (401,),
                        f"forgery flood #{i} after rotation")
    assert rig.provider.jwks_gets == fetches + 1
    clock["t"] += 3600
    expect_rejected(rig, job_3, ok_delivery(rig, job_3, rid_3, key=old_key), (401,), "old key long after rotation")
    rig.provider.reset()


# -- result URLs that point inside -------------------------------------------------------------------------
FAKE_DNS = {
    "evil.fal.media": ["10.0.0.7"],
    "meta.fal.media": ["169.254.169.254"],
    "loop.fal.media": ["127.0.0.1"],
    "v6.fal.media": ["::1"],
    "ula.fal.media": ["fd00:ec2::254"],
    "mixed.fal.media": ["93.184.216.34", "192.168.1.20"],
    "mapped.fal.media": ["::ffff:10.0.0.1"],
}


def fake_resolver(host: str, port: Any, *_args: Any) -> list[tuple[Any, ...]]:
    if host not in FAKE_DNS:
        raise OSError(f"no such host (fake DNS): {host}")
    return [(2, 1, 6, "", (ip, port)) for ip in FAKE_DNS[host]]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inject the resolver where the webhook checks the URL and where the copy worker checks every hop."""
    checker = functools.partial(url_guard.check_result_url, resolver=fake_resolver)
    monkeypatch.setattr(url_guard, "check_result_url", checker)
    monkeypatch.setattr(webhook_intake, "check_result_url", checker, raising=False)  # if imported at module level

    class Guard(url_guard.UrlGuard):
        def __init__(self, allowed: Any, resolver: Any = fake_resolver) -> None:
            super().__init__(allowed, resolver)

    monkeypatch.setattr(url_guard, "UrlGuard", Guard)


def _direct_urls(rig: Rig) -> list[str]:
    other = free_port()
    return [
        f"http://127.0.0.1:{other}/x.mp4", "https://127.0.0.1/x.mp4", "https://localhost/x.mp4",
        "https://10.1.2.3/x.mp4", "https://172.16.5.4/x.mp4", "https://192.168.0.10/x.mp4",
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/", "http://169.254.169.254/latest/api/token",
        "https://169.254.170.2/v2/credentials", "https://[::1]/x.mp4", "https://[fd00:ec2::254]/x.mp4",
        "https://[::ffff:127.0.0.1]/x.mp4", "https://[fe80::1]/x.mp4", "https://0.0.0.0/x.mp4",
        "https://100.64.0.1/x.mp4", "https://2130706433/x.mp4", "https://0x7f000001/x.mp4",
        "http://v3.fal.media/x.mp4", "https://user:pw@v3.fal.media/x.mp4", "file:///etc/passwd",
        "ftp://v3.fal.media/x.mp4", "gopher://v3.fal.media/x", "https://v3.fal.media.attacker.com/x.mp4",
        "https://attackerfal.media/x.mp4", "https://fal.media:8443/x.mp4",
        *(f"https://{name}/x.mp4" for name in FAKE_DNS),
    ]


@pytest.mark.usefixtures("fake_dns")
def test_result_urls_to_internal_addresses_are_refused(rig: Rig) -> None:
    for url in _direct_urls(rig):
        job_id, request_id = make_job(rig)
        status, body = rig.deliver(ok_delivery(rig, job_id, request_id, url=url))
        rig.run_store()
        job = rig.job(job_id)
        tally.add("hostile_inputs")
        tally.case("hostile", f"result URL {url}")
        if job.status != JobStatus.FAILED:
            tally.add("accepted_forgeries")
        assert status == 200, (url, body)
        assert job.status == JobStatus.FAILED, (url, job.status)
        assert job.error.code in ("RESULT_URL_NOT_ALLOWED", "RESULT_INVALID"), (url, job.error)
    assert rig.keys("outputs/") == []
    assert rig.provider.file_gets == []


@pytest.mark.usefixtures("fake_dns")
def test_result_url_redirects_to_internal_addresses_are_refused(rig: Rig) -> None:
    """The first hop is an allowed host; the redirect target is checked again before it is fetched."""
    targets = [
        "http://169.254.169.254/latest/meta-data/", "https://169.254.169.254/", "https://evil.fal.media/x.mp4",
        "https://meta.fal.media/x.mp4", "https://[::1]/x.mp4", f"http://127.0.0.1:{free_port()}/x.mp4",
        "file:///etc/passwd", "https://10.0.0.1/x.mp4", "https://v6.fal.media/x.mp4",
    ]
    for target in targets:
        job_id, request_id = make_job(rig)
        url = str(httpx.URL(f"{rig.provider.base_url}/redirect", params={"to": target}))
        assert rig.deliver(ok_delivery(rig, job_id, request_id, url=url))[0] == 200
        assert rig.job(job_id).status == JobStatus.STORING  # the first hop is allowed
        rig.run_store()
        job = rig.job(job_id)
        tally.add("hostile_inputs")
        tally.case("hostile", f"redirect to {target}")
        if job.status != JobStatus.FAILED:
            tally.add("accepted_forgeries")
        assert job.status == JobStatus.FAILED and job.error.code == "RESULT_URL_NOT_ALLOWED", (target, job)
    assert rig.keys("outputs/") == []


# -- manifests ------------------------------------------------------------------------------------------
def _manifest_event(rig: Rig, key: str, body: bytes) -> dict[str, Any]:
    rig.put(key, body)
    return rig.s3_event(key, "s3_put_manifest_single.json")


BAD_REFS = [
    ("target", "s3://someone-elses-bucket/media/x.mp4"), ("face", "s3://someone-elses-bucket/faces/a.png"),
    ("target", "../secrets/x.mp4"), ("target", "media/../../x.mp4"), ("target", "//x.mp4"),
    ("target", "/abs/x.mp4"), ("target", "outputs/abc/result.mp4"), ("face", "outputs/abc/face.png"),
    ("target", "media//x.mp4"), ("target", "./x.mp4"), ("target", "media\\..\\x.mp4"), ("target", "media/\u0000x.mp4"),
    ("target", "http://169.254.169.254/x.mp4"), ("target", "file:///etc/passwd.mp4"),
    ("face", "data:image/png;base64,AAAA"), ("target", "s3://"), ("target", "https://user:pw@example.com/x.mp4"),
    ("face", "media/x.mp4"), ("target", "media/x.exe"),
]


def test_manifests_with_foreign_buckets_and_path_tricks_fail_cleanly(rig: Rig) -> None:
    rig.put("faces/a.png", FACE)
    rig.put("media/x.mp4", VIDEO)
    for index, (role, ref) in enumerate(BAD_REFS):
        manifest = {"target": "media/x.mp4", "faces": [{"image": "faces/a.png"}]}
        if role == "target":
            manifest["target"] = ref
        else:
            manifest["faces"] = [{"image": ref}]
        outcome = rig.submit_one(_manifest_event(rig, f"jobs/bad-{index}.json", json.dumps(manifest).encode()))
        tally.add("hostile_inputs")
        tally.case("hostile", f"manifest {role}={ref!r}")
        assert outcome["outcome"] == "failed", (ref, outcome)
        assert outcome["error"]["code"] == "MANIFEST_INVALID", (ref, outcome["error"])
    assert rig.provider.posts == []
    assert rig.keys("outputs/") == []
    rig.check("hostile", "bad manifests end FAILED")


def test_huge_and_pathological_manifests(rig: Rig) -> None:
    limit = int(rig.stack.env["MAX_MANIFEST_BYTES"])
    rig.put("faces/a.png", FACE)
    rig.put("media/x.mp4", VIDEO)
    big = json.dumps({"target": "media/x.mp4", "faces": [{"image": "faces/a.png"}], "pad": "x" * limit}).encode()
    cases = [
        ("over MAX_MANIFEST_BYTES", big, ("OBJECT_TOO_LARGE", "MANIFEST_INVALID")),
        ("not JSON", b"{target: media/x.mp4", ("MANIFEST_NOT_JSON",)),
        ("not UTF-8", b"\xff\xfe{}", ("MANIFEST_NOT_JSON",)),
        ("empty", b"", ("OBJECT_EMPTY", "MANIFEST_NOT_JSON")),
        ("JSON but a list", b"[]", ("MANIFEST_INVALID",)),
        ("three faces", json.dumps({"target": "media/x.mp4", "faces": [{"image": "faces/a.png", "gender": "male"}] * 3}
                                   ).encode(), ("MANIFEST_INVALID",)),
        ("unknown fields", json.dumps({"target": "media/x.mp4", "faces": [{"image": "faces/a.png"}],
                                       "webhook": "http://evil"}).encode(), ("MANIFEST_INVALID",)),
    ]
    for index, (name, body, codes) in enumerate(cases):
        outcome = rig.submit_one(_manifest_event(rig, f"jobs/p-{index}.json", body))
        tally.add("hostile_inputs")
        tally.case("hostile", f"manifest {name}")
        assert outcome["outcome"] == "failed" and outcome["error"]["code"] in codes, (name, outcome)
    assert rig.provider.posts == []
    rig.check("hostile", "huge/pathological manifests end FAILED")


def test_deeply_nested_manifest_fails_cleanly(rig: Rig) -> None:
    tally.add("hostile_inputs")
    tally.case("hostile", "manifest nested 2000 deep")
    body = b"[" * 2000 + b"]" * 2000
    outcome = rig.submit_one(_manifest_event(rig, "jobs/nested.json", body))
    assert outcome["outcome"] == "failed" and outcome["error"]["code"] == "MANIFEST_NOT_JSON"


# -- keys with unicode, spaces and plus signs ----------------------------------------------------------------
ODD_KEYS = [
    ("zoë", "inbox/zoë/my clip+1 ü.mp4"),
    ("a b", "inbox/a b/100%2Bclip+plus .mp4"),
    ("日本", "inbox/日本/動画 (1)+.mp4"),
]


def test_keys_with_unicode_spaces_and_plus_signs_round_trip(rig: Rig) -> None:
    for face, key in ODD_KEYS:
        rig.put(f"faces/{face}.png", FACE)
        body = VIDEO + key.encode()
        rig.put(key, body)
        outcome = rig.submit_one(rig.s3_event(key))
        tally.add("hostile_inputs")
        tally.case("hostile", f"key {key!r}")
        assert outcome["outcome"] == "submitted", (key, outcome)
        job = rig.job(outcome["job_id"])
        assert job.trigger.key == key
        req = rig.provider.request_for(outcome["job_id"])
        # The provider can fetch exactly these objects through the presigned URLs it was given.
        assert httpx.get(req.input["target_video_url"]).content == body
        assert httpx.get(req.input["source_face_url"]).content == FACE
        rig.deliver(rig.complete(outcome["job_id"]))
    manifest_key = "jobs/my job+1 ü.json"
    rig.put("media/a b+c ü.mp4", VIDEO)
    manifest = {"target": "media/a b+c ü.mp4", "faces": [{"image": "faces/zoë.png"}]}
    outcome = rig.submit_one(_manifest_event(rig, manifest_key, json.dumps(manifest).encode()))
    tally.add("hostile_inputs")
    tally.case("hostile", f"manifest key {manifest_key!r}")
    assert outcome["outcome"] == "submitted", outcome
    assert httpx.get(rig.provider.request_for(outcome["job_id"]).input["target_video_url"]).content == VIDEO
    rig.deliver(rig.complete(outcome["job_id"]))
    jobs = rig.check("hostile", "odd keys complete")
    assert all(j.status == JobStatus.COMPLETED for j in jobs)


def test_events_outside_the_trigger_prefixes_make_no_job(rig: Rig) -> None:
    for key in ["outputs/abc/result.mp4", "faces/alice.png", "inbox/alice/notes.txt", "jobs/readme.md",
                "inbox/alice/deeper/x.mp4", "inbox/x.mp4"]:
        rig.put(key, VIDEO)
        outcome = rig.submit_one(rig.s3_event(key))
        tally.add("hostile_inputs")
        tally.case("hostile", f"event for {key}")
        assert outcome["outcome"] == "ignored", (key, outcome)
    assert rig.all_jobs() == [] and rig.provider.posts == []
