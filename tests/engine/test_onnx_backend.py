"""The ONNX tier on tiny models with the real files' inputs and outputs: discovery, tensor contracts, errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_models as tm

from faceswap_engine import sample_media
from faceswap_engine.onnx_tier import MissingModel, WeightsError, WrongModelShape, load_backend
from faceswap_engine.onnx_tier.templates import ARCFACE_112_V2, ARCFACE_128, align_matrix

FACE = tm.PlannedFace((200.0, 150.0, 400.0, 400.0), ((260, 250), (340, 250), (300, 300), (270, 350), (330, 350)))
SMALL_FACE = tm.PlannedFace((500.0, 40.0, 540.0, 90.0), ((510, 60), (530, 60), (520, 70), (512, 80), (528, 80)), 0.7)


@pytest.fixture
def weights(tmp_path: Path) -> tm.TinyWeights:
    return tm.build_weights_folder(tmp_path / "weights", [FACE, SMALL_FACE], genderage=True)


def grey(height: int = 640, width: int = 640) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


# ---------------------------------------------------------------- discovery


def test_discovers_each_model_by_shape_whatever_its_name(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_inswapper(folder / "model_a.onnx")
    tm.build_recognizer(folder / "model_b.onnx")
    tm.build_scrfd(folder / "model_c.onnx", [FACE])
    tm.build_genderage(folder / "model_d.onnx")
    tm.build_unrelated(folder / "2d106det.onnx")
    backend = load_backend(folder)
    assert {role: path.name for role, path in backend.files.items()} == {
        "swapper": "model_a.onnx",
        "recognizer": "model_b.onnx",
        "scrfd": "model_c.onnx",
        "genderage": "model_d.onnx",
    }
    assert [p.name for p in backend.discovery.ignored] == ["2d106det.onnx"]
    assert backend.has_gender


def test_standard_names_and_static_batched_detector(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_inswapper(folder / "inswapper_128_fp16.onnx")
    tm.build_recognizer(folder / "w600k_r50.onnx")
    tm.build_scrfd(folder / "scrfd_2.5g_bnkps.onnx", [FACE], dynamic_input=False, batched=True)
    backend = load_backend(folder)
    assert backend.files["scrfd"].name == "scrfd_2.5g_bnkps.onnx"
    assert not backend.has_gender and backend.gender(grey(), backend.find_faces(grey())[0]) is None
    [face] = [f for f in backend.find_faces(grey()) if f.score > 0.8]
    np.testing.assert_allclose(face.bbox, FACE.bbox, atol=1e-3)


def test_a_named_file_is_preferred_over_a_shape_match(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_weights_folder(folder, [FACE])
    tm.build_recognizer(folder / "aaa_other_recognizer.onnx", seed=9)
    backend = load_backend(folder)
    assert backend.files["recognizer"].name == "w600k_r50.onnx"
    assert "aaa_other_recognizer.onnx" in [p.name for p in backend.discovery.ignored]


@pytest.mark.parametrize(
    ("drop", "needle"),
    [("inswapper_128.onnx", "inswapper_128.onnx"), ("w600k_r50.onnx", "w600k_r50"), ("det_10g.onnx", "detector")],
)
def test_missing_required_model_is_a_clear_error(tmp_path: Path, drop: str, needle: str) -> None:
    folder = tmp_path / "w"
    tm.build_weights_folder(folder, [FACE])
    (folder / drop).unlink()
    with pytest.raises(MissingModel) as caught:
        load_backend(folder)
    assert needle in caught.value.message
    assert caught.value.code == "missing_model"


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_backend(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingModel, match="no .onnx files"):
        load_backend(tmp_path / "empty")


def test_named_model_with_wrong_shape_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_weights_folder(folder, [FACE])
    tm.build_inswapper(folder / "inswapper_128.onnx", latent_dim=256)
    with pytest.raises(WrongModelShape) as caught:
        load_backend(folder)
    message = caught.value.message
    assert "inswapper_128.onnx" in message and "1x256" in message and "1x512" in message
    assert caught.value.loc == ["inswapper_128.onnx"]


def test_recognizer_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_weights_folder(folder, [FACE])
    tm.build_recognizer(folder / "w600k_r50.onnx", input_size=128)
    with pytest.raises(WrongModelShape, match=r"w600k_r50.onnx .*Nx3x112x112"):
        load_backend(folder)


def test_detector_named_file_that_is_not_a_detector_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_weights_folder(folder, [FACE])
    tm.build_recognizer(folder / "det_10g.onnx")
    with pytest.raises(WrongModelShape, match=r"det_10g.onnx is named like a scrfd model .*SCRFD/RetinaFace layout"):
        load_backend(folder)


def test_swapper_without_a_512_emap_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_weights_folder(folder, [FACE])
    tm.build_inswapper(folder / "inswapper_128.onnx", emap=np.eye(256, dtype=np.float32))
    with pytest.raises(WrongModelShape, match=r"emap.*\(256, 256\)"):
        load_backend(folder)


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_weights_folder(folder, [FACE])
    (folder / "det_10g.onnx").write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="det_10g.onnx: onnxruntime cannot load it"):
        load_backend(folder)


# ---------------------------------------------------------------- detection


def test_scrfd_decoding_nms_and_scale_back(weights: tm.TinyWeights) -> None:
    backend = load_backend(weights.folder)
    # a 1280x960 frame is letterboxed at scale 0.5: every planned coordinate doubles
    faces = backend.find_faces(grey(960, 1280))
    assert [round(f.score, 2) for f in faces] == [0.9, 0.7]  # the weaker duplicates were suppressed
    np.testing.assert_allclose(faces[0].bbox, np.array(FACE.bbox) * 2, atol=1e-3)
    np.testing.assert_allclose(faces[0].kps, np.array(FACE.kps) * 2, atol=1e-3)
    np.testing.assert_allclose(faces[1].bbox, np.array(SMALL_FACE.bbox) * 2, atol=1e-3)


def test_scrfd_outputs_are_mapped_by_shape_not_by_order_or_name(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_weights_folder(folder, [])
    tm.build_scrfd(folder / "det_10g.onnx", [FACE, SMALL_FACE], output_order=[8, 3, 0, 5, 7, 1, 4, 2, 6])
    faces = load_backend(folder).find_faces(grey())
    assert [round(f.score, 2) for f in faces] == [0.9, 0.7]
    np.testing.assert_allclose(faces[0].kps, FACE.kps, atol=1e-3)


def test_yoloface_detector(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    tm.build_weights_folder(folder, [])
    (folder / "det_10g.onnx").unlink()
    tm.build_yoloface(folder / "yoloface_8n.onnx", [FACE, SMALL_FACE])
    backend = load_backend(folder)
    assert backend.files["yoloface"].name == "yoloface_8n.onnx"
    faces = backend.find_faces(grey(320, 320))  # letterbox scale 2: coordinates halve
    assert [round(f.score, 2) for f in faces] == [0.9, 0.7]
    np.testing.assert_allclose(faces[0].bbox, np.array(FACE.bbox) / 2, atol=1e-3)
    np.testing.assert_allclose(faces[0].kps, np.array(FACE.kps) / 2, atol=1e-3)


def test_no_face_on_a_dark_frame(weights: tm.TinyWeights) -> None:
    assert load_backend(weights.folder).find_faces(np.zeros((480, 640, 3), np.uint8)) == []


def test_scrfd_preprocessing_is_bgr_minus_127_5_over_128() -> None:
    from faceswap_engine.onnx_tier.detector import letterbox

    frame = np.zeros((320, 640, 3), np.uint8)
    frame[:, :, 0] = 255  # blue
    canvas, scale = letterbox(frame, (640, 640))
    assert scale == 1.0 and canvas[:320].min(axis=(0, 1)).tolist() == [255, 0, 0] and canvas[320:].max() == 0
    # the detector's blob: channel 0 is blue, normalised (x - 127.5) / 128, padding is (0 - 127.5) / 128
    from faceswap_engine.onnx_tier.detector import ScrfdDetector

    stub = type("D", (), {"size": (640, 640), "swap_rb": False})()
    blob, _ = ScrfdDetector.blob(stub, frame)  # type: ignore[arg-type]
    assert blob.shape == (1, 3, 640, 640)
    assert blob[0, 0, 10, 10] == pytest.approx((255 - 127.5) / 128)
    assert blob[0, 2, 10, 10] == pytest.approx(-127.5 / 128)
    assert blob[0, 0, 600, 10] == pytest.approx(-127.5 / 128)


# ---------------------------------------------------------------- alignment and embedding


def test_arcface_crop_and_normalisation_match_the_reference_contract(weights: tm.TinyWeights) -> None:
    """Tom Hanks' crop is already aligned to the ArcFace template: padded and re-aligned it must come back as is."""
    crop = cv2.imread(str(sample_media.tom_hanks()))
    assert crop is not None and crop.shape == (112, 112, 3)
    canvas = np.zeros((400, 500, 3), np.uint8)
    canvas[150:262, 200:312] = crop
    kps = ARCFACE_112_V2 * 112 + (200, 150)
    backend = load_backend(weights.folder)
    np.testing.assert_array_equal(backend.recognizer.crop(canvas, kps), crop)
    expected = weights.recognizer.expected(crop)
    got = backend.recognizer.embed(canvas, kps)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(backend.embedding_at(canvas, kps), expected / np.linalg.norm(expected), atol=1e-5)


