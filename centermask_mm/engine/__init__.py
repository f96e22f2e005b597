from .checkpoint_hook import ReliableCheckpointHook
from .cuda_graph import GraphedCallable, capture_cuda_graphs
from .inference_speedup import InferenceSpeedupHook, speed_up_for_inference

__all__ = ['ReliableCheckpointHook', 'InferenceSpeedupHook', 'speed_up_for_inference', 'GraphedCallable',
           'capture_cuda_graphs']
