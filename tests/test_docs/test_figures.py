"""Published figures come with their commands, and those commands exist as written.

* ``make benchmark`` runs exactly the command the README and docs/benchmarks.md give for the VoVNet-against-timm row.
* Every command in a fenced ``bash`` block of README.md, docs/, configs/*/README.md and projects/*/README.md that
  runs a script of this repository names a file that exists, and every ``--option`` it passes is one the script
  declares (``add_argument('--option'``) or, for mmdet's tools, that mmdet's script declares.
* Every section (text between two headings) that states a measured figure (a time, a rate, a ratio like ``0.62x``,
  a size in MB/GB, a percentage, an AP) also holds a command: a ``bash`` block, or a code span naming a script under
  ``tools/``, a ``make`` target or a test file. docs/reference.md is the reference's behaviour, not our measurements,
  and is not scanned.
"""
import glob
import os.path as osp
import re
import shlex

import pytest

from tests.helpers import REPO_ROOT

FENCE = re.compile(r'^\s*```(\w*)')
HEADING = re.compile(r'^#{1,6}\s')
FIGURE = re.compile(r'(?<![\w.])\d+(?:\.\d+)?\s?(?:ms|s|min|img/s|images/s|GB|GiB|MB|MiB|%|x)(?!\w)'
                    r'|\bAP\b[^|.]{0,20}?\d\.\d')
COMMAND = re.compile(r'```bash|`(?:\.venv/bin/python |python3? |bash )?tools/[^`]+`|`make \w+`|tests/test_\w+')
SCRIPT = re.compile(r'^(?:tools|projects)/\S+\.(?:py|sh)$')


def documents(with_reference=False):
    files = [osp.join(REPO_ROOT, 'README.md')]
    files += sorted(glob.glob(osp.join(REPO_ROOT, 'docs', '**', '*.md'), recursive=True))
    files += sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '*', 'README.md')))
    files += sorted(glob.glob(osp.join(REPO_ROOT, 'projects', '*', 'README.md')))
    return [f for f in files if with_reference or osp.basename(f) != 'reference.md']


def bash_commands(path):
    """The commands of the file's ``bash`` blocks: continuation lines joined, comments dropped."""
    commands, block, lang, in_fence = [], [], '', False
    with open(path, encoding='utf-8') as f:
        for line in f:
            match = FENCE.match(line)
            if match:
                if in_fence and lang == 'bash':
                    text = re.sub(r'\\\n\s*', ' ', ''.join(block))
                    commands += [ln.split(' #')[0].strip() for ln in text.splitlines()
                                 if ln.strip() and not ln.strip().startswith('#')]
                in_fence, lang, block = not in_fence, match.group(1), []
                continue
            if in_fence:
                block.append(line)
    return commands


def declared_options(script):
    """Every ``'--name'`` string in the script, and for mmdet's train/test tools the options of mmdet's own."""
    sources = [osp.join(REPO_ROOT, script)]
    if script in ('tools/train.py', 'tools/test.py'):
        import mmdet
        sources.append(osp.join(osp.dirname(mmdet.__file__), '.mim', script))
    options = set()
    for source in sources:
        if osp.isfile(source):
            with open(source, encoding='utf-8') as f:
                options.update(re.findall(r'''['"](--[\w-]+)['"]''', f.read()))
    return options


def script_calls():
    """(document, script, options passed) for every documented command that runs a script of the repository."""
    calls = []
    for doc in documents(with_reference=True):
        for command in bash_commands(doc):
            for part in re.split(r'&&|;|\|', command):
                try:
                    words = shlex.split(part)
                except ValueError:
                    words = part.split()
                scripts = [i for i, w in enumerate(words) if SCRIPT.match(w)]
                if scripts:
                    i = scripts[0]
                    options = [w.split('=')[0] for w in words[i + 1:] if w.startswith('--')]
                    calls.append((osp.relpath(doc, REPO_ROOT), words[i], options))
    return calls


def test_make_benchmark_runs_what_the_readme_says():
    with open(osp.join(REPO_ROOT, 'Makefile')) as f:
        makefile = f.read()
    recipe = re.search(r'^benchmark:.*\n\t(.+)$', makefile, re.MULTILINE).group(1)
    recipe = recipe.replace('$(PY)', '.venv/bin/python').strip()
    for doc in ('README.md', osp.join('docs', 'benchmarks.md')):
        with open(osp.join(REPO_ROOT, doc)) as f:
            stated = re.findall(r'^make benchmark\s+# = (.+?)(?:\s+# \(\d+\))?$', f.read(), re.MULTILINE)
        assert stated == [recipe], (doc, stated, recipe)


def test_documented_scripts_exist_and_take_the_documented_options():
    calls = script_calls()
    assert len(calls) > 20  # the scan finds the commands (README alone has six)
    problems = []
    for doc, script, options in calls:
        if not osp.isfile(osp.join(REPO_ROOT, script)):
            problems.append(f'{doc}: {script} does not exist')
        elif script.endswith('.py'):
            unknown = sorted(set(options) - declared_options(script))
            if unknown:
                problems.append(f'{doc}: {script} declares no {unknown}')
    assert not problems, '\n'.join(problems)


def sections(path):
    """(first line number, lines) of each part of the file between headings, fenced code kept inside."""
    parts, current, start, in_fence = [], [], 1, False
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if FENCE.match(line):
                in_fence = not in_fence
            if not in_fence and HEADING.match(line):
                parts.append((start, current))
                current, start = [], number
            current.append(line)
    parts.append((start, current))
    return parts


@pytest.mark.parametrize('doc', documents(), ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_every_section_with_a_figure_names_its_command(doc):
    missing = []
    for start, lines in sections(doc):
        figures = [m.group(0) for line in lines for m in FIGURE.finditer(line)]
        if figures and not COMMAND.search(''.join(lines)):
            missing.append(f'line {start}: {figures[:5]}')
    assert not missing, f'{osp.relpath(doc, REPO_ROOT)}: figures without a command in their section: {missing}'


def test_the_figure_scan_sees_figures_and_commands():
    """The two patterns above on made-up text: they find what they are meant to find."""
    assert FIGURE.findall('0.62x Mask R-CNN, 21.1 ms, 100 img/s, 75 GB, 48 %, mask AP 0.544, box AP 44.2')
    assert len(FIGURE.findall('0.62x, 21.1 ms, 100 img/s, 75 GB, 48 %')) == 5
    assert not FIGURE.findall('stride 8, P3-P7, 800x1216, 4 images, 2 cores, x1 y1')
    assert COMMAND.search('`tools/analysis_tools/compare_models.py`') and COMMAND.search('`make demo`')
    assert not COMMAND.search('`CenterMaskFCOSHead`')
