"""Two OpenMMLab stacks, one package: the import-time stack check, the package metadata that forces neither stack,
and the ``mmseg::`` config scope on the stack under test."""
import importlib.metadata
import os
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE
from packaging.requirements import Requirement

from centermask_mm.compat import (StackError, check_stack, disable_fork_config_scopes, enable_fork_config_scopes,
                                  installed_stack)
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.stack_differences

OFFICIAL = {'mmengine': '0.10.7', 'mmcv': '2.1.0', 'mmdet': '3.3.0'}
FORK = {'onedl-mmengine': '0.10.12', 'onedl-mmcv': '2.3.6', 'onedl-mmdetection': '3.5.1'}
NONE = dict.fromkeys(list(OFFICIAL) + list(FORK))


def versions(**installed):
    return {**NONE, **{name.replace('_', '-'): version for name, version in installed.items()}}


def test_each_complete_stack_is_recognised():
    assert check_stack(versions(**OFFICIAL)) == 'openmmlab'
    assert check_stack({**NONE, **FORK}) == 'onedl'
    assert check_stack(versions(mmengine='0.10.4', mmcv='2.0.0', mmdet='3.3.0')) == 'openmmlab'
    assert check_stack({**NONE, **FORK, 'onedl-mmcv': '2.3.0.post1'}) == 'onedl'


def assert_names_both_stacks(message):
    for pin in ('mmengine>=0.10.4,<1.0', 'mmcv>=2.0.0,<2.2.0', 'mmdet>=3.3.0,<3.4', 'onedl-mmengine>=0.10.12,<1.0',
                'onedl-mmcv>=2.3,<2.4', 'onedl-mmdetection>=3.5,<3.6', 'centermask_mm[openmmlab]',
                'centermask_mm[onedl]'):
        assert pin in message, pin


@pytest.mark.parametrize('installed, words', [
    (versions(mmengine='0.10.7', mmcv='2.1.0'), 'mmdet is not installed'),
    (versions(**{**OFFICIAL, 'mmcv': '2.2.0'}), 'mmcv 2.2.0 is installed, mmcv>=2.0.0,<2.2.0 is supported'),
    (versions(**{**OFFICIAL, 'mmdet': '3.2.0'}), 'mmdet 3.2.0 is installed'),
    ({**NONE, **FORK, 'onedl-mmengine': '0.10.8rc1'}, 'onedl-mmengine 0.10.8rc1 is installed'),
    ({**NONE, 'onedl-mmengine': '0.10.12', 'onedl-mmcv': '2.3.6'}, 'onedl-mmdetection is not installed'),
    (NONE, 'No OpenMMLab stack is installed'),
    # pip installing the official distributions over the fork's (what `pip install mmdet` does on the fork)
    ({**versions(**OFFICIAL), **FORK}, 'installed over each other'),
    ({**NONE, **FORK, 'mmcv': '2.1.0'}, 'installed over each other'),
])
def test_missing_old_or_mixed_stack_is_refused_naming_both_stacks(installed, words):
    with pytest.raises(StackError) as info:
        check_stack(installed)
    assert words in str(info.value)
    assert_names_both_stacks(str(info.value))
    assert isinstance(info.value, ImportError)


def test_installed_stack_is_the_one_whose_distributions_are_installed():
    names = {dist.metadata['Name'].lower() for dist in importlib.metadata.distributions()}
    expected = 'onedl' if 'onedl-mmdetection' in names else 'openmmlab'
    assert installed_stack() == expected
    assert ('mmdet' in names) == (expected == 'openmmlab')  # never both: pip did not install one over the other


def test_import_refuses_an_unsupported_stack_before_importing_it(tmp_path):
    """A too-new mmdet distribution (its metadata first on the path) stops ``import centermask_mm`` with the check's
    message, before mmengine, mmcv or mmdet is imported."""
    dist = 'mmdet' if installed_stack() == 'openmmlab' else 'onedl_mmdetection'
    info = tmp_path / f'{dist}-9.0.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {dist.replace("_", "-")}\nVersion: 9.0.0\n')
    code = textwrap.dedent('''
        import sys
        try:
            import centermask_mm
        except ImportError as err:
            print(type(err).__name__, err)
            print('imported:', sorted(m for m in ('mmengine', 'mmcv', 'mmdet') if m in sys.modules))
    ''')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), REPO_ROOT]))
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert out.startswith('StackError'), out
    assert '9.0.0 is installed' in out and 'imported: []' in out
    assert_names_both_stacks(out)


def test_package_metadata_requires_no_stack_but_offers_both_as_extras():
    """pip must not install the official distributions over the fork (or the reverse): the OpenMMLab libraries are
    only in the extras [openmmlab] and [onedl] of the installed metadata (made from setup.py)."""
    requirements = [Requirement(r) for r in importlib.metadata.requires('centermask_mm')]
    stack_dists = {'mmengine', 'mmcv', 'mmdet', 'onedl-mmengine', 'onedl-mmcv', 'onedl-mmdetection'}
    unconditional = {r.name for r in requirements if r.marker is None}
    assert not unconditional & stack_dists and {'torch', 'numpy', 'pycocotools'} <= unconditional
    extras = {}
    for r in requirements:
        if r.name in stack_dists:
            extra = next(e for e in ('openmmlab', 'onedl', 'tests') if r.marker.evaluate({'extra': e}))
            extras.setdefault(extra, set()).add(r.name)
    assert extras == {'openmmlab': {'mmengine', 'mmcv', 'mmdet'},
                      'onedl': {'onedl-mmengine', 'onedl-mmcv', 'onedl-mmdetection'}}


SEMSEG_CONFIG = os.path.join(REPO_ROOT, 'projects', 'vovnet_semseg', 'configs', 'fpn_v2-39_4xb4-160k_ade20k-512x512.py')


def test_mmseg_scope_configs_resolve_on_this_stack():
    cfg = Config.fromfile(SEMSEG_CONFIG)
    assert cfg.model.backbone.type == 'mmdet.VoVNet' and cfg.model.decode_head.type == 'FPNHead'
    expected = 'onedl-mmsegmentation' if installed_stack() == 'onedl' else 'mmsegmentation'
    assert MODULE2PACKAGE['mmseg'] == expected


def test_fork_config_scopes_can_be_turned_off_and_on():
    try:
        disable_fork_config_scopes()
        assert MODULE2PACKAGE['mmseg'] == 'mmsegmentation'  # mmengine's own name
        if installed_stack() == 'onedl':  # the failure the patch fixes
            with pytest.raises(Exception, match='mmsegmentation'):
                Config.fromfile(SEMSEG_CONFIG)
    finally:
        enable_fork_config_scopes()
    Config.fromfile(SEMSEG_CONFIG)
