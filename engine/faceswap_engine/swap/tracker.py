"""Multi-face tracking: the mesh of the previous frame sets this frame's crop; BlazeFace runs only when a
face is lost, when nothing is tracked, or every ``redetect_every`` frames to pick up newcomers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .colour import StatsEma
from .detector import Detection
from .mesh import FaceMesh, MeshResult, roi_from_detection, roi_from_landmarks
from .smoothing import OneEuro

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def points_box(points: np.ndarray) -> Box:
    lo, hi = points.min(0), points.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


@dataclass
class Track:
    """One face followed across frames, with everything the session smooths or decides per face."""

    id: int
    raw: np.ndarray  # last mesh as measured
    points: np.ndarray  # smoothed mesh used for rendering
    z: np.ndarray = field(default_factory=lambda: np.zeros(468, np.float32))  # last measured depth
    filter: OneEuro = field(default_factory=OneEuro)
    colour: StatsEma = field(default_factory=StatsEma)
    alpha: float = 0.0  # current blend weight (fades in/out)
    lost: int = 0  # consecutive frames without a mesh
    seen_frames: int = 0
    gender_votes: list[tuple[str, float]] = field(default_factory=list)
    gender_final: bool = False
    source_index: int | None = None
    recoloured: tuple | None = None  # (LUT, source identity, that identity recoloured with the LUT)

    @property
    def box(self) -> Box:
        return points_box(self.raw)

    @property
    def live(self) -> bool:
        return self.lost == 0

    def gender(self) -> str | None:
        """Majority of the votes so far (ties broken by summed confidence)."""
        if not self.gender_votes:
            return None
        tally: dict[str, tuple[int, float]] = {}
        for label, conf in self.gender_votes:
            n, s = tally.get(label, (0, 0.0))
            tally[label] = (n + 1, s + conf)
        return max(tally, key=lambda k: tally[k])


class FaceTracker:
    def __init__(
        self,
        detect: Callable[[np.ndarray], list[Detection]],
        mesh: FaceMesh,
        redetect_every: int = 12,
        max_faces: int = 8,
        min_presence: float = 0.5,
        forget_after: int = 25,
    ) -> None:
        self._detect = detect
        self._mesh = mesh
        self.redetect_every = redetect_every
        self.max_faces = max_faces
        self.min_presence = min_presence
        self.forget_after = forget_after
        self.tracks: list[Track] = []
        self._next_id = 0
        self._frame = 0
        self.total_tracks = 0

    def _measure(self, frame: np.ndarray, previous: np.ndarray | None, det: Detection | None) -> MeshResult | None:
        roi = roi_from_detection(det) if det is not None else roi_from_landmarks(previous)  # type: ignore[arg-type]
        if roi.size < 8:
            return None
        result = self._mesh(frame, roi)
        if result.presence < self.min_presence:
            return None
        if det is not None:  # refine: a crop set from the mesh itself matches what the model was trained on
            again = self._mesh(frame, roi_from_landmarks(result.points))
            if again.presence >= self.min_presence:
                result = again
        if previous is not None:
            size = lambda p: float(max(p.max(0) - p.min(0)))  # noqa: E731
            ratio = size(result.points) / max(size(previous), 1.0)
            if not 0.5 < ratio < 2.0:
                return None
        return result

    def _accept(self, track: Track, result: MeshResult) -> None:
        track.raw = result.points
        track.z = result.z
        size = float(max(result.points.max(0) - result.points.min(0)))
        track.points = track.filter(result.points, size)
        track.lost = 0
        track.seen_frames += 1

    def update(self, frame: np.ndarray) -> list[Track]:
        """Advance every track by one frame; returns all tracks (lost ones stay a while so they can fade)."""
        newly_lost = False
        for track in self.tracks:
            result = self._measure(frame, track.raw, None) if track.lost == 0 else None
            if result is None:
                newly_lost |= track.lost == 0
                track.lost += 1
            else:
                self._accept(track, result)
        # Detection is the expensive part: run it when a face was just lost, every other frame while a lost
        # face may come back or nothing is tracked, and every ``redetect_every`` frames to find newcomers.
        waiting = any(not t.live for t in self.tracks) or not self.tracks
        if newly_lost or (waiting and self._frame % 2 == 0) or self._frame % self.redetect_every == 0:
            self._add_detections(frame)
        self._drop_duplicates()
        self.tracks = [t for t in self.tracks if t.lost <= self.forget_after]
        self._frame += 1
        return self.tracks

    def _add_detections(self, frame: np.ndarray) -> None:
        for det in self._detect(frame):
            owner = self._owner(det.box)
            if owner is not None and owner.live:
                continue
            result = self._measure(frame, None, det)
            if result is None:
                continue
            if owner is not None:  # re-acquired a lost face: keep its id, gender and colour history
                owner.filter.reset()
                self._accept(owner, result)
                continue
            if sum(t.live for t in self.tracks) >= self.max_faces:
                break
            track = Track(self._next_id, result.points, result.points)
            self._next_id += 1
            self.total_tracks += 1
            self._accept(track, result)
            self.tracks.append(track)

    def _owner(self, box: Box) -> Track | None:
        best, best_iou = None, 0.25
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        for track in self.tracks:
            tb = track.box
            score = iou(box, tb)
            if tb[0] <= cx <= tb[2] and tb[1] <= cy <= tb[3]:
                score = max(score, 0.3)
            if score > best_iou:
                best, best_iou = track, score
        return best

    def _drop_duplicates(self) -> None:
        keep: list[Track] = []
        for track in sorted(self.tracks, key=lambda t: (t.lost, t.id)):
            if track.live and any(k.live and iou(k.box, track.box) > 0.5 for k in keep):
                continue
            keep.append(track)
        self.tracks = sorted(keep, key=lambda t: t.id)
