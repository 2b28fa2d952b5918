"""Connected components of a large 3D binary mask, labelled a slab at a time.

MONAI's ``RemoveSmallObjects`` and ``KeepLargestConnectedComponent`` label the whole mask at once
with scikit-image (int64 labels, plus boolean and integer copies): about 19 bytes of memory a
voxel, 4.7 GiB for a 512x512x1000 mask that is mostly target. Here the mask is labelled in slabs
along its first axis with ``scipy.ndimage.label`` (the labelling scikit-image itself calls). A
component inside one slab is whole there; the pieces that reach a slab's first or last plane are
joined across the boundaries with ``scipy.sparse.csgraph``. A second pass labels each slab again
and writes the kept components into the mask in place. The memory is one slab's labels plus a
number per piece on a boundary plane, whatever the mask holds. The kept voxels are MONAI's; when
two largest components are equally large, the one met first in memory order is kept (MONAI's
choice between them is left to an unstable sort).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SLAB_VOXELS = 1 << 23
"""Voxels labelled at once (32 MiB of int32 labels)."""


@dataclass
class Winner:
    """A component that is (so far) the largest: its size, the order it is met in, and where it lies."""

    size: int
    first: int
    slab: int = -1
    local: int = -1
    component: int = -1

    def beats(self, other: Winner | None) -> bool:
        """Larger, or as large and met first."""
        return other is None or (self.size, -self.first) > (other.size, -other.first)


@dataclass
class Components:
    """A mask's connected components, as :func:`label_components` found them.

    Attributes:
        structure: the neighbourhood the labels were found with.
        planes: planes (along the first axis) per slab.
        open_labels: per slab, its labels on its first or last plane (sorted), the pieces of components that may
            go on in a neighbouring slab.
        open_component: per slab, the component of each of its open labels.
        component_sizes: voxels of each component with open pieces.
        largest_closed: the largest component lying inside one slab (None: there is none).
        component_first: the order each component with open pieces is met in (its smallest global label).
    """

    structure: np.ndarray
    planes: int
    open_labels: list[np.ndarray]
    open_component: list[np.ndarray]
    component_sizes: np.ndarray
    component_first: np.ndarray
    largest_closed: Winner | None


def slab_planes(shape: tuple[int, ...], slab_voxels: int = SLAB_VOXELS) -> int:
    """Planes (along the first axis) per slab, so that a slab holds about ``slab_voxels`` voxels."""
    plane = int(np.prod(shape[1:])) or 1
    return max(1, slab_voxels // plane)


def slab_labels(
    mask: np.ndarray, structure: np.ndarray, planes: int
) -> Iterator[tuple[slice, np.ndarray, np.ndarray, int]]:
    """Each slab's index, its own labels (1..n, background 0, in memory order), their sizes ((n + 1,), entry 0
    the background's) and the number of labels in the slabs before."""
    offset = 0
    for start in range(0, mask.shape[0], planes):
        index = slice(start, min(start + planes, mask.shape[0]))
        labels, count = ndimage.label(mask[index], structure=structure, output=np.int32)
        yield index, labels, np.bincount(labels.ravel(), minlength=count + 1), offset
        offset += count


