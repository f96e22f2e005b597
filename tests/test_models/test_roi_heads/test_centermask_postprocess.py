"""Final post-processing: centermask2's (detectron2 ``detector_postprocess``: rescale, clip, drop empty, paste into
the clipped box; findings D2/D3), zero-size FCOS boxes kept until then (D8), and no crash on boxes outside the
image (mmdet's CPU paste raises on them)."""
import copy
import pytest
import torch
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from tests.helpers import load_config, model_cfg

LITE = '_base_/models/centermask-lite_vovnet-fpn.py'


def roi_head(postprocess):
    cfg = load_config(LITE).model
    head = dict(cfg.roi_head, train_cfg=None, test_cfg=ConfigDict(cfg.test_cfg.rcnn, postprocess=postprocess))
    return MODELS.build(head).eval()


def half_mask_logits(num_boxes, num_classes=80, label=0):
    """Mask logits whose predicted-class channel is foreground on its left 14 columns only."""
    logits = torch.full((num_boxes, num_classes, 28, 28), -10.0)
    logits[:, label, :, :14] = 10.0
    return logits


def test_reference_config_defaults():
    cfg = load_config('centermask/centermask_v2-39_fpn_ms-3x_coco.py').model
    assert cfg.test_cfg.rcnn.postprocess == 'detectron2'
    assert cfg.test_cfg.rpn.min_bbox_size == -1 and cfg.train_cfg.rpn_proposal.min_bbox_size == -1


def test_box_half_outside_is_clipped_and_its_mask_pasted_into_the_clipped_box():
    head = roi_head('detectron2')
    # resized image 200x240 (h, w) from an original of 100x120: scale factor 2
    meta = dict(img_shape=(200, 240), ori_shape=(100, 120), scale_factor=(2.0, 2.0))
    results = InstanceData(bboxes=torch.tensor([[200., 40., 280., 120.]]),  # original coords: x 100..140 (w=120)
                           scores=torch.tensor([0.9]), labels=torch.tensor([0]), mask_scores=torch.tensor([0.8]))
    out = head.paste_masks((half_mask_logits(1), ), [results], [meta], rescale=True)[0]
    assert out.bboxes.tolist() == [[100., 20., 120., 60.]]
    assert out.masks.shape == (1, 100, 120)
    # the left half of the clipped box (x 100..110) is foreground; pasted into the unclipped box (x 100..140) the
    # left half would have covered all of x 100..120
    expected = torch.zeros(100, 120, dtype=torch.bool)
    expected[20:60, 100:110] = True
    assert torch.equal(out.masks[0], expected)
    assert out.scores.tolist() == pytest.approx([0.9]) and out.mask_scores.tolist() == pytest.approx([0.8])


def test_without_the_switch_boxes_stay_unclipped_as_mmdet():
    """postprocess='mmdet' gives exactly mmdet's FCNMaskHead output (boxes partly outside included)."""
    head = roi_head('mmdet')
    meta = dict(img_shape=(200, 240), ori_shape=(100, 120), scale_factor=(2.0, 2.0))
    boxes = torch.tensor([[200., 40., 280., 120.], [10., 10., 100., 150.], [-30., -20., 50., 60.]])
    labels = torch.tensor([0, 3, 5])
    results = InstanceData(bboxes=boxes.clone(), scores=torch.tensor([0.9, 0.5, 0.3]), labels=labels,
                           mask_scores=torch.tensor([0.8, 0.4, 0.2]))
    logits = torch.randn(3, 80, 28, 28)
    out = head.paste_masks((logits, ), [results.clone()], [meta], rescale=True)[0]

    mmdet_head = FCNMaskHead(num_convs=0, in_channels=8, num_classes=80)
    expected = mmdet_head.predict_by_feat((logits, ), [results.clone()], [meta],
                                          ConfigDict(mask_thr_binary=0.5), rescale=True)[0]
    assert torch.equal(out.bboxes, boxes / 2) and torch.equal(out.bboxes, expected.bboxes)
    assert torch.equal(out.masks, expected.masks)
    assert torch.equal(out.mask_scores, results.mask_scores)


def outside_case():
    """The crash of the findings: an image of 250x330 padded to 256x352, a box at x 350..385 from a location in the
    padding, next to a normal box."""
    meta = dict(img_shape=(250, 330), ori_shape=(250, 330), scale_factor=(1.0, 1.0), pad_shape=(256, 352),
                batch_input_shape=(256, 352))
    results = InstanceData(bboxes=torch.tensor([[350., 100., 385., 140.], [20., 30., 90., 120.]]),
                           scores=torch.tensor([0.7, 0.6]), labels=torch.tensor([2, 1]))
    return meta, results


