import json
import os

import cv2
import numpy as np
from pycocotools.coco import COCO

from centermask_mm.datasets import TOY_CLASSES, generate_toy_shapes


def test_generation_is_deterministic_and_idempotent(tmp_path):
    a = generate_toy_shapes(str(tmp_path / 'a'), num_train=6, num_val=2, img_size=128, seed=3)
    b = generate_toy_shapes(str(tmp_path / 'b'), num_train=6, num_val=2, img_size=128, seed=3)
    assert open(a['train']).read() == open(b['train']).read()
    mtime = os.path.getmtime(a['train'])
    generate_toy_shapes(str(tmp_path / 'a'), num_train=6, num_val=2, img_size=128, seed=3)
    assert os.path.getmtime(a['train']) == mtime  # second call: no rewrite
    generate_toy_shapes(str(tmp_path / 'a'), num_train=7, num_val=2, img_size=128, seed=3)
    assert len(json.load(open(a['train']))['images']) == 7  # other parameters: regenerated


def test_annotations_are_valid_coco_with_sizes_for_every_level(tmp_path):
    files = generate_toy_shapes(str(tmp_path / 'toy'), num_train=40, num_val=8, img_size=256)
    coco = COCO(files['train'])
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(TOY_CLASSES)
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 80
    sides = np.array([max(a['bbox'][2:]) for a in anns])
    # FCOS regress ranges (-1, 64], (64, 128], (128, 256]: P3, P4 and P5 all receive objects
    assert (sides <= 64).sum() > 10 and ((sides > 64) & (sides <= 128)).sum() > 5 and (sides > 128).sum() > 3
    assert sorted({a['category_id'] for a in anns}) == [1, 2, 3]  # every class, ids of the categories
    for ann in anns:
        mask = coco.annToMask(ann)
        assert mask.sum() > 0 and abs(mask.sum() - ann['area']) / ann['area'] < 0.35
        # the box is the tight pixel box of the visible shape: the polygons run through its border pixels
        xs = [v for poly in ann['segmentation'] for v in poly[0::2]]
        ys = [v for poly in ann['segmentation'] for v in poly[1::2]]
        x, y, w, h = ann['bbox']
        assert (x, y, x + w, y + h) == (min(xs), min(ys), max(xs) + 1, max(ys) + 1)
    # the shapes are drawn in their palette colour (RGB) into a BGR image: rectangles red, triangles blue
    for cat, channel, other in ((1, 2, 0), (3, 0, 2)):
        for ann in [a for a in anns if a['category_id'] == cat][:5]:
            img = cv2.imread(os.path.join(os.path.dirname(files['train']), '..', 'train',
                                          coco.loadImgs(ann['image_id'])[0]['file_name']))
            pixels = img[coco.annToMask(ann) > 0].astype(float).mean(0)
            assert pixels[channel] > pixels[other] + 30, (cat, pixels)
    # overlapping or touching instances exist (boxes intersect within an image)
    touching = 0
    for img_id in coco.getImgIds():
        boxes = [a['bbox'] for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id))]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                (x1, y1, w1, h1), (x2, y2, w2, h2) = boxes[i], boxes[j]
                touching += x1 <= x2 + w2 and x2 <= x1 + w1 and y1 <= y2 + h2 and y2 <= y1 + h1
    assert touching > 10
