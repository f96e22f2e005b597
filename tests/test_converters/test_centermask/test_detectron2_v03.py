"""centermask2's published files (detectron2 v0.1-v0.3) carry ``pixel_mean`` / ``pixel_std`` buffers ([3, 1, 1]):
they convert when those equal the config's ``data_preprocessor`` (dropped, and said), and are refused with the
settings that would match when they differ."""
import subprocess
import sys

import pytest
import torch

from centermask_mm.converters.centermask import (CenterMaskConversionError, check_for_config,
                                                 convert_centermask_state_dict, convert_for_config)
from tests.helpers import REPO_ROOT, config_path
from tests.test_converters.test_centermask.test_layouts import build_zoo_model, reference_checkpoint

LITE = 'centermask-lite_v2-19_fpn_ms-4x_coco.py'
# detectron2's defaults in centermask2's configs: BGR input, PIXEL_MEAN [103.530, 116.280, 123.675], PIXEL_STD 1
BGR_MEAN, STD = [103.530, 116.280, 123.675], [1.0, 1.0, 1.0]


def v03_file(mean=BGR_MEAN, std=STD):
    """A centermask2 Lite V-19 state dict as detectron2 v0.3 saves it: the model's tensors plus the two buffers."""
    state = reference_checkpoint('centermask2', 'V-19-eSE', True, ())
    state['pixel_mean'] = torch.tensor(mean).view(3, 1, 1)
    state['pixel_std'] = torch.tensor(std).view(3, 1, 1)
    return dict(model=state, iteration=359999)


def test_v03_file_converts_and_loads_strictly():
    checkpoint = v03_file()
    result = convert_for_config(checkpoint, config_path('centermask', LITE))
    assert 'pixel_mean' not in result.state_dict and 'pixel_std' not in result.state_dict
    assert result.pixel_mean == pytest.approx(BGR_MEAN) and result.pixel_std == STD
    assert len(result.state_dict) == len(checkpoint['model']) - 2  # every other tensor used
    model = build_zoo_model(LITE)
    model.load_state_dict(result.state_dict, strict=True)
    report = check_for_config(result, config_path('centermask', LITE))
    assert any('pixel_mean [103.53, 116.28, 123.675]' in line and 'dropped' in line for line in report), report
    assert any('CC BY-NC 4.0' in line for line in report), report


def test_v04_file_without_the_buffers_says_nothing_about_them():
    result = convert_centermask_state_dict(dict(model=reference_checkpoint('centermask2', 'V-19-eSE', True, ())))
    assert result.pixel_mean is None
    report = check_for_config(result, config_path('centermask', LITE))
    assert not any('pixel_mean' in line for line in report)


def test_other_mean_is_refused_with_the_settings_that_match():
    """A model trained with the paper code's mean: refused, naming the data_preprocessor that would match."""
    with pytest.raises(CenterMaskConversionError) as err:
        convert_for_config(v03_file(mean=[102.9801, 115.9465, 122.7717]), config_path('centermask', LITE))
    message = str(err.value)
    assert 'pixel_mean [102.9801, 115.9465, 122.7717]' in message
    assert 'data_preprocessor mean [103.53, 116.28, 123.675]' in message
    assert ('data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)'
            in message)


def test_other_std_is_refused():
    with pytest.raises(CenterMaskConversionError, match=r'std=\[57.375, 57.12, 58.395\], bgr_to_rgb=False'):
        convert_for_config(v03_file(std=[57.375, 57.120, 58.395]), config_path('centermask', LITE))


def test_mean_in_the_other_channel_order_is_refused_with_bgr_to_rgb_flipped():
    """detectron2 stores the mean in its INPUT.FORMAT order: a model trained on RGB input has the reversed mean,
    and the config that matches it swaps the channels of mmcv's BGR images."""
    with pytest.raises(CenterMaskConversionError) as err:
        convert_for_config(v03_file(mean=BGR_MEAN[::-1]), config_path('centermask', LITE))
    assert 'other channel order' in str(err.value)
    assert ('data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[1.0, 1.0, 1.0], bgr_to_rgb=True)'
            in str(err.value))


def test_buffer_of_wrong_size_is_refused():
    checkpoint = v03_file()
    checkpoint['model']['pixel_mean'] = torch.zeros(4, 1, 1)
    with pytest.raises(CenterMaskConversionError, match=r'pixel_mean .*shape \(4, 1, 1\)'):
        convert_centermask_state_dict(checkpoint)


def cli(*args):
    return subprocess.run([sys.executable, 'tools/model_converters/centermask2mmdet.py', *map(str, args)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_cli_converts_a_v03_file_and_refuses_a_mismatched_one(tmp_path):
    src, dst = tmp_path / 'centermask2-lite-V-19-eSE-FPN-ms-4x.pth', tmp_path / 'ours.pth'
    torch.save(v03_file(), src)
    proc = cli(src, dst)
    assert proc.returncode == 0, proc.stderr
    assert 'equal the config\'s data_preprocessor mean / std: dropped' in proc.stdout
    assert 'CC BY-NC 4.0' in proc.stdout
    saved = torch.load(dst, weights_only=True)
    assert 'CC BY-NC 4.0' in saved['meta']['license']
    build_zoo_model(LITE).load_state_dict(saved['state_dict'], strict=True)

    torch.save(v03_file(mean=[102.9801, 115.9465, 122.7717]), src)
    proc = cli(src, tmp_path / 'never.pth')
    assert proc.returncode == 1
    assert 'data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717]' in proc.stderr
    assert not (tmp_path / 'never.pth').exists()
