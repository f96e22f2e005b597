"""FLOPs and parameters of a config on its val images: mmdet's get_flops.py with centermask_mm loaded, and the share
of the mask branch.

    python tools/analysis_tools/get_flops.py CONFIG [--num-images N] [--cfg-options ...]

CenterMask's tensor mode runs the mask branch (RoI head: mask head and MaskIoU head) on the decoded boxes, so mmdet's
``Flops:`` line counts it (RoIAlign and NMS, being custom ops, are not). Each image is counted a second time with the
RoI head left out of the tensor mode, and the tool adds::

    Flops without the mask branch: 1.2G
    Exact flops per image (mean over 1 images): 1234 with the mask branch, 1200 without, 34 in the mask branch on 50.0 RoIs

The convention is mmengine's (fvcore's) ``FlopAnalyzer``: one flop per multiply-accumulate of a convolution or a
fully connected layer; element-wise operations are not counted.
"""
import numpy as np
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.print_helper import _format_size

from centermask_mm.utils.mmdet_tools import run_mmdet_tool


def count_without_mask_branch(records):
    """A ``patch`` for the mmdet tool: its ``get_model_complexity_info`` also counts the model without the RoI head
    and appends ``(flops with, flops without, RoIs)`` of each image to ``records``."""
    def patch(tool):
        count_all = tool.get_model_complexity_info

        def count(model, input_shape=None, inputs=None, **kwargs):
            roi_head = model.roi_head
            rois = []

            def forward_counting_rois(x, rpn_results_list, *args, **kwargs):
                rois.append(sum(len(results) for results in rpn_results_list))
                return type(roi_head).forward(roi_head, x, rpn_results_list, *args, **kwargs)

            roi_head.forward = forward_counting_rois
            try:
                outputs = count_all(model, input_shape, inputs=inputs, **kwargs)
            finally:
                del roi_head.forward
            roi_head.forward = lambda *args, **kwargs: ()  # the detector's tensor mode adds nothing of the RoI head
            try:
                without = (FlopAnalyzer(model, inputs).unsupported_ops_warnings(False)
                           .uncalled_modules_warnings(False).total())
            finally:
                del roi_head.forward
            records.append((outputs['flops'], without, rois[-1] if rois else 0))
            return outputs

        tool.get_model_complexity_info = count
    return patch


def main():
    records = []
    run_mmdet_tool('analysis_tools/get_flops.py', patch=count_without_mask_branch(records))
    with_mask, without, rois = (np.mean([r[i] for r in records]) for i in range(3))
    print(f'Flops without the mask branch: {_format_size(int(without))}')
    print(f'Exact flops per image (mean over {len(records)} images): {int(with_mask)} with the mask branch, '
          f'{int(without)} without, {int(with_mask - without)} in the mask branch on {rois:.1f} RoIs')


if __name__ == '__main__':
    main()
