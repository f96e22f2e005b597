from .atomic_io import atomic_write_bytes
from .safe_checkpoint import UnsafeCheckpointError, safe_torch_load

__all__ = ['UnsafeCheckpointError', 'atomic_write_bytes', 'safe_torch_load']
