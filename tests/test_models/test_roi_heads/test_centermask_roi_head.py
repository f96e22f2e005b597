import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks, PolygonMasks
from mmengine.structures import InstanceData

from tests.helpers import load_config


def roi_head_from_config(config='_base_/models/centermask-lite_vovnet-fpn.py'):
    cfg = load_config(config).model
    head = dict(cfg.roi_head)
    head.update(train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn)
    return MODELS.build(head), cfg


def test_maskiou_targets_on_hand_made_masks():
    head, cfg = roi_head_from_config()
    gt = np.zeros((1, 64, 64), np.uint8)
    gt[0, 16:48, 16:48] = 1  # a 32x32 square, area 1024
    gt_instances = InstanceData(masks=BitmapMasks(gt, 64, 64), labels=torch.tensor([0]))
    proposals = torch.tensor([[16., 16., 48., 48.],   # exactly the gt box
                              [32., 16., 64., 48.]])  # right half of the gt (area ratio 0.5)
    sampling = SimpleNamespace(pos_priors=proposals, pos_assigned_gt_inds=torch.tensor([0, 0]))
    mask_targets = torch.zeros(2, 28, 28)
    mask_targets[0] = 1            # the gt fills the first box
    mask_targets[1, :, :14] = 1    # and the left half of the second
    logits = torch.full((2, 28, 28), -3.0)
    logits[0, :, :14] = 3.0        # predicts the left half of box 1: |pred|=392, overlap=392, full=784
    logits[1] = 3.0                # predicts all of box 2: |pred|=784, overlap=392, full=392/0.5=784
    targets = head.mask_iou_head.get_targets([sampling], [gt_instances], logits, mask_targets, cfg.train_cfg.rcnn)
    # IoU = overlap / (|pred| + full - overlap)
    assert targets.tolist() == pytest.approx([392 / (392 + 784 - 392), 392 / (784 + 784 - 392)], rel=1e-5)


def test_maskiou_threshold_is_on_logits_at_zero():
    """The reference binarises logits > 0 (probability > 0.5); mmdet compares logits with mask_thr_binary."""
    _, cfg = roi_head_from_config()
    assert cfg.train_cfg.rcnn.mask_thr_binary == 0.0


def known_outputs(head, mask_logit=None, mask_iou=None):
    """Make the heads predict known values whatever their input: the mask logits of class c are
    ``mask_logit[c]`` at every pixel and the MaskIoU prediction of class c is ``mask_iou[c]`` (zero weights of the
    last layers, the values as their biases)."""
    with torch.no_grad():
        if mask_logit is not None:
            head.mask_head.conv_logits.weight.zero_()
            head.mask_head.conv_logits.bias.copy_(mask_logit)
        if mask_iou is not None:
            head.mask_iou_head.fc_mask_iou.weight.zero_()
            head.mask_iou_head.fc_mask_iou.bias.copy_(mask_iou)


def test_mask_scores_are_box_scores_times_the_predicted_iou_of_the_predicted_class():
    """§6 inference: ``mask_score = score * maskiou[predicted class]``, with the MaskIoU head fed the predicted
    class's mask; box scores stay as they are. Two images, so the scores are also split back per image."""
    head, _ = roi_head_from_config()
    head.eval()
    mask_logit = torch.linspace(-4, 4, 80)       # the mask logits of class c
    mask_iou = (torch.arange(80) + 1) / 100.     # the predicted IoU of class c: (c + 1) / 100
    known_outputs(head, mask_logit, mask_iou)
    fed = []
    head.mask_iou_head.register_forward_pre_hook(lambda m, args: fed.append(args[1].clone()))
    feats = tuple(torch.rand(2, 128, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128))
    results = [InstanceData(bboxes=torch.tensor([[10., 10., 60., 70.], [20., 30., 120., 110.]]),
                            scores=torch.tensor([0.9, 0.4]), labels=torch.tensor([3, 7])),
               InstanceData(bboxes=torch.tensor([[5., 5., 50., 40.], [0., 0., 90., 100.], [30., 20., 60., 50.]]),
                            scores=torch.tensor([0.5, 0.8, 0.6]), labels=torch.tensor([7, 0, 79]))]
    metas = [dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1.0, 1.0)),
             dict(img_shape=(100, 120), ori_shape=(100, 120), scale_factor=(1.0, 1.0))]
    with torch.no_grad():
        out = head.predict(feats, [r.clone() for r in results], [SimpleNamespace(metainfo=m) for m in metas],
                           rescale=True)
    # by hand: score * (label + 1) / 100
    assert out[0].mask_scores.tolist() == pytest.approx([0.9 * 0.04, 0.4 * 0.08], rel=1e-5)
    assert out[1].mask_scores.tolist() == pytest.approx([0.5 * 0.08, 0.8 * 0.01, 0.6 * 0.80], rel=1e-5)
    for res, expected in zip(out, results):
        assert torch.equal(res.scores, expected.scores)  # box scores untouched
        assert res.masks.dtype == torch.bool and res.masks.shape[0] == len(expected)
    # the MaskIoU head saw each box's predicted-class logits (it applies the sigmoid itself)
    labels = torch.tensor([3, 7, 7, 0, 79])
    assert len(fed) == 1 and fed[0].shape == (5, 28, 28)
    assert torch.equal(fed[0], mask_logit[labels][:, None, None].expand(5, 28, 28))


