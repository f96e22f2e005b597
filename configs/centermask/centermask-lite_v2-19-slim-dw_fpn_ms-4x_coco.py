# CenterMask-Lite V2-19-slim-dw-FPN (depthwise OSA convs), multi-scale 4x on COCO (centermask2 reference: 27.1 mask
# AP / 29.5 box AP). Pretrained backbone: convert vovnet19_ese_slim_dw_detectron2.pth with vovnet2mmdet.py.
_base_ = './centermask-lite_v2-19-slim_fpn_ms-4x_coco.py'

model = dict(backbone=dict(
    arch='V-19-slim-dw-eSE', init_cfg=dict(checkpoint='checkpoints/vovnet19_ese_slim_dw_mmdet.pth')))
