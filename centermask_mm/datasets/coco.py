"""COCO with detectron2's choice of training images (findings D12)."""
from typing import List

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS


@DATASETS.register_module()
class CenterMaskCocoDataset(CocoDataset):
    """mmdet's :class:`CocoDataset` plus ``filter_cfg.filter_crowd_only``: when true, training images whose
    annotations are all crowd (``iscrowd=1``, mmdet's ``ignore_flag``) are dropped, as detectron2's
    ``filter_images_with_only_crowd_annotations`` does for centermask2 (mmdet keeps them: they train FCOS on
    negatives only). The CenterMask COCO configs set it with ``min_size=0`` (detectron2 drops no small image).
    GT boxes need no extra step to match detectron2's clipping: mmdet's ``Resize`` clips them to the image
    (``clip_object_border=True``)."""

    def filter_data(self) -> List[dict]:
        data_list = super().filter_data()
        if self.test_mode or not (self.filter_cfg or {}).get('filter_crowd_only', False):
            return data_list
        return [info for info in data_list if any(not inst['ignore_flag'] for inst in info['instances'])]
