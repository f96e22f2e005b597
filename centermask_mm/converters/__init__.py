from .centermask import (CenterMaskConversion, CenterMaskConversionError, check_against_model,
                         convert_centermask_state_dict, convert_for_config, load_centermask_checkpoint,
                         save_converted_detector)
from .vovnet import VoVNetConversion, VoVNetConversionError, convert_vovnet_state_dict, load_vovnet_weights

__all__ = ['CenterMaskConversion', 'CenterMaskConversionError', 'check_against_model',
           'convert_centermask_state_dict', 'convert_for_config', 'load_centermask_checkpoint',
           'save_converted_detector', 'VoVNetConversion', 'VoVNetConversionError', 'convert_vovnet_state_dict',
           'load_vovnet_weights']
