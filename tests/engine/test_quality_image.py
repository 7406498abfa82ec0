"""Identity transfer on real photos, judged by an independent embedding (dlib's 128-D descriptor, see identity.py).

The swapped face must be closer to the source than to the face it replaced. Photos come from installed packages
(``faceswap_engine.sample_media``); a missing one raises, so these tests fail rather than skip.
"""

from __future__ import annotations

import pytest
from identity import judge, load_photo, photo_identity

from faceswap_engine.swap import SourceFace, swap_image

PAIRS = [
    ("astronaut", "male_portrait"),  # female -> male
    ("male_portrait", "grace_hopper"),  # male -> female
    ("grace_hopper", "astronaut"),  # female -> female
    ("male_portrait", "astronaut"),
    ("astronaut", "grace_hopper"),
    ("grace_hopper", "male_portrait"),
    ("tom_hanks", "male_portrait"),  # a pre-aligned 112 crop as the source
    ("tom_hanks", "grace_hopper"),
]


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_swapped_face_is_closer_to_the_source_than_to_the_target(source: str, target: str) -> None:
    out, warnings = swap_image([SourceFace(load_photo(source))], load_photo(target))
    assert warnings == []
    verdict = judge(f"image {source}->{target}", out, photo_identity(source), photo_identity(target))
    print("\n" + str(verdict))
    assert verdict.ok, str(verdict)


def test_the_target_photo_itself_is_far_from_the_source() -> None:
    """Sanity check of the measure: before any swap each target is nearer to itself than to a source."""
    for source, target in PAIRS[:6]:
        case = f"unswapped {source}->{target}"
        unswapped = judge(case, load_photo(target), photo_identity(source), photo_identity(target))
        assert not unswapped.ok and unswapped.to_target < 0.05, str(unswapped)
