# mmseg's Semantic FPN (FPN neck + FPNHead) on ADE20K with VoVNetV2-39 in place of ResNet-50.
_base_ = ['mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py', './_base_/vovnet-v2-39_mmseg.py']

model = dict(
    pretrained=None,  # mmseg's EncoderDecoder would hand it to the backbone; VoVNet loads weights via init_cfg
    data_preprocessor=_base_.vovnet_data_preprocessor,
    backbone=_base_.vovnet_backbone,
    neck=dict(in_channels=_base_.vovnet_out_channels))
