"""The embedded default dataset: small deterministic COCO-format instance segmentation of coloured shapes.

Generated on first use (no download) by :func:`generate_toy_shapes`; :class:`ToyShapesDataset` is mmdet's
``CocoDataset`` that generates its files when they are missing. Images hold 2-5 shapes of three classes
(rectangle, ellipse, triangle) on a noisy background, with sizes spread from ~10 px to ~85 % of the image side so
that every FPN level gets objects, overlapping and touching each other; masks are the *visible* part of each shape
(occlusion by later shapes removed), written as COCO polygons.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List

import cv2
import numpy as np
from mmdet.registry import DATASETS

from .coco import CenterMaskCocoDataset

TOY_CLASSES = ('rectangle', 'ellipse', 'triangle')
TOY_PALETTE = [(220, 20, 60), (0, 160, 80), (30, 80, 230)]
GENERATOR_VERSION = 1


def _shape_mask(rng: np.random.RandomState, cls: int, size: int, img_size: int, anchor=None) -> np.ndarray:
    """Binary mask of one shape of class ``cls`` with bounding size about ``size`` px."""
    mask = np.zeros((img_size, img_size), np.uint8)
    w = max(6, int(size * rng.uniform(0.7, 1.0)))
    h = max(6, int(size * rng.uniform(0.7, 1.0)))
    if anchor is None:
        x0 = rng.randint(0, max(1, img_size - w))
        y0 = rng.randint(0, max(1, img_size - h))
    else:  # touch / overlap a previous shape: start near its box corner
        x0 = int(np.clip(anchor[0] + rng.randint(-w // 3, w // 3 + 1), 0, max(0, img_size - w)))
        y0 = int(np.clip(anchor[1] + rng.randint(-h // 3, h // 3 + 1), 0, max(0, img_size - h)))
    if cls == 0:
        cv2.rectangle(mask, (x0, y0), (x0 + w - 1, y0 + h - 1), 1, thickness=-1)
    elif cls == 1:
        cv2.ellipse(mask, (x0 + w // 2, y0 + h // 2), (w // 2, h // 2), 0, 0, 360, 1, thickness=-1)
    else:
        pts = np.array([[x0 + rng.randint(0, w), y0], [x0, y0 + h - 1], [x0 + w - 1, y0 + h - 1]], np.int32)
        cv2.fillPoly(mask, [pts], 1)
    return mask


def _polygons(mask: np.ndarray) -> List[List[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def _make_image(rng, img_size, image_id, ann_id_start):
    img = (rng.randint(90, 140) + rng.randn(img_size, img_size, 3) * 12).clip(0, 255).astype(np.uint8)
    num = rng.randint(2, 6)
    # log-uniform sizes from ~10 px to 85 % of the side: small, medium and large objects in every split
    sizes = np.exp(rng.uniform(np.log(10), np.log(0.85 * img_size), size=num)).astype(int)
    classes = rng.randint(0, len(TOY_CLASSES), size=num)
    masks, full_areas, anchor = [], [], None
    for cls, size in zip(classes, sizes):
        mask = _shape_mask(rng, int(cls), int(size), img_size, anchor if rng.rand() < 0.5 else None)
        for prev in masks:  # the new shape occludes what it covers
            prev[mask > 0] = 0
        masks.append(mask)
        full_areas.append(float(mask.sum()))
        ys, xs = np.nonzero(mask)
        anchor = (xs.max(), ys.min())
    anns = []
    for cls, mask in zip(classes, masks):
        color = np.array(TOY_PALETTE[cls]) * rng.uniform(0.6, 1.0) + rng.randint(-30, 30, size=3)
        img[mask > 0] = np.clip(color, 0, 255).astype(np.uint8)[::-1]  # BGR
    for cls, mask, full_area in zip(classes, masks, full_areas):
        polys = _polygons(mask)
        area = float(mask.sum())
        if not polys or area < 48 or area < 0.25 * full_area:  # mostly hidden: not annotated (still drawn)
            continue
        ys, xs = np.nonzero(mask)
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        anns.append(dict(id=ann_id_start + len(anns), image_id=image_id, category_id=int(cls) + 1,
                         segmentation=polys, area=area, bbox=[float(x1), float(y1), float(x2 - x1),
                                                              float(y2 - y1)], iscrowd=0))
    return img, anns


def generate_toy_shapes(root: str, num_train: int = 64, num_val: int = 16, img_size: int = 256,
                        seed: int = 0) -> Dict[str, str]:
    """Write ``root/{train,val}/*.png`` and ``root/annotations/instances_{train,val}.json`` (COCO format).

    Deterministic for given arguments; a no-op when ``root`` already holds the same dataset (checked through
    ``root/toy_shapes.json``). Written to a temporary folder and moved into place, so concurrent processes never
    see half a dataset. Returns the annotation file of each split.
    """
    params = dict(version=GENERATOR_VERSION, num_train=num_train, num_val=num_val, img_size=img_size, seed=seed)
    fingerprint = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()
    ann_files = {split: osp.join(root, 'annotations', f'instances_{split}.json') for split in ('train', 'val')}
    manifest = osp.join(root, 'toy_shapes.json')
    if osp.exists(manifest):
        with open(manifest) as f:
            if json.load(f).get('fingerprint') == fingerprint and all(map(osp.exists, ann_files.values())):
                return ann_files
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.toy_shapes.', dir=parent)
    try:
        os.makedirs(osp.join(tmp, 'annotations'))
        categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(TOY_CLASSES)]
        image_id, ann_id = 1, 1
        for split, count, split_seed in (('train', num_train, seed), ('val', num_val, seed + 10_000)):
            rng = np.random.RandomState(split_seed)
            os.makedirs(osp.join(tmp, split))
            images, annotations = [], []
            for i in range(count):
                img, anns = _make_image(rng, img_size, image_id, ann_id)
                file_name = f'{split}_{i:05d}.png'
                cv2.imwrite(osp.join(tmp, split, file_name), img)
                images.append(dict(id=image_id, file_name=file_name, height=img_size, width=img_size))
                annotations += anns
                image_id, ann_id = image_id + 1, ann_id + len(anns)
            with open(osp.join(tmp, 'annotations', f'instances_{split}.json'), 'w') as f:
                json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        with open(osp.join(tmp, 'toy_shapes.json'), 'w') as f:
            json.dump(dict(params, fingerprint=fingerprint), f)
        if osp.exists(root):
            shutil.rmtree(root)
        try:
            os.replace(tmp, root)
        except OSError:  # another process published the same dataset first
            if not osp.exists(manifest):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ann_files


@DATASETS.register_module()
class ToyShapesDataset(CenterMaskCocoDataset):
    """:class:`CenterMaskCocoDataset` (mmdet's ``CocoDataset``) over the generated toy shapes; generates them
    under ``data_root`` when missing.

    ``generator`` holds the keyword arguments of :func:`generate_toy_shapes` (sizes, seed).
    """

    METAINFO = dict(classes=TOY_CLASSES, palette=TOY_PALETTE)

    def __init__(self, *args, generator: dict = None, **kwargs):
        data_root = kwargs.get('data_root')
        if not data_root:
            raise ValueError('ToyShapesDataset needs data_root (where the toy dataset is generated)')
        generate_toy_shapes(data_root, **(generator or {}))
        super().__init__(*args, **kwargs)
