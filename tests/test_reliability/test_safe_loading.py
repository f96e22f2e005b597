"""Every path that reads a checkpoint or converts weights refuses a file that would run code when unpickled, names
the file and the refused global, runs nothing and leaves the file as it was, and loads an honest file:
``--resume``, ``load_from``, a backbone ``init_cfg`` ``Pretrained``, tools/test.py, the image demo and both
converters (docs/reliability.md, "no code runs on loading"). The expected contents of the honest files are read
with a loader independent of the package (:func:`trusted_load`, on files this test wrote itself)."""
import glob
import hashlib
import importlib.util
import io
import os
import pickletools
import shlex
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.logging import HistoryBuffer

from centermask_mm.utils import UnsafeCheckpointError
from tests.helpers import REPO_ROOT, tiny_toy_config
from tests.reference_layouts import centermask2_shapes, fill, vovnet_shapes

CONFIG = '''
train_cfg = dict(max_iters=1, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
model = dict(test_cfg=dict(rpn=dict(score_thr=0.0)))  # an untrained model still outputs boxes to evaluate
'''


class _TouchOnLoad:
    """Unpickling this runs ``touch MARKER`` (a classic malicious .pth payload)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {shlex.quote(self.marker)}', )


#: the global the payload makes the unpickler call, as pickle records it (``posix.system`` on Linux)
PAYLOAD_GLOBAL = f'{os.system.__module__}.{os.system.__name__}'


def trusted_load(path):
    """torch's unrestricted unpickler: the reference reader of the files this test wrote itself (never of a crafted
    one), independent of the package's loading code."""
    return torch.load(path, map_location='cpu', weights_only=False)


def assert_same(loaded, expected, where='checkpoint'):
    """``loaded`` equals ``expected`` value for value: same types, equal tensors (dtype, shape, values), numpy arrays
    and scalars, HistoryBuffers (their histories), containers and plain values. Returns the types met."""
    assert type(loaded) is type(expected), f'{where}: {type(loaded)} != {type(expected)}'
    seen = {type(expected)}
    if isinstance(expected, torch.Tensor):
        assert loaded.dtype == expected.dtype and torch.equal(loaded, expected), where
    elif isinstance(expected, np.ndarray):
        assert loaded.dtype == expected.dtype and np.array_equal(loaded, expected), where
    elif isinstance(expected, HistoryBuffer):
        assert loaded.max_length == expected.max_length, where
        seen |= assert_same(loaded._log_history, expected._log_history, where + '._log_history')
        seen |= assert_same(loaded._count_history, expected._count_history, where + '._count_history')
    elif isinstance(expected, dict):
        assert list(loaded) == list(expected), where
        for key in expected:
            seen |= assert_same(loaded[key], expected[key], f'{where}[{key!r}]')
    elif isinstance(expected, (list, tuple)):
        assert len(loaded) == len(expected), where
        for i, (a, b) in enumerate(zip(loaded, expected)):
            seen |= assert_same(a, b, f'{where}[{i}]')
    else:
        assert loaded == expected, f'{where}: {loaded!r} != {expected!r}'
    return seen


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_malicious(path, marker, honest=None):
    """``honest`` (a dict) with the payload added under a key each path reads (``meta`` / ``model``)."""
    payload = dict(honest or {'state_dict': {'w': torch.zeros(1)}})
    payload['meta' if 'meta' in payload or 'state_dict' in payload else 'model_meta'] = _TouchOnLoad(marker)
    torch.save(payload, path)
    return path


