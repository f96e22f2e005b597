from .checkpoint_hook import ReliableCheckpointHook
from .cpu_distributed_runner import CPUDistributedRunner
from .cuda_graph import GraphedCallable, capture_cuda_graphs
from .inference_speedup import InferenceSpeedupHook, speed_up_for_inference

__all__ = ['ReliableCheckpointHook', 'CPUDistributedRunner', 'InferenceSpeedupHook', 'speed_up_for_inference',
           'GraphedCallable', 'capture_cuda_graphs']
