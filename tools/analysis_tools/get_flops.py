"""FLOPs and parameters of a config on its val images: mmdet's get_flops.py with centermask_mm loaded.

    python tools/analysis_tools/get_flops.py CONFIG [--num-images N] [--cfg-options ...]

CenterMask's tensor mode runs the mask branch on the decoded boxes, so its FLOPs are counted (RoIAlign and NMS,
being custom ops, are not).
"""
from centermask_mm.utils.mmdet_tools import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('analysis_tools/get_flops.py')
