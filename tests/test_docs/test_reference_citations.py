"""Comments that resolve: every ``ref §N.M`` and ``findings Dn`` citation in the repository names a heading of
``docs/reference.md``, and no file points to reference documents outside the repository.

What counts as a citation (in the ``.py`` files under centermask_mm/, configs/, tools/, tests/, projects/, the ``.md``
files under configs/ and projects/, README.md and docs/*.md):

* every ``§<number>`` (``§3``, ``§4.5``; ranges ``§3-§6`` cite every top-level section in between), except one
  right after ``CenterMask``, ``paper`` or ``KN``, which number the paper's own sections;
* every ``D<n>`` in a list after the word ``findings`` (``findings D5``, ``findings D2/D3``, ``findings D4-D12``).

A citation resolves when a ``#`` heading of docs/reference.md starts with that number or id as its first word
(``§3.3`` -> ``### 3.3 ...``, ``§3`` -> ``## 3. ...``, ``D2`` -> ``### D2 ...``; ``D1`` does not match ``D10``).
This file itself is not scanned (its examples are made up).
"""
import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / 'docs' / 'reference.md'
THIS_FILE = Path(__file__).resolve()
PY_DIRS = ('centermask_mm', 'configs', 'tools', 'tests', 'projects')
MD_DIRS = ('configs', 'projects', 'docs')
SKIP_DIRS = {'.git', '.venv', 'data', 'work_dirs', '__pycache__', '.pytest_cache', '.hypothesis', 'build', 'dist',
             'checkpoints'}
#: The non-public location the citations used to point to (split so that this file does not contain it).
SHARED_REFERENCE = 'shared' + '/reference'

SECTION = re.compile(r'§\s?(\d+(?:\.\d+)*)')
SECTION_RANGE = re.compile(r'§\s?(\d+)\s*[-–]\s*§\s?(\d+)\b(?!\.\d)')
OTHER_DOCUMENT = re.compile(r'(?:CenterMask|[Pp]aper|KN)\s*$')
FINDINGS = re.compile(r'(?i:findings)\s+(?:#\s*)?(D\d+(?:\s*(?:/|,|-|–|and|or)\s*D\d+)*)')
FINDING_RANGE = re.compile(r'D(\d+)\s*[-–]\s*D(\d+)')
FINDING = re.compile(r'D(\d+)')


def reference_headings(text: str) -> Set[str]:
    """First word of every ``#`` heading outside code fences, without a trailing dot: ``'3.3'``, ``'3'``, ``'D2'``."""
    headings, fenced = set(), False
    for line in text.splitlines():
        if line.startswith('```'):
            fenced = not fenced
        elif not fenced and re.match(r'#{1,6}\s', line):
            words = line.lstrip('#').split()
            if words:
                headings.add(words[0].rstrip('.'))
    return headings


def citations(text: str) -> List[Tuple[int, str]]:
    """``(line, key)`` of every citation in ``text``: keys ``'3.3'`` for ``§3.3`` and ``'D2'`` for ``findings D2``."""
    found = []

    def line_of(pos):
        return text.count('\n', 0, pos) + 1

    for m in SECTION.finditer(text):
        line_start = text.rfind('\n', 0, m.start()) + 1
        if OTHER_DOCUMENT.search(text[line_start:m.start()]):
            continue
        found.append((line_of(m.start()), m.group(1)))
    for m in SECTION_RANGE.finditer(text):
        first, last = int(m.group(1)), int(m.group(2))
        found.extend((line_of(m.start()), str(n)) for n in range(first + 1, last))
    for m in FINDINGS.finditer(text):
        ids = {int(n) for n in FINDING.findall(m.group(1))}
        for r in FINDING_RANGE.finditer(m.group(1)):
            ids.update(range(int(r.group(1)), int(r.group(2)) + 1))
        found.extend((line_of(m.start()), f'D{n}') for n in sorted(ids))
    return found


def scanned_files() -> List[Path]:
    files = set()
    for top in PY_DIRS:
        files.update((ROOT / top).rglob('*.py'))
    for top in MD_DIRS:
        files.update((ROOT / top).rglob('*.md'))
    files.add(ROOT / 'README.md')
    files.discard(REFERENCE)
    files.discard(THIS_FILE)
    return sorted(f for f in files if f.is_file() and not SKIP_DIRS.intersection(f.relative_to(ROOT).parts))


def all_citations() -> Dict[str, List[Tuple[int, str]]]:
    return {str(f.relative_to(ROOT)): citations(f.read_text(encoding='utf-8')) for f in scanned_files()}


def unresolved(cites: Dict[str, List[Tuple[int, str]]], headings: Set[str]) -> List[str]:
    return [f'{path}:{line}: {"§" if key[0].isdigit() else "findings "}{key}'
            for path, found in cites.items() for line, key in found if key not in headings]


def test_reference_has_the_core_sections():
    headings = reference_headings(REFERENCE.read_text(encoding='utf-8'))
    expected = {'1', '1.1', '1.2', '1.3', '1.4', '1.5', '2', '3', '3.1', '3.2', '3.3', '3.4', '3.5', '4', '4.1', '4.2',
                '4.3', '4.4', '4.5', '5', '6', '7', '7.1', '7.2', '7.3', '8', '8.1', '8.2', '8.3'}
    expected |= {f'D{n}' for n in range(1, 14)}
    assert expected <= headings, sorted(expected - headings)


def test_every_citation_resolves_to_a_heading():
    headings = reference_headings(REFERENCE.read_text(encoding='utf-8'))
    cites = all_citations()
    # the scan sees the citations (a broken pattern must not pass by finding nothing)
    keys = {key for found in cites.values() for _, key in found}
    assert {'1.1', '3.3', '4.5', '8.1', 'D2', 'D4'} <= keys, sorted(keys)
    missing = unresolved(cites, headings)
    assert not missing, 'citations without a heading in docs/reference.md:\n' + '\n'.join(missing)


def test_a_citation_of_a_missing_section_is_reported():
    headings = reference_headings('## 3. FPN\n### 3.3 Decoding\n### D2 Clipping\n### D10 Area\n'
                                  '```\n# 9.9 not a heading\n```\n')
    text = ('x = 1  # ref §3.3 and §9.9; findings D2/D1\n'
            '"""CenterMask §2.4 is the paper\'s; ref §3-§5, docs/reference.md\n    §3."""\n'
            '# findings D10-D11\n')
    assert citations(text) == [(1, '3.3'), (1, '9.9'), (2, '3'), (2, '5'), (3, '3'), (2, '4'), (1, 'D1'), (1, 'D2'),
                               (4, 'D10'), (4, 'D11')]
    assert unresolved({'f.py': citations(text)}, headings) == [
        'f.py:1: §9.9', 'f.py:2: §5', 'f.py:2: §4', 'f.py:1: findings D1', 'f.py:4: findings D11']


def test_no_file_points_to_the_shared_reference_documents():
    offenders = []
    for path in sorted(ROOT.rglob('*')):
        rel = path.relative_to(ROOT)
        if SKIP_DIRS.intersection(rel.parts) or not path.is_file() or path == THIS_FILE:
            continue
        data = path.read_bytes()
        if SHARED_REFERENCE.encode() in data:
            lines = [i + 1 for i, line in enumerate(data.splitlines()) if SHARED_REFERENCE.encode() in line]
            offenders.append(f'{rel}: lines {lines}')
    assert not offenders, ('files naming documents outside the repository (cite docs/reference.md instead):\n' +
                           '\n'.join(offenders))
