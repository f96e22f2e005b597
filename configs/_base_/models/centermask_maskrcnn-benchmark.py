# How the paper code (youngwanLEE/CenterMask, maskrcnn-benchmark) differs from centermask2 in the network and its
# decoding (ref §3.3, §4.2, §7.1), as model overrides for the zoo configs of its published checkpoints:
# BGR255 input with its own mean, FCOS regression exp(scale * x) in pixels (no stride normalisation), candidates
# above 0.03, score cls * ctr (no sqrt), boxes clipped to the image, legacy RoIAlign (aligned=False, 2 samples).
# Not reproduced here: its box area with +1 and eps 1e-6 in Eq. 2, its clip to (w - 1, h - 1), its mask pasting
# (maskrcnn-benchmark's Masker); the final post-processing is centermask2's.
maskrcnn_benchmark_fcos_decode = dict(score_thr=0.03, score_sqrt=False, clip_bbox=True)
maskrcnn_benchmark_model = dict(
    data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717]),
    bbox_head=dict(norm_on_bbox=False),
    roi_head=dict(mask_roi_extractor=dict(roi_layer=dict(sampling_ratio=2, aligned=False))),
    train_cfg=dict(rpn_proposal=maskrcnn_benchmark_fcos_decode),
    test_cfg=dict(rpn=maskrcnn_benchmark_fcos_decode))
