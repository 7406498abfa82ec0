"""SSD anchor grids for MediaPipe's BlazeFace and palm detectors (fixed anchor size, offset 0.5)."""

from __future__ import annotations

import numpy as np


def ssd_anchors(input_size: int, strides: list[int], anchors_per_layer: list[int]) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order the models emit their boxes.

    Consecutive layers with the same stride are merged into one grid (as MediaPipe's calculator does), so the
    anchors of a cell are contiguous.
    """
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        count = 0
        while layer < len(strides) and strides[layer] == stride:
            count += anchors_per_layer[layer]
            layer += 1
        cells = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, count, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)
