"""configs/centermask/metafile.yml (mmdet's metafile format, read by mim) and configs/centermask/README.md list
exactly the zoo configs (configs/centermask/ and the Mask R-CNN baselines in configs/mask_rcnn/); the numbers both
give are the reference's, marked as such (nothing is listed as measured here before it is)."""
import glob
import os.path as osp
import re

import modelindex
import yaml

from tests.helpers import CONFIG_ROOT, REPO_ROOT

ZOO_DIRS = ('centermask', 'mask_rcnn')
CONFIGS = {osp.relpath(p, REPO_ROOT) for d in ZOO_DIRS for p in glob.glob(osp.join(CONFIG_ROOT, d, '*.py'))}
METAFILE = osp.join(CONFIG_ROOT, 'centermask', 'metafile.yml')
README = osp.join(CONFIG_ROOT, 'centermask', 'README.md')
CENTERMASK2 = 'https://github.com/youngwanLEE/centermask2'
PAPER_CODE = 'https://github.com/youngwanLEE/CenterMask'


def load_metafile():
    with open(METAFILE) as f:
        return yaml.safe_load(f)


def test_metafile_parses_in_mmdet_format():
    meta = load_metafile()
    collections = {c['Name'] for c in meta['Collections']}
    assert 'CenterMask' in collections
    names = [m['Name'] for m in meta['Models']]
    assert len(names) == len(set(names))
    for model in meta['Models']:
        assert model['In Collection'] in collections
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
        assert osp.isfile(osp.join(REPO_ROOT, model['Config'])), model['Config']
        assert 'Results' not in model, model['Name']  # nothing evaluated here yet: mim must not show these as ours
        reported = model['Reported By Reference']
        assert reported['Measured Here'] is False
        assert reported['Source'] in (f'centermask2 README, {CENTERMASK2}', f'CenterMask README (paper code), {PAPER_CODE}')
        assert 'inference time (ms/im)' not in model.get('Metadata', {})  # the reference's GPU times stay with it
        assert reported['Results'], model['Name']
        for result in reported['Results']:
            assert result['Task'] in ('Object Detection', 'Instance Segmentation')
            assert result['Dataset'] in ('COCO val2017', 'COCO test-dev')
            (metric, value), = result['Metrics'].items()
            assert metric == {'Object Detection': 'box AP', 'Instance Segmentation': 'mask AP'}[result['Task']]
            assert 0 < value < 100
        tasks = [(r['Task'], r['Dataset']) for r in reported['Results']]
        assert len(tasks) == len(set(tasks)), model['Name']  # each dataset once per task


def test_mim_reads_the_metafile_with_no_results_of_ours():
    """model-index (mim's reader) loads every model; none carries ``Results`` (the reference's are a custom field)."""
    index = modelindex.load(METAFILE)
    assert len(index.models) == len(CONFIGS)
    assert all(not model.results for model in index.models)


def test_metafile_lists_every_zoo_config_and_nothing_else():
    assert {m['Config'] for m in load_metafile()['Models']} == CONFIGS


def test_readme_lists_every_zoo_config_and_nothing_else():
    with open(README) as f:
        text = f.read()
    rows = [line for line in text.splitlines() if line.startswith('| [')]
    linked = {osp.normpath(osp.join('configs', 'centermask', m)) for m in
              (re.match(r'\| \[[^]]+\]\(([^)]+)\)', row).group(1) for row in rows)}
    assert linked == CONFIGS
    assert all(row.rstrip().endswith('| not trained yet |') for row in rows)


def test_readme_and_metafile_agree_on_the_numbers():
    with open(README) as f:
        rows = [line for line in f if line.startswith('| [')]
    readme, readme_times = set(), set()
    for row in rows:
        cells = [c.strip() for c in row.strip().strip('|').split('|')]
        name = osp.splitext(osp.basename(re.match(r'\[([^]]+)\]', cells[0]).group(1)))[0]
        readme.add((name, cells[1], cells[2], float(cells[3]), float(cells[4])))
        readme_times.add((name, cells[5]))
    meta, meta_times = set(), set()
    for model in load_metafile()['Models']:
        reported, by_dataset = model['Reported By Reference'], {}
        meta_times.update((model['Name'], f"{t['value']} ({t['hardware']})") for t in reported['inference time (ms/im)'])
        for result in reported['Results']:
            by_dataset.setdefault(result['Dataset'], {}).update(result['Metrics'])
        for dataset, metrics in by_dataset.items():
            meta.add((model['Name'], reported['Source'].split(', http')[0], dataset, metrics['mask AP'],
                      metrics['box AP']))
    assert readme == meta
    assert readme_times == meta_times
