# The shared VoVNetV2-39 backbone (configs/_base_/models/vovnet_backbone.py) for mmseg models. mmseg configs build
# in the 'mmseg' registry scope and VoVNet is registered in mmdet's MODELS (importing centermask_mm), so the type
# is scope-qualified: 'mmdet.VoVNet' is looked up in mmdet's registry (a sibling under mmengine's root registry).
_base_ = '../../../../configs/_base_/models/vovnet_backbone.py'

vovnet_backbone = dict(type='mmdet.VoVNet')  # merged into the shared dict: only the type changes
