"""A converted centermask2 model, run through its zoo config's test pipeline, gives the reference's arithmetic on
the image sizes of the fidelity runs: detectron2's resize (``img_shape``) and detectron2's ``detector_postprocess``
of the FCOS detections (boxes multiplied by ``output / input`` size in float32, clipped, empty ones dropped),
bit for bit."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate

from centermask_mm.converters.centermask import convert_for_config
from tests.helpers import config_path
from tests.test_converters.test_centermask.test_layouts import build_zoo_model
from tests.test_converters.test_centermask.test_detectron2_v03 import LITE, v03_file
from tests.test_datasets.test_reference_resize import detectron2_shape
from tests.test_models.test_layers.test_box_postprocess import detectron2_postprocess_boxes


@pytest.fixture(scope='module')
def lite_model_and_pipeline():
    cfg = Config.fromfile(config_path('centermask', LITE))
    result = convert_for_config(v03_file(), config_path('centermask', LITE))
    model = build_zoo_model(LITE).eval()
    model.load_state_dict(result.state_dict, strict=True)
    steps = [s for s in cfg.test_dataloader.dataset.pipeline if s['type'] not in ('LoadImageFromFile',
                                                                                  'LoadAnnotations')]
    return model, Compose(steps)


@pytest.mark.parametrize('h, w', [(480, 640), (333, 501), (360, 640)])
def test_converted_lite_model_predicts_with_detectron2s_arithmetic(lite_model_and_pipeline, h, w):
    model, pipeline = lite_model_and_pipeline
    image = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    batch = pseudo_collate([pipeline(dict(img=image, img_shape=(h, w), ori_shape=(h, w), img_id=0))])
    with torch.no_grad():
        out = model.test_step(batch)[0]
        data = model.data_preprocessor(batch, False)
        raw = model.bbox_head.predict(model.extract_feat(data['inputs']), data['data_samples'], rescale=False)[0]
    img_shape = detectron2_shape(h, w, 600, 1000)
    assert out.img_shape == img_shape  # 360 x 640 -> 562 x 1000 (mmdet's Resize: 563 x 1000)
    pred = out.pred_instances
    keep, boxes = detectron2_postprocess_boxes(raw.bboxes, img_shape, (h, w))
    assert len(raw) > 0 and len(pred) == len(keep)
    assert torch.equal(pred.bboxes, boxes)
    assert torch.equal(pred.scores, raw.scores[keep]) and torch.equal(pred.labels, raw.labels[keep])
    assert pred.masks.shape == (len(keep), h, w)
