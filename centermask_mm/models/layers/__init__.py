from .mask_paste import paste_masks_in_image

__all__ = ['paste_masks_in_image']
