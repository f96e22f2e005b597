from .box_postprocess import detectron2_box_scale, final_boxes
from .mask_paste import paste_masks_in_image, paste_masks_in_images

__all__ = ['detectron2_box_scale', 'final_boxes', 'paste_masks_in_image', 'paste_masks_in_images']
