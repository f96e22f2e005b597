"""Patch (maintained fork only): configs that inherit ``mmseg::...`` find onedl-mmsegmentation's configs.

Why: mmengine resolves a ``<scope>::<path>`` base config through its ``MODULE2PACKAGE`` table (scope -> distribution
name) and that distribution's install folder, falling back to a module of that name. onedl-mmengine keeps the
official name ``mmsegmentation`` for ``mmseg``; on the fork that distribution is ``onedl-mmsegmentation`` and no
module is called ``mmsegmentation``, so every ``mmseg::`` config (``projects/vovnet_semseg``) fails with
"mmsegmentation is not installed". ``mmdet::`` and ``mmpretrain::`` resolve on the fork through their module names.

What it patches: :func:`enable_fork_config_scopes` (called when ``centermask_mm`` is imported) points
``MODULE2PACKAGE``'s entries of :data:`FORK_SCOPE_DISTRIBUTIONS` at the fork's distributions, on the onedl stack
(:mod:`.stack`) and only for those installed. The official stack is left as it is.

How to turn it off: call :func:`disable_fork_config_scopes` after ``import centermask_mm``.
"""
import importlib.metadata

from mmengine.config.utils import MODULE2PACKAGE

from .stack import installed_stack

#: config scope -> the fork's distribution, where mmengine's official name does not resolve on the fork
FORK_SCOPE_DISTRIBUTIONS = {'mmseg': 'onedl-mmsegmentation'}

_OFFICIAL = {scope: MODULE2PACKAGE.get(scope) for scope in FORK_SCOPE_DISTRIBUTIONS}


def _installed(distribution):
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def enable_fork_config_scopes() -> None:
    """On the onedl stack, map each scope of :data:`FORK_SCOPE_DISTRIBUTIONS` to its installed fork distribution."""
    if installed_stack() != 'onedl':
        return
    for scope, distribution in FORK_SCOPE_DISTRIBUTIONS.items():
        if _installed(distribution):
            MODULE2PACKAGE[scope] = distribution


def disable_fork_config_scopes() -> None:
    """Undo :func:`enable_fork_config_scopes`: mmengine's own names are back."""
    for scope, name in _OFFICIAL.items():
        if name is None:
            MODULE2PACKAGE.pop(scope, None)
        else:
            MODULE2PACKAGE[scope] = name
