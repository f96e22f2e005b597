"""Every tensor of a reference-layout CenterMask checkpoint, checked by value.

Each source tensor holds values found nowhere else in the checkpoint (:func:`tests.reference_layouts.fill`: a random
permutation), so the tensor at a target key tells which source tensor it came from. Where each source tensor must
land is written from the reference layout (:func:`tests.reference_layouts.expected_targets`, beside the functions
that generate the source keys and shapes), not read from the converter. For every case of ``CASES`` (centermask2
V-39-eSE, V-39-eSE with DCN, V-99-eSE, Lite V-19-eSE and V-19-slim-dw-eSE; maskrcnn-benchmark V-39-eSE, Lite
V-19-eSE, R-50 and X-101-32x8d) the tests check:

(a) the converted state dict has exactly the expected target keys: every source tensor used once, nothing added;
(b) each target holds its source tensor, transformed (FCOS ``Scale`` (1,) -> (); maskrcnn-benchmark's mask and
    MaskIoU class outputs without the background channel 0), element for element;
(c) for a centermask2 (DCN) and a maskrcnn-benchmark (ResNet) case, that the expected target keys and shapes are
    those of the zoo config's model and that the converted dict loads into it strictly.
"""
from collections import Counter, defaultdict
from types import SimpleNamespace

import pytest
import torch

from centermask_mm.converters.centermask import convert_centermask_state_dict
from tests.reference_layouts import TRANSFORMS, expected_targets
from tests.test_converters.test_centermask.test_layouts import CASES, build_zoo_model, reference_checkpoint

#: cases whose zoo model is built for (c): the deformable VoVNet of centermask2 and maskrcnn-benchmark's ResNet
MODEL_CASES = ('c2-V2-39-dcn', 'mb-R-50')


def _fingerprint(tensor):
    """Shape and leading values: tensors with different fingerprints differ (equal ones are compared in full)."""
    return tuple(tensor.shape), tuple(tensor.flatten()[:16].tolist())


def _where_is(value, converted, index):
    """Keys of ``converted`` that hold exactly ``value``."""
    return [k for k in index.get(_fingerprint(value), []) if torch.equal(converted[k], value)]


@pytest.fixture(scope='module', params=sorted(CASES))
def case(request):
    """One case: its source checkpoint, the expected ``source key -> (target key, transform)`` and the converted
    state dict (built once per case and shared by the tests of that case)."""
    layout, arch, lite, dcn_stages, config = CASES[request.param]
    source = reference_checkpoint(layout, arch, lite, dcn_stages)
    expected = expected_targets(layout, arch, lite, dcn_stages)
    converted = convert_centermask_state_dict(dict(model=source)).state_dict
    return SimpleNamespace(name=request.param, layout=layout, config=config, source=source, expected=expected,
                           converted=converted)


def test_expectation_covers_every_source_tensor_and_tells_them_apart(case):
    """The expected mapping names every source key once and sends no two of them to the same target; no two
    source tensors of the same shape are equal (so a swap of two same-shape tensors cannot go unnoticed)."""
    assert list(case.expected) == list(case.source), 'the expected mapping and the reference layout disagree'
    duplicates = sorted(k for k, n in Counter(dst for dst, _ in case.expected.values()).items() if n > 1)
    assert not duplicates, f'{case.name}: target keys expected for several source keys: {duplicates[:10]}'
    assert {transform for _, transform in case.expected.values()} <= set(TRANSFORMS)

    groups = defaultdict(list)
    for key, value in case.source.items():
        groups[_fingerprint(value)].append(key)
    equal = [(a, b) for keys in groups.values() for i, a in enumerate(keys) for b in keys[i + 1:]
             if torch.equal(case.source[a], case.source[b])]
    assert not equal, f'{case.name}: source tensors with equal values: {equal[:10]}'


def test_converted_keys_are_exactly_the_expected_targets(case):
    """(a) The converted state dict holds exactly the expected target keys: none missing, none extra."""
    expected = {dst: src for src, (dst, _) in case.expected.items()}
    missing = sorted(set(expected) - set(case.converted))
    extra = sorted(set(case.converted) - set(expected))
    assert not missing and not extra, (
        f'{case.name}: {len(missing)} expected target keys missing (source -> target): '
        f'{[f"{expected[k]} -> {k}" for k in missing[:10]]}; {len(extra)} converted keys not expected: {extra[:10]}')
    assert len(case.converted) == len(case.source)


def test_every_source_tensor_lands_at_its_expected_key(case):
    """(b) For every source key, ``converted[expected target] == transform(source tensor)`` (shape and every
    value); a failure names the source key, the target key and where the source tensor went instead."""
    index = defaultdict(list)
    for key, value in case.converted.items():
        index[_fingerprint(value)].append(key)
    wrong = []
    for src, (dst, transform) in case.expected.items():
        want = TRANSFORMS[transform](case.source[src])
        if dst not in case.converted:
            wrong.append(f'{src} -> {dst} ({transform}): target key missing')
        elif not torch.equal(case.converted[dst], want):
            got, shape = tuple(case.converted[dst].shape), tuple(want.shape)
            what = 'another tensor' if got == shape else f'a tensor of shape {got}, not {shape}'
            found = _where_is(want, case.converted, index)
            wrong.append(f'{src} -> {dst} ({transform}): target holds {what}; the source tensor is at '
                         f'{found or "no key"}')
    assert not wrong, (f'{case.name}: {len(wrong)} of {len(case.expected)} source tensors not where the reference '
                       'layout puts them:\n' + '\n'.join(wrong[:20]))


@pytest.mark.parametrize('case', MODEL_CASES, indirect=True)
def test_expected_targets_are_the_model_keys_and_load_strictly(case):
    """(c) The expected target keys and the transformed source shapes are exactly the zoo model's keys and shapes
    (``num_batches_tracked`` counters aside), and the converted state dict loads into it with ``strict=True``."""
    model = build_zoo_model(case.config)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}
    want = {dst: tuple(TRANSFORMS[t](case.source[src]).shape) for src, (dst, t) in case.expected.items()}
    assert sorted(set(ours) - set(want)) == [] and sorted(set(want) - set(ours)) == []
    mismatched = [f'{k}: expected {want[k]}, model {ours[k]}' for k in ours if ours[k] != want[k]]
    assert not mismatched, f'{case.name}: {mismatched[:10]}'

    model.load_state_dict(case.converted, strict=True)
    state = model.state_dict()
    wrong = [f'{src} -> {dst}' for src, (dst, t) in case.expected.items()
             if not torch.equal(state[dst], TRANSFORMS[t](case.source[src]))]
    assert not wrong, f'{case.name}: loaded model tensors that are not their source tensor: {wrong[:10]}'