def boundary_pairs(before: np.ndarray, after: np.ndarray, structure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs of nodes that touch across a boundary: ``before`` is the last plane of a slab, ``after``
    the first plane of the next one (both as node numbers, background -1), and ``structure[0]`` says which
    in-plane offsets are neighbours. Each pair is listed once, however many voxels it touches at."""
    rows, cols = before.shape
    span = int(max(before.max(initial=-1), after.max(initial=-1))) + 1
    keys = []
    for dy, dz in np.argwhere(structure[0]) - 1:
        left = before[max(0, -dy) : rows - max(0, dy), max(0, -dz) : cols - max(0, dz)]
        right = after[max(0, dy) : rows - max(0, -dy), max(0, dz) : cols - max(0, -dz)]
        touching = (left >= 0) & (right >= 0)
        keys.append(np.unique(left[touching] * span + right[touching]))
    distinct = np.unique(np.concatenate(keys))
    return distinct // span, distinct % span


def label_components(mask: np.ndarray, connectivity: int, slab_voxels: int = SLAB_VOXELS) -> Components:
    """The connected components of a 3D mask (nonzero: foreground) at scikit-image's ``connectivity`` (1-3)."""
    structure = ndimage.generate_binary_structure(3, connectivity)
    planes = slab_planes(mask.shape, slab_voxels)
    open_labels, open_sizes, open_global, pairs = [], [], [], []
    largest_closed: Winner | None = None
    nodes = 0  # open labels so far: each is a node of the boundary graph
    last_plane = None
    for slab, (_, labels, sizes, offset) in enumerate(slab_labels(mask, structure, planes)):
        on_planes = np.union1d(labels[0], labels[-1])
        on_planes = on_planes[on_planes > 0]
        node_of = np.full(sizes.size, -1, dtype=np.int64)
        node_of[on_planes] = np.arange(nodes, nodes + on_planes.size)
        if last_plane is not None:
            pairs.append(boundary_pairs(last_plane, node_of[labels[0]], structure))
        closed = sizes.copy()
        closed[0] = 0
        closed[on_planes] = 0
        if closed.any():
            local = int(np.argmax(closed))  # the first of the largest: labels run in memory order
            candidate = Winner(int(closed[local]), offset + local, slab, local)
            largest_closed = candidate if candidate.beats(largest_closed) else largest_closed
        open_labels.append(on_planes)
        open_sizes.append(sizes[on_planes])
        open_global.append(on_planes + offset)
        last_plane = node_of[labels[-1]]
        nodes += on_planes.size
    before = np.concatenate([b for b, _ in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    after = np.concatenate([a for _, a in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(before.size, dtype=np.int8), (before, after)), shape=(nodes, nodes))
    count, component = connected_components(graph, directed=False)
    sizes = np.bincount(component, weights=np.concatenate([[], *open_sizes]), minlength=count).astype(np.int64)
    first = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, component, np.concatenate([np.zeros(0, dtype=np.int64), *open_global]))
    starts = np.cumsum([0] + [labels.size for labels in open_labels])
    per_slab = [component[a:b] for a, b in zip(starts[:-1], starts[1:])]
    return Components(structure, planes, open_labels, per_slab, sizes, first, largest_closed)


def largest(components: Components) -> Winner | None:
    """The largest component (the first met of equally large ones); None for an empty mask."""
    best = components.largest_closed
    if components.component_sizes.size:
        sizes, first = components.component_sizes, components.component_first
        index = int(np.lexsort((first, -sizes))[0])
        candidate = Winner(int(sizes[index]), int(first[index]), component=index)
        best = candidate if candidate.beats(best) else best
    return best


def keep_components(mask: np.ndarray, components: Components, at_most: int = 0, only_largest: bool = False) -> None:
    """Removes from ``mask``, in place, the components of at most ``at_most`` voxels and, with ``only_largest``,
    every component but the largest.

    Args:
        mask: the mask ``components`` were found in, unchanged since.
        components: its components.
        at_most: components of this many voxels or fewer go (0: none goes for its size).
        only_largest: keep the largest component alone (when it is larger than ``at_most``).
    """
    winner = largest(components) if only_largest else None
    if only_largest and (winner is None or winner.size <= at_most):
        mask[...] = 0
        return
    kept_components = components.component_sizes > at_most
    if winner is not None:
        kept_components = np.arange(kept_components.size) == winner.component
    slabs = slab_labels(mask, components.structure, components.planes)
    for slab, (index, labels, sizes, _) in enumerate(slabs):
        keep = np.zeros(sizes.size, dtype=bool) if winner is not None else sizes > at_most
        if winner is not None and winner.slab == slab:
            keep[winner.local] = True
        keep[components.open_labels[slab]] = kept_components[components.open_component[slab]]
        keep[0] = False
        mask[index] = keep[labels]
