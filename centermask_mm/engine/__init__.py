from .checkpoint_hook import ReliableCheckpointHook

__all__ = ['ReliableCheckpointHook']
