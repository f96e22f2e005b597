"""Arrows point one way: tools -> centermask_mm -> mmdet/mmcv/mmengine. The package imports nothing from tools/,
``utils`` (small generic helpers) imports no other part of the package but itself, and only ``compat`` assigns
attributes of other modules (read from the source, so a lazy import inside a function counts too)."""
import ast
import glob
import os.path as osp

from tests.helpers import REPO_ROOT

PACKAGE = osp.join(REPO_ROOT, 'centermask_mm')


def imported_modules(path):
    """Absolute names of every module ``path`` imports (relative imports resolved against its package)."""
    package = osp.relpath(osp.dirname(path), REPO_ROOT).replace(osp.sep, '.')
    names = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            names += [base] + [f'{base}.{alias.name}' for alias in node.names]
    return names


def sources():
    return sorted(glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True))


def test_the_package_imports_nothing_from_tools():
    bad = [(osp.relpath(p, REPO_ROOT), name) for p in sources() for name in imported_modules(p)
           if name == 'tools' or name.startswith('tools.')]
    assert not bad, bad


def test_utils_imports_no_other_part_of_the_package():
    bad = [(osp.relpath(p, REPO_ROOT), name) for p in sources() if '/centermask_mm/utils/' in p
           for name in imported_modules(p)
           if name.startswith('centermask_mm.') and not name.startswith('centermask_mm.utils')]
    assert not bad, bad


def test_the_finder_sees_relative_and_lazy_imports(tmp_path):
    """The scan itself: a relative import and one inside a function are both found."""
    path = osp.join(PACKAGE, 'utils', 'benchmark.py')
    assert any(name.startswith('torch') for name in imported_modules(path))
    probe = tmp_path / 'probe.py'
    probe.write_text('def f():\n    from tools.analysis_tools import model_comparison\n')
    assert 'tools.analysis_tools' in imported_modules(str(probe))
