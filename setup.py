"""centermask_mm: CenterMask and VoVNetV2 as mmdetection 3.x components."""
import os.path as osp

from setuptools import find_packages, setup


HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    namespace = {}
    with open(osp.join(HERE, 'centermask_mm', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_stack_extras():
    """The extras [openmmlab] and [onedl] from centermask_mm/compat/stack.py (plain data, no imports needed)."""
    namespace = {}
    with open(osp.join(HERE, 'centermask_mm', 'compat', 'stack.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['extras_require']()


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
    # Requirements by what the code imports, not by distribution name: mmengine, mmcv and mmdet come from either the
    # official OpenMMLab distributions or the maintained fork's (onedl-*), which install the same import folders.
    # Requiring one set here would make pip install it over the other; `import centermask_mm` checks that one
    # supported stack is there and names both when not (centermask_mm/compat/stack.py).
    install_requires=[
        'torch>=2.1',
        'torchvision',
        'setuptools>=77,<82',  # mmengine's `mmdet::` config resolution imports pkg_resources
        'numpy',
        'pycocotools>=2.0.8',
        'faster-coco-eval>=1.8,<2',  # Boundary AP (centermask_mm.evaluation)
        'scipy',
        'shapely',
        'opencv-python',
    ],
    extras_require={
        # pip install "centermask_mm[openmmlab]": the official stack (mmcv from PyPI has no compiled ops for recent
        # torch: build it as tools/build_mmcv_wheel.sh does, or install a prebuilt wheel first).
        # pip install "centermask_mm[onedl]": the maintained fork (onedl-mmcv is an sdist on PyPI, built the same
        # way; prebuilt wheels are on the fork's own index).
        **read_stack_extras(),
        'tests': ['pytest>=8', 'timm>=1.0,<2'],
    },
    license='Apache-2.0',
    zip_safe=False,
)
