"""Multi mode on the group photo (3 women, 3 men): each face gets the source of its gender (dlib descriptors)."""

from __future__ import annotations

from identity import FaceIdentity, distance, identities, load_photo, nearest, photo_identity

from faceswap_engine.swap import SourceFace, swap_image

# Face centres in t1.jpg (1280x886) and who is there; checked against dlib's 6 detections.
GROUP = [
    ((121, 336), "female"),  # left, cards in hand
    ((320, 220), "female"),  # behind, head tilted
    ((503, 348), "male"),  # centre left
    ((778, 420), "male"),  # red shirt
    ((934, 131), "male"),  # standing, looking down
    ((1172, 336), "female"),  # right
]


SWAPPED = 0.15  # a face closer than this to its own original descriptor was left (nearly) as it was


def test_each_face_gets_the_source_of_its_gender() -> None:
    group = load_photo("group_photo")
    female, male = photo_identity("astronaut"), photo_identity("male_portrait")
    before = identities(group)
    assert len(before) == 6, f"dlib should find the 6 faces of the group photo, found {len(before)}"
    out, warnings = swap_image(
        [SourceFace(load_photo("astronaut"), "female"), SourceFace(load_photo("male_portrait"), "male")], group
    )
    assert warnings == []
    after = identities(out)
    lines, failures = [], []
    for centre, gender in GROUP:
        original = nearest(before, centre)
        assert original is not None and distance_px(original, centre) < 40
        swapped = nearest(after, original.center)
        if swapped is None or distance_px(swapped, original.center) > original.size * 0.5:
            failures.append(f"{gender} face at {centre}: dlib finds no face there after the swap")
            continue
        to_f, to_m, to_self = distance(swapped, female), distance(swapped, male), distance(swapped, original)
        wanted, other = (to_f, to_m) if gender == "female" else (to_m, to_f)
        line = f"multi {gender}@{centre}: d(female src)={to_f:.3f} d(male src)={to_m:.3f} d(original)={to_self:.3f}"
        lines.append(line)
        if to_self < SWAPPED:
            failures.append(line + " (not swapped)")
        elif not wanted < other:
            failures.append(line + " (wrong source)")
    print("\n" + "\n".join(lines))
    assert not failures, "faces not swapped with the source of their gender:\n" + "\n".join(failures)


def distance_px(face: FaceIdentity, centre: tuple[float, float]) -> float:
    return float(((face.center[0] - centre[0]) ** 2 + (face.center[1] - centre[1]) ** 2) ** 0.5)
