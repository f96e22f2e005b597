"""``postprocess_outputs``: the exported graph's raw detections finished outside it (ref §4.5, findings D2/D3):
brought to the output image, clipped or not, empty boxes dropped, masks pasted with the threshold. The expected
numbers are written out here; the pasting reference is mmdet's ``_do_paste_mask``."""
import numpy as np
import pytest
import torch

from centermask_mm.deployment.postprocess import postprocess_outputs
from tests.test_models.test_layers.test_mask_paste import mmdet_paste

# the network saw a 40x60 image resized from 60x120: detectron2 multiplies x by 2 and y by 1.5
META = dict(img_shape=(40, 60), ori_shape=(60, 120), scale_factor=(0.5, 40 / 60))
BOXES = np.array([[5., 5., 25., 20.],       # inside
                  [50., 30., 70., 50.],     # -> [100, 45, 140, 75], clipped to [100, 45, 120, 60]
                  [65., 10., 80., 20.],     # -> [130, 15, 160, 30]: right of the image, dropped
                  [-10., -4., 10., 8.]],    # -> [-20, -6, 20, 12], clipped to [0, 0, 20, 12]
                 dtype=np.float32)
KEEP = [0, 1, 3]


def outputs():
    masks = torch.rand(4, 28, 28, generator=torch.Generator().manual_seed(0)).numpy()
    return dict(boxes=BOXES, labels=np.array([2, 0, 1, 1]), scores=np.array([0.9, 0.8, 0.7, 0.6], np.float32),
                mask_scores=np.array([0.5, 0.4, 0.3, 0.2], np.float32), masks=masks)


def check(results, keep, boxes, height, width, threshold):
    out = outputs()
    torch.testing.assert_close(results.bboxes, torch.tensor(boxes), rtol=0, atol=1e-4)
    assert results.labels.tolist() == out['labels'][keep].tolist()
    assert results.scores.tolist() == pytest.approx(out['scores'][keep].tolist())
    assert results.mask_scores.tolist() == pytest.approx(out['mask_scores'][keep].tolist())
    expected = mmdet_paste(torch.from_numpy(out['masks'][keep]), torch.tensor(boxes), height, width, threshold)
    assert results.masks.shape == (len(keep), height, width) and torch.equal(results.masks, expected)


@pytest.mark.parametrize('threshold', [0.5, 0.3])
def test_detectron2_rescales_clips_drops_and_pastes_into_the_clipped_box(threshold):
    results = postprocess_outputs(outputs(), META, 'detectron2', threshold)
    check(results, KEEP, [[10., 7.5, 50., 30.], [100., 45., 120., 60.], [0., 0., 20., 12.]], 60, 120, threshold)


def test_mmdet_divides_by_the_scale_factor_and_pastes_into_the_unclipped_box():
    results = postprocess_outputs(outputs(), META, 'mmdet', 0.5)
    check(results, KEEP, [[10., 7.5, 50., 30.], [100., 45., 140., 75.], [-20., -6., 20., 12.]], 60, 120, 0.5)


def test_without_rescale_the_output_image_is_the_network_input():
    results = postprocess_outputs(outputs(), META, 'detectron2', 0.5, rescale=False)
    check(results, [0, 1, 3], [[5., 5., 25., 20.], [50., 30., 60., 40.], [0., 0., 10., 8.]], 40, 60, 0.5)
