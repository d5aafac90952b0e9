"""First-frame proposals with a synthetic predict_fn: grid, filters, cleanup, NMS, crops."""

import numpy as np
import pytest
from scipy import ndimage

from engine.auto_masklets.cleanup import (
    clean_mask,
    make_non_overlapping,
    mask_nms,
    remove_small_regions,
    stability_score,
)
from engine.auto_masklets.proposals import (
    AutoMaskConfig,
    CropBox,
    build_point_grid,
    generate_crop_boxes,
    generate_first_frame_proposals,
    point_grids_per_layer,
)
from engine.masks.rle import encode_rle

HW = (96, 96)

pytestmark = pytest.mark.filterwarnings(
    # pycocotools calls np.array(copy=False) on its own objects: numpy 2 warns on each decode.
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _scene() -> np.ndarray:
    """Label image: 0 background, 1 a rectangle, 2 a disc, 3 a small square."""
    labels = np.zeros(HW, dtype=np.int32)
    labels[8:30, 10:40] = 1
    yy, xx = np.mgrid[: HW[0], : HW[1]]
    labels[(yy - 62) ** 2 + (xx - 62) ** 2 <= 14**2] = 2
    labels[70:85, 8:22] = 3
    return labels


class ComponentPredictor:
    """Returns the connected region of the label image under each point.

    Objects get predicted IoU 0.95, the background 0.5. With ``logits`` the masks are signed
    distances scaled by 10 (stable), except labels listed in ``unstable``, which get a flat
    logit of 0.5 (gone at +1 offset: stability 0).
    """

    def __init__(self, labels: np.ndarray, *, logits: bool = False, unstable: tuple[int, ...] = ()):
        self.labels = labels
        self.logits = logits
        self.unstable = unstable
        self.calls: list[int] = []
        self.points: list[np.ndarray] = []

    def region(self, labels: np.ndarray, x: float, y: float) -> tuple[np.ndarray, int]:
        value = int(labels[int(y), int(x)])
        return labels == value, value

    def __call__(
        self, points: np.ndarray, point_labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        assert points.shape[1] == 2
        assert (point_labels == 1).all()
        self.calls.append(len(points))
        self.points.append(points.copy())
        masks, ious = [], []
        for x, y in points:
            mask, value = self.region(self.labels, x, y)
            ious.append(0.95 if value else 0.5)
            if not self.logits:
                masks.append(mask)
            elif value in self.unstable:
                masks.append(np.where(mask, 0.5, -10.0).astype(np.float32))
            else:
                inside = ndimage.distance_transform_edt(mask)
                outside = ndimage.distance_transform_edt(~mask)
                masks.append((10 * (inside - outside)).astype(np.float32))
        return np.stack(masks), np.array(ious)


def _masks_by_label(proposals: list, labels: np.ndarray) -> dict[int, np.ndarray]:
    found = {}
    for p in proposals:
        values = np.unique(labels[p.mask])
        assert len(values) == 1, "a proposal spans several regions"
        found[int(values[0])] = p.mask
    return found


# --- sampling ---


def test_point_grid_is_cell_centres() -> None:
    grid = build_point_grid(4)
    assert grid.shape == (16, 2)
    np.testing.assert_allclose(np.unique(grid[:, 0]), [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(grid[:4, 1], 0.125)  # first row: y constant, x increasing
    assert [len(g) for g in point_grids_per_layer(32, 2, 2)] == [1024, 256, 64]


def test_crop_boxes_tile_the_image_with_overlap() -> None:
    hw = (480, 854)
    boxes = generate_crop_boxes(hw, 2, 512 / 1500)
    assert boxes[0] == CropBox(0, 0, 854, 480, 0)
    assert [sum(b.layer == i for b in boxes) for i in range(3)] == [1, 4, 16]
    for layer in (1, 2):
        cover = np.zeros(hw, dtype=np.int32)
        for b in boxes:
            if b.layer == layer:
                assert 0 <= b.x0 < b.x1 <= hw[1]
                assert 0 <= b.y0 < b.y1 <= hw[0]
                cover[b.y0 : b.y1, b.x0 : b.x1] += 1
        assert cover.min() >= 1  # no gap
        assert (cover > 1).any()  # neighbours overlap
    layer1 = [b for b in boxes if b.layer == 1]
    overlap = int(512 / 1500 * 480)  # 163 px between neighbours on layer 1
    assert layer1[0].x1 - layer1[2].x0 == overlap  # column by column: [2] is the next column
    assert layer1[0].y1 - layer1[1].y0 == overlap


# --- scores and cleanup ---


def test_stability_score_is_tight_over_loose_area() -> None:
    logits = np.full((2, 4, 4), -5.0)
    logits[0, :2, :] = 5.0  # sharp: same mask at both offsets
    logits[1, :1, :] = 5.0
    logits[1, 1:3, :] = 0.5  # soft band: inside the loose mask only
    scores = stability_score(logits, mask_threshold=0.0, offset=1.0)
    np.testing.assert_allclose(scores, [1.0, 4 / 12])


def test_remove_small_regions_fills_holes_and_drops_specks() -> None:
    mask = np.zeros((30, 30), dtype=bool)
    mask[5:25, 5:25] = True
    mask[10:12, 10:12] = False  # 4-px hole
    mask[1, 28] = True  # 1-px speck
    filled, changed = remove_small_regions(mask, 10, "holes")
    assert changed
    assert filled[10:12, 10:12].all()
    assert filled[1, 28]
    cleaned, changed = remove_small_regions(filled, 10, "islands")
    assert changed
    assert not cleaned[1, 28]
    assert cleaned.sum() == 400
    np.testing.assert_array_equal(clean_mask(mask, 10), cleaned)
    unchanged, changed = remove_small_regions(cleaned, 10, "islands")
    assert not changed
    assert unchanged is cleaned
    # When every island is small, the largest one survives.
    tiny = np.zeros((10, 10), dtype=bool)
    tiny[0, 0] = True
    tiny[5:7, 5:7] = True
    kept, _ = remove_small_regions(tiny, 10, "islands")
    assert kept.sum() == 4
    assert kept[5, 5]


def test_mask_nms_drops_near_duplicates_only() -> None:
    a = np.zeros((20, 20), dtype=bool)
    a[2:12, 2:12] = True
    a_shifted = np.roll(a, 1, axis=1)  # IoU 90/110
    b = np.zeros((20, 20), dtype=bool)
    b[14:18, 14:18] = True
    rles = [encode_rle(m) for m in (a, a_shifted, b)]
    assert mask_nms(rles, [0.8, 0.9, 0.5], 0.7) == [1, 2]
    assert mask_nms(rles, [0.8, 0.9, 0.5], 0.9) == [1, 0, 2]


def test_make_non_overlapping_gives_pixels_to_the_best_score() -> None:
    a = np.zeros((10, 10), dtype=bool)
    a[:, :6] = True
    b = np.zeros((10, 10), dtype=bool)
    b[:, 4:] = True
    c = np.zeros((10, 10), dtype=bool)
    c[:, 3:7] = True  # mostly inside a and b
    out = make_non_overlapping([a, b, c], [0.9, 0.8, 0.7], min_kept_fraction=0.5)
    assert out[0] is not None
    assert out[0].sum() == 60
    assert out[1] is not None
    assert out[1].sum() == 40
    assert not (out[0] & out[1]).any()
    assert out[2] is None  # nothing left of c


# --- driver ---


def test_grid_prompts_find_each_object_once_and_filter_the_background() -> None:
    labels = _scene()
    predictor = ComponentPredictor(labels)
    config = AutoMaskConfig(points_per_side=8, points_per_batch=10)
    proposals = generate_first_frame_proposals(predictor, HW, config)
    assert predictor.calls == [10] * 6 + [4]  # 64 prompts in batches of 10
    prompts = np.concatenate(predictor.points)
    np.testing.assert_allclose(np.unique(prompts[:, 0]), 6 + 12 * np.arange(8))
    found = _masks_by_label(proposals, labels)
    assert sorted(found) == [1, 2, 3]
    for value, mask in found.items():
        np.testing.assert_array_equal(mask, labels == value)
    for p in proposals:
        x, y = p.point_xy
        assert labels[int(y), int(x)] == labels[p.mask][0]
        assert p.area == int((labels == labels[int(y), int(x)]).sum())
        x0, y0, w, h = p.bbox
        assert p.mask[y0 : y0 + h, x0 : x0 + w].sum() == p.area
    # Without the IoU filter the background region comes through as well.
    loose = generate_first_frame_proposals(
        ComponentPredictor(labels), HW, AutoMaskConfig(points_per_side=8, pred_iou_thresh=0.0)
    )
    assert sorted(_masks_by_label(loose, labels)) == [0, 1, 2, 3]


def test_stability_filter_drops_soft_masks() -> None:
    labels = _scene()
    config = AutoMaskConfig(points_per_side=8)
    proposals = generate_first_frame_proposals(
        ComponentPredictor(labels, logits=True, unstable=(2,)), HW, config
    )
    assert sorted(_masks_by_label(proposals, labels)) == [1, 3]
    assert all(p.stability_score >= 0.95 for p in proposals)


def test_specks_and_holes_are_cleaned_and_tiny_masks_dropped() -> None:
    labels = _scene()
    labels[15:17, 20:22] = 0  # a 4-px hole in object 1
    labels[2, 90] = 3  # a 1-px speck of object 3 far away
    raw = generate_first_frame_proposals(
        ComponentPredictor(labels), HW, AutoMaskConfig(points_per_side=8)
    )
    raw_found = _masks_by_label(raw, labels)
    assert not raw_found[1][15:17, 20:22].any()
    assert raw_found[3][2, 90]
    cleaned = generate_first_frame_proposals(
        ComponentPredictor(labels), HW, AutoMaskConfig(points_per_side=8, min_region_area=10)
    )
    masks = {int(np.bincount(labels[p.mask]).argmax()): p.mask for p in cleaned}
    assert masks[1][15:17, 20:22].all()
    assert not masks[3][2, 90]
    dropped = generate_first_frame_proposals(
        ComponentPredictor(labels), HW, AutoMaskConfig(points_per_side=8, min_mask_area=250)
    )
    assert sorted(_masks_by_label(dropped, labels)) == [1, 2]  # object 3 has 210 px


def test_non_overlapping_option_and_multimask_outputs() -> None:
    labels = _scene()
    base = ComponentPredictor(labels)

    def two_masks_per_point(points: np.ndarray, point_labels: np.ndarray):
        masks, ious = base(points, point_labels)
        grown = np.stack([ndimage.binary_dilation(m, iterations=3) for m in masks])
        return np.stack([masks, grown], axis=1), np.stack([ious, ious - 0.01], axis=1)

    config = AutoMaskConfig(points_per_side=8, nms_iou_thresh=0.9)
    overlapping = generate_first_frame_proposals(two_masks_per_point, HW, config)
    assert len(overlapping) == 6  # each object exactly and grown by 3 px
    stacked = np.stack([p.mask for p in overlapping]).sum(axis=0)
    assert stacked.max() > 1
    exclusive = generate_first_frame_proposals(
        two_masks_per_point,
        HW,
        AutoMaskConfig(points_per_side=8, nms_iou_thresh=0.9, non_overlapping=True),
    )
    assert np.stack([p.mask for p in exclusive]).sum(axis=0).max() == 1
    assert len(exclusive) == 3  # the grown rings keep < 50 % of their area


def test_crop_layers_use_the_factory_and_drop_cut_masks() -> None:
    labels = _scene()
    predictor = ComponentPredictor(labels)
    crops_seen: list[CropBox] = []

    def factory(crop: CropBox):
        crops_seen.append(crop)
        local = labels[crop.y0 : crop.y1, crop.x0 : crop.x1]
        return ComponentPredictor(local)

    config = AutoMaskConfig(points_per_side=8, crop_n_layers=1, crop_edge_tolerance_px=1)
    proposals = generate_first_frame_proposals(predictor, HW, config, factory)
    assert len(crops_seen) == 4
    found = _masks_by_label(proposals, labels)
    assert sorted(found) == [1, 2, 3]
    for value, mask in found.items():
        np.testing.assert_array_equal(mask, labels == value)
    # Objects seen whole inside a layer-1 crop come from that smaller crop.
    assert all(p.crop_box.layer == 1 for p in proposals if labels[p.mask][0] in (1, 3))
    with pytest.raises(ValueError, match="factory"):
        generate_first_frame_proposals(predictor, HW, config)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        AutoMaskConfig(points_per_side=0)
    with pytest.raises(ValueError):
        AutoMaskConfig(pred_iou_thresh=1.5)


# --- parity with Meta's automatic mask generator utilities ---


@pytest.mark.official
def test_sampling_and_stability_match_the_official_amg_utilities() -> None:
    pytest.importorskip("sam2")
    torch = pytest.importorskip("torch")
    from sam2.utils import amg

    for n in (1, 4, 32):
        np.testing.assert_allclose(build_point_grid(n), amg.build_point_grid(n))
    for ours, theirs in zip(
        point_grids_per_layer(32, 3, 2), amg.build_all_layer_point_grids(32, 3, 2)
    ):
        np.testing.assert_allclose(ours, theirs)
    for hw in ((480, 854), (848, 480), (1024, 1024), (97, 131)):
        boxes, layers = amg.generate_crop_boxes(hw, 2, 512 / 1500)
        crops = generate_crop_boxes(hw, 2, 512 / 1500)
        assert [[b.x0, b.y0, b.x1, b.y1] for b in crops] == boxes
        assert [b.layer for b in crops] == layers
    logits = np.random.default_rng(0).normal(0, 3, (5, 40, 30)).astype(np.float32)
    expected = amg.calculate_stability_score(torch.from_numpy(logits), 0.0, 1.0).numpy()
    np.testing.assert_allclose(stability_score(logits, 0.0, 1.0), expected, rtol=1e-6)
