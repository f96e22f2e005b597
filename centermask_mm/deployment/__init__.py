"""Deployment: ONNX export of CenterMask with standard ops and ONNX Runtime inference (see docs/deploy.md)."""
from .export import DEFAULT_OPSET, custom_domain_nodes, export_onnx, graph_nodes
from .onnx_wrapper import INPUT_NAMES, OUTPUT_NAMES, CenterMaskONNXWrapper
from .ort_runner import ORTCenterMask
from .postprocess import postprocess_outputs
from .traceable_ops import TorchvisionRoIAlign, traceable_ops

__all__ = ['DEFAULT_OPSET', 'INPUT_NAMES', 'OUTPUT_NAMES', 'CenterMaskONNXWrapper', 'ORTCenterMask',
           'TorchvisionRoIAlign', 'custom_domain_nodes', 'export_onnx', 'graph_nodes', 'postprocess_outputs',
           'traceable_ops']
