from .box_postprocess import final_boxes
from .mask_paste import paste_masks_in_image, paste_masks_in_images

__all__ = ['final_boxes', 'paste_masks_in_image', 'paste_masks_in_images']
