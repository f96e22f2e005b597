from .vovnet import OSABlock, VoVNet

__all__ = ['VoVNet', 'OSABlock']
