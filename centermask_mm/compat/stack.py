"""Which OpenMMLab stack is installed, and the check ``import centermask_mm`` runs before it imports mmdet.

Two stacks provide the import packages ``mmengine``, ``mmcv`` and ``mmdet``:

* ``openmmlab``: the official distributions ``mmengine``, ``mmcv``, ``mmdet`` (mmdet 3.3.0 refuses mmcv >= 2.2);
* ``onedl``: the maintained fork's ``onedl-mmengine``, ``onedl-mmcv``, ``onedl-mmdetection``.

They install the same folders, so a pip install of one set over the other leaves a mix that imports but misbehaves;
:func:`check_stack` refuses a mix, a missing library and a version outside :data:`SUPPORTED_STACKS`, and its error
names the supported versions of both stacks. The rest of :mod:`centermask_mm.compat` asks :func:`installed_stack`
where the two stacks behave differently.

This file is plain data and standard-library code at import (``setup.py`` reads :data:`SUPPORTED_STACKS` from it
for its extras, before anything is installed).
"""
import importlib.metadata

#: stack -> import package -> (distribution, supported versions as a pip specifier). setup.py's extras
#: ``[openmmlab]`` and ``[onedl]`` are made from this table.
SUPPORTED_STACKS = {
    'openmmlab': {
        'mmengine': ('mmengine', '>=0.10.4,<1.0'),
        'mmcv': ('mmcv', '>=2.0.0,<2.2.0'),
        'mmdet': ('mmdet', '>=3.3.0,<3.4'),
    },
    'onedl': {
        'mmengine': ('onedl-mmengine', '>=0.10.12,<1.0'),
        'mmcv': ('onedl-mmcv', '>=2.3,<2.4'),
        'mmdet': ('onedl-mmdetection', '>=3.5,<3.6'),
    },
}


class StackError(ImportError):
    """No supported OpenMMLab stack is installed (missing, too old or too new, or two stacks mixed)."""


def extras_require():
    """setup.py's extras: ``{'openmmlab': ['mmengine>=0.10.4,<1.0', ...], 'onedl': [...]}``."""
    return {stack: [dist + spec for dist, spec in packages.values()] for stack, packages in SUPPORTED_STACKS.items()}


def _installed_versions():
    versions = {}
    for packages in SUPPORTED_STACKS.values():
        for dist, _ in packages.values():
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                versions[dist] = None
    return versions


def _supported_text():
    lines = []
    for stack, packages in SUPPORTED_STACKS.items():
        pins = ', '.join(dist + spec for dist, spec in packages.values())
        lines.append(f'  {stack}: {pins}  (pip install "centermask_mm[{stack}]")')
    return '\n'.join(lines)


def check_stack(versions=None) -> str:
    """The name of the installed stack (``'openmmlab'`` or ``'onedl'``); :class:`StackError` otherwise.

    Args:
        versions (dict | None): distribution name -> installed version (``None`` when not installed), for every
            distribution of :data:`SUPPORTED_STACKS`. Default: read from the installed packages' metadata.
    """
    from packaging.specifiers import SpecifierSet  # a dependency of mmengine and mmcv on either stack
    if versions is None:
        versions = _installed_versions()
    present = {stack: {dist: versions.get(dist) for dist, _ in packages.values() if versions.get(dist)}
               for stack, packages in SUPPORTED_STACKS.items()}
    help_text = f'centermask_mm supports one of these OpenMMLab stacks:\n{_supported_text()}'
    mixed = [stack for stack, found in present.items() if found]
    if len(mixed) > 1:
        found = '; '.join(f'{stack}: ' + ', '.join(f'{d} {v}' for d, v in present[stack].items()) for stack in mixed)
        raise StackError(
            f'Distributions of two OpenMMLab stacks are installed over each other ({found}). They install the same '
            'import folders (mmengine, mmcv, mmdet), so the files on disk are a mix of both. Uninstall both sets '
            f'and install one stack.\n{help_text}')
    stack = mixed[0] if mixed else None
    if stack is None:
        raise StackError(f'No OpenMMLab stack is installed (none of {", ".join(versions)}).\n{help_text}')
    problems = []
    for package, (dist, spec) in SUPPORTED_STACKS[stack].items():
        version = versions.get(dist)
        if version is None:
            problems.append(f'{dist} is not installed (import name {package})')
        elif version not in SpecifierSet(spec, prereleases=True):
            problems.append(f'{dist} {version} is installed, {dist}{spec} is supported')
    if problems:
        raise StackError(f'The {stack} stack is incomplete or unsupported: {"; ".join(problems)}.\n{help_text}')
    return stack


_STACK = None


def installed_stack() -> str:
    """:func:`check_stack` of the installed packages, computed once per process."""
    global _STACK
    if _STACK is None:
        _STACK = check_stack()
    return _STACK
