from .checkpoint_hook import ReliableCheckpointHook
from .inference_speedup import InferenceSpeedupHook, speed_up_for_inference

__all__ = ['ReliableCheckpointHook', 'InferenceSpeedupHook', 'speed_up_for_inference']
