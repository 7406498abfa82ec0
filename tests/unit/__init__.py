"""Unit tests of the faceswap_common layer package."""