def test_predict_with_no_boxes():
    head, _ = roi_head_from_config()
    head.eval()
    feats = tuple(torch.rand(1, 128, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128))
    empty = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long))
    meta = dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1.0, 1.0))
    out = head.predict(feats, [empty], [SimpleNamespace(metainfo=meta)], rescale=True)[0]
    assert len(out) == 0 and out.masks.shape[0] == 0 and out.mask_scores.shape == (0, )


def test_bbox_head_is_refused():
    with pytest.raises(ValueError, match='no bbox_head'):
        MODELS.build(dict(type='CenterMaskRoIHead', bbox_head=dict(type='Shared2FCBBoxHead'),
                          mask_roi_extractor=dict(), mask_head=dict()))


def test_mask_branch_pools_unclipped_boxes_and_limits_only_pathological_ones():
    """The reference pools FCOS's unclipped boxes (ref §3.5): a box overshooting the border by a few strides is
    pooled as it is; only inverted boxes and corners beyond one image size past the border are changed."""
    from centermask_mm.models.roi_heads import CenterMaskRoIHead
    metas = [dict(img_shape=(64, 48)), dict(img_shape=(32, 40))]
    rois = torch.tensor([[0., -10., -5., 60., 70.],       # overshoots every border of 48 x 64: unchanged
                         [1., 5., 6., 30., 20.],          # inside: unchanged
                         [0., 30., 40., 10., 20.],        # inverted: x2, y2 raised to x1, y1
                         [1., -1e6, -1e6, 1e6, 1e6]])     # huge: limited to [-w, 2w] x [-h, 2h]
    out = CenterMaskRoIHead.pooling_rois(rois, metas)
    assert torch.equal(out[:2], rois[:2])
    assert out[2].tolist() == [0., 30., 40., 30., 40.]
    assert out[3].tolist() == [1., -40., -32., 80., 64.]


