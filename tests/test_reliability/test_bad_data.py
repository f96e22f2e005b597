"""Issue 11 "Reliability", bad data: CenterMask-Lite trains through mmengine's Runner on a COCO-format dataset full of
broken annotations and unusual images without crashing and with finite losses; an unreadable image file fails
naming the file, or is skipped with a warning naming the file when the loader is asked to (``skip_broken``)."""
import json
import math
import textwrap
import warnings

import cv2
import numpy as np
import pytest
from mmdet.registry import DATASETS, TRANSFORMS
from mmengine.config import Config
from mmengine.runner import Runner

from centermask_mm.datasets import BrokenImageError
from tests.helpers import REPO_ROOT

CLASSES = ('thing', 'other')


def _image(h, w, seed=0):
    img = (np.random.RandomState(seed).rand(h, w, 3) * 60 + 100).astype(np.uint8)
    img[h // 4:h // 2, w // 4:w // 2] = (30, 200, 60)
    return img


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def write_bad_coco(root):
    """A small COCO-format dataset in which every image carries one kind of bad data; the last image file is
    truncated. Returns the ``images`` entries, in file order."""
    (root / 'img').mkdir(parents=True)
    images, anns = [], []

    def add_image(name, h, w, img):
        assert cv2.imwrite(str(root / 'img' / name), img)
        images.append(dict(id=len(images) + 1, file_name=name, height=h, width=w))
        return len(images)

    def ann(image_id, bbox, segmentation, area=None, iscrowd=0, category_id=1):
        area = float(bbox[2] * bbox[3]) if area is None else area
        anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=category_id, area=area, iscrowd=iscrowd,
                         bbox=[float(v) for v in bbox], segmentation=segmentation))

    def good(image_id, x, y, w, h, category_id=1):
        ann(image_id, [x, y, w, h], [[x, y, x + w, y, x + w, y + h, x, y + h]], category_id=category_id)

    # broken boxes next to a good object
    i = add_image('boxes.png', 64, 80, _image(64, 80))
    good(i, 10, 10, 30, 20)
    ann(i, [20, 20, 0, 15], [[20, 20, 20, 35, 20, 20]], area=0.)  # zero width, zero area
    ann(i, [30, 30, 0, 0], [[30, 30, 30, 30, 30, 30]], area=0.)  # a point
    ann(i, [50, 40, -20, -10], [[50, 40, 30, 40, 30, 30]], area=200.)  # inverted (negative width / height)
    ann(i, [5, 5, 1, 1], [[5, 5, 6, 5, 6, 6, 5, 6]])  # a 1-pixel object
    # broken polygons, each with a valid box
    i = add_image('polygons.png', 64, 64, _image(64, 64))
    good(i, 30, 30, 25, 25, category_id=2)
    ann(i, [5, 5, 20, 20], [])  # empty segmentation
    ann(i, [5, 30, 20, 20], [[]])  # one empty polygon
    ann(i, [10, 10, 10, 10], [[10, 10]])  # 1-point polygon
    ann(i, [12, 12, 10, 10], [[12, 12, 22, 22]])  # 2-point polygon
    ann(i, [40, 5, 10, 10], [[40, 5, 45, 10, 50, 15]])  # 3 collinear points: zero-area mask
    ann(i, [20, 40, 10, 10], [[20, 40, 30, 40, 30, 50, 20, 50, 25]])  # odd number of coordinates
    # no annotations at all, then crowd annotations only: a batch without any positive
    add_image('empty.png', 48, 64, _image(48, 64))
    i = add_image('crowd_only.png', 48, 48, _image(48, 48))
    ann(i, [4, 4, 30, 30], [[4, 4, 34, 4, 34, 34, 4, 34]], iscrowd=1)
    # grayscale PNG; masks partly outside the image
    i = add_image('gray.png', 56, 72, cv2.cvtColor(_image(56, 72), cv2.COLOR_BGR2GRAY))
    ann(i, [-10, -8, 30, 30], [[-10, -8, 20, -8, 20, 22, -10, 22]])
    ann(i, [50, 30, 40, 40], [[50, 30, 90, 30, 90, 70, 50, 70]])
    # 16-bit grayscale PNG; a polygon wholly outside the image (its box inside) and a box wholly outside
    i = add_image('gray16.png', 64, 64, cv2.cvtColor(_image(64, 64), cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    good(i, 8, 8, 30, 30)
    ann(i, [40, 40, 20, 20], [[100, 100, 120, 100, 120, 120, 100, 120]])
    ann(i, [70, 70, 20, 20], [[70, 70, 90, 70, 90, 90, 70, 90]])
    # 16-bit colour PNG
    i = add_image('color16.png', 48, 48, _image(48, 48).astype(np.uint16) * 257)
    good(i, 12, 12, 24, 12, category_id=2)
    # RGBA PNG with crowd annotations (uncompressed RLE and polygon) beside a normal one
    i = add_image('rgba.png', 64, 48, np.dstack([_image(64, 48), np.full((64, 48), 128, np.uint8)]))
    good(i, 4, 4, 20, 30)
    ann(i, [20, 30, 20, 20], dict(counts=[20 * 64 + 30] + [20, 44] * 19 + [20, 64 * 48 - 20 * 64 - 30 - 20 * 64 + 44],
                                  size=[64, 48]), iscrowd=1)
    ann(i, [0, 40, 40, 20], [[0, 40, 40, 40, 40, 60, 0, 60]], iscrowd=1)
    # smaller than the largest FPN stride (128) together, then odd sizes
    i = add_image('tiny.png', 31, 47, _image(31, 47))
    good(i, 5, 5, 20, 15)
    i = add_image('sliver.png', 9, 133, _image(9, 133))
    good(i, 2, 1, 100, 7)
    i = add_image('odd.png', 97, 61, _image(97, 61))
    good(i, 3, 7, 41, 53)
    good(i, 30, 60, 25, 31, category_id=2)
    # a truncated file
    i = add_image('truncated.png', 64, 64, _image(64, 64, seed=1))
    good(i, 10, 10, 30, 30)
    _truncate(root / 'img' / 'truncated.png')
    categories = [dict(id=k + 1, name=name) for k, name in enumerate(CLASSES)]
    (root / 'ann.json').write_text(json.dumps(dict(images=images, annotations=anns, categories=categories)))
    return images


CONFIG = '''
_base_ = '{repo}/configs/toy/centermask-lite_v2-19-slim-dw_fpn_toy.py'
data_root = '{root}/'
classes = {classes}
# no Resize: the tiny and odd-sized images reach the model as they are
train_pipeline = [
    dict(type='SafeLoadImageFromFile', skip_broken=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, sampler=dict(type='InfiniteSampler', shuffle=False),
    dataset=dict(_delete_=True, type='CenterMaskCocoDataset', data_root=data_root, ann_file='ann.json',
                 data_prefix=dict(img='img/'), metainfo=dict(classes=classes),
                 filter_cfg=dict(filter_empty_gt=False), pipeline=train_pipeline))
max_iter = {iters}
train_cfg = dict(max_iters=max_iter, val_interval=10 ** 6)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
num_classes = len(classes)
model = dict(num_classes=num_classes)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=max_iter), logger=dict(interval=1))
'''


def test_training_on_bad_data_runs_with_finite_losses(tmp_path):
    images = write_bad_coco(tmp_path / 'data')
    iters = math.ceil(len(images) / 2)  # every image once, in file order
    config = tmp_path / 'bad_data.py'
    config.write_text(textwrap.dedent(CONFIG.format(repo=REPO_ROOT, root=tmp_path / 'data', classes=CLASSES,
                                                    iters=iters)))
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    assert len(runner.train_dataloader.dataset) == len(images)  # nothing filtered away
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        runner.train()
    skipped = [str(w.message) for w in caught if 'truncated.png' in str(w.message)]
    assert skipped and 'skipped' in skipped[0]
    assert (tmp_path / 'work' / f'iter_{iters}.pth').exists()
    history = {key: runner.message_hub.get_scalar(key).data[0] for key in runner.message_hub.log_scalars
               if key.startswith('train/loss')}
    assert {'train/loss', 'train/loss_cls', 'train/loss_bbox', 'train/loss_mask', 'train/loss_mask_iou'} <= set(history)
    for key, values in history.items():
        assert len(values) == iters and np.isfinite(values).all(), (key, values)


def build_dataset(root, pipeline):
    return DATASETS.build(dict(type='CenterMaskCocoDataset', data_root=str(root), ann_file='ann.json',
                               data_prefix=dict(img='img/'), metainfo=dict(classes=CLASSES),
                               filter_cfg=dict(filter_empty_gt=False), pipeline=pipeline))


def test_broken_annotations_are_dropped_or_ignored(tmp_path):
    write_bad_coco(tmp_path)
    ds = build_dataset(tmp_path, [dict(type='SafeLoadImageFromFile'),
                                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False)])
    by_name = {ds.get_data_info(i)['img_path'].rsplit('/', 1)[-1]: i for i in range(len(ds))}
    boxes = ds[by_name['boxes.png']]
    # zero-area, point and inverted boxes dropped (mmdet); the good object and the 1-pixel one kept
    assert boxes['gt_bboxes'].tensor.tolist() == [[10, 10, 40, 30], [5, 5, 6, 6]]
    assert not boxes['gt_ignore_flags'].any()
    polygons = ds[by_name['polygons.png']]
    # every broken polygon (empty, < 3 points, odd coordinates) is an ignored instance with a placeholder mask;
    # the collinear one is a valid (zero-area) polygon
    assert polygons['gt_ignore_flags'].tolist() == [False, True, True, True, True, False, True]
    assert len(polygons['gt_masks']) == len(polygons['gt_bboxes']) == 7
    rgba = ds[by_name['rgba.png']]
    assert rgba['gt_ignore_flags'].tolist() == [False, True, True]  # crowd


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_gray_16bit_and_rgba_load_as_8bit_bgr(tmp_path, backend):
    """The 8-bit 3-channel result each unusual PNG must give (what cv2's IMREAD_COLOR makes of it)."""
    color = _image(40, 50)
    gray = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
    cases = {'gray.png': (gray, np.dstack([gray] * 3)),
             'gray16.png': (gray.astype(np.uint16) * 257, np.dstack([gray] * 3)),
             'color16.png': (color.astype(np.uint16) * 257, color),
             'rgba.png': (np.dstack([color, np.full(gray.shape, 7, np.uint8)]), color)}
    load = TRANSFORMS.build(dict(type='SafeLoadImageFromFile', imdecode_backend=backend))
    for name, (written, expected) in cases.items():
        assert cv2.imwrite(str(tmp_path / name), written)
        img = load(dict(img_path=str(tmp_path / name)))['img']
        assert img.dtype == np.uint8 and img.shape == (40, 50, 3), name
        assert np.array_equal(img, expected), name


def _broken_files(root):
    cv2.imwrite(str(root / 'ok.png'), _image(20, 20))
    cv2.imwrite(str(root / 'ok.jpg'), _image(20, 20))
    for name in ('ok.png', 'ok.jpg'):
        (root / f'truncated_{name}').write_bytes((root / name).read_bytes()[:200])
    (root / 'not_an_image.png').write_bytes(b'GIF89a? no, just text')
    (root / 'empty.png').write_bytes(b'')
    return ['truncated_ok.png', 'truncated_ok.jpg', 'not_an_image.png', 'empty.png', 'missing.png']


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_unreadable_image_raises_naming_the_file(tmp_path, backend):
    load = TRANSFORMS.build(dict(type='SafeLoadImageFromFile', imdecode_backend=backend))
    for name in _broken_files(tmp_path):
        path = str(tmp_path / name)
        with pytest.raises(BrokenImageError, match='skip_broken=True') as error:
            load(dict(img_path=path))
        assert repr(path) in str(error.value)
    assert load(dict(img_path=str(tmp_path / 'ok.png')))['img'].shape == (20, 20, 3)


def test_unreadable_image_is_skipped_with_a_warning_naming_it(tmp_path):
    load = TRANSFORMS.build(dict(type='SafeLoadImageFromFile', skip_broken=True))
    for name in _broken_files(tmp_path):
        path = str(tmp_path / name)
        with pytest.warns(UserWarning, match='skipped') as record:
            assert load(dict(img_path=path)) is None
        assert any(repr(path) in str(w.message) for w in record)


def test_dataset_with_skip_broken_gives_another_image(tmp_path):
    """In training mmengine's BaseDataset answers a skipped (None) sample with another one (max_refetch)."""
    images = write_bad_coco(tmp_path)
    pipeline = [dict(type='SafeLoadImageFromFile', skip_broken=True), dict(type='PackDetInputs')]
    ds = build_dataset(tmp_path, pipeline)
    with pytest.warns(UserWarning, match='truncated.png'):
        sample = ds[len(images) - 1]
    assert not sample['data_samples'].img_path.endswith('truncated.png')
    strict = build_dataset(tmp_path, [dict(type='SafeLoadImageFromFile'), dict(type='PackDetInputs')])
    with pytest.raises(BrokenImageError, match='truncated.png'):
        strict[len(images) - 1]


def test_skip_broken_must_be_a_bool():
    with pytest.raises(ValueError, match=r'valid choices are \[True, False\]'):
        TRANSFORMS.build(dict(type='SafeLoadImageFromFile', skip_broken='yes'))
