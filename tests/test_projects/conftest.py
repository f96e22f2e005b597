import uuid

import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def _restore_mmdet_scope():
    """A Runner of an mmseg / mmpretrain config makes its scope the current one; later tests build in mmdet's."""
    yield
    DefaultScope.get_instance(f'test-projects-{uuid.uuid4()}', scope_name='mmdet')
