from .fcos_iou_loss import FCOSIoULoss, fcos_iou_loss

__all__ = ['FCOSIoULoss', 'fcos_iou_loss']
