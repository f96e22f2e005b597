# mmseg's UPerNet (UPerHead + auxiliary FCNHead on stage 4) on ADE20K with VoVNetV2-39 in place of ResNet-50.
_base_ = ['mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py', './_base_/vovnet-v2-39_mmseg.py']

model = dict(
    pretrained=None,  # mmseg's EncoderDecoder would hand it to the backbone; VoVNet loads weights via init_cfg
    data_preprocessor=_base_.vovnet_data_preprocessor,
    backbone=_base_.vovnet_backbone,
    decode_head=dict(in_channels=_base_.vovnet_out_channels),
    auxiliary_head=dict(in_channels=_base_.vovnet_out_channels[2]))