def test_mmdet_paste_crashes_on_a_box_outside_the_image():
    """The failure this guards against (so the tests below exercise it)."""
    meta, results = outside_case()
    mmdet_head = FCNMaskHead(num_convs=0, in_channels=8, num_classes=80)
    with pytest.raises(RuntimeError, match='upper bound and lower bound inconsistent'):
        mmdet_head.predict_by_feat((torch.randn(2, 80, 28, 28), ), [results], [meta],
                                   ConfigDict(mask_thr_binary=0.5), rescale=True)


@pytest.mark.parametrize('postprocess', ['detectron2', 'mmdet'])
def test_box_entirely_outside_is_dropped_in_detector_predict(postprocess):
    cfg = model_cfg('centermask/centermask_v2-39_fpn_ms-3x_coco.py')
    cfg.backbone.init_cfg = None
    cfg.test_cfg.rcnn.postprocess = postprocess
    model = MODELS.build(cfg).eval()
    meta, results = outside_case()
    model.bbox_head.predict_by_feat = lambda *args, **kwargs: [results.clone()]  # the FCOS detections
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 256, 352), [DetDataSample(metainfo=meta)])[0].pred_instances
    assert len(out) == 1
    assert out.bboxes.tolist() == [[20., 30., 90., 120.]] and out.labels.tolist() == [1]
    assert out.masks.shape == (1, 250, 330) and out.mask_scores.shape == (1, )


def fcos_outputs(head, boxes_ltrb, img=64):
    """Hand-made FCOS maps for a ``img``x``img`` input: all classes off except, at level 0, location i of
    ``boxes_ltrb`` ((loc, label, (l, t, r, b)) in pixels) with a confident class ``label``."""
    sizes = [(img // s, img // s) for s in head.strides]
    cls = [torch.full((head.num_classes, h, w), -10.0) for h, w in sizes]
    reg = [torch.ones(4, h, w) for h, w in sizes]
    ctr = [torch.zeros(1, h, w) for h, w in sizes]
    w0 = sizes[0][1]
    for loc, label, ltrb in boxes_ltrb:
        y, x = divmod(loc, w0)
        cls[0][label, y, x] = 5.0
        reg[0][:, y, x] = torch.tensor(ltrb, dtype=torch.float)
    priors = head.prior_generator.grid_priors(sizes, dtype=torch.float, device='cpu')
    return cls, reg, ctr, priors


@pytest.mark.parametrize('min_bbox_size,expected_widths', [(-1, [0.0, 8.0]), (0, [8.0])])
def test_zero_size_fcos_box_survives_nms_and_is_dropped_at_the_end(min_bbox_size, expected_widths):
    cfg = load_config(LITE).model
    head = MODELS.build(dict(cfg.bbox_head, num_classes=cfg.num_classes, test_cfg=cfg.test_cfg.rpn)).eval()
    test_cfg = ConfigDict(copy.deepcopy(cfg.test_cfg.rpn), min_bbox_size=min_bbox_size)
    # location 9 (x=12, y=12): l = r = 0, a zero-width box; location 27: an 8x8 box
    cls, reg, ctr, priors = fcos_outputs(head, [(9, 1, (0., 4., 0., 4.)), (27, 2, (4., 4., 4., 4.))])
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0))
    dets = head._predict_by_feat_single(cls, reg, ctr, priors, meta, test_cfg)
    widths = sorted((dets.bboxes[:, 2] - dets.bboxes[:, 0]).tolist())
    assert widths == expected_widths

    dets.mask_scores = dets.scores.clone()
    out = roi_head('detectron2').paste_masks((half_mask_logits(len(dets)), ), [dets], [meta], rescale=True)[0]
    assert len(out) == 1 and (out.bboxes[:, 2] - out.bboxes[:, 0]).tolist() == [8.0]


def test_invalid_postprocess_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"one of \('detectron2', 'mmdet'\)"):
        roi_head('d2')


