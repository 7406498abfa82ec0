"""End to end through the local stack with the real engine: a real video, a real photo, and the user CLI.

The object is dropped exactly as a user would (put_object into inbox/<face>/); moto notifies, the relay hands
SubmitJob a real S3 event, the engine swaps and calls the signed webhook through the Function URL gateway,
StoreResult copies the result into outputs/<job_id>/ and the job record ends COMPLETED.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from faceswap_engine import sample_media
from faceswap_local.client import Pipeline, utcnow
from faceswap_local.config import REPO_ROOT, StackInfo
from faceswap_local.media import probe
from tests.engine import identity

pytestmark = pytest.mark.e2e


def _drop(pipeline: Pipeline, path: Path, key: str, content_type: str) -> str:
    pipeline.s3.upload_file(str(path), pipeline.target.bucket, key, ExtraArgs={"ContentType": content_type})
    return key


def _run(pipeline: Pipeline, key: str) -> dict:
    job = pipeline.find_job(key, utcnow())
    return pipeline.follow(str(job["job_id"]), interval=0.3, timeout=600)


def _assert_completed(pipeline: Pipeline, record: dict, content_type_prefix: str) -> dict:
    assert record["status"] == "COMPLETED", json.dumps(record, default=str)
    output = record["output"]
    assert output["key"].startswith(f"outputs/{record['job_id']}/")
    head = pipeline.s3.head_object(Bucket=pipeline.target.bucket, Key=output["key"])
    assert head["ContentLength"] == output["size"] > 0
    assert output["content_type"].startswith(content_type_prefix)
    assert head["ContentType"] == output["content_type"]
    assert isinstance(record["processing_time_ms"], (int, float)) and record["processing_time_ms"] > 0
    return output


def _frames(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    picked: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                picked[i] = frame.to_ndarray(format="bgr24")
            if len(picked) == len(indices):
                break
    return picked


def test_video_job_megamind(pipeline: Pipeline, tmp_path: Path) -> None:
    face, video = sample_media.male_portrait(), sample_media.megamind_video()
    _drop(pipeline, face, "faces/ben.jpg", "image/jpeg")
    key = _drop(pipeline, video, "inbox/ben/Megamind clip+1.avi", "video/x-msvideo")  # space and plus in the key

    record = _run(pipeline, key)

    output = _assert_completed(pipeline, record, "video/")
    assert record["trigger"]["key"] == key
    result = pipeline.download_output(record, tmp_path)
    before, after = probe(video), probe(result)
    assert after["frames"] == before["frames"] == 270  # 23.976 fps is under the 25 fps cap: every frame kept
    assert abs(after["duration"] - before["duration"]) < 0.15
    assert after["audio"] and before["audio"]
    assert (after["width"], after["height"]) == (before["width"], before["height"])
    assert output["size"] == result.stat().st_size

    # The face changed: in frames across the clip the swapped region differs from the input far more than
    # the re-encoded background does, and the change is concentrated (a face, not the whole frame).
    picks = {30, 120, 240}
    src, out = _frames(video, picks), _frames(result, picks)
    changed = 0
    for i in picks:
        diff = cv2.absdiff(src[i], out[i]).max(axis=2).astype(np.float32)
        strong = diff > 40
        if 0.002 < strong.mean() < 0.5:
            changed += 1
    assert changed >= 2, "the output frames do not show a swapped face region"

    # And it is the source's face: an independent embedding (dlib) puts each swapped face closer to the
    # source than to the face that was there in the input frame.
    source = identity.main_identity(cv2.imread(str(face)))
    closer = 0
    for i in picks:
        swapped = identity.main_identity(out[i])
        original = identity.nearest(identity.identities(src[i]), swapped.center)
        if original is not None and identity.distance(swapped, source) < identity.distance(swapped, original):
            closer += 1
    assert closer >= 2, "swapped faces are not closer to the source identity than to the target's"


def test_image_job_identity(pipeline: Pipeline, tmp_path: Path) -> None:
    face, target = sample_media.astronaut(), sample_media.grace_hopper()
    _drop(pipeline, face, "faces/eileen.png", "image/png")
    key = _drop(pipeline, target, "inbox/eileen/grace.jpg", "image/jpeg")

    record = _run(pipeline, key)

    _assert_completed(pipeline, record, "image/")
    result = pipeline.download_output(record, tmp_path)
    swapped = cv2.imread(str(result))
    original = cv2.imread(str(target))
    assert swapped is not None and swapped.shape == original.shape
    assert cv2.absdiff(swapped, original).mean() > 0.5
    src_id = identity.main_identity(cv2.imread(str(face)))
    tgt_id = identity.main_identity(original)
    out_id = identity.main_identity(swapped)
    assert identity.distance(out_id, src_id) < identity.distance(out_id, tgt_id)


def test_manifest_multi_by_gender(pipeline: Pipeline, tmp_path: Path) -> None:
    group = sample_media.group_photo()
    _drop(pipeline, group, "media/group.jpg", "image/jpeg")
    _drop(pipeline, sample_media.astronaut(), "faces/eileen.png", "image/png")
    _drop(pipeline, sample_media.male_portrait(), "faces/ben.jpg", "image/jpeg")
    key = pipeline.submit_manifest("media/group.jpg", [("faces/eileen.png", "female"), ("faces/ben.jpg", "male")],
                                   name="e2e-group")

    record = _run(pipeline, key)

    _assert_completed(pipeline, record, "image/")
    result = cv2.imread(str(pipeline.download_output(record, tmp_path)))
    assert result.shape == cv2.imread(str(group)).shape


def test_cli_submit_wait(local_stack: StackInfo, stack_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT / "local"), str(REPO_ROOT / "layers" / "common"), str(REPO_ROOT / "engine")])}
    env.pop("AWS_ENDPOINT_URL", None)

    def faceswap(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "faceswap_local.cli", "--state-dir", str(stack_dir), *args],
                              capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)

    done = faceswap("submit", "--face", str(sample_media.astronaut()), "--target", str(sample_media.messi()),
                    "--wait", "--no-progress", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("job "))
    results = list((tmp_path / "out" / job_id).iterdir())
    assert len(results) == 1 and results[0].stat().st_size > 0

    status = faceswap("status", job_id)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "COMPLETED"

    listed = faceswap("list", "--status", "COMPLETED")
    assert listed.returncode == 0 and job_id in listed.stdout

    cancel = faceswap("cancel", job_id)  # a finished job cannot be cancelled: clear message, exit 1
    assert cancel.returncode == 1 and "COMPLETED" in cancel.stderr


def test_cancel_running_job(pipeline: Pipeline) -> None:
    _drop(pipeline, sample_media.male_portrait(), "faces/ben.jpg", "image/jpeg")
    key = _drop(pipeline, sample_media.megamind_video(), "inbox/ben/to-cancel.avi", "video/x-msvideo")
    job = pipeline.find_job(key, utcnow())
    job_id = str(job["job_id"])
    submitted = _wait_status(pipeline, job_id, "SUBMITTED")
    assert submitted["request_id"]

    marked, at_provider = pipeline.cancel(job_id)

    assert marked is True and at_provider is True
    final = pipeline.follow(job_id, interval=0.3, timeout=120)
    assert final["status"] == "CANCELLED"
    # Once the engine has finished with the request (and sent whatever webhook it sends), the record is still
    # CANCELLED and nothing was stored.
    provider = pipeline.provider()
    deadline = time.monotonic() + 120
    while not provider.status(None, submitted["request_id"], logs=False).is_completed:
        assert time.monotonic() < deadline, "the engine never finished the cancelled request"
        time.sleep(0.2)
    time.sleep(1.0)  # let a webhook sent at completion reach the handler
    assert pipeline.get_job(job_id)["status"] == "CANCELLED"
    assert list(pipeline.iter_outputs(job_id)) == []


def _wait_status(pipeline: Pipeline, job_id: str, status: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = pipeline.get_job(job_id)
        if record and record["status"] == status:
            return record
        assert record is None or record["status"] in ("PENDING", status), record
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {status}")