def run_tool(*args, timeout=240):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def import_script(relpath):
    spec = importlib.util.spec_from_file_location('script_' + relpath.replace('/', '_')[:-3],
                                                  os.path.join(REPO_ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def honest(tmp_path_factory):
    """A real Runner checkpoint (1 iteration: optimizer, message hub with HistoryBuffers, numpy values) and its
    config, a backbone checkpoint, and detectron2-layout VoVNet / centermask2-layout CenterMask-Lite sources."""
    tmp = tmp_path_factory.mktemp('safe')
    config = tmp / 'toy_tiny.py'
    config.write_text(tiny_toy_config(tmp / 'toy', num_train=2, extra=CONFIG))
    code, log = run_tool('tools/train.py', config, '--work-dir', tmp / 'work')
    assert code == 0, log[-3000:]
    checkpoint = tmp / 'work' / 'iter_1.pth'
    state = trusted_load(checkpoint)['state_dict']
    backbone = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    torch.save({'state_dict': backbone}, tmp / 'backbone.pth')
    torch.save(fill(vovnet_shapes('V-19-slim-dw-eSE')), tmp / 'vovnet_d2.pth')
    torch.save(dict(model=fill(centermask2_shapes('V-19-slim-dw-eSE', lite=True, num_classes=3)), iteration=1),
               tmp / 'centermask2.pth')
    return dict(tmp=tmp, config=config, checkpoint=checkpoint, backbone=tmp / 'backbone.pth',
                vovnet=tmp / 'vovnet_d2.pth', centermask2=tmp / 'centermask2.pth',
                image=sorted(glob.glob(str(tmp / 'toy' / 'val' / '*.png')))[0])


# Each path: (which honest file it reads, how to run it on FILE in OUT -> (ok, log), what an honest load shows)
def _resume(h, path, out):
    code, log = run_tool('tools/train.py', h['config'], '--work-dir', out, '--resume', path,
                         '--cfg-options', 'train_cfg.max_iters=2')
    return code == 0, log


def _load_from(h, path, out):
    code, log = run_tool('tools/train.py', h['config'], '--work-dir', out, '--cfg-options', f'load_from={path}')
    return code == 0, log


def _test_tool(h, path, out):
    code, log = run_tool('tools/test.py', h['config'], path, '--work-dir', out)
    return code == 0, log


def _pretrained_backbone(h, path, out):
    cfg = Config.fromfile(str(h['config'])).model.backbone
    cfg.init_cfg = dict(type='Pretrained', checkpoint=str(path))
    backbone = MODELS.build(cfg)
    try:
        backbone.init_weights()
    except UnsafeCheckpointError as err:
        return False, str(err)
    expected = trusted_load(path)['state_dict']
    loaded = backbone.state_dict()
    return (loaded.keys() == expected.keys() and all(torch.equal(loaded[k], v) for k, v in expected.items()),
            'backbone weights loaded')


def _demo(h, path, out):
    try:
        import_script('demo/image_demo.py').main([h['image'], str(h['config']), '--weights', str(path),
                                                  '--out-dir', str(out), '--device', 'cpu'])
    except UnsafeCheckpointError as err:
        return False, str(err)
    return bool(glob.glob(str(out / 'vis' / '*'))), 'drawn'


def _sorted_values(tensor):
    return tensor.detach().flatten().sort().values.numpy().tobytes()


def _converter(script, source, *extra):
    """Run a converter; an honest conversion must carry every floating-point tensor of the honest ``source`` file
    (distinct values, tests/reference_layouts.fill) into the converted file, which torch's ``weights_only`` reads."""
    def convert(h, path, out, script=script):
        err = io.StringIO()
        old = sys.stderr
        sys.stderr = err
        try:
            code = import_script(f'tools/model_converters/{script}').main(
                [str(path), str(out / 'converted.pth'), *[str(h[e]) if e in h else e for e in extra]])
        finally:
            sys.stderr = old
        if code != 0 or not (out / 'converted.pth').exists():
            return False, err.getvalue()
        original = trusted_load(h[source])  # the honest file (the crafted one is never unpickled here)
        original = original.get('model', original)
        values = {_sorted_values(t) for t in original.values() if t.is_floating_point()}
        converted = torch.load(out / 'converted.pth', map_location='cpu', weights_only=True)['state_dict']
        floats = [t for t in converted.values() if t.is_floating_point()]
        return bool(floats) and all(_sorted_values(t) in values for t in floats), err.getvalue()
    return convert


PATHS = {
    'resume': ('checkpoint', _resume, 'resumed epoch: 0, iter: 1'),
    'load_from': ('checkpoint', _load_from, 'Load checkpoint from'),
    'init_cfg_pretrained': ('backbone', _pretrained_backbone, 'backbone weights loaded'),
    'tools_test': ('checkpoint', _test_tool, 'coco/bbox_mAP'),
    'image_demo': ('checkpoint', _demo, 'drawn'),
    'vovnet2mmdet': ('vovnet', _converter('vovnet2mmdet.py', 'vovnet'), ''),
    'centermask2mmdet': ('centermask2', _converter('centermask2mmdet.py', 'centermask2', '--config', 'config'), ''),
}


SUBPROCESS = ('resume', 'load_from', 'tools_test')  # each starts a tool process


@pytest.mark.parametrize('name', [pytest.param(n, marks=pytest.mark.slow) if n in SUBPROCESS else n for n in PATHS])
def test_path_refuses_code_on_unpickling_and_loads_honest_files(name, honest, tmp_path):
    source, load, honest_sign = PATHS[name]
    marker = tmp_path / 'pwned'
    evil = write_malicious(tmp_path / f'evil_{name}.pth', marker, trusted_load(honest[source]))
    digest = sha256(evil)
    (tmp_path / 'evil_out').mkdir()
    ok, log = load(honest, evil, tmp_path / 'evil_out')
    assert not ok, f'{name} accepted a file that runs code on unpickling'
    refusal = next((line for line in log.splitlines() if 'Refused to load checkpoint' in line), '')
    assert str(evil) in refusal and PAYLOAD_GLOBAL in refusal, log[-3000:]  # names the file and the global
    assert not marker.exists(), f'{name} executed the payload'
    assert sha256(evil) == digest, f'{name} modified the refused file'
    assert {p.name for p in tmp_path.iterdir()} == {'evil_out', evil.name}  # nothing written beside it

    (tmp_path / 'honest_out').mkdir()
    ok, log = load(honest, honest[source], tmp_path / 'honest_out')
    assert ok, log[-3000:]
    assert honest_sign in log


def test_a_runner_checkpoint_loads_with_weights_only_and_equal_values(honest, monkeypatch):
    """The checkpoint a Runner wrote (state dict, optimizer state, message hub with HistoryBuffers, numpy arrays and
    scalars) read by mmengine's loader (``load_from``, ``--resume``, tools/test.py): every ``torch.load`` call has
    ``weights_only=True`` and every value equals what the unrestricted unpickler reads."""
    from mmengine.runner.checkpoint import CheckpointLoader
    calls, torch_load = [], torch.load
    monkeypatch.setattr(torch, 'load', lambda *args, **kwargs: (calls.append(kwargs.get('weights_only')),
                                                                torch_load(*args, **kwargs))[1])
    loaded = CheckpointLoader.load_checkpoint(str(honest['checkpoint']), map_location='cpu')
    assert calls == [True]
    monkeypatch.setattr(torch, 'load', torch_load)
    expected = trusted_load(honest['checkpoint'])
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= expected.keys()
    seen = assert_same(loaded, expected)
    assert HistoryBuffer in seen and np.ndarray in seen and any(issubclass(t, np.generic) for t in seen), seen


def test_the_crafted_file_does_carry_a_live_payload(tmp_path):
    """Control (without unpickling it): the file calls os.system('touch ...') through a REDUCE opcode."""
    path = write_malicious(tmp_path / 'evil.pth', tmp_path / 'pwned')
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))
    listing = io.StringIO()
    pickletools.dis(data, out=listing)
    text = listing.getvalue()
    assert 'system' in text and 'REDUCE' in text and f"touch {tmp_path / 'pwned'}" in text
