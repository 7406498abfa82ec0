"""The seed's four endpoints, their validation rules, and the queue protocol messages."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from faceswap_common.api_models import (
    Endpoint,
    FaceSwapInputImage,
    FaceSwapInputImageMulti,
    FaceSwapInputVideo,
    FaceSwapInputVideoMulti,
    Gender,
    ImageOutput,
    QueueStatus,
    QueueSubmitResponse,
    VideoOutput,
    WebhookPayload,
)
from faceswap_common.media_types import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    content_type_for,
    extension_for_content_type,
    kind_of,
)

FACE = "https://images.example.com/photos/1642228/face.jpeg"
VIDEO = "https://videos.example.com/clip.mp4"
IMAGE = "https://images.example.com/target.png"


def locs(exc: ValidationError) -> list[tuple[Any, ...]]:
    return [e["loc"] for e in exc.errors()]


def test_extension_tables_match_the_seed() -> None:
    assert VIDEO_EXTENSIONS == {"avi", "m4v", "mkv", "mp4", "mpeg", "mov", "mxf", "webm", "wmv"}
    assert {"bmp", "jpeg", "png", "tiff", "webp"} <= IMAGE_EXTENSIONS
    assert kind_of("inbox/a/Clip.MP4") == "video"
    assert kind_of("faces/a.JPG") == "image"
    assert kind_of("notes.txt") is None and kind_of("noext") is None
    assert content_type_for("x.mp4") == "video/mp4"
    assert content_type_for("x.jpg") == "image/jpeg"
    assert content_type_for("x.bin") == "application/octet-stream"
    assert extension_for_content_type("video/mp4", "video") == "mp4"
    assert extension_for_content_type("image/jpeg; q=1", "image") == "jpg"
    assert extension_for_content_type(None, "image") == "png"


def test_video_input_valid_and_defaults() -> None:
    model = FaceSwapInputVideo(source_face_url=FACE, target_video_url=VIDEO)
    assert model.enable_occlusion_prevention is False
    dumped = model.model_dump(mode="json")
    assert dumped == {"source_face_url": FACE, "target_video_url": VIDEO, "enable_occlusion_prevention": False}


@pytest.mark.parametrize(
    "url",
    [
        "https://h/x.png?X-Amz-Signature=abc.gif",  # query is not the path
        "https://h/path/without/extension",
        "https://h/inbox/my%20face.JPEG",
        "http://127.0.0.1:9000/bucket/faces/a.webp",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/jpeg;base64,/9j/4AAQ",
    ],
)
def test_image_url_accepted(url: str) -> None:
    FaceSwapInputImage(source_face_url=url, target_image_url=IMAGE)


@pytest.mark.parametrize(
    ("url", "error_type"),
    [
        ("https://h/a.gif", "url_extension"),
        ("https://h/a.mp4", "url_extension"),
        ("ftp://h/a.png", "url_scheme"),
        ("faces/a.png", "url_scheme"),
        ("", "url_empty"),
        ("data:video/mp4;base64,AAAA", "data_uri_mime"),
        ("data:image/png;base64,***", "data_uri_base64"),
        ("data:;base64,AAAA", "data_uri_invalid"),
    ],
)
def test_image_url_rejected_with_field_in_loc(url: str, error_type: str) -> None:
    with pytest.raises(ValidationError) as info:
        FaceSwapInputImage(source_face_url=url, target_image_url=IMAGE)
    (error,) = info.value.errors()
    assert error["loc"] == ("source_face_url",)
    assert error["type"] == error_type


@pytest.mark.parametrize("ext", sorted(VIDEO_EXTENSIONS))
def test_every_video_extension_accepted(ext: str) -> None:
    FaceSwapInputVideo(source_face_url=FACE, target_video_url=f"https://h/clip.{ext}")


def test_video_target_rejects_image_and_data_uri_of_wrong_kind() -> None:
    with pytest.raises(ValidationError) as info:
        FaceSwapInputVideo(source_face_url=FACE, target_video_url="https://h/a.png")
    assert locs(info.value) == [("target_video_url",)]
    FaceSwapInputVideo(source_face_url=FACE, target_video_url="data:video/mp4;base64,AAAA")
    with pytest.raises(ValidationError):
        FaceSwapInputVideo(source_face_url=FACE, target_video_url="data:image/png;base64,AAAA")


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(ValidationError) as info:
        FaceSwapInputVideo.model_validate({})
    assert sorted(locs(info.value)) == [("source_face_url",), ("target_video_url",)]
    assert all(e["type"] == "missing" for e in info.value.errors())


def test_multi_gender_enum() -> None:
    model = FaceSwapInputImageMulti(source_face_url_1=FACE, source_gender_1="female", target_image_url=IMAGE)
    assert model.source_gender_1 is Gender.FEMALE
    assert model.sources() == [(FACE, Gender.FEMALE)]
    with pytest.raises(ValidationError) as info:
        FaceSwapInputImageMulti(source_face_url_1=FACE, source_gender_1="non-binary", target_image_url=IMAGE)
    assert locs(info.value) == [("source_gender_1",)]
    with pytest.raises(ValidationError) as info:
        FaceSwapInputImageMulti.model_validate({"source_face_url_1": FACE, "target_image_url": IMAGE})
    assert locs(info.value) == [("source_gender_1",)]


def test_multi_second_face_and_gender_come_together() -> None:
    ok = FaceSwapInputVideoMulti(
        source_face_url_1=FACE, source_gender_1="female", source_face_url_2=IMAGE, source_gender_2="male",
        target_video_url=VIDEO,
    )
    assert ok.sources() == [(FACE, Gender.FEMALE), (IMAGE, Gender.MALE)]
    with pytest.raises(ValidationError) as info:
        FaceSwapInputVideoMulti(
            source_face_url_1=FACE, source_gender_1="female", source_face_url_2=IMAGE, target_video_url=VIDEO
        )
    assert locs(info.value) == [("source_gender_2",)]
    with pytest.raises(ValidationError) as info:
        FaceSwapInputVideoMulti(
            source_face_url_1=FACE, source_gender_1="female", source_gender_2="male", target_video_url=VIDEO
        )
    assert locs(info.value) == [("source_face_url_2",)]


def test_occlusion_flag_and_unknown_fields() -> None:
    model = FaceSwapInputImage.model_validate(
        {"source_face_url": FACE, "target_image_url": IMAGE, "enable_occlusion_prevention": True, "sync_mode": True}
    )
    assert model.enable_occlusion_prevention is True
    assert "sync_mode" not in model.model_dump()
    with pytest.raises(ValidationError) as info:
        FaceSwapInputImage.model_validate(
            {"source_face_url": FACE, "target_image_url": IMAGE, "enable_occlusion_prevention": "maybe"}
        )
    assert locs(info.value) == [("enable_occlusion_prevention",)]


def test_endpoint_enum() -> None:
    assert Endpoint.VIDEO.fal_id("half-moon-ai/ai-face-swap") == "half-moon-ai/ai-face-swap/faceswapvideo"
    assert Endpoint.VIDEO_MULTI.is_video and Endpoint.VIDEO_MULTI.is_multi
    assert not Endpoint.IMAGE.is_video and not Endpoint.IMAGE.is_multi
    assert Endpoint.IMAGE_MULTI.input_model is FaceSwapInputImageMulti
    assert Endpoint.VIDEO.input_model is FaceSwapInputVideo
    assert Endpoint.VIDEO.output_model is VideoOutput and Endpoint.IMAGE_MULTI.output_model is ImageOutput
    assert Endpoint.choose("video", multi=True) is Endpoint.VIDEO_MULTI
    assert Endpoint.choose("image", multi=False) is Endpoint.IMAGE
    assert Endpoint.IMAGE.target_field == "target_image_url"


def test_outputs() -> None:
    out = VideoOutput.model_validate(
        {"video": {"url": "https://v3.fal.media/files/x.mp4", "content_type": "video/mp4", "file_size": 10},
         "processing_time_ms": 1234.4}
    )
    assert out.processing_time_ms == 1234 and out.warning is None
    img = ImageOutput.model_validate(
        {"image": {"url": "https://v3.fal.media/x.png", "width": 4, "height": 3}, "warning": "no face", "seed": 1}
    )
    assert img.image.width == 4 and img.warning == "no face"
    with pytest.raises(ValidationError):
        VideoOutput.model_validate({"processing_time_ms": 1})


def test_queue_messages() -> None:
    sub = QueueSubmitResponse.model_validate(
        {"request_id": "r1", "response_url": "u", "status_url": "s", "cancel_url": "c", "queue_position": 0,
         "status": "IN_QUEUE", "new_field": 1}
    )
    assert sub.request_id == "r1"
    with pytest.raises(ValidationError):
        QueueSubmitResponse.model_validate({"status": "IN_QUEUE"})
    status = QueueStatus.model_validate(
        {"status": "COMPLETED", "logs": [{"message": "hi", "level": "INFO", "source": "USER", "timestamp": "t"}],
         "metrics": {"inference_time": 1.5}, "error": "boom", "error_type": "runner_server_error"}
    )
    assert status.is_completed and status.failed and status.logs[0].message == "hi"
    assert status.metrics is not None and status.metrics.inference_time == 1.5
    queued = QueueStatus.model_validate({"status": "IN_QUEUE", "queue_position": 3, "logs": None})
    assert not queued.is_completed and queued.queue_position == 3
    odd = QueueStatus.model_validate({"status": "SOMETHING_NEW"})
    assert not odd.is_completed


def test_webhook_payload_tolerance() -> None:
    ok = WebhookPayload.model_validate(
        {"error": None, "gateway_request_id": "g", "payload": {"video": {"url": "u"}}, "request_id": "r", "status": "OK"}
    )
    assert ok.is_ok and not ok.is_error
    err = WebhookPayload.model_validate(
        {"request_id": "r", "status": "ERROR", "error": "Invalid status code: 404", "payload": None,
         "payload_error": "Response payload is not JSON serializable."}
    )
    assert err.is_error and err.payload is None and err.payload_error
    other = WebhookPayload.model_validate({"request_id": "r", "status": "IN_QUEUE"})
    assert not other.is_ok and not other.is_error
    with pytest.raises(ValidationError):
        WebhookPayload.model_validate({"status": "OK"})
