"""Put each recorded one-line bug into a copy of the repository and check that its tests catch it.

The bugs are listed in ``tools/dev/one_line_bugs/*.json``, one list per area of the package. Each entry is::

    {"what": "Eq. 2 levels every RoI with the first image's area",
     "file": "centermask_mm/models/...py",
     "find": "exact text, found once in the file",
     "replace": "the same text with the bug",
     "tests": ["tests/test_models/...py::test_name", ...]}

For each entry the script copies the repository (without .venv and .git) to a temporary folder, puts the bug in,
runs the entry's tests there with this interpreter and reports whether they failed (caught) or passed (missed).
With ``--clean`` it first runs the same tests on the unmodified copy, which must pass. Nothing in the working tree
is modified. Exit status 1 when any bug is missed or any clean run fails.

    .venv/bin/python tools/dev/one_line_bugs.py                      # every entry
    .venv/bin/python tools/dev/one_line_bugs.py --area roi_heads -k "Eq. 2" --clean
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TABLE_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'one_line_bugs')
COPIED = ('centermask_mm', 'configs', 'tests', 'tools', 'projects', 'docs', 'demo', 'setup.py', 'pytest.ini', 'README.md',
          'Makefile', 'requirements', 'setup.cfg')


def load_entries(areas=None, keyword=None):
    entries = []
    for path in sorted(glob.glob(osp.join(TABLE_DIR, '*.json'))):
        area = osp.splitext(osp.basename(path))[0]
        if areas and area not in areas:
            continue
        with open(path) as f:
            for entry in json.load(f):
                missing = {'what', 'file', 'find', 'replace', 'tests'} - entry.keys()
                if missing:
                    raise ValueError(f'{path}: entry {entry.get("what")!r} lacks {sorted(missing)}')
                if keyword is None or keyword.lower() in entry['what'].lower():
                    entries.append(dict(entry, area=area))
    return entries


def copy_repository(dest):
    for name in COPIED:
        src = osp.join(REPO_ROOT, name)
        if osp.isdir(src):
            shutil.copytree(src, osp.join(dest, name), ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        elif osp.exists(src):
            shutil.copy2(src, osp.join(dest, name))


def put_bug(root, entry):
    path = osp.join(root, entry['file'])
    with open(path) as f:
        text = f.read()
    count = text.count(entry['find'])
    if count != 1:
        raise ValueError(f'{entry["file"]}: the text to replace occurs {count} times, not once: {entry["find"]!r}')
    with open(path, 'w') as f:
        f.write(text.replace(entry['find'], entry['replace']))


def run_tests(root, tests, timeout):
    env = dict(os.environ, PYTHONPATH=root, PYTHONDONTWRITEBYTECODE='1')
    start = time.time()
    try:
        proc = subprocess.run([sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider', *tests],
                              cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, 'timed out', time.time() - start
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    failed = [ln for ln in lines if ln.startswith(('FAILED', 'ERROR'))]
    return proc.returncode, (failed or lines[-1:] or [''])[0][:200], time.time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--area', action='append', help='only these tables (file names without .json)')
    parser.add_argument('-k', dest='keyword', help='only entries whose "what" contains this text')
    parser.add_argument('--clean', action='store_true', help='also run each entry\'s tests without the bug')
    parser.add_argument('--timeout', type=float, default=900, help='seconds per pytest run')
    parser.add_argument('--list', action='store_true', help='print the entries and exit')
    args = parser.parse_args(argv)
    entries = load_entries(args.area, args.keyword)
    if args.list:
        for entry in entries:
            print(f'[{entry["area"]}] {entry["what"]}  ({entry["file"]})')
        return 0
    bad = 0
    print(f'{len(entries)} one-line bugs')
    for entry in entries:
        with tempfile.TemporaryDirectory(prefix='one_line_bug_') as root:
            copy_repository(root)
            if args.clean:
                code, line, secs = run_tests(root, entry['tests'], args.timeout)
                if code != 0:
                    bad += 1
                    print(f'CLEAN FAILS  [{entry["area"]}] {entry["what"]}: {line} ({secs:.0f} s)')
                    continue
            put_bug(root, entry)
            code, line, secs = run_tests(root, entry['tests'], args.timeout)
            caught = code not in (0, None)
            bad += not caught
            print(f'{"caught" if caught else "MISSED":<12} [{entry["area"]}] {entry["what"]} ({secs:.0f} s)'
                  + (f'\n             {line}' if caught else ''))
            sys.stdout.flush()
    print(f'{len(entries) - bad} of {len(entries)} caught' + (' (clean runs pass)' if args.clean else ''))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
