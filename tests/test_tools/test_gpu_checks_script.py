"""``tools/gpu_checks.sh`` runs on a lent GPU, where a mistyped flag or model name would cost a scarce run: every
Python command of its steps must parse with the tool's own argument parser (checked here without a GPU)."""
import argparse
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'gpu_checks.sh'


class _Parsed(Exception):
    pass


def step_commands(out_dir):
    """The argv of every ``step`` of the script, expanded by bash itself (arrays, quoting, ``$OUT``)."""
    text = SCRIPT.read_text()
    steps = text[text.index('\nCM=('):]  # the model lists and the steps, after the set-up
    stubs = ("step() { shift 2; printf '%s\\037' \"$@\"; printf '\\036'; }\n"
             'say() { :; }\ngrep() { :; }\n'
             f'OUT={out_dir}\n')
    printed = subprocess.run(['bash', '-c', stubs + steps], check=True, capture_output=True, text=True).stdout
    return [record.split('\x1f')[:-1] for record in printed.split('\x1e') if record]


def test_every_step_parses_with_its_tool(tmp_path, monkeypatch):
    commands = step_commands(tmp_path)
    assert len(commands) >= 8 and all(argv[0] == 'python3' for argv in commands)
    parse_args = argparse.ArgumentParser.parse_args
    parsed = []

    def parse_then_stop(self, args=None, namespace=None):
        parsed.append(parse_args(self, args, namespace))  # argparse exits with status 2 on a bad argument
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', parse_then_stop)
    monkeypatch.chdir(REPO)
    for argv in commands:
        script = REPO / argv[1]
        assert script.is_file(), argv[1]
        monkeypatch.setattr(sys, 'argv', [str(script)] + argv[2:])
        monkeypatch.syspath_prepend(str(script.parent))  # as `python SCRIPT` does: its sibling modules import
        with pytest.raises(_Parsed):
            runpy.run_path(str(script), run_name='__main__')
    assert len(parsed) == len(commands)
    assert any(getattr(ns, 'cuda_graph', False) for ns in parsed)  # the step the next GPU run starts with
