from .vovnet import VoVNetConversion, VoVNetConversionError, convert_vovnet_state_dict, load_vovnet_weights

__all__ = ['VoVNetConversion', 'VoVNetConversionError', 'convert_vovnet_state_dict', 'load_vovnet_weights']
