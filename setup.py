"""centermask_mm: CenterMask and VoVNetV2 as mmdetection 3.x components."""
import os.path as osp

from setuptools import find_packages, setup


HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    namespace = {}
    with open(osp.join(HERE, 'centermask_mm', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_readme():
    path = osp.join(HERE, 'README.md')
    if not osp.exists(path):
        return ''
    with open(path, encoding='utf-8') as f:
        return f.read()


setup(
    name='centermask_mm',
    version=read_version(),
    description='CenterMask (CVPR 2020) and VoVNetV2 as OpenMMLab (mmdet 3.x) components',
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['centermask_mm', 'centermask_mm.*']),  # not tools/, tests/, configs/
    python_requires='>=3.10',
    install_requires=[
        'torch>=2.1',
        'torchvision',
        'mmengine>=0.10.4,<1.0',
        'mmcv>=2.0.0,<2.2.0',  # mmdet 3.3.0 refuses mmcv >= 2.2.0 at import
        'mmdet>=3.3.0,<3.4',
        'setuptools>=77,<82',  # mmengine's `mmdet::` config resolution imports pkg_resources
        'numpy',
        'pycocotools>=2.0.8',
        'faster-coco-eval>=1.8,<2',  # Boundary AP (centermask_mm.evaluation)
        'scipy',
        'shapely',
        'opencv-python',
    ],
    extras_require={'tests': ['pytest>=8', 'timm>=1.0,<2']},
    license='Apache-2.0',
    zip_safe=False,
)
