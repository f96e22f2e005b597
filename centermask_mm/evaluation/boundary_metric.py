"""COCO Boundary AP (Boundary IoU, Cheng et al., CVPR 2021) beside mmdet's box and mask AP.

Boundary AP is COCO mask AP with the matching IoU of a prediction and a ground-truth mask replaced by
``min(mask IoU, boundary IoU)`` (as the Boundary IoU paper evaluates COCO; crowd ground truth keeps
the mask IoU). The boundary of a mask is the mask minus its erosion by ``d`` pixels (3x3 square structuring element,
pixels outside the image counted as background, so a mask cut by the image border has a boundary there), with
``d = max(1, round(dilation_ratio * image diagonal))``; boundary IoU = |B(G) & B(P)| / |B(G) | B(P)|. Mask AP hardly
moves when a mask's edge is off by a pixel or two on a large object; Boundary AP does.

The boundary and the COCO matching come from ``faster-coco-eval`` (``iouType='boundary'``), a maintained COCO
evaluator; box and mask AP stay with pycocotools through mmdet's ``CocoMetric``.
"""
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Sequence, Union

import numpy as np
from faster_coco_eval import COCO as FasterCOCO
from faster_coco_eval import COCOeval_faster
from mmengine.fileio import load
from mmengine.logging import MMLogger
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS

#: the metrics CocoBoundaryMetric accepts: mmdet CocoMetric's four and 'boundary'
VALID_METRICS = ('bbox', 'segm', 'boundary', 'proposal', 'proposal_fast')
#: the Boundary AP figures reported, and their index in the evaluator's ``stats``
BOUNDARY_ITEMS = {'mAP': 0, 'mAP_50': 1, 'mAP_75': 2, 'mAP_s': 3, 'mAP_m': 4, 'mAP_l': 5}
#: COCO AP counts each image's 100 best-scored predictions (pycocotools' summary, hence mmdet's segm_mAP)
COCO_MAX_DETS = 100


def evaluate_boundary(gt_dataset: dict, predictions: List[dict], cat_ids: Sequence[int], img_ids: Sequence[int],
                      iou_thrs: Union[float, Sequence[float]], dilation_ratio: float = 0.02) -> COCOeval_faster:
    """COCO evaluation with boundary matching of the mask ``predictions`` against ``gt_dataset``.

    Args:
        gt_dataset: a COCO ground-truth dict (images with height and width, categories, annotations with polygon or
            RLE segmentation); not modified.
        predictions: COCO results, each with ``image_id``, ``category_id``, ``score`` and an RLE ``segmentation``
            (a ``bbox`` key makes COCO use the box area for the area ranges: leave it out). Modified in place.
        cat_ids, img_ids: the categories and images evaluated.
        iou_thrs: the matching thresholds (COCO: 0.50:0.05:0.95).
        dilation_ratio: boundary width as a fraction of the image diagonal.

    Returns:
        The evaluator after ``evaluate``, ``accumulate`` and ``summarize``: ``stats[BOUNDARY_ITEMS[name]]`` is each
        Boundary AP figure, ``ious[(img_id, cat_id)]`` the matching IoU of each (prediction, ground truth) pair.
    """
    coco_gt = FasterCOCO(gt_dataset, use_deepcopy=True)  # the evaluator stores RLEs in the annotations
    coco_dt = coco_gt.loadRes(predictions)
    coco_eval = COCOeval_faster(coco_gt, coco_dt, iouType='boundary', boundary_dilation_ratio=dilation_ratio,
                                print_function=MMLogger.get_current_instance().info)
    coco_eval.params.catIds = list(cat_ids)
    coco_eval.params.imgIds = list(img_ids)
    coco_eval.params.maxDets = [COCO_MAX_DETS]
    coco_eval.params.iouThrs = np.atleast_1d(np.asarray(iou_thrs, dtype=np.float64))
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval


@METRICS.register_module()
class CocoBoundaryMetric(CocoMetric):
    """mmdet's ``CocoMetric`` that also computes COCO Boundary AP: ``metric=['bbox', 'segm', 'boundary']``.

    A subclass because mmdet's ``CocoMetric`` refuses metric names other than bbox, segm, proposal and
    proposal_fast, and pycocotools has no boundary IoU. 'bbox', 'segm' and the proposal metrics are mmdet's,
    unchanged (pycocotools); 'boundary' is computed after them on the same mask predictions by
    :func:`evaluate_boundary` and logged as ``coco/boundary_mAP``, ``coco/boundary_mAP_50``... (the AP figures of
    ``metric_items``, or all six). ``classwise`` applies to bbox and segm only.

    Args:
        ann_file, metric, **kwargs: as mmdet's ``CocoMetric``; ``metric`` may also name 'boundary'.
        dilation_ratio (float): boundary width as a fraction of the image diagonal (0.02, as the Boundary IoU
            paper's COCO evaluation).
    """

    def __init__(self, ann_file=None, metric: Union[str, List[str]] = 'bbox', *, dilation_ratio: float = 0.02,
                 **kwargs) -> None:
        metrics = metric if isinstance(metric, list) else [metric]
        for name in metrics:
            if name not in VALID_METRICS:
                raise KeyError(f'metric should be one of {", ".join(VALID_METRICS)}; got {name!r}')
        super().__init__(ann_file=ann_file, metric=[m for m in metrics if m != 'boundary'], **kwargs)
        self.with_boundary = 'boundary' in metrics  # self.metrics holds the others, for CocoMetric
        self.dilation_ratio = dilation_ratio

    def compute_metrics(self, results: list) -> Dict[str, float]:
        eval_results = super().compute_metrics(results)  # also loads the ground truth and the category ids
        if not self.with_boundary or self.format_only:
            return eval_results
        logger = MMLogger.get_current_instance()
        logger.info('Evaluating boundary...')
        preds = [pred for _, pred in results]
        if 'masks' not in preds[0]:
            raise KeyError('boundary is not in results: the predictions have no masks')
        with tempfile.TemporaryDirectory() as tmp_dir:
            predictions = load(self.results2json(preds, osp.join(tmp_dir, 'results'))['segm'])
        if not predictions:
            logger.error('The testing results of the whole dataset is empty.')
            return eval_results
        for prediction in predictions:
            prediction.pop('bbox')  # area ranges from the mask area, as mmdet's segm
        coco_eval = evaluate_boundary(self._coco_api.dataset, predictions, self.cat_ids, self.img_ids,
                                      self.iou_thrs, self.dilation_ratio)
        items = [item for item in (self.metric_items or BOUNDARY_ITEMS) if item in BOUNDARY_ITEMS]
        boundary_results = OrderedDict(
            (f'boundary_{item}', float(f'{round(coco_eval.stats[BOUNDARY_ITEMS[item]], 3)}')) for item in items)
        ap = coco_eval.stats[:6]
        logger.info('boundary_mAP_copypaste: ' + ' '.join(f'{v:.3f}' for v in ap))
        eval_results.update(boundary_results)
        return eval_results
