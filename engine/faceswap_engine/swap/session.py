"""FaceSwapSession: one per job; tracks faces across frames and swaps each with the right source."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Literal, Sequence

import cv2
import numpy as np

from faceswap_engine.errors import NoFaceInSource

from .backend import Backend, FaceGeometry, LandmarkMorphBackend, grid_step
from .blend import blend_into
from .colour import LabStats, apply_lut, lab_stats, transfer_lut
from .detector import Detection, FaceDetector
from .gender import GenderClassifier
from .mask import coarse_mask, mask_region
from .mesh import FaceMesh, roi_from_detection, roi_from_landmarks
from .landmarks import face_size
from .pose import still_swappable, yaw_weight
from .relight import apply_gain, gain_map
from .tracker import FaceTracker, Track
from .warp import PiecewiseWarp, SourceMesh, coarse_shape, upsample

Gender = Literal["female", "male"]

GENDER_VOTES = 6  # votes (2 per frame: chip + mirror) over a track's first frames decide its gender, once
GENDER_FRAMES = 3  # ... or whatever votes its first 3 frames gave (turned faces vote on their first frame only)
FADE_STEP = 0.34  # max change of a face's blend weight per frame (fade over ~3 frames)
STATS_FEATHER = 0.12  # colour statistics come from the inner face (no hair, beard edge or background)


@dataclass(frozen=True)
class SourceFace:
    image_bgr: np.ndarray
    gender: Gender | None = None


@dataclass(frozen=True)
class SwapOptions:
    occlusion: bool = False


@dataclass(frozen=True)
class SwapStats:
    frames: int
    frames_with_face: int
    faces_swapped: int  # face renders summed over frames
    tracks: int  # distinct faces seen


@dataclass(frozen=True)
class FaceInfo:
    """What the session decided for one tracked face (for logs, warnings and tests)."""

    track_id: int
    live: bool
    gender: str | None
    gender_final: bool
    source_index: int | None
    alpha: float


@dataclass
class _Source:
    identity: object
    gender: Gender | None
    stats: LabStats | None


_threads_configured = False


def _configure_threads() -> None:
    """OpenCV's own thread pool only adds overhead on face-sized regions, and the video pipeline already keeps
    the second core busy with decode/encode: one OpenCV thread unless ENGINE_CV2_THREADS says otherwise.
    (Process-wide; set once.)"""
    global _threads_configured
    if not _threads_configured:
        cv2.setNumThreads(int(os.environ.get("ENGINE_CV2_THREADS", "1")))
        _threads_configured = True


def _points_of(mesh: FaceMesh, image: np.ndarray, det: Detection) -> np.ndarray | None:
    first = mesh(image, roi_from_detection(det))
    if first.presence < 0.5:
        return None
    again = mesh(image, roi_from_landmarks(first.points))
    return again.points if again.presence >= 0.5 else first.points


def still_faces(detector: FaceDetector, mesh: FaceMesh, image: np.ndarray, backend: Backend | None = None) -> list[np.ndarray]:
    """Meshes of all faces of a still image, largest first; pads the image when the face fills it (aligned crops)."""
    for pad in (0, max(image.shape[:2]) // 3):
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT) if pad else image
        dets = (backend.detect(padded) if backend is not None else None) or detector.detect(padded)
        found = [p - pad for p in (_points_of(mesh, padded, d) for d in dets) if p is not None]
        if found:
            return found
    return []


def _source_stats(image: np.ndarray, points: np.ndarray) -> LabStats | None:
    region = mask_region(points, image.shape)
    if region is None:
        return None
    step = max(1, grid_step(points) // 2)
    cm = coarse_mask(points, region, step, coarse_shape(region, step), feather=STATS_FEATHER)
    return _sample_stats(image, region, step, cm)


def _sample_stats(image: np.ndarray, region: tuple[int, int, int, int], step: int, cm: np.ndarray) -> LabStats | None:
    x0, y0, x1, y1 = region
    sample = image[y0 + step // 2 : y1 : step, x0 + step // 2 : x1 : step]
    inside = cm[: sample.shape[0], : sample.shape[1]] > 0.9
    return lab_stats(sample[inside])


class FaceSwapSession:
    """Swaps every face of a video (or image) with the given source(s), keeping per-face state across frames.

    Multi mode (any source has a gender): each target face gets the source of its gender, decided once per
    face track by majority over its first frames. Thread-safe: calls are serialised by a lock; sessions share
    nothing, so several may run at once.
    """

    def __init__(self, sources: Sequence[SourceFace], options: SwapOptions = SwapOptions(),
                 backend: Backend | None = None) -> None:
        if not sources:
            raise ValueError("at least one source face is required")
        _configure_threads()
        self.options = options
        self.relight = True  # low-frequency shading match (CPU tier); a switch for A/B comparisons
        self._backend: Backend = backend if backend is not None else LandmarkMorphBackend()
        self._lock = threading.Lock()
        self._detector = FaceDetector()
        self._mesh = FaceMesh()
        self._multi = any(s.gender is not None for s in sources)
        self._gender = GenderClassifier() if self._multi else None
        self._occluder = None
        if options.occlusion:
            from .occlusion import HandOccluder

            self._occluder = HandOccluder()
        self._sources: list[_Source] = []
        for i, src in enumerate(sources):
            field = "source_face_url" if not self._multi and len(sources) == 1 else f"source_face_url_{i + 1}"
            image = np.ascontiguousarray(src.image_bgr)
            faces = still_faces(self._detector, self._mesh, image, self._backend)
            if not faces:
                raise NoFaceInSource(f"no face found in the source image ({field})", loc=[field])
            geom = FaceGeometry.from_points(faces[0])
            self._sources.append(_Source(self._backend.embed(image, geom), src.gender, _source_stats(image, faces[0])))
        self._tracker = FaceTracker(self._detect, self._mesh)
        self._frames = self._frames_with_face = self._faces_swapped = 0

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        found = self._backend.detect(frame)
        return found if found is not None else self._detector.detect(frame)

    @property
    def multi(self) -> bool:
        """True when sources carry genders: faces are matched to sources by gender."""
        return self._multi

    @property
    def stats(self) -> SwapStats:
        return SwapStats(self._frames, self._frames_with_face, self._faces_swapped, self._tracker.total_tracks)

    def process_frame(self, frame_bgr: np.ndarray) -> np.ndarray:
        """The swapped frame (a new array of the same shape and dtype)."""
        with self._lock:
            return self._process(frame_bgr, still=False)

    def process_still(self, image_bgr: np.ndarray) -> tuple[np.ndarray, int]:
        """One image: every face at full weight, no fading. Returns (image, faces found)."""
        with self._lock:
            out = self._process(image_bgr, still=True)
            return out, sum(t.live for t in self._tracker.tracks)

    def faces(self) -> list[FaceInfo]:
        """The tracked faces after the last frame."""
        with self._lock:
            return [FaceInfo(t.id, t.live, t.gender(), t.gender_final, t.source_index, t.alpha)
                    for t in self._tracker.tracks]

    def _source_for(self, track: Track, frame: np.ndarray, still: bool) -> _Source | None:
        index = self._source_index(track, frame, still)
        track.source_index = index
        return None if index is None else self._sources[index]

    def _source_index(self, track: Track, frame: np.ndarray, still: bool) -> int | None:
        if not self._multi:
            return 0
        if not track.gender_final and track.live and self._gender is not None:
            frontal = not track.gender_votes or yaw_weight(track.raw, track.z) > 0.5  # first vote always
            if frontal:
                track.gender_votes.extend(self._gender.votes(frame, track.raw))
            # decided once: after enough votes, or at once for a still (there is no next frame)
            track.gender_final = still or len(track.gender_votes) >= GENDER_VOTES or track.seen_frames >= GENDER_FRAMES
        if not track.gender_final:
            return None  # not swapped until its gender is settled (then it fades in): no mid-track switch
        gender = track.gender()
        for i, src in enumerate(self._sources):
            if src.gender == gender:
                return i
        for i, src in enumerate(self._sources):
            if src.gender is None:
                return i
        return None

    def _process(self, frame_bgr: np.ndarray, still: bool) -> np.ndarray:
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR frame, got {frame_bgr.shape} {frame_bgr.dtype}")
        frame = np.ascontiguousarray(frame_bgr)
        out = frame.copy()
        tracks = self._tracker.update(frame)
        self._frames += 1
        if any(t.live for t in tracks):
            self._frames_with_face += 1
        for track in tracks:
            source = self._source_for(track, frame, still)
            goal = yaw_weight(track.points, track.z) if (track.live and source is not None) else 0.0
            if still:  # a half-blended face looks like a ghost on a photo: all or nothing
                swappable = track.live and source is not None and still_swappable(track.points, track.z)
                track.alpha = 1.0 if swappable else 0.0
            elif track.live and track.seen_frames == 1 and not self._multi:
                track.alpha = goal
            else:
                track.alpha = float(np.clip(goal, track.alpha - FADE_STEP, track.alpha + FADE_STEP))
            if track.alpha <= 0.01 or source is None:
                continue
            if self._render(out, frame, track, source):
                self._faces_swapped += 1
        return out

    @staticmethod
    def _recoloured(track: Track, identity: PiecewiseWarp, lut: np.ndarray) -> PiecewiseWarp:
        """The source recoloured for this track, recomputed only when the smoothed colour really moved."""
        cached = track.recoloured
        if cached is not None and _lut_close(cached[0], lut):
            warp = cached[2]
            if warp.base is identity:
                return warp
        src = identity.source
        warp = PiecewiseWarp(SourceMesh(apply_lut(src.image, lut), src.points, src.triangles))
        warp.base = identity
        track.recoloured = (lut, identity, warp)
        return warp

    def _render(self, out: np.ndarray, frame: np.ndarray, track: Track, source: _Source) -> bool:
        points = track.points
        region = mask_region(points, frame.shape)
        if region is None:
            return False
        step = grid_step(points)
        holes = self._occluder.hand_hulls(frame, track.raw) if self._occluder is not None else []
        cm = coarse_mask(points, region, step, coarse_shape(region, step), holes)
        if not cm.any():
            return False
        colour = self._backend.colour_match
        inner = coarse_mask(points, region, step, cm.shape, holes, feather=STATS_FEATHER) if colour else None
        lut = None
        if colour and source.stats is not None:
            if track.live:
                target = track.colour.update(_sample_stats(frame, region, step, inner))
            else:
                target = track.colour.value
            if target is not None:
                lut = transfer_lut(source.stats, target)
        identity = source.identity
        if lut is not None and isinstance(identity, PiecewiseWarp):
            identity = self._recoloured(track, identity, lut)  # colour the (static) source, not every output
            lut = None
        face = self._backend.swap(frame, FaceGeometry.from_points(points), identity, region)
        face_alpha = None
        if face.ndim == 3 and face.shape[2] == 4:  # the backend says which of its pixels may be used
            face_alpha = cv2.extractChannel(face, 3)
            face = cv2.cvtColor(face, cv2.COLOR_BGRA2BGR)
        if lut is not None:
            face = apply_lut(face, lut)
        if colour and self.relight:
            x0, y0, x1, y1 = region
            gain = gain_map(frame[y0:y1, x0:x1], face, inner, step, face_size(points))
            face = apply_gain(face, upsample(gain, region, step))
        alpha = upsample(cm, region, step)
        if face_alpha is not None:
            alpha = alpha * face_alpha.astype(np.float32)
            alpha *= 1.0 / 255.0
        if track.alpha < 0.999:
            alpha *= track.alpha
        blend_into(out, region, face, alpha)
        return True


def _lut_close(a: np.ndarray, b: np.ndarray, tolerance: int = 1) -> bool:
    return bool(np.abs(a.astype(np.int16) - b.astype(np.int16)).max() <= tolerance)


def swap_image(sources: Sequence[SourceFace], target_bgr: np.ndarray, options: SwapOptions = SwapOptions(),
               backend: Backend | None = None) -> tuple[np.ndarray, list[str]]:
    """Swap every (matching) face of one image. No face in the target → the input unchanged plus a warning."""
    session = FaceSwapSession(sources, options, backend)
    out, found = session.process_still(target_bgr)
    warnings: list[str] = []
    if found == 0:
        return target_bgr.copy(), ["No face was detected in the target image; it is returned unchanged."]
    if session.stats.faces_swapped == 0:
        faces = session.faces()
        if session.multi and all(f.source_index is None for f in faces):
            warnings.append("No face in the target image matched the requested gender(s); it is returned unchanged.")
        else:
            warnings.append("The face(s) in the target image are turned too far from the camera to be swapped; "
                            "it is returned unchanged.")
        return target_bgr.copy(), warnings
    return out, warnings
