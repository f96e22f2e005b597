import pytest
import torch
from mmdet.utils import register_all_modules

import centermask_mm  # noqa: F401  (registers the project's modules and the safe checkpoint loader)

register_all_modules(init_default_scope=True)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
