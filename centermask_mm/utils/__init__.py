from .safe_checkpoint import (MMENGINE_CHECKPOINT_GLOBALS, UnsafeCheckpointError, enable_safe_checkpoint_loading,
                              safe_torch_load)

__all__ = ['MMENGINE_CHECKPOINT_GLOBALS', 'UnsafeCheckpointError', 'enable_safe_checkpoint_loading',
           'safe_torch_load']