def test_templates_are_the_insightface_ones() -> None:
    arcface_dst = np.array(
        [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
    )
    np.testing.assert_allclose(ARCFACE_112_V2 * 112, arcface_dst, atol=1e-4)
    np.testing.assert_allclose(ARCFACE_128 * 128, arcface_dst + (8, 0), atol=1e-4)
    # a similarity fit recovers a known rotation + scale + shift exactly
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = arcface_dst @ rot.T + shift
    matrix = align_matrix(points, ARCFACE_112_V2, 112)
    np.testing.assert_allclose(points @ matrix[:, :2].T + matrix[:, 2], arcface_dst, atol=1e-6)


# ---------------------------------------------------------------- swap


def test_source_latent_goes_through_the_emap(weights: tm.TinyWeights) -> None:
    backend = load_backend(weights.folder)
    embedding = np.random.default_rng(5).standard_normal(512)
    expected = weights.swapper.expected_latent(embedding)
    np.testing.assert_allclose(backend.identity(embedding).latent[0], expected, atol=1e-5)
    np.testing.assert_allclose(backend.swapper.emap, weights.swapper.emap, atol=0)


def test_swap_renders_the_source_and_pastes_back_only_the_face(weights: tm.TinyWeights) -> None:
    backend = load_backend(weights.folder)
    frame = grey()
    face = backend.find_faces(frame)[0]
    embedding = np.random.default_rng(6).standard_normal(512)
    out = backend.swap_face(frame, face.kps, embedding)
    assert out.shape == frame.shape and out.dtype == np.uint8
    # centre of the face: fully inside the mask, so exactly the tiny model's clip(0.5 * target + offset)
    expected_rgb = np.clip(0.5 * 128 / 255 + weights.swapper.expected_offset_rgb(embedding), 0, 1) * 255
    np.testing.assert_allclose(out[300, 300].astype(float), expected_rgb[::-1], atol=2.0)
    # far from the face nothing changes
    assert np.array_equal(out[:100], frame[:100]) and np.array_equal(out[:, :100], frame[:, :100])
    # the feathered edge: some pixels only partly changed
    changed = np.abs(out.astype(int) - frame).max(axis=2)
    assert changed.any() and (out[300, 300] != frame[300, 300]).any()


def test_the_emap_changes_the_result(tmp_path: Path, weights: tm.TinyWeights) -> None:
    """Same model, different emap (the unused last initializer): different output, so the emap is really read."""
    other = tmp_path / "other"
    tm.build_weights_folder(other, [FACE])
    tm.build_inswapper(other / "inswapper_128.onnx", emap=np.eye(512, dtype=np.float32))
    frame = grey()
    embedding = np.random.default_rng(7).standard_normal(512)
    a = load_backend(weights.folder)
    b = load_backend(other)
    face = a.find_faces(frame)[0]
    assert not np.array_equal(a.swap_face(frame, face.kps, embedding), b.swap_face(frame, face.kps, embedding))
    np.testing.assert_allclose(b.identity(embedding).latent[0], embedding / np.linalg.norm(embedding), atol=1e-5)


def test_gender_from_genderage(weights: tm.TinyWeights) -> None:
    backend = load_backend(weights.folder)
    red, blue = grey(), grey()
    red[:, :, 2] = 250
    blue[:, :, 0] = 250
    face = backend.find_faces(red)[0]
    assert backend.gender(red, face) == "female"
    assert backend.gender(blue, face) == "male"


# ---------------------------------------------------------------- configuration


def test_summary_and_weights_from_env(weights: tm.TinyWeights, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceswap_engine.onnx_tier import WEIGHTS_ENV, backend_from_env

    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert backend_from_env() is None
    monkeypatch.setenv(WEIGHTS_ENV, str(weights.folder))
    backend = backend_from_env()
    assert backend is not None
    summary = backend.summary()
    assert summary.models == {
        "scrfd": "det_10g.onnx",
        "recognizer": "w600k_r50.onnx",
        "swapper": "inswapper_128.onnx",
        "genderage": "genderage.onnx",
    }
    assert summary.folder == str(weights.folder) and summary.ignored == []
    monkeypatch.setenv(WEIGHTS_ENV, str(weights.folder / "missing"))
    with pytest.raises(WeightsError):
        backend_from_env()
