"""The ONNX tier plugged into the engine's FaceSwapSession (``backend=``), with tiny models pointed at real faces.

The tiny SCRFD reports one fixed face (in detector-input pixels), so the source photo and the target photo are
laid out to put their faces at the same place: the target is warped so that its dlib keypoints land on the
source's. The session then runs its own Face Mesh tracking seeded by our detections, embeds the source once
(ArcFace crop -> latent through the emap) and asks our backend to render the target face with inswapper.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_models as tm
from identity import five_points, load_photo, photo_identity

from faceswap_engine.onnx_tier import OnnxBackend, load_backend
from faceswap_engine.onnx_tier.templates import ARCFACE_112_V2, similarity_matrix
from faceswap_engine.swap import Backend, FaceGeometry, FaceSwapSession, SourceFace

SIZE = 512  # astronaut's size; detector letterbox scale 640 / 512


@dataclass(frozen=True)
class Scene:
    weights: tm.TinyWeights
    backend: OnnxBackend
    source: np.ndarray
    target: np.ndarray
    kps: np.ndarray  # the planned face's 5 points in image pixels (same in source and target)


def _aligned_to(image: np.ndarray, kps_from: np.ndarray, kps_to: np.ndarray) -> np.ndarray:
    matrix = similarity_matrix(kps_from, kps_to)
    return cv2.warpAffine(image, matrix, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    source = load_photo("astronaut")
    src_face = photo_identity("astronaut")
    kps = five_points(source, src_face.box)
    target_photo = load_photo("male_portrait")
    target = _aligned_to(target_photo, five_points(target_photo, photo_identity("male_portrait").box), kps)
    x0, y0, x1, y1 = src_face.box
    pad = 0.15 * (x1 - x0)
    box = (x0 - pad, y0 - 2 * pad, x1 + pad, y1 + pad)  # SCRFD boxes reach the forehead
    planned = tm.planned_face_from(box, kps, scale=640 / SIZE)
    weights = tm.build_weights_folder(tmp_path_factory.mktemp("weights"), [planned])
    return Scene(weights, load_backend(weights.folder), source, target, kps)


def test_backend_satisfies_the_engine_protocol(scene: Scene) -> None:
    assert isinstance(scene.backend, Backend)
    assert scene.backend.colour_match is False
    [det] = scene.backend.detect(scene.target)
    np.testing.assert_allclose(det.keypoints[:3], scene.kps[:3], atol=0.5)
    x0, y0, x1, y1 = det.box
    assert x0 < scene.kps[:, 0].min() and x1 > scene.kps[:, 0].max() and y0 < scene.kps[:, 1].min()


def test_protocol_swap_renders_into_the_region(scene: Scene) -> None:
    backend = scene.backend
    identity = backend.identity(backend.embedding_at(scene.source, scene.kps))
    face = FaceGeometry(np.zeros((468, 2), np.float32), scene.kps.astype(np.float32), (0.0, 0.0, 1.0, 1.0))
    region = (100, 40, 420, 470)
    rendered = backend.swap(scene.target, face, identity, region)
    assert rendered.shape == (430, 320, 3) and rendered.dtype == np.uint8
    full = backend.swap_face(scene.target, scene.kps, identity)
    assert np.abs(rendered.astype(int) - full[40:470, 100:420]).max() <= 1  # warp rounding only


def _expected_offset_bgr(scene: Scene, image: np.ndarray) -> np.ndarray:
    """Independent numpy path: ArcFace-template crop -> tiny recognizer -> emap -> tiny swapper offset."""
    matrix = similarity_matrix(scene.kps, ARCFACE_112_V2 * 112)
    crop = cv2.warpAffine(image, matrix, (112, 112), borderValue=0.0)
    return scene.weights.swapper.expected_offset_rgb(scene.weights.recognizer.expected(crop))[::-1] * 255.0


def _nose_patch(image: np.ndarray, scene: Scene) -> np.ndarray:
    x, y = (int(v) for v in scene.kps[2])
    return image[y - 6 : y + 6, x - 6 : x + 6].reshape(-1, 3).astype(np.float64)


def test_session_swaps_a_real_photo_through_the_onnx_backend(scene: Scene) -> None:
    session = FaceSwapSession([SourceFace(scene.source)], backend=scene.backend)
    out, found = session.process_still(scene.target)
    assert found == 1 and session.stats.faces_swapped == 1
    assert out.shape == scene.target.shape
    changed = np.abs(out.astype(int) - scene.target).max(axis=2) > 8
    x0, y0, x1, y1 = photo_identity("astronaut").box
    assert changed[y0:y1, x0:x1].mean() > 0.5  # the face was re-rendered
    assert not changed[: max(0, y0 - 80)].any() and not changed[:, : max(0, x0 - 80)].any()  # the rest was not
    # the tiny inswapper outputs 0.5 * target + offset(latent): at the nose the offset must be the one the source's
    # embedding gives through the emap, which proves ArcFace crop, normalisation, emap and latent all line up
    patch_out, patch_in = _nose_patch(out, scene), _nose_patch(scene.target, scene)
    unclipped = np.all((patch_out > 2) & (patch_out < 253), axis=1)
    assert unclipped.mean() > 0.5
    measured = (patch_out - 0.5 * patch_in)[unclipped].mean(axis=0)
    np.testing.assert_allclose(measured, _expected_offset_bgr(scene, scene.source), atol=3.0)


def test_a_different_source_gives_a_different_face(scene: Scene) -> None:
    photo = load_photo("grace_hopper")
    other = _aligned_to(photo, five_points(photo, photo_identity("grace_hopper").box), scene.kps)
    a, _ = FaceSwapSession([SourceFace(scene.source)], backend=scene.backend).process_still(scene.target)
    b, _ = FaceSwapSession([SourceFace(other)], backend=scene.backend).process_still(scene.target)
    offsets = _expected_offset_bgr(scene, scene.source), _expected_offset_bgr(scene, other)
    assert np.abs(offsets[0] - offsets[1]).max() > 10  # the two sources' latents really differ
    assert np.abs(_nose_patch(a, scene) - _nose_patch(b, scene)).mean() > 5


def test_video_frames_through_the_onnx_backend(scene: Scene) -> None:
    session = FaceSwapSession([SourceFace(scene.source)], backend=scene.backend)
    frames = [np.roll(scene.target, shift, axis=1) for shift in (0, 2, 4, 6, 8)]
    outs = [session.process_frame(f) for f in frames]
    assert all(o.shape == f.shape for o, f in zip(outs, frames, strict=True))
    stats = session.stats
    assert stats.frames == 5 and stats.frames_with_face == 5 and stats.faces_swapped >= 4


def test_no_face_in_the_target_leaves_it_unchanged(scene: Scene) -> None:
    session = FaceSwapSession([SourceFace(scene.source)], backend=scene.backend)
    dark = np.full_like(scene.target, 20)
    out, found = session.process_still(dark)
    assert found == 0 and np.array_equal(out, dark)


def test_load_errors_reach_the_caller_before_any_session(tmp_path: Path) -> None:
    from faceswap_engine.onnx_tier import MissingModel

    tm.build_recognizer(tmp_path / "w600k_r50.onnx")
    with pytest.raises(MissingModel, match="inswapper"):
        load_backend(tmp_path)
