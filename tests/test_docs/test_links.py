"""README.md and docs/**/*.md: every relative link `[text](path)` / `[text](path#anchor)` resolves to an existing
file (the anchor to a heading of that file, by GitHub's slug rules), and the README stays a landing page."""
import glob
import os.path as osp
import re

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
README = osp.join(REPO_ROOT, 'README.md')
README_MAX_LINES = 160
SKIPPED_SCHEMES = ('http://', 'https://', 'mailto:')

FENCE = re.compile(r'^\s*(```|~~~)')
CODE_SPAN = re.compile(r'(`+)(.+?)\1')
# [text](target) or ![alt](target), with an optional "title"; the text may hold code spans (replaced first)
INLINE_LINK = re.compile(r'!?\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)')
REFERENCE_DEF = re.compile(r'^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$')
ATX_HEADING = re.compile(r'^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$')
SETEXT_UNDERLINE = re.compile(r'^\s{0,3}(=+|-+)\s*$')
HTML_ANCHOR = re.compile(r'<a\s[^>]*(?:name|id)\s*=\s*"([^"]+)"', re.IGNORECASE)


def markdown_files():
    files = [README] + sorted(glob.glob(osp.join(REPO_ROOT, 'docs', '**', '*.md'), recursive=True))
    return [f for f in files if osp.isfile(f)]


def prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading):
    """GitHub's heading anchor: markup dropped, lower-case, punctuation except '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # a link in a heading keeps its text
    text = re.sub(r'<[^>]+>', '', text)  # inline HTML
    text = re.sub(r'[^\w\- ]', '', text.strip().lower())
    return text.replace(' ', '-')


def anchors(path):
    """Every anchor a file offers: its headings' slugs (repeats numbered -1, -2 ... as GitHub does) and HTML ids."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    found, seen = set(), {}
    previous = ''
    for _, line in prose_lines(text):
        match = ATX_HEADING.match(line)
        heading = match.group(2) if match else None
        if heading is None and SETEXT_UNDERLINE.match(line) and previous.strip() and not previous.lstrip().startswith(
                ('|', '-', '*', '>')):
            heading = previous.strip()
        if heading is not None:
            base = slug(heading)
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f'{base}-{count}')
        found.update(HTML_ANCHOR.findall(line))
        previous = line
    return found


def links(path):
    """(line number, target) of every link in the file's prose (code blocks and code spans are not links)."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    for number, line in prose_lines(text):
        line = CODE_SPAN.sub('code', line)
        for match in INLINE_LINK.finditer(line):
            yield number, match.group(2)
        match = REFERENCE_DEF.match(line)
        if match:
            yield number, match.group(1)


def broken_links(path):
    """A message for each relative link of `path` that does not resolve."""
    problems = []
    for number, target in links(path):
        where = f'{osp.relpath(path, REPO_ROOT)}:{number}: ({target})'
        if not target:
            problems.append(f'{where} empty link target')
            continue
        if target.lower().startswith(SKIPPED_SCHEMES):
            continue
        file_part, _, anchor = target.partition('#')
        resolved = osp.normpath(osp.join(osp.dirname(path), file_part)) if file_part else path
        if not osp.exists(resolved):
            problems.append(f'{where} no such file: {osp.relpath(resolved, REPO_ROOT)}')
            continue
        if anchor:
            if not osp.isfile(resolved) or not resolved.endswith('.md'):
                problems.append(f'{where} an anchor into something other than a markdown file')
            elif anchor not in anchors(resolved):
                problems.append(f'{where} no heading with the anchor #{anchor} in {osp.relpath(resolved, REPO_ROOT)}')
    return problems


@pytest.mark.parametrize('path', markdown_files(), ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_relative_links_resolve(path):
    problems = broken_links(path)
    assert not problems, '\n'.join(problems)


def test_docs_are_checked():
    names = {osp.relpath(p, REPO_ROOT) for p in markdown_files()}
    assert 'README.md' in names and any(n.startswith('docs/') for n in names)


def test_readme_is_a_landing_page():
    with open(README, encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert len(lines) <= README_MAX_LINES, f'README.md has {len(lines)} lines (at most {README_MAX_LINES}): move ' \
        'the details into docs/'
    headings = {line.lstrip('#').strip() for line in lines if line.startswith('## ')}
    for required in ('Quick start', 'Supported versions', 'Where the output can differ from centermask2'):
        assert required in headings, required
    text = '\n'.join(lines)
    assert 'make demo' in text and 'make test' in text


def test_slug_follows_github():
    assert slug('Deploy: ONNX and ONNX Runtime') == 'deploy-onnx-and-onnx-runtime'
    assert slug('On a GPU (NVIDIA H200)') == 'on-a-gpu-nvidia-h200'
    assert slug("mmcv's CPU RoIAlign on far-out boxes") == 'mmcvs-cpu-roialign-on-far-out-boxes'
    assert slug('The toy demo (`make demo`)') == 'the-toy-demo-make-demo'
    assert slug('snake_case and  two spaces') == 'snake_case-and--two-spaces'


def test_the_check_finds_broken_links(tmp_path):
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'other.md').write_text('# Other page\n\n## A section: with punctuation\n')
    page = tmp_path / 'page.md'
    page.write_text('\n'.join([
        '# Page',
        '[fine](sub/other.md) [fine anchor](sub/other.md#a-section-with-punctuation) [self](#page)',
        '[web](https://example.com/missing.md) [mail](mailto:someone@example.com)',
        '`[in a code span](missing_in_span.md)`',
        '```',
        '[in a fence](missing_in_fence.md)',
        '```',
        '[missing file](sub/missing.md)',
        '[missing anchor](sub/other.md#no-such-section)',
        '[missing self anchor](#nowhere)',
    ]) + '\n')
    problems = broken_links(str(page))
    assert len(problems) == 3, problems
    assert 'sub/missing.md' in problems[0]
    assert '#no-such-section' in problems[1]
    assert '#nowhere' in problems[2]
