"""model.nonfinite_loss: 'raise' stops before the step naming iteration and loss; 'skip' drops the step untouched."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from centermask_mm.models.detectors.centermask import NonFiniteLossError
from tests.helpers import model_cfg

TOY = 'toy/centermask-lite_v2-19-slim-dw_fpn_toy.py'


def build(nonfinite_loss):
    cfg = model_cfg(TOY)
    cfg.nonfinite_loss = nonfinite_loss
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    return model


def inject_nan(model, at_calls):
    """``loss_mask`` becomes NaN on the given (0-based) calls of the RoI head's loss."""
    real_loss, calls = model.roi_head.loss, []

    def loss(*args, **kwargs):
        losses = real_loss(*args, **kwargs)
        if len(calls) in at_calls:
            losses['loss_mask'] = losses['loss_mask'] * float('nan')
        calls.append(1)
        return losses

    model.roi_head.loss = loss


def inputs():
    return demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 96)] * 2, num_items=[3, 2], num_classes=3,
                          with_mask=True)


def snapshot(model, optim):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {k: {n: t.clone() if torch.is_tensor(t) else t for n, t in s.items()}
             for k, s in optim.optimizer.state_dict()['state'].items()})


def same(a, b):
    return a.keys() == b.keys() and all(
        (torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else (same(a[k], b[k]) if isinstance(a[k], dict)
                                                               else a[k] == b[k])) for k in a)


def test_invalid_value_fails_at_build_listing_the_choices():
    with pytest.raises(ValueError, match=r"nonfinite_loss must be one of \('raise', 'skip'\), got 'ignore'"):
        build('ignore')


def test_raise_names_the_iteration_and_the_loss():
    model = build('raise')
    inject_nan(model, at_calls={0})
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    MessageHub.get_current_instance().update_info('iter', 12)
    with pytest.raises(NonFiniteLossError, match=r'iteration 12: .*loss_mask'):
        model.train_step(inputs(), optim)


def test_skip_leaves_weights_buffers_and_optimizer_state_and_training_goes_on():
    model = build('skip')
    inject_nan(model, at_calls={1})
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    hub = MessageHub.get_current_instance()
    data = inputs()
    hub.update_info('iter', 0)
    assert torch.isfinite(model.train_step(data, optim)['loss'])  # a finite step: AdamW has state now
    weights, state = snapshot(model, optim)
    hub.update_info('iter', 1)
    with pytest.warns(UserWarning, match=r"iteration 1: \{'loss_mask': nan\}; skipped this step"):
        assert model.train_step(data, optim) == {}
    after_weights, after_state = snapshot(model, optim)
    assert same(weights, after_weights)  # parameters and BN running statistics
    assert same(state, after_state) and len(state) > 0  # AdamW moments and step counts
    assert all(p.grad is None or not torch.isnan(p.grad).any() for p in model.parameters())
    hub.update_info('iter', 2)
    log_vars = model.train_step(data, optim)  # the next finite step updates again
    assert torch.isfinite(log_vars['loss'])
    changed = snapshot(model, optim)[0]
    assert any(not torch.equal(weights[k], changed[k]) for k in weights if 'num_batches' not in k)
