"""``torch.onnx.export`` of CenterMask (legacy TorchScript-tracing exporter) and the standard-ops check."""
import json
from typing import List, Optional, Sequence, Tuple

import mmcv.ops
import onnx
import torch
import torch.nn as nn

from ..models.dense_heads import CenterMaskFCOSHead
from ..models.detectors import CenterMask
from .onnx_wrapper import INPUT_NAMES, OUTPUT_NAMES, CenterMaskONNXWrapper
from .traceable_ops import traceable_ops

#: default opset: RoiAlign's ``coordinate_transformation_mode`` (the aligned mode) needs >= 16
DEFAULT_OPSET = 17
#: the ONNX domains of standard operators (``''`` and its alias ``'ai.onnx'``)
STANDARD_DOMAINS = ('', 'ai.onnx')


def export_onnx(model: nn.Module, out_file: str, shape: Tuple[int, int] = (320, 320), dynamic: bool = False,
                opset: int = DEFAULT_OPSET, dataset_meta: Optional[dict] = None) -> onnx.ModelProto:
    """Export ``model`` (a :class:`CenterMask`, traced in eval mode, its mode kept) to ``out_file``; returns the
    checked graph.

    The graph is :class:`CenterMaskONNXWrapper` traced on a ``[1, 3, *shape]`` input (batch 1) with mmcv's
    RoIAlign / NMS swapped for torchvision's (:func:`traceable_ops`): inputs ``image [1, 3, H, W]`` and
    ``img_shape [2]``, outputs ``boxes, labels, scores, mask_scores, masks`` (see the wrapper). With ``dynamic`` the
    graph takes any H and W (multiples of the model's ``pad_size_divisor``); without, only ``shape``.
    ``dataset_meta`` (``classes``, ``palette``) is stored as the model's ``dataset_meta`` metadata (JSON).
    Raises ``TypeError`` for another model than a :class:`CenterMask` with a :class:`CenterMaskFCOSHead` (whose
    decoding has the traceable form).
    """
    if not isinstance(model, CenterMask) or not isinstance(model.bbox_head, CenterMaskFCOSHead):
        raise TypeError(f'export_onnx exports a CenterMask with a CenterMaskFCOSHead, got {type(model).__name__}'
                        + (f' with a {type(model.bbox_head).__name__}' if isinstance(model, CenterMask) else ''))
    height, width = shape
    divisor = getattr(model.data_preprocessor, 'pad_size_divisor', 1)
    if height % divisor or width % divisor:
        raise ValueError(f'export shape {shape}: height and width must be multiples of the pad_size_divisor {divisor}')
    aligned = [m.aligned for m in model.modules() if isinstance(m, mmcv.ops.RoIAlign) and m.aligned]
    if aligned and opset < 16:
        raise ValueError(f'opset {opset}: the aligned RoIAlign needs ONNX RoiAlign-16 (opset >= 16)')
    was_training = model.training
    wrapper = CenterMaskONNXWrapper(model).eval()  # (export restores the wrapper's mode, which recurses into model)
    image = torch.randn(1, 3, height, width)
    img_shape = torch.tensor([height, width], dtype=torch.int64)
    dynamic_axes = {name: {0: 'num_detections'} for name in OUTPUT_NAMES}
    if dynamic:
        dynamic_axes['image'] = {2: 'height', 3: 'width'}
    try:
        with traceable_ops(model), torch.no_grad():
            torch.onnx.export(wrapper, (image, img_shape), out_file, dynamo=False, opset_version=opset,
                              input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                              dynamic_axes=dynamic_axes, do_constant_folding=True)
    finally:
        model.train(was_training)
    proto = onnx.load(out_file)
    onnx.checker.check_model(proto)
    nonstandard = custom_domain_nodes(proto)
    if nonstandard:
        raise RuntimeError(f'the exported graph has non-standard nodes: {nonstandard}')
    if dataset_meta is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = 'dataset_meta', json.dumps(_jsonable(dataset_meta))
        onnx.save(proto, out_file)
    return proto


def graph_nodes(graph: onnx.GraphProto) -> List[onnx.NodeProto]:
    """Every node of ``graph``, those of its subgraphs (If / Loop bodies) included."""
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField('g') else []) + list(attr.graphs):
                nodes.extend(graph_nodes(sub))
    return nodes


def custom_domain_nodes(proto: onnx.ModelProto) -> List[Tuple[str, str]]:
    """``(op_type, domain)`` of the nodes outside the standard ONNX domain (custom ops), subgraphs included."""
    return sorted({(n.op_type, n.domain) for n in graph_nodes(proto.graph) if n.domain not in STANDARD_DOMAINS})


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_jsonable(v) for v in value]
    return value
