# 2x of the 3x recipe (the paper code's *_ms_2x.yaml, detectron's 2x = 24 epochs): 180k iters, steps 120k/160k;
# everything else (data, warmup, optimizer) as ms-poly-270k_coco-instance.py.
_base_ = './ms-poly-270k_coco-instance.py'

max_iter = 180000
train_cfg = dict(max_iters=max_iter)
param_scheduler = [  # the same warmup, earlier steps
    _base_.param_scheduler[0],
    dict(type='MultiStepLR', begin=0, end=max_iter, by_epoch=False, milestones=[120000, 160000], gamma=0.1),
]
