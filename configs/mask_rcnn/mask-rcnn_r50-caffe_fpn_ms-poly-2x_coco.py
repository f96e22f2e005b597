# Mask R-CNN R-50-FPN, multi-scale 2x: the baseline row of the CenterMask README (paper code, val2017: 35.9 mask AP /
# 39.7 box AP). mmdet's recipe with the MSRA (caffe) ResNet and the paper code's pixel mean (BGR, std 1).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50-caffe_fpn_ms-poly-2x_coco.py',
          '../_base_/models/centermask_maskrcnn-benchmark.py']

model = dict(data_preprocessor=_base_.maskrcnn_benchmark_model.data_preprocessor)
