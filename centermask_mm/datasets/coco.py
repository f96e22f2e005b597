"""COCO with detectron2's choice of training images (findings D12) and annotations made safe to load."""
from typing import List, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS


@DATASETS.register_module()
class CenterMaskCocoDataset(CocoDataset):
    """mmdet's :class:`CocoDataset` plus ``filter_cfg.filter_crowd_only``: when true, training images whose
    annotations are all crowd (``iscrowd=1``, mmdet's ``ignore_flag``) are dropped, as detectron2's
    ``filter_images_with_only_crowd_annotations`` does for centermask2 (mmdet keeps them: they train FCOS on
    negatives only). The CenterMask COCO configs set it with ``min_size=0`` (detectron2 drops no small image).
    GT boxes need no extra step to match detectron2's clipping: mmdet's ``Resize`` clips them to the image
    (``clip_object_border=True``).

    ``parse_data_info`` also gives every kept instance a ``mask`` entry: mmdet drops broken boxes (zero area,
    inverted, outside the image) but keeps an instance whose ``segmentation`` is empty or missing without a
    ``mask`` key, on which ``LoadAnnotations(with_mask=True)`` raises ``KeyError: 'mask'``. Such an instance gets
    ``mask=[]``, which ``LoadAnnotations`` treats as it treats polygons with fewer than 3 points: the instance is
    ignored (``ignore_flag=1``) and carries an empty placeholder mask."""

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        data_info = super().parse_data_info(raw_data_info)
        for instance in data_info['instances']:
            instance.setdefault('mask', [])
        return data_info

    def filter_data(self) -> List[dict]:
        data_list = super().filter_data()
        if self.test_mode or not (self.filter_cfg or {}).get('filter_crowd_only', False):
            return data_list
        return [info for info in data_list if any(not inst['ignore_flag'] for inst in info['instances'])]
