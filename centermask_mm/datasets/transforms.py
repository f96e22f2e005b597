"""Image loading that names the file it cannot read, and can skip it (issue 11, reliability)."""
import io
import logging
import warnings
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS
from mmengine import fileio
from mmengine.logging import print_log


class BrokenImageError(OSError):
    """An image file that cannot be read or decoded (missing, empty, truncated, not an image); names the file."""


#: Pillow modes of single-channel images deeper than 8 bits, which mmcv's pillow decoding clips to 255.
_PILLOW_DEEP_GRAY_MODES = ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N')


@TRANSFORMS.register_module()
class SafeLoadImageFromFile(LoadImageFromFile):
    """mmcv's :class:`LoadImageFromFile` (same arguments and output keys) that fails naming the file, can skip it,
    and decodes 16-bit grayscale images with the pillow backend.

    Differences from mmcv's transform, which it subclasses for them only:

    * every read or decode failure (missing, empty, truncated or non-image file) raises
      :class:`BrokenImageError` with the file path and the cause; mmcv raises the backend's own error, which for an
      empty file (cv2) or a non-image file (pillow) does not name the file, or an ``AssertionError``;
    * ``skip_broken=True``: such a file is logged as a warning naming it and the transform returns ``None``, on
      which mmengine's ``BaseDataset`` loads another (random) sample in its place (``max_refetch``), so one bad
      file does not end a training run. mmcv's ``ignore_empty=True`` does the same, silently in mmcv and with the
      warning here. In test mode mmengine refuses a ``None`` sample, so a broken test image still stops the run
      (after the warning);
    * with ``imdecode_backend='pillow'`` a 16-bit (or 32-bit integer) grayscale PNG is decoded by cv2 instead,
      which scales it to 8 bits like every other image; mmcv's pillow path clips it to 255 (a white image).

    Verified unchanged from mmcv (cv2 and pillow backends, ``color_type='color'``): 8-bit grayscale is replicated to
    3 channels, 16-bit colour is scaled to 8 bits, RGBA loses its alpha channel; the result is always ``uint8``
    BGR ``[H, W, 3]`` (``tests/test_reliability/test_bad_data.py``).
    """

    def __init__(self, *args, skip_broken: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if skip_broken not in (True, False):
            raise ValueError(f'SafeLoadImageFromFile: invalid skip_broken={skip_broken!r}; valid choices are '
                             '[True, False]')
        self.skip_broken = skip_broken

    def _read_bytes(self, filename: str) -> bytes:
        if self.file_client_args is not None:
            return fileio.FileClient.infer_client(self.file_client_args, filename).get(filename)
        return fileio.get(filename, backend_args=self.backend_args)

    def _decode(self, img_bytes: bytes) -> np.ndarray:
        if not img_bytes:
            raise ValueError('the file is empty')
        backend = self.imdecode_backend
        if backend == 'pillow':
            from PIL import Image
            with Image.open(io.BytesIO(img_bytes)) as probe:  # reads the header only
                if probe.mode in _PILLOW_DEEP_GRAY_MODES:
                    backend = 'cv2'
        img = mmcv.imfrombytes(img_bytes, flag=self.color_type, backend=backend)
        if img is None:
            raise ValueError(f'the {backend} decoder returned no image (truncated or not an image file)')
        return img

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            img = self._decode(self._read_bytes(filename))
        except Exception as e:
            message = f'cannot read image file {filename!r}: {type(e).__name__}: {e}'
            if not (self.skip_broken or self.ignore_empty):
                raise BrokenImageError(message + ' (skip it with skip_broken=True in the pipeline)') from e
            message += '; skipped (skip_broken=True), the dataset loads another sample in its place'
            warnings.warn(message)
            print_log(message, logger='current', level=logging.WARNING)
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', skip_broken={self.skip_broken})'
