"""State dicts with the reference's key names and shapes, written from the documented layout
(``docs/reference.md`` §1.1 stage specs, §2 module definitions, §3-§6 heads, §8.1 keys;
maskrcnn-benchmark module paths of the paper code), *not* from this package's modules, so that the converter is
tested against the reference rather than against itself.
"""
from collections import OrderedDict

import torch

# ref §1.1 _STAGE_SPECS: stem channels, stage conv channels, stage out channels, layers per block, blocks per stage,
# depthwise
STAGE_SPECS = {
    'V-19-slim-dw-eSE': ((64, 64, 64), (64, 80, 96, 112), (112, 256, 384, 512), 3, (1, 1, 1, 1), True),
    'V-19-dw-eSE': ((64, 64, 64), (128, 160, 192, 224), (256, 512, 768, 1024), 3, (1, 1, 1, 1), True),
    'V-19-slim-eSE': ((64, 64, 128), (64, 80, 96, 112), (112, 256, 384, 512), 3, (1, 1, 1, 1), False),
    'V-19-eSE': ((64, 64, 128), (128, 160, 192, 224), (256, 512, 768, 1024), 3, (1, 1, 1, 1), False),
    'V-39-eSE': ((64, 64, 128), (128, 160, 192, 224), (256, 512, 768, 1024), 5, (1, 1, 2, 2), False),
    'V-57-eSE': ((64, 64, 128), (128, 160, 192, 224), (256, 512, 768, 1024), 5, (1, 1, 4, 3), False),
    'V-99-eSE': ((64, 64, 128), (128, 160, 192, 224), (256, 512, 768, 1024), 5, (1, 3, 9, 3), False),
}
# ref §8.1: tensors in a detectron2 VoVNet backbone (FrozenBN buffers included, no DCN)
BACKBONE_KEY_COUNTS = {'V-19-slim-dw-eSE': 132, 'V-19-dw-eSE': 137, 'V-19-slim-eSE': 103, 'V-19-eSE': 103,
                       'V-39-eSE': 207, 'V-57-eSE': 303, 'V-99-eSE': 527}
NORM = ('weight', 'bias', 'running_mean', 'running_var')  # FrozenBatchNorm2d (detectron2 and maskrcnn-benchmark)


def _norm(shapes, name, channels):
    for param in NORM:
        shapes[f'{name}.{param}'] = (channels, )


def vovnet_shapes(arch, dcn_stages=()):
    """Key -> shape of a centermask2 / CenterMask VoVNet (ref §2 ``_OSA_module``, §1.4 ``DFConv3x3``)."""
    stem, conv_ch, out_ch, num_layers, blocks, dw = STAGE_SPECS[arch]
    shapes = OrderedDict()
    shapes['stem.stem_1/conv.weight'] = (stem[0], 3, 3, 3)
    _norm(shapes, 'stem.stem_1/norm', stem[0])
    for n in (2, 3):
        cin, cout = stem[n - 2], stem[n - 1]
        if dw:
            shapes[f'stem.stem_{n}/dw_conv3x3.weight'] = (cout, 1, 3, 3)
            shapes[f'stem.stem_{n}/pw_conv1x1.weight'] = (cout, cin, 1, 1)
            _norm(shapes, f'stem.stem_{n}/pw_norm', cout)
        else:
            shapes[f'stem.stem_{n}/conv.weight'] = (cout, cin, 3, 3)
            _norm(shapes, f'stem.stem_{n}/norm', cout)
    for s in range(2, 6):
        stage_ch, concat_ch = conv_ch[s - 2], out_ch[s - 2]
        for b in range(1, blocks[s - 2] + 1):
            in_ch = (stem[2] if s == 2 else out_ch[s - 3]) if b == 1 else concat_ch
            osa = f'stage{s}.OSA{s}_{b}'
            layer_in = in_ch
            if dw and in_ch != stage_ch:
                name = f'{osa}.conv_reduction.OSA{s}_{b}_reduction_0'
                shapes[f'{name}/conv.weight'] = (stage_ch, in_ch, 1, 1)
                _norm(shapes, f'{name}/norm', stage_ch)
                layer_in = stage_ch
            for layer in range(num_layers):
                name = f'{osa}.layers.{layer}.OSA{s}_{b}_{layer}'
                if dw:
                    shapes[f'{name}/dw_conv3x3.weight'] = (stage_ch, 1, 3, 3)
                    shapes[f'{name}/pw_conv1x1.weight'] = (stage_ch, stage_ch, 1, 1)
                    _norm(shapes, f'{name}/pw_norm', stage_ch)
                else:
                    if s in dcn_stages:  # modulated: 27 offset channels for one deformable group
                        shapes[f'{name}/conv_offset.weight'] = (27, layer_in, 3, 3)
                        shapes[f'{name}/conv_offset.bias'] = (27, )
                    shapes[f'{name}/conv.weight'] = (stage_ch, layer_in, 3, 3)
                    _norm(shapes, f'{name}/norm', stage_ch)
                layer_in = stage_ch
            name = f'{osa}.concat.OSA{s}_{b}_concat'
            shapes[f'{name}/conv.weight'] = (concat_ch, in_ch + num_layers * stage_ch, 1, 1)
            _norm(shapes, f'{name}/norm', concat_ch)
            shapes[f'{osa}.ese.fc.weight'] = (concat_ch, concat_ch, 1, 1)  # eSE in every block (ref §1.2)
            shapes[f'{osa}.ese.fc.bias'] = (concat_ch, )
    return shapes


