# VoVNetV2-39 as a drop-in backbone for mmdet's detectors (see configs/vovnet/). Values, not a model dict, so that
# it can sit beside an mmdet base config in `_base_` and be referenced as `_base_.vovnet_backbone`.
custom_imports = dict(imports=['centermask_mm'], allow_failed_imports=False)

# The detectron2 ImageNet VoVNet weights expect BGR input with the mean removed and std 1 (ref §7.1).
vovnet_data_preprocessor = dict(mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
vovnet_backbone = dict(
    _delete_=True, type='VoVNet', arch='V-39-eSE', out_indices=(0, 1, 2, 3), frozen_stages=1,
    norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vovnet39_ese_mmdet.pth'))
# stage2..stage5 output channels of V-39/57/99-eSE and V-19-eSE (VoVNet.arch_settings).
vovnet_out_channels = [256, 512, 768, 1024]
# stage2..stage5 output channels of the slim V-19 variants (V-19-slim-eSE, V-19-slim-dw-eSE).
vovnet_slim_out_channels = [112, 256, 384, 512]
# centermask2's *_dcn_* configs (ref §1.4): modulated DCN (DCNv2), one deformable group, on the 3x3 convs of the
# OSA blocks of stages 3-5.
vovnet_dcn = dict(dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=(False, True, True, True))