def two_image_training_batch():
    """Two images of different sizes, one GT each (polygons) and one positive RoI each (§4.4 step 5):

    * image 0 (128 x 128): GT square 16..48 of label 2, RoI exactly its box: the 28x28 target is all foreground;
    * image 1 (96 x 128): GT square 64..96 of label 5, RoI x 64..128, y 64..96: the GT fills the left 14 target
      columns and lies wholly inside the RoI (area ratio 1).
    """
    def square(x1, y1, x2, y2, h, w):
        return PolygonMasks([[np.array([x1, y1, x2, y1, x2, y2, x1, y2], dtype=np.float64)]], h, w)

    gts = [InstanceData(masks=square(16, 16, 48, 48, 128, 128), labels=torch.tensor([2])),
           InstanceData(masks=square(64, 64, 96, 96, 96, 128), labels=torch.tensor([5]))]
    sampling = [SimpleNamespace(pos_priors=torch.tensor([[16., 16., 48., 48.]]), pos_gt_labels=torch.tensor([2]),
                                pos_assigned_gt_inds=torch.tensor([0])),
                SimpleNamespace(pos_priors=torch.tensor([[64., 64., 128., 96.]]), pos_gt_labels=torch.tensor([5]),
                                pos_assigned_gt_inds=torch.tensor([0]))]
    metas = [dict(img_shape=(128, 128)), dict(img_shape=(96, 128))]
    feats = tuple(torch.rand(2, 128, 128 // s, 128 // s, requires_grad=True) for s in (8, 16, 32, 64, 128))
    return feats, sampling, gts, metas


def training_head_with_known_outputs():
    """The zoo RoI head in training mode with known outputs: mask logit 2 on every pixel of classes 2 and 5, -2
    elsewhere; predicted IoU 0.7 for class 2, 0.4 for class 5, 0 elsewhere."""
    head, _ = roi_head_from_config()
    head.train()
    logits = torch.full((80, ), -2.0)
    logits[[2, 5]] = 2.0
    ious = torch.zeros(80)
    ious[2], ious[5] = 0.7, 0.4
    known_outputs(head, logits, ious)
    return head


def test_mask_and_maskiou_losses_by_hand():
    """§4.3 and §6: with known head outputs (logit 2 on every pixel of classes 2 and 5, -2 elsewhere; predicted
    IoU 0.7 for class 2, 0.4 for class 5, 0 elsewhere) the losses follow from the targets alone.

    Both predictions are all foreground (logit > 0), so the MaskIoU targets are 784 / 784 = 1 (RoI 0) and
    392 / (784 + 392 - 392) = 0.5 (RoI 1); loss_mask_iou = 0.5 * mean((0.7 - 1)^2, (0.4 - 0.5)^2).
    loss_mask: mean BCE of logit 2 over 784 + 392 foreground and 392 background pixels.
    """
    head = training_head_with_known_outputs()
    feats, sampling, gts, metas = two_image_training_batch()
    losses = head.mask_loss(feats, sampling, gts, metas)
    assert losses['loss_mask_iou'].item() == pytest.approx(0.5 * ((0.7 - 1) ** 2 + (0.4 - 0.5) ** 2) / 2, rel=1e-5)
    fg, bg = math.log1p(math.exp(-2.0)), math.log1p(math.exp(2.0))  # -log(sigmoid(2)), -log(1 - sigmoid(2))
    assert losses['loss_mask'].item() == pytest.approx((1176 * fg + 392 * bg) / 1568, rel=1e-5)


def test_maskiou_loss_trains_the_mask_head_and_the_features():
    """§6 training input: the MaskIoU head gets the GT class's mask logits *not detached* and the pooled RoI
    features (the mask RoI extractor's output, not detached either), so ``loss_mask_iou`` alone back-propagates
    into the mask head's weights and into the FPN features; only its targets are constants."""
    head, _ = roi_head_from_config()
    head.train()
    with torch.no_grad():
        head.mask_head.conv_logits.bias.fill_(1.0)  # every pixel predicted foreground: MaskIoU targets > 0
    feats, sampling, gts, metas = two_image_training_batch()
    pooled, fed, targets = [], [], []
    head.mask_roi_extractor.register_forward_hook(lambda m, args, out: pooled.append(out))
    head.mask_iou_head.register_forward_pre_hook(lambda m, args: fed.append(args))
    get_targets = head.mask_iou_head.get_targets
    head.mask_iou_head.get_targets = lambda *args, **kwargs: targets.append(get_targets(*args, **kwargs)) or \
        targets[-1]
    loss = head.mask_loss(feats, sampling, gts, metas)['loss_mask_iou']
    assert loss.item() > 0
    assert fed[0][0] is pooled[0]  # the pooled RoI features themselves
    assert targets[0].tolist() == pytest.approx([1.0, 0.5]) and not targets[0].requires_grad
    loss.backward()
    mask_head = head.mask_head
    for name, param in [('convs.0', mask_head.convs[0].conv.weight), ('convs.1', mask_head.convs[1].conv.weight),
                        ('spatial_attention', mask_head.spatial_attention.conv.weight),
                        ('conv_logits', mask_head.conv_logits.weight)]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert head.mask_head.conv_logits.weight.grad[[2, 5]].abs().sum() > 0  # through the GT classes' logits
    assert head.mask_iou_head.fc_mask_iou.weight.grad.abs().sum() > 0
    assert sum(f.grad.abs().sum() for f in feats[:3] if f.grad is not None) > 0  # P3-P5 (§4.2)
    # the features get a gradient through the MaskIoU head's own input too, not only through the mask head
    head.zero_grad()
    for f in feats:
        f.grad = None
    direct = torch.autograd.grad(head.mask_iou_head(pooled[0], fed[0][1].detach())[[0, 1], [2, 5]].sum(), pooled[0])
    assert direct[0].abs().sum() > 0


def test_each_roi_is_pooled_at_the_level_of_its_own_image():
    """§5 through the RoI head: a 40 x 40 RoI is above a quarter of a 64 x 64 image (P4) but below a quarter of
    a 128 x 192 one (P3, clamped), a 100 x 100 RoI above a quarter of 128 x 192 (P4) but not of 256 x 256 (P3)."""
    head, _ = roi_head_from_config()
    head.eval()
    metas = [dict(img_shape=(64, 64)), dict(img_shape=(128, 192)), dict(img_shape=(256, 256))]
    # every value of level i of image b is 10 * (b + 1) + i + 1
    feats = tuple(torch.full((3, 128, 256 // s, 256 // s), 0.).add_(
        torch.tensor([10., 20., 30.])[:, None, None, None] + i + 1) for i, s in enumerate((8, 16, 32, 64, 128)))
    rois = torch.tensor([[0, 0., 0., 40., 40.], [1, 0., 0., 40., 40.], [1, 50., 20., 150., 120.],
                         [2, 50., 20., 150., 120.], [0, 2., 2., 62., 62.]])
    expected = [12., 21., 22., 31., 13.]  # P4 of image 0, P3 of 1, P4 of 1, P3 of 2, P5 of 0 (3,600 > 4,096 / 2)
    with torch.no_grad():
        mask_feats = head._mask_forward(feats, rois, metas)['mask_feats']
    assert mask_feats.mean((1, 2, 3)).tolist() == pytest.approx(expected, rel=1e-6)


def test_loss_gives_each_positive_roi_the_mask_of_its_matched_gt():
    """§4.4 through ``loss``: FCOS's boxes plus the GT boxes, matched at IoU >= 0.5; each positive is trained
    with the mask and class of its own GT. Two GTs in one image (A: square 16..48, label 2; B: square 64..96,
    label 5) and three detections: A's box, B's box and x 64..128 over B (IoU 1024 / 2048 = 0.5).

    With known outputs (logit 2 for classes 2 and 5, predicted IoU 0.7 and 0.4): positives GT A, GT B, A, B (full
    targets, MaskIoU target 1) and the wide box (left half, target 0.5), so
    loss_mask_iou = 0.5 * (2 * 0.3^2 + 2 * 0.6^2 + 0.1^2) / 5 and loss_mask is the BCE of logit 2 on
    4 * 784 + 392 foreground and 392 background pixels."""
    head = training_head_with_known_outputs()
    polygons = [[np.array([16., 16., 48., 16., 48., 48., 16., 48.])],
                [np.array([64., 64., 96., 64., 96., 96., 64., 96.])]]
    sample = DetDataSample(metainfo=dict(img_shape=(128, 128)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[16., 16., 48., 48.], [64., 64., 96., 96.]]),
                                       labels=torch.tensor([2, 5]), masks=PolygonMasks(polygons, 128, 128))
    detections = InstanceData(bboxes=torch.tensor([[16., 16., 48., 48.], [64., 64., 96., 96.], [64., 64., 128., 96.]]),
                              scores=torch.tensor([0.9, 0.8, 0.7]), labels=torch.tensor([2, 5, 5]))
    feats = tuple(torch.rand(1, 128, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128))
    losses = head.loss(feats, [detections], [sample])
    assert losses['loss_mask_iou'].item() == pytest.approx(0.5 * (2 * 0.09 + 2 * 0.36 + 0.01) / 5, rel=1e-5)
    fg, bg = math.log1p(math.exp(-2.0)), math.log1p(math.exp(2.0))
    assert losses['loss_mask'].item() == pytest.approx((3528 * fg + 392 * bg) / 3920, rel=1e-5)
