"""Draw a config's training samples after its pipeline: mmdet's browse_dataset.py with centermask_mm loaded.

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir DIR --not-show
"""
from centermask_mm.utils.mmdet_tools import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('analysis_tools/browse_dataset.py')
