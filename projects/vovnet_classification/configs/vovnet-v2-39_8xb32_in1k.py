# VoVNetV2-39 ImageNet classifier (mmpretrain): VoVNet stage 5 -> global average pooling -> linear head, trained with
# mmpretrain's ResNet-50 ImageNet recipe. The backbone is the detectors' (type 'mmdet.VoVNet', registered in mmdet's
# MODELS by custom_imports of the shared base) and so is the input normalisation (BGR, mean removed, std 1), so the
# trained backbone drops into configs/vovnet/* after tools/model_converters/vovnet2mmdet.py.
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py', '../../../configs/_base_/models/vovnet_backbone.py']

data_preprocessor = dict(
    mean=_base_.vovnet_data_preprocessor.mean, std=_base_.vovnet_data_preprocessor.std, to_rgb=False)
model = dict(
    backbone=dict(_delete_=True, type='mmdet.VoVNet', arch='V-39-eSE', out_indices=(3, )),
    head=dict(in_channels=_base_.vovnet_out_channels[3]))
