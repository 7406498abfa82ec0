"""Multi mode on the group photo (3 women, 3 men): each face gets the source of its gender, decided per track."""

from __future__ import annotations

import numpy as np

from faceswap_engine.swap import FaceSwapSession, SourceFace, swap_image
from faceswap_engine.swap.mask import mask_region
from faceswap_engine.swap.tracker import Track


def _changed(before: np.ndarray, after: np.ndarray, session: FaceSwapSession) -> dict[int, bool]:
    """Per track: did its face box change?"""
    out = {}
    for track in session._tracker.tracks:  # noqa: SLF001 - the test inspects where each face is
        x0, y0, x1, y1 = mask_region(track.points, before.shape)
        out[track.id] = bool(np.abs(after[y0:y1, x0:x1].astype(int) - before[y0:y1, x0:x1].astype(int)).mean() > 3)
    return out


def test_two_sources_each_to_its_gender(group_photo_bgr, astronaut_bgr, male_portrait_bgr) -> None:
    session = FaceSwapSession([SourceFace(astronaut_bgr, "female"), SourceFace(male_portrait_bgr, "male")])
    out, found = session.process_still(group_photo_bgr)
    faces = session.faces()
    assert found >= 5 and len(faces) == found
    genders = [f.gender for f in faces]
    assert genders.count("female") >= 2 and genders.count("male") >= 2
    for face in faces:
        assert face.source_index == (0 if face.gender == "female" else 1)
    changed = _changed(group_photo_bgr, out, session)
    swapped = [f for f in faces if f.alpha > 0.5]  # faces turned too far are faded out on purpose
    assert len(swapped) >= 4 and all(changed[f.track_id] for f in swapped)


def test_one_gendered_source_swaps_only_that_gender(group_photo_bgr, male_portrait_bgr) -> None:
    session = FaceSwapSession([SourceFace(male_portrait_bgr, "male")])
    out, _ = session.process_still(group_photo_bgr)
    changed = _changed(group_photo_bgr, out, session)
    faces = session.faces()
    for face in faces:
        if face.gender == "female":
            assert face.source_index is None and not changed[face.track_id]
        elif face.alpha > 0.5:
            assert face.source_index == 0 and changed[face.track_id]
    assert any(f.gender == "female" for f in faces) and any(f.gender == "male" for f in faces)


def test_gender_is_decided_once_per_track_over_its_first_frames(group_photo_bgr, astronaut_bgr, male_portrait_bgr) -> None:
    session = FaceSwapSession([SourceFace(astronaut_bgr, "female"), SourceFace(male_portrait_bgr, "male")])
    first: dict[int, int | None] = {}
    for i in range(7):
        out = session.process_frame(group_photo_bgr)
        faces = session.faces()
        if i < 2:  # votes are still being collected: nobody is swapped yet, nobody switches later
            assert all(f.source_index is None and not f.gender_final for f in faces)
            assert np.array_equal(out, group_photo_bgr)
        for face in faces:
            if face.source_index is not None:
                first.setdefault(face.track_id, face.source_index)
                assert face.source_index == first[face.track_id]  # decided once, never flips
    faces = session.faces()
    assert all(f.gender_final for f in faces)
    assert sum(f.alpha > 0.9 for f in faces) >= 3  # faded in after the decision
    assert session.stats.tracks == len(faces)  # the same faces all along, no new tracks per frame
    assert session.stats.frames == 7 and session.stats.frames_with_face == 7


def test_majority_vote() -> None:
    track = Track(0, np.zeros((468, 2), np.float32), np.zeros((468, 2), np.float32))
    track.gender_votes = [("male", 0.9), ("female", 0.6), ("female", 0.7)]
    assert track.gender() == "female"
    track.gender_votes = [("male", 0.9), ("female", 0.6)]
    assert track.gender() == "male"  # a tie goes to the more confident side


def test_multi_image_without_matching_face_warns(messi_bgr, astronaut_bgr) -> None:
    out, warnings = swap_image([SourceFace(astronaut_bgr, "female")], messi_bgr)
    assert np.array_equal(out, messi_bgr) and warnings and "gender" in warnings[0]
