"""JobSpec resolution: drop folder, manifests, ignored keys, and every way an input can be unusable."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from faceswap_common.api_models import Endpoint, FaceSwapInputImageMulti, FaceSwapInputVideo, Gender
from faceswap_common.errors import PipelineError
from faceswap_common.jobspec import SizeLimits, decode_event_key, provider_input_from_record, resolve_job_spec

from .support import BUCKET, put

LIMITS = SizeLimits(image=1000, video=5000, manifest=2000)


def fake_presign(key: str) -> str:
    return f"https://s3.example.com/{BUCKET}/{quote_plus(key, safe='/')}?X-Amz-Signature=abc"


def resolve(s3: Any, key: str, limits: SizeLimits = LIMITS) -> Any:
    return resolve_job_spec(s3, BUCKET, key, limits)


def manifest(s3: Any, key: str, body: Any) -> None:
    put(s3, key, body if isinstance(body, bytes) else json.dumps(body).encode())


def error_of(s3: Any, key: str, limits: SizeLimits = LIMITS) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        resolve(s3, key, limits)
    return info.value


# ---- drop folder --------------------------------------------------------------------------------

def test_drop_folder_video(s3: Any) -> None:
    put(s3, "faces/alice.jpg")
    put(s3, "inbox/alice/party.mp4", b"v" * 100)
    res = resolve(s3, "inbox/alice/party.mp4")
    assert not res.ignored
    spec = res.spec
    assert spec.endpoint is Endpoint.VIDEO and spec.origin == "drop_folder"
    assert spec.inputs() == {
        "source_face_url": f"s3://{BUCKET}/faces/alice.jpg",
        "target_video_url": f"s3://{BUCKET}/inbox/alice/party.mp4",
        "enable_occlusion_prevention": False,
    }
    assert sorted(spec.s3_keys()) == ["faces/alice.jpg", "inbox/alice/party.mp4"]
    model = spec.build_input(fake_presign)
    assert isinstance(model, FaceSwapInputVideo)
    assert model.target_video_url.startswith("https://s3.example.com/")


def test_drop_folder_image_picks_existing_face_extension(s3: Any) -> None:
    put(s3, "faces/bob.png")
    put(s3, "faces/bob.png.bak")  # not an image extension: not a candidate
    put(s3, "faces/bobby.jpg")  # another face sharing the prefix
    put(s3, "inbox/bob/shot.webp")
    spec = resolve(s3, "inbox/bob/shot.webp").spec
    assert spec.endpoint is Endpoint.IMAGE
    assert spec.inputs()["source_face_url"] == f"s3://{BUCKET}/faces/bob.png"
    assert spec.inputs()["target_image_url"] == f"s3://{BUCKET}/inbox/bob/shot.webp"


def test_drop_folder_key_with_spaces_and_plus(s3: Any) -> None:
    key = "inbox/mary ann/my clip+1.mov"
    put(s3, "faces/mary ann.jpeg")
    put(s3, key)
    raw_event_key = quote_plus(key, safe="/")  # as S3 puts it in the event: spaces → '+', '+' → %2B
    assert raw_event_key == "inbox/mary+ann/my+clip%2B1.mov"
    assert decode_event_key(raw_event_key) == key
    assert decode_event_key(quote_plus(key)) == key  # moto even encodes '/'
    spec = resolve(s3, decode_event_key(raw_event_key)).spec
    assert spec.inputs()["target_video_url"] == f"s3://{BUCKET}/{key}"
    assert spec.inputs()["source_face_url"] == f"s3://{BUCKET}/faces/mary ann.jpeg"
    spec.build_input(fake_presign)  # the presigned URL's path still ends in .mov


def test_no_registered_face(s3: Any) -> None:
    put(s3, "faces/alice.gif")  # wrong extension does not count
    put(s3, "inbox/alice/party.mp4")
    err = error_of(s3, "inbox/alice/party.mp4")
    assert err.code == "NO_REGISTERED_FACE"
    assert "alice" in err.message


@pytest.mark.parametrize(
    "key",
    ["other/clip.mp4", "faces/alice.jpg", "outputs/j1/result.mp4", "inbox/alice/notes.txt", "inbox/alice/noext",
     "inbox/alice/", "inbox/clip.mp4", "inbox/alice/sub/clip.mp4", "jobs/readme.txt", "jobs/"],
)
def test_ignored_keys(key: str) -> None:
    res = resolve(None, key)  # ignored before any S3 call
    assert res.ignored and res.spec is None and res.ignored_reason


def test_empty_and_oversized_objects(s3: Any) -> None:
    put(s3, "faces/alice.jpg")
    put(s3, "inbox/alice/empty.mp4", b"")
    assert error_of(s3, "inbox/alice/empty.mp4").code == "OBJECT_EMPTY"
    put(s3, "inbox/alice/big.mp4", b"v" * 5001)
    err = error_of(s3, "inbox/alice/big.mp4")
    assert err.code == "OBJECT_TOO_LARGE" and err.detail["limit"] == 5000
    put(s3, "inbox/alice/big.png", b"v" * 1001)  # images have their own (smaller) limit
    assert error_of(s3, "inbox/alice/big.png").code == "OBJECT_TOO_LARGE"
    put(s3, "faces/carol.png", b"f" * 1001)
    put(s3, "inbox/carol/ok.mp4")
    assert error_of(s3, "inbox/carol/ok.mp4").code == "OBJECT_TOO_LARGE"
    put(s3, "faces/dave.png", b"")
    put(s3, "inbox/dave/ok.mp4")
    assert error_of(s3, "inbox/dave/ok.mp4").code == "OBJECT_EMPTY"


def test_trigger_object_gone(s3: Any) -> None:
    put(s3, "faces/alice.jpg")
    assert error_of(s3, "inbox/alice/deleted.mp4").code == "OBJECT_NOT_FOUND"


# ---- manifests ----------------------------------------------------------------------------------

def test_manifest_single(s3: Any) -> None:
    put(s3, "faces/alice.jpg")
    put(s3, "media/party.mp4")
    manifest(s3, "jobs/one.json", {"target": "media/party.mp4", "faces": [{"image": "faces/alice.jpg"}],
                                   "enable_occlusion_prevention": True})
    spec = resolve(s3, "jobs/one.json").spec
    assert spec.endpoint is Endpoint.VIDEO and spec.origin == "manifest" and spec.trigger_key == "jobs/one.json"
    assert spec.inputs() == {
        "source_face_url": f"s3://{BUCKET}/faces/alice.jpg",
        "target_video_url": f"s3://{BUCKET}/media/party.mp4",
        "enable_occlusion_prevention": True,
    }


def test_manifest_multi_with_s3_uri_and_https(s3: Any) -> None:
    put(s3, "faces/alice.jpg")
    put(s3, "media/group.png")
    manifest(s3, "jobs/deep/multi.json", {
        "target": f"s3://{BUCKET}/media/group.png",
        "faces": [{"image": "faces/alice.jpg", "gender": "female"},
                  {"image": "https://cdn.example.com/bob.PNG?v=2", "gender": "male"}],
    })
    spec = resolve(s3, "jobs/deep/multi.json").spec
    assert spec.endpoint is Endpoint.IMAGE_MULTI
    inputs = spec.inputs()
    assert inputs == {
        "source_face_url_1": f"s3://{BUCKET}/faces/alice.jpg",
        "source_gender_1": "female",
        "source_face_url_2": "https://cdn.example.com/bob.PNG?v=2",
        "source_gender_2": "male",
        "target_image_url": f"s3://{BUCKET}/media/group.png",
        "enable_occlusion_prevention": False,
    }
    assert spec.s3_keys() == ["media/group.png", "faces/alice.jpg"]
    model = spec.build_input(fake_presign)
    assert isinstance(model, FaceSwapInputImageMulti)
    assert model.source_face_url_2 == "https://cdn.example.com/bob.PNG?v=2"
    assert model.source_gender_2 is Gender.MALE
    # the reconciler rebuilds the same input from the stored record
    again = provider_input_from_record(spec.endpoint, inputs, BUCKET, fake_presign)
    assert again == model


def test_manifest_one_face_with_gender_is_multi(s3: Any) -> None:
    put(s3, "faces/alice.jpg")
    manifest(s3, "jobs/g.json", {"target": "https://cdn.example.com/v.webm", "faces": [{"image": "faces/alice.jpg", "gender": "female"}]})
    spec = resolve(s3, "jobs/g.json").spec
    assert spec.endpoint is Endpoint.VIDEO_MULTI
    assert "source_face_url_2" not in spec.inputs()


def test_manifest_not_json(s3: Any) -> None:
    manifest(s3, "jobs/bad.json", b"{not json")
    assert error_of(s3, "jobs/bad.json").code == "MANIFEST_NOT_JSON"
    manifest(s3, "jobs/latin.json", b"\xff\xfe")
    assert error_of(s3, "jobs/latin.json").code == "MANIFEST_NOT_JSON"


def test_two_faces_without_genders_names_both(s3: Any) -> None:
    manifest(s3, "jobs/x.json", {"target": "m/a.mp4", "faces": [{"image": "faces/a.jpg"}, {"image": "faces/b.jpg"}]})
    err = error_of(s3, "jobs/x.json")
    assert [d["loc"] for d in err.detail] == ["faces[0].gender", "faces[1].gender"]


def test_manifest_size_limits(s3: Any) -> None:
    manifest(s3, "jobs/empty.json", b"")
    assert error_of(s3, "jobs/empty.json").code == "OBJECT_EMPTY"
    manifest(s3, "jobs/huge.json", b" " * 2001)
    assert error_of(s3, "jobs/huge.json").code == "OBJECT_TOO_LARGE"


def test_manifest_referenced_objects_checked(s3: Any) -> None:
    put(s3, "faces/a.jpg")
    manifest(s3, "jobs/x.json", {"target": "m/missing.mp4", "faces": [{"image": "faces/a.jpg"}]})
    assert error_of(s3, "jobs/x.json").code == "OBJECT_NOT_FOUND"
    put(s3, "m/empty.mp4", b"")
    manifest(s3, "jobs/y.json", {"target": "m/empty.mp4", "faces": [{"image": "faces/a.jpg"}]})
    assert error_of(s3, "jobs/y.json").code == "OBJECT_EMPTY"
    put(s3, "m/ok.mp4")
    put(s3, "faces/huge.jpg", b"f" * 1001)
    manifest(s3, "jobs/z.json", {"target": "m/ok.mp4", "faces": [{"image": "faces/huge.jpg"}]})
    assert error_of(s3, "jobs/z.json").code == "OBJECT_TOO_LARGE"


def test_record_from_another_bucket_refused() -> None:
    with pytest.raises(PipelineError) as info:
        provider_input_from_record(
            Endpoint.VIDEO, {"source_face_url": "s3://other/a.jpg", "target_video_url": "https://h/a.mp4"}, BUCKET,
            fake_presign,
        )
    assert info.value.code == "INPUT_INVALID"
    with pytest.raises(PipelineError) as info:
        provider_input_from_record(Endpoint.VIDEO, {"source_face_url": "https://h/a.jpg"}, BUCKET, fake_presign)
    assert info.value.code == "INPUT_INVALID" and "target_video_url" in info.value.message


@pytest.mark.parametrize("key", ["inbox/../clip.mp4", "inbox/./clip.mp4"])
def test_drop_folder_face_name_tricks(key: str) -> None:
    with pytest.raises(PipelineError) as info:
        resolve(None, key)  # refused before any S3 call
    assert info.value.code == "INPUT_INVALID"


def test_unicode_key(s3: Any) -> None:
    key = "inbox/zoë/café 1+2 – 東京.mp4"
    put(s3, "faces/zoë.webp")
    put(s3, key)
    raw = quote_plus(key, safe="/")
    spec = resolve(s3, decode_event_key(raw)).spec
    assert spec.inputs()["target_video_url"] == f"s3://{BUCKET}/{key}"
    assert spec.build_input(fake_presign).target_video_url.endswith("?X-Amz-Signature=abc")