@pytest.mark.parametrize('postprocess', ['detectron2', 'mmdet'])
@pytest.mark.parametrize('rescale', [True, False])
def test_batch_paste_equals_pasting_each_image_alone(postprocess, rescale):
    """All images' boxes are finished and pasted at once (per-box output sizes and scale factors): the same
    detections and masks as each image alone, including an image without detections and boxes outside."""
    head = roi_head(postprocess)
    gen = torch.Generator().manual_seed(0)
    metas = [dict(img_shape=(200, 240), ori_shape=(100, 120), scale_factor=(2.0, 2.0)),
             dict(img_shape=(150, 150), ori_shape=(100, 100), scale_factor=(1.5, 1.5)),
             dict(img_shape=(128, 96), ori_shape=(256, 190), scale_factor=(0.505, 0.5)),
             dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0))]
    results_list, logits = [], []
    for meta, n in zip(metas, [6, 0, 9, 4]):
        h, w = meta['img_shape']
        corner = torch.rand(n, 2, generator=gen) * torch.tensor([w * 1.2, h * 1.2]) - torch.tensor([w, h]) * 0.1
        boxes = torch.cat([corner, corner + torch.rand(n, 2, generator=gen) * torch.tensor([w / 2, h / 2])], 1)
        results_list.append(InstanceData(bboxes=boxes, scores=torch.rand(n, generator=gen),
                                         labels=torch.randint(0, 80, (n, ), generator=gen),
                                         mask_scores=torch.rand(n, generator=gen),
                                         names=[f'{len(results_list)}-{k}' for k in range(n)]))  # a list field
        logits.append(torch.randn(n, 80, 28, 28, generator=gen))
    batch = head.paste_masks(tuple(logits), [r.clone() for r in results_list], metas, rescale=rescale)
    for i, (meta, results, preds) in enumerate(zip(metas, results_list, logits)):
        alone = head.paste_masks((preds, ), [results.clone()], [meta], rescale=rescale)[0]
        assert len(batch[i]) == len(alone) and set(batch[i].keys()) == set(alone.keys()), i
        for key in alone.keys():
            if key == 'names':
                assert batch[i].names == alone.names and len(alone.names) == len(alone), i
            else:
                assert torch.equal(batch[i].get(key), alone.get(key)), (i, key)
        out_h, out_w = (meta['ori_shape'] if rescale else meta['img_shape'])
        assert batch[i].masks.shape[1:] == (out_h, out_w)
    assert len(batch[1]) == 0 and sum(len(r) for r in batch) > 10


@pytest.mark.parametrize('postprocess', ['detectron2', 'mmdet'])
def test_dropped_boxes_take_their_masks_with_them(postprocess):
    """A box outside the output image is dropped with its mask logits: the others are pasted from their own rows
    and classes, as if the dropped box had never been there."""
    head = roi_head(postprocess)
    meta = dict(img_shape=(120, 160), ori_shape=(120, 160), scale_factor=(1.0, 1.0))
    boxes = torch.tensor([[170., 10., 200., 50.], [10., 10., 90., 70.], [-50., -40., -10., -5.],
                          [40., 30., 150., 110.]])
    results = InstanceData(bboxes=boxes, scores=torch.tensor([0.9, 0.8, 0.7, 0.6]), labels=torch.tensor([1, 3, 3, 5]),
                           mask_scores=torch.tensor([0.5, 0.4, 0.3, 0.2]))
    logits = torch.randn(4, 80, 28, 28, generator=torch.Generator().manual_seed(0))
    out = head.paste_masks((logits, ), [results.clone()], [meta], rescale=True)[0]
    kept = [1, 3]
    alone = head.paste_masks((logits[kept], ), [results[kept]], [meta], rescale=True)[0]
    assert out.labels.tolist() == [3, 5] and out.masks.any(dim=(1, 2)).all()
    for key in alone.keys():
        assert torch.equal(out.get(key), alone.get(key)), key


@pytest.mark.parametrize('batched', [False, True])
def test_soft_masks_are_mmdets_uint8_paste_of_the_kept_boxes(batched):
    """``mask_thr_binary < 0`` (mmdet's debugging output): uint8 masks (probability * 255) from mmdet's own paste,
    of the boxes that overlap the image, rescaled (and clipped with postprocess='detectron2')."""
    head = roi_head('detectron2')
    head.test_cfg.mask_thr_binary = -1
    meta = dict(img_shape=(200, 240), ori_shape=(100, 120), scale_factor=(2.0, 2.0))
    boxes = torch.tensor([[20., 40., 120., 160.], [300., 10., 340., 60.], [200., 40., 280., 120.]])  # 2nd: outside
    results = InstanceData(bboxes=boxes, scores=torch.tensor([0.9, 0.8, 0.7]), labels=torch.tensor([2, 4, 6]),
                           mask_scores=torch.tensor([0.5, 0.4, 0.3]))
    logits = torch.randn(3, 80, 28, 28, generator=torch.Generator().manual_seed(0))
    given = logits if batched else (logits, )
    out = head.paste_masks(given, [results.clone()], [meta], rescale=True)[0]

    kept = InstanceData(bboxes=torch.tensor([[10., 20., 60., 80.], [100., 20., 120., 60.]]),  # rescaled, clipped
                        scores=torch.tensor([0.9, 0.7]), labels=torch.tensor([2, 6]),
                        mask_scores=torch.tensor([0.5, 0.3]))
    mmdet_head = FCNMaskHead(num_convs=0, in_channels=8, num_classes=80)
    expected = mmdet_head.predict_by_feat((logits[[0, 2]], ), [kept], [dict(meta, scale_factor=(1.0, 1.0))],
                                          ConfigDict(mask_thr_binary=-1), rescale=True)[0]
    assert out.masks.dtype == torch.uint8 and out.masks.shape == (2, 100, 120) and out.masks.max() > 128
    assert torch.equal(out.bboxes, kept.bboxes) and torch.equal(out.labels, kept.labels)
    assert torch.equal(out.masks, expected.masks)