# maskrcnn-benchmark ``resnet.py``: blocks per stage, groups, width per group (``R-50-FPN-RETINANET`` etc.)
RESNET_SPECS = {'R-50': ((3, 4, 6, 3), 1, 64), 'R-101': ((3, 4, 23, 3), 1, 64), 'X-101-32x8d': ((3, 4, 23, 3), 32, 8)}


def resnet_shapes(arch):
    """Key -> shape of a maskrcnn-benchmark ResNet (``stem.conv1/bn1``, ``layer{1-4}.{i}.conv{1,2,3}/bn{1,2,3}``,
    ``downsample.{0,1}`` on the first block of each stage; Bottleneck expansion 4, stem 64 channels)."""
    blocks, groups, width_per_group = RESNET_SPECS[arch]
    shapes = OrderedDict()
    shapes['stem.conv1.weight'] = (64, 3, 7, 7)
    _norm(shapes, 'stem.bn1', 64)
    in_ch = 64
    for stage, count in enumerate(blocks, 1):
        width = groups * width_per_group * 2**(stage - 1)
        out_ch = 256 * 2**(stage - 1)
        for b in range(count):
            name = f'layer{stage}.{b}'
            if b == 0:
                shapes[f'{name}.downsample.0.weight'] = (out_ch, in_ch, 1, 1)
                _norm(shapes, f'{name}.downsample.1', out_ch)
            shapes[f'{name}.conv1.weight'] = (width, in_ch if b == 0 else out_ch, 1, 1)
            _norm(shapes, f'{name}.bn1', width)
            shapes[f'{name}.conv2.weight'] = (width, width // groups, 3, 3)
            _norm(shapes, f'{name}.bn2', width)
            shapes[f'{name}.conv3.weight'] = (out_ch, width, 1, 1)
            _norm(shapes, f'{name}.bn3', out_ch)
        in_ch = out_ch
    return shapes


def _conv(shapes, name, cout, cin, k, bias=True):
    shapes[f'{name}.weight'] = (cout, cin, k, k)
    if bias:
        shapes[f'{name}.bias'] = (cout, )


def centermask2_shapes(arch, lite=False, dcn_stages=(), num_classes=80):
    """A centermask2 CenterMask / CenterMask-Lite checkpoint (ref §3.1, §3.2, §4.1, §6, §8.1)."""
    fpn, towers, mask_convs = (128, 2, 2) if lite else (256, 4, 4)
    shapes = OrderedDict((f'backbone.bottom_up.{k}', v) for k, v in vovnet_shapes(arch, dcn_stages).items())
    in_channels = STAGE_SPECS[arch][2][1:]
    for level, cin in zip((3, 4, 5), in_channels):
        _conv(shapes, f'backbone.fpn_lateral{level}', fpn, cin, 1)
        _conv(shapes, f'backbone.fpn_output{level}', fpn, fpn, 3)
    _conv(shapes, 'backbone.top_block.p6', fpn, fpn, 3)
    _conv(shapes, 'backbone.top_block.p7', fpn, fpn, 3)
    head = 'proposal_generator.fcos_head'
    for tower in ('cls_tower', 'bbox_tower'):
        for i in range(towers):
            _conv(shapes, f'{head}.{tower}.{3 * i}', fpn, fpn, 3)
            shapes[f'{head}.{tower}.{3 * i + 1}.weight'] = (fpn, )  # GroupNorm(32, C)
            shapes[f'{head}.{tower}.{3 * i + 1}.bias'] = (fpn, )
    _conv(shapes, f'{head}.cls_logits', num_classes, fpn, 3)
    _conv(shapes, f'{head}.bbox_pred', 4, fpn, 3)
    _conv(shapes, f'{head}.ctrness', 1, fpn, 3)
    for i in range(5):
        shapes[f'{head}.scales.{i}.scale'] = (1, )
    _mask_and_maskiou(shapes, 'roi_heads.mask_head.', 'roi_heads.maskiou_head.', fpn, mask_convs, num_classes,
                      names=('spatialAtt.conv', 'deconv', 'predictor', 'maskiou'), iou_prefix='')
    return shapes


def _mask_and_maskiou(shapes, mask, maskiou, fpn, num_convs, num_out, names, iou_prefix, feat=''):
    sam, deconv, predictor, iou_pred = names
    for k in range(1, num_convs + 1):
        _conv(shapes, f'{mask}{feat}mask_fcn{k}', fpn, fpn, 3)
    shapes[f'{mask}{feat}{sam}.weight'] = (1, 2, 3, 3)
    shapes[f'{mask}{deconv}.weight'] = (fpn, fpn, 2, 2)  # ConvTranspose2d: (in, out, k, k)
    shapes[f'{mask}{deconv}.bias'] = (fpn, )
    _conv(shapes, f'{mask}{predictor}', num_out, fpn, 1)
    for k in range(1, num_convs + 1):
        _conv(shapes, f'{maskiou}{feat}maskiou_fcn{k}', fpn, fpn + 1 if k == 1 else fpn, 3)
    shapes[f'{maskiou}{feat}maskiou_fc1.weight'] = (1024, fpn * 7 * 7)
    shapes[f'{maskiou}{feat}maskiou_fc1.bias'] = (1024, )
    shapes[f'{maskiou}{feat}maskiou_fc2.weight'] = (1024, 1024)
    shapes[f'{maskiou}{feat}maskiou_fc2.bias'] = (1024, )
    shapes[f'{maskiou}{iou_prefix}{iou_pred}.weight'] = (num_out, 1024)
    shapes[f'{maskiou}{iou_prefix}{iou_pred}.bias'] = (num_out, )


def maskrcnn_benchmark_shapes(arch, lite=False, num_classes=80):
    """A CenterMask (maskrcnn-benchmark, the paper code) checkpoint: ``backbone.body`` / ``backbone.fpn``
    (``fpn_inner{2,3,4}``, ``fpn_layer{2,3,4}``, ``top_blocks.p6/p7``), ``rpn.head`` (FCOS), ``roi_heads.mask``
    (feature_extractor: mask_fcn*, spatialAtt; predictor: conv5_mask, mask_fcn_logits) and ``roi_heads.maskiou``
    (feature_extractor: maskiou_fcn*, maskiou_fc1/2; predictor: maskiou); the mask and MaskIoU class outputs have
    a background channel first (81 for COCO), FCOS has 80."""
    fpn, towers, mask_convs = (128, 2, 2) if lite else (256, 4, 4)
    body = resnet_shapes(arch) if arch in RESNET_SPECS else vovnet_shapes(arch)
    shapes = OrderedDict((f'backbone.body.{k}', v) for k, v in body.items())
    stage_channels = (512, 1024, 2048) if arch in RESNET_SPECS else STAGE_SPECS[arch][2][1:]
    for idx, cin in zip((2, 3, 4), stage_channels):
        _conv(shapes, f'backbone.fpn.fpn_inner{idx}', fpn, cin, 1)
        _conv(shapes, f'backbone.fpn.fpn_layer{idx}', fpn, fpn, 3)
    _conv(shapes, 'backbone.fpn.top_blocks.p6', fpn, fpn, 3)
    _conv(shapes, 'backbone.fpn.top_blocks.p7', fpn, fpn, 3)
    for tower in ('cls_tower', 'bbox_tower'):
        for i in range(towers):
            _conv(shapes, f'rpn.head.{tower}.{3 * i}', fpn, fpn, 3)
            shapes[f'rpn.head.{tower}.{3 * i + 1}.weight'] = (fpn, )
            shapes[f'rpn.head.{tower}.{3 * i + 1}.bias'] = (fpn, )
    _conv(shapes, 'rpn.head.cls_logits', num_classes, fpn, 3)
    _conv(shapes, 'rpn.head.bbox_pred', 4, fpn, 3)
    _conv(shapes, 'rpn.head.centerness', 1, fpn, 3)
    for i in range(5):
        shapes[f'rpn.head.scales.{i}.scale'] = (1, )
    _mask_and_maskiou(shapes, 'roi_heads.mask.', 'roi_heads.maskiou.', fpn, mask_convs, num_classes + 1,
                      names=('spatialAtt.conv', 'predictor.conv5_mask', 'predictor.mask_fcn_logits', 'maskiou'),
                      iou_prefix='predictor.', feat='feature_extractor.')
    return shapes


def fill(shapes, seed=0):
    """Distinct values everywhere (a random permutation, so a value found in the converted model tells where it
    came from), zero-mean and scaled by 1/sqrt(fan-in) for weights so that a forward pass stays finite; positive
    running variances."""
    total = sum(torch.Size(s).numel() for s in shapes.values())
    values = torch.randperm(total, generator=torch.Generator().manual_seed(seed)).double() / total - 0.5
    out, start = OrderedDict(), 0
    for key, shape in shapes.items():
        n = torch.Size(shape).numel()
        tensor = values[start:start + n].reshape(shape)
        if key.endswith('running_var'):
            tensor = tensor.abs() + 0.5
        elif len(shape) > 1:
            tensor = tensor * 2 / (n / shape[0]) ** 0.5
        out[key] = tensor.float()
        start += n
    return out


# Where every source tensor lands in our model, written from the reference layout above and the key names of our
# modules (VoVNet's ConvModule / DepthwiseSeparableConvModule, mmdet's ResNet, FPN, FCOS head, FCN mask head and
# MaskIoU head), independently of the converter: each function walks the same structure as its ``*_shapes``
# counterpart and returns ``source key -> (target key, transform name)`` for every tensor of that checkpoint.

#: How a source tensor becomes the target tensor: ``scalar`` for FCOS ``Scale`` (shape (1,) in the reference,
#: () in mmcv), ``drop_background`` for maskrcnn-benchmark's class outputs (channel 0 is the background).
TRANSFORMS = {
    'identity': lambda t: t,
    'scalar': lambda t: t.reshape(()),
    'drop_background': lambda t: t[1:],
}


def _norm_targets(targets, src, dst):
    for param in NORM:
        targets[f'{src}.{param}'] = (f'{dst}.{param}', 'identity')


def _conv_targets(targets, src, dst, bias=True, transform='identity'):
    for param in ('weight', 'bias') if bias else ('weight', ):
        targets[f'{src}.{param}'] = (f'{dst}.{param}', transform)


def vovnet_targets(arch, dcn_stages=()):
    """Key of :func:`vovnet_shapes` -> (key of our ``VoVNet``, transform). Stem ``stem_n`` is ``stem.{n-1}``; stage
    ``s`` block ``b`` is ``stages.{s-2}.blocks.{b-1}``; a plain / deformable conv unit is a ConvModule
    (``.conv``, ``.bn``; the modulated deformable conv's offset conv is ``.conv.conv_offset``), a depthwise unit a
    DepthwiseSeparableConvModule (``.depthwise_conv.conv``, ``.pointwise_conv.conv``, ``.pointwise_conv.bn``); the
    reference's ``concat`` is ``conv_concat`` and ``ese`` is ``attn``."""
    stem, conv_ch, out_ch, num_layers, blocks, dw = STAGE_SPECS[arch]
    targets = OrderedDict()

    def unit(src, dst, depthwise, dcn=False):
        if depthwise:
            targets[f'{src}/dw_conv3x3.weight'] = (f'{dst}.depthwise_conv.conv.weight', 'identity')
            targets[f'{src}/pw_conv1x1.weight'] = (f'{dst}.pointwise_conv.conv.weight', 'identity')
            _norm_targets(targets, f'{src}/pw_norm', f'{dst}.pointwise_conv.bn')
            return
        if dcn:
            _conv_targets(targets, f'{src}/conv_offset', f'{dst}.conv.conv_offset')
        targets[f'{src}/conv.weight'] = (f'{dst}.conv.weight', 'identity')
        _norm_targets(targets, f'{src}/norm', f'{dst}.bn')

    unit('stem.stem_1', 'stem.0', depthwise=False)
    for n in (2, 3):
        unit(f'stem.stem_{n}', f'stem.{n - 1}', depthwise=dw)
    for s in range(2, 6):
        for b in range(1, blocks[s - 2] + 1):
            in_ch = (stem[2] if s == 2 else out_ch[s - 3]) if b == 1 else out_ch[s - 2]
            osa, ours = f'stage{s}.OSA{s}_{b}', f'stages.{s - 2}.blocks.{b - 1}'
            if dw and in_ch != conv_ch[s - 2]:
                unit(f'{osa}.conv_reduction.OSA{s}_{b}_reduction_0', f'{ours}.conv_reduction', depthwise=False)
            for layer in range(num_layers):
                unit(f'{osa}.layers.{layer}.OSA{s}_{b}_{layer}', f'{ours}.layers.{layer}', depthwise=dw,
                     dcn=s in dcn_stages)
            unit(f'{osa}.concat.OSA{s}_{b}_concat', f'{ours}.conv_concat', depthwise=False)
            _conv_targets(targets, f'{osa}.ese.fc', f'{ours}.attn.fc')
    return targets


def resnet_targets(arch):
    """Key of :func:`resnet_shapes` -> (key of mmdet's ``ResNet`` / ``ResNeXt``, transform): the stem's
    ``stem.conv1`` / ``stem.bn1`` are ``conv1`` / ``bn1``; the residual stages keep their names (``layer{i}.{b}``,
    ``conv{k}``, ``bn{k}``, ``downsample.{0,1}``)."""
    blocks = RESNET_SPECS[arch][0]
    targets = OrderedDict()
    targets['stem.conv1.weight'] = ('conv1.weight', 'identity')
    _norm_targets(targets, 'stem.bn1', 'bn1')
    for stage, count in enumerate(blocks, 1):
        for b in range(count):
            name = f'layer{stage}.{b}'
            if b == 0:
                targets[f'{name}.downsample.0.weight'] = (f'{name}.downsample.0.weight', 'identity')
                _norm_targets(targets, f'{name}.downsample.1', f'{name}.downsample.1')
            for k in (1, 2, 3):
                targets[f'{name}.conv{k}.weight'] = (f'{name}.conv{k}.weight', 'identity')
                _norm_targets(targets, f'{name}.bn{k}', f'{name}.bn{k}')
    return targets


def _fcos_targets(targets, head, towers, centerness):
    """FCOS towers ``nn.Sequential(conv, GroupNorm, ReLU) x N``: position 3i is ``{cls,reg}_convs.i.conv``, 3i+1
    its ``.gn``; ``cls_logits`` / ``bbox_pred`` / centerness are ``conv_cls`` / ``conv_reg`` / ``conv_centerness``;
    ``scales.i.scale`` keeps its name with shape (1,) -> ()."""
    for tower, ours in (('cls_tower', 'cls_convs'), ('bbox_tower', 'reg_convs')):
        for i in range(towers):
            _conv_targets(targets, f'{head}.{tower}.{3 * i}', f'bbox_head.{ours}.{i}.conv')
            _conv_targets(targets, f'{head}.{tower}.{3 * i + 1}', f'bbox_head.{ours}.{i}.gn')
    _conv_targets(targets, f'{head}.cls_logits', 'bbox_head.conv_cls')
    _conv_targets(targets, f'{head}.bbox_pred', 'bbox_head.conv_reg')
    _conv_targets(targets, f'{head}.{centerness}', 'bbox_head.conv_centerness')
    for i in range(5):
        targets[f'{head}.scales.{i}.scale'] = (f'bbox_head.scales.{i}.scale', 'scalar')


def _mask_and_maskiou_targets(targets, mask, maskiou, num_convs, names, iou_prefix, feat='',
                              classes='identity'):
    """SAG-Mask head: ``mask_fcn{k}`` -> ``convs.{k-1}.conv``, the spatial attention conv, the 2x deconv ->
    ``upsample``, the 1x1 class predictor -> ``conv_logits``; MaskIoU head: ``maskiou_fcn{k}`` -> ``convs.{k-1}``
    (plain convs), ``maskiou_fc{1,2}`` -> ``fcs.{0,1}``, the class output -> ``fc_mask_iou``. ``classes``: the
    transform of the two class outputs."""
    sam, deconv, predictor, iou_pred = names
    ours_mask, ours_iou = 'roi_head.mask_head', 'roi_head.mask_iou_head'
    for k in range(1, num_convs + 1):
        _conv_targets(targets, f'{mask}{feat}mask_fcn{k}', f'{ours_mask}.convs.{k - 1}.conv')
    _conv_targets(targets, f'{mask}{feat}{sam}', f'{ours_mask}.spatial_attention.conv', bias=False)
    _conv_targets(targets, f'{mask}{deconv}', f'{ours_mask}.upsample')
    _conv_targets(targets, f'{mask}{predictor}', f'{ours_mask}.conv_logits', transform=classes)
    for k in range(1, num_convs + 1):
        _conv_targets(targets, f'{maskiou}{feat}maskiou_fcn{k}', f'{ours_iou}.convs.{k - 1}')
    for k in (1, 2):
        _conv_targets(targets, f'{maskiou}{feat}maskiou_fc{k}', f'{ours_iou}.fcs.{k - 1}')
    _conv_targets(targets, f'{maskiou}{iou_prefix}{iou_pred}', f'{ours_iou}.fc_mask_iou', transform=classes)


def centermask2_targets(arch, lite=False, dcn_stages=()):
    """Key of :func:`centermask2_shapes` -> (key of our ``CenterMask``, transform): ``backbone.bottom_up.*`` ->
    ``backbone.*`` (:func:`vovnet_targets`); ``fpn_lateral{3,4,5}`` / ``fpn_output{3,4,5}`` ->
    ``neck.lateral_convs.{0,1,2}.conv`` / ``neck.fpn_convs.{0,1,2}.conv``, ``top_block.p6`` / ``p7`` ->
    ``neck.fpn_convs.3`` / ``4``; FCOS (:func:`_fcos_targets`); mask and MaskIoU heads under ``roi_head.``."""
    towers, mask_convs = (2, 2) if lite else (4, 4)
    targets = OrderedDict((f'backbone.bottom_up.{k}', (f'backbone.{dst}', transform))
                          for k, (dst, transform) in vovnet_targets(arch, dcn_stages).items())
    for i, level in enumerate((3, 4, 5)):
        _conv_targets(targets, f'backbone.fpn_lateral{level}', f'neck.lateral_convs.{i}.conv')
        _conv_targets(targets, f'backbone.fpn_output{level}', f'neck.fpn_convs.{i}.conv')
    _conv_targets(targets, 'backbone.top_block.p6', 'neck.fpn_convs.3.conv')
    _conv_targets(targets, 'backbone.top_block.p7', 'neck.fpn_convs.4.conv')
    _fcos_targets(targets, 'proposal_generator.fcos_head', towers, 'ctrness')
    _mask_and_maskiou_targets(targets, 'roi_heads.mask_head.', 'roi_heads.maskiou_head.', mask_convs,
                              names=('spatialAtt.conv', 'deconv', 'predictor', 'maskiou'), iou_prefix='')
    return targets


def maskrcnn_benchmark_targets(arch, lite=False):
    """Key of :func:`maskrcnn_benchmark_shapes` -> (key of our ``CenterMask``, transform): ``backbone.body.*`` ->
    ``backbone.*`` (:func:`vovnet_targets` or :func:`resnet_targets`); ``fpn_inner{2,3,4}`` / ``fpn_layer{2,3,4}``
    -> ``neck.lateral_convs.{0,1,2}.conv`` / ``neck.fpn_convs.{0,1,2}.conv``, ``top_blocks.p6`` / ``p7`` ->
    ``neck.fpn_convs.3`` / ``4``; FCOS under ``rpn.head``; the mask predictor's ``conv5_mask`` (deconv) and
    ``mask_fcn_logits``, the MaskIoU predictor's ``maskiou``, the last two without their background channel 0."""
    towers, mask_convs = (2, 2) if lite else (4, 4)
    body = resnet_targets(arch) if arch in RESNET_SPECS else vovnet_targets(arch)
    targets = OrderedDict((f'backbone.body.{k}', (f'backbone.{dst}', transform))
                          for k, (dst, transform) in body.items())
    for i, idx in enumerate((2, 3, 4)):
        _conv_targets(targets, f'backbone.fpn.fpn_inner{idx}', f'neck.lateral_convs.{i}.conv')
        _conv_targets(targets, f'backbone.fpn.fpn_layer{idx}', f'neck.fpn_convs.{i}.conv')
    _conv_targets(targets, 'backbone.fpn.top_blocks.p6', 'neck.fpn_convs.3.conv')
    _conv_targets(targets, 'backbone.fpn.top_blocks.p7', 'neck.fpn_convs.4.conv')
    _fcos_targets(targets, 'rpn.head', towers, 'centerness')
    _mask_and_maskiou_targets(
        targets, 'roi_heads.mask.', 'roi_heads.maskiou.', mask_convs,
        names=('spatialAtt.conv', 'predictor.conv5_mask', 'predictor.mask_fcn_logits', 'maskiou'),
        iou_prefix='predictor.', feat='feature_extractor.', classes='drop_background')
    return targets


def expected_targets(layout, arch, lite=False, dcn_stages=()):
    """``source key -> (target key, transform name)`` for every tensor of the ``layout`` ('centermask2' or
    'maskrcnn-benchmark') checkpoint that :func:`centermask2_shapes` / :func:`maskrcnn_benchmark_shapes` describe."""
    if layout == 'centermask2':
        return centermask2_targets(arch, lite, dcn_stages)
    if dcn_stages:
        raise ValueError('the maskrcnn-benchmark layouts here have no deformable stages')
    return maskrcnn_benchmark_targets(arch, lite)


def expected_target(layout, arch, source_key, lite=False, dcn_stages=()):
    """``(target key, transform name)`` of one source key (:func:`expected_targets`)."""
    return expected_targets(layout, arch, lite, dcn_stages)[source_key]
