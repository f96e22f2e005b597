"""Running an exported CenterMask in ONNX Runtime: the config's pre-processing, the graph, the model's finishing."""
import json
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import onnx
import torch
from mmcv.transforms import Compose
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from .onnx_wrapper import INPUT_NAMES, OUTPUT_NAMES
from .postprocess import postprocess_outputs


class ORTCenterMask:
    """An exported CenterMask (:func:`export_onnx`) in an ``onnxruntime.InferenceSession``.

    ``config``: the model's config (path or :class:`Config`): its test pipeline (``LoadAnnotations`` left out, the
    loader replaced by mmdet's ``InferencerLoader``, which takes a path or a BGR array) and its
    ``data_preprocessor`` (normalisation and padding, built without the model) prepare the image exactly as for
    PyTorch inference; ``model.test_cfg.rcnn`` (``postprocess``, ``mask_thr_binary``) finishes the detections.
    """

    def __init__(self, onnx_file: str, config: Union[str, Config],
                 providers: Sequence[str] = ('CPUExecutionProvider', ), num_threads: Optional[int] = None):
        import onnxruntime as ort
        cfg = Config.fromfile(config) if isinstance(config, str) else config
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self.session = ort.InferenceSession(onnx_file, options, providers=list(providers))
        pipeline = [dict(t) for t in get_test_pipeline_cfg(cfg) if t['type'] not in ('LoadAnnotations', )]
        pipeline[0]['type'] = 'mmdet.InferencerLoader'
        if 'meta_keys' in pipeline[-1]:
            pipeline[-1]['meta_keys'] = tuple(k for k in pipeline[-1]['meta_keys'] if k != 'img_id')
        self.pipeline = Compose(pipeline)
        self.data_preprocessor = MODELS.build(cfg.model.data_preprocessor).eval()
        rcnn = cfg.model.test_cfg.rcnn
        self.postprocess = rcnn.get('postprocess', 'mmdet')
        self.mask_thr_binary = rcnn.mask_thr_binary
        meta = {p.key: p.value for p in onnx.load(onnx_file, load_external_data=False).metadata_props}
        self.dataset_meta = json.loads(meta['dataset_meta']) if 'dataset_meta' in meta else None

    def preprocess(self, image: Union[str, np.ndarray]) -> Tuple[torch.Tensor, DetDataSample]:
        """A path or BGR ``[h, w, 3]`` uint8 array -> (``[1, 3, H, W]`` network input, its data sample with the
        image meta: ``ori_shape``, ``img_shape``, ``scale_factor``, ``pad_shape``...)."""
        data = pseudo_collate([self.pipeline(image)])
        with torch.no_grad():
            data = self.data_preprocessor(data, False)
        return data['inputs'], data['data_samples'][0]

    def forward(self, inputs: torch.Tensor, img_shape: Sequence[int]) -> dict:
        """The graph on ``inputs [1, 3, H, W]`` with the unpadded ``img_shape (h, w)``: a dict of its numpy outputs
        (``boxes [N, 4]``, ``labels [N]``, ``scores [N]``, ``mask_scores [N]``, ``masks [N, 28, 28]``)."""
        feed = {INPUT_NAMES[0]: inputs.numpy().astype(np.float32),
                INPUT_NAMES[1]: np.asarray(img_shape[:2], dtype=np.int64)}
        return dict(zip(OUTPUT_NAMES, self.session.run(list(OUTPUT_NAMES), feed)))

    def predict(self, inputs: torch.Tensor, data_sample: DetDataSample, rescale: bool = True) -> DetDataSample:
        """Graph + finishing: ``data_sample`` with ``pred_instances`` as CenterMask's ``predict`` sets them."""
        outputs = self.forward(inputs, data_sample.metainfo['img_shape'])
        data_sample.pred_instances = postprocess_outputs(outputs, data_sample.metainfo, self.postprocess,
                                                         self.mask_thr_binary, rescale=rescale)
        return data_sample

    def __call__(self, image: Union[str, np.ndarray]) -> DetDataSample:
        return self.predict(*self.preprocess(image))
