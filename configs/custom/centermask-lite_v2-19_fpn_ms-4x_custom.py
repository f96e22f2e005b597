# CenterMask-Lite V2-19 on your own COCO-format data: set data_root and classes, nothing else. Expected layout:
# data_root/annotations/instances_{train,val}.json, images in data_root/train/ and data_root/val/.
_base_ = '../centermask/centermask-lite_v2-19_fpn_ms-4x_coco.py'

data_root = 'data/my_dataset/'
classes = ('cat', 'dog')

# Derived from the two lines above: the class count is model.num_classes only (CenterMask writes it into the FCOS,
# mask and MaskIoU heads), and mmdet's NumClassCheckHook compares it with the dataset's classes before training.
metainfo = dict(classes=classes)
model = dict(num_classes=len(classes))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo, data_prefix=dict(img='train/'),
                                     ann_file='annotations/instances_train.json'))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo, data_prefix=dict(img='val/'),
                                   ann_file='annotations/instances_val.json'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
custom_hooks = [dict(type='NumClassCheckHook')]
