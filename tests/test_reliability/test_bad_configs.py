"""Bad configs: a CenterMask config with an invalid option fails when the model is built, with a ValueError naming the
offending keys and listing the valid choices; every config under configs/ still builds. (The checks that the
components fit together: tests/test_models/test_utils/test_config_checks.py.)"""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS

from tests.helpers import CONFIG_ROOT, build_with, load_config

def test_the_toy_config_builds():
    model = build_with()
    assert model.bbox_head.num_classes == model.roi_head.mask_head.num_classes == 3


def test_unknown_vovnet_arch_lists_the_archs():
    with pytest.raises(ValueError) as error:
        build_with(**{'backbone.arch': 'V-19-slim-eSE-typo'})
    message = str(error.value)
    assert "invalid arch='V-19-slim-eSE-typo'" in message
    for arch in ('V-19-slim-dw-eSE', 'V-19-eSE', 'V-39-eSE', 'V-57-eSE', 'V-99-eSE', 'V-39', 'V-57'):
        assert repr(arch) in message


@pytest.mark.parametrize('out_indices', [(1, 2, 4), (-1, 0), ()])
def test_out_indices_out_of_range_lists_the_stages(out_indices):
    with pytest.raises(ValueError, match=r'out_indices.*one of \[0, 1, 2, 3\]'):
        build_with(**{'backbone.out_indices': out_indices})


ALL_CONFIGS = sorted(osp.relpath(p, CONFIG_ROOT) for p in glob.glob(osp.join(CONFIG_ROOT, '*', '*.py'))
                     if not osp.relpath(p, CONFIG_ROOT).startswith('_base_'))


def test_every_config_is_listed():
    assert {c.split(osp.sep)[0] for c in ALL_CONFIGS} == {'ablations', 'centermask', 'centermask_box_stages', 'custom',
                                                         'mask_rcnn', 'scale_adaptive_rois', 'toy', 'vovnet'}
    assert len(ALL_CONFIGS) >= 28


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_every_config_builds(name):
    """The checks accept every shipped config (configs/vovnet/ hold mmdet detectors: built without them)."""
    cfg = load_config(name).model
    cfg.backbone.init_cfg = None
    model = MODELS.build(cfg)
    assert model.backbone is not None
