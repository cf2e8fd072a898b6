import torch

import pytest

from workloads import profiling
from tests.conftest import tiny_model
from workloads.peft import METHODS


def one_step_accounting(method_name, batch, model=None):
    model = model or tiny_model(0)
    m = METHODS.get(method_name)
    m.apply(model, m.parse({}))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    meter = profiling.SavedActivationMeter(model)
    with meter.track():
        loss = model(batch).pow(2).mean()
    loss.backward()
    opt.step()
    return profiling.tensor_accounting(model, opt, meter.bytes)


def test_full_finetuning_accounts_more_memory_than_lora(batch):
    model = tiny_model(0)
    full = one_step_accounting("full", batch, model)
    lora = one_step_accounting("lora", batch)
    probe = one_step_accounting("linear_probe", batch)
    total = lambda parts: sum(parts.values())  # noqa: E731
    assert total(full) > total(lora) > total(probe)
    assert full["gradient_bytes"] > lora["gradient_bytes"]
    # AdamW keeps two fp32 moments (and a scalar step) for each parameter that got a gradient;
    # the mask embedding, used only in pretraining, gets none
    with_grad = [p for p in model.parameters() if p.grad is not None]
    assert len(with_grad) == len(list(model.parameters())) - 1
    n = sum(p.numel() for p in with_grad)
    assert full["gradient_bytes"] == 4 * n
    assert full["optimizer_state_bytes"] == 2 * 4 * n + 4 * len(with_grad)
    assert full["saved_activation_bytes"] > 0


def test_activation_meter_grows_with_batch(freesolv):
    from torch_geometric.loader import DataLoader

    model = tiny_model()
    sizes = []
    for bs in (4, 32):
        b = next(iter(DataLoader(freesolv.train, batch_size=bs)))
        meter = profiling.SavedActivationMeter(model)
        with meter.track():
            model(b).sum()
        sizes.append(meter.bytes)
    assert sizes[1] > 2 * sizes[0]


def test_frozen_model_saves_nothing_for_backward(batch):
    model = tiny_model()
    for p in model.parameters():
        p.requires_grad_(False)
    meter = profiling.SavedActivationMeter(model)
    with meter.track():
        out = model(batch)
    assert meter.bytes == 0 and not out.requires_grad
    model.head.weight.requires_grad_(True)  # one trainable layer: its input must be kept
    with meter.track():
        model(batch)
    assert meter.bytes > 0


def test_latency_is_a_median_of_timed_repeats():
    calls = []
    rep = profiling.measure_latency(lambda: calls.append(1), batch_size=8, device=torch.device("cpu"),
                                    warmup=2, repeats=5)
    assert len(calls) == 7
    assert rep.repeats == 5 and rep.warmup == 2 and rep.median_s > 0
    assert rep.ms_per_unit == 1000 * rep.median_s / 8 and rep.unit == "graph"
    assert rep.num_threads == torch.get_num_threads()


def test_cpu_peak_of_allocations_and_frees():
    """1 MiB and 2 MiB live, the 1 MiB freed, then 3 MiB: the peak is 5 MiB over the baseline."""
    meter = profiling.CpuPeakMeter(baseline_bytes=1000)
    with meter.measure():
        a = torch.empty(1 << 20, dtype=torch.uint8)
        b = torch.empty(2 << 20, dtype=torch.uint8)
        del a
        c = torch.empty(3 << 20, dtype=torch.uint8)
        del b, c
    assert meter.peak_bytes == 1000 + (5 << 20)
    with meter.measure():  # a second window continues the same timeline (everything was freed)
        d = torch.empty(4 << 20, dtype=torch.uint8)
        del d
    assert meter.peak_bytes == 1000 + (5 << 20)


def test_cpu_peak_of_a_training_step_matches_the_hand_computed_figure():
    """y = x W^T, loss = sum(y^2), plain SGD (in-place update, no optimizer state).

    Live at the peak (when the gradient of W is allocated): W and x (the baseline),
    the gradient of y (2y, B x d) and the gradient of W (d x d), plus scalars; y
    itself, saved by pow, was released by autograd once pow's backward ran. With
    d = 512 and B = 4 that is 2 d^2 + 2 B d floats: 2,113,536 B (+ scalar bytes).
    """
    d, b = 512, 4
    torch.manual_seed(0)
    lin = torch.nn.Linear(d, d, bias=False)
    x = torch.randn(b, d)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    meter = profiling.CpuPeakMeter(profiling.live_tensor_bytes([lin.weight, x]))
    with meter.measure():
        loss = lin(x).pow(2).sum()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del loss
    expected = 4 * (2 * d * d + 2 * b * d)
    assert expected <= meter.peak_bytes <= expected + 64  # scalars: the loss and its gradient
    # with a 16x larger batch the activations grow and the peak follows them
    x = torch.randn(16 * b, d)
    meter = profiling.CpuPeakMeter(profiling.live_tensor_bytes([lin.weight, x]))
    with meter.measure():
        lin(x).pow(2).sum().backward()
    expected = 4 * (2 * d * d + 2 * 16 * b * d)
    assert expected <= meter.peak_bytes <= expected + 64


def test_peak_meter_reports_more_than_the_sum_of_parts_in_a_real_trial(cache_dir):
    """On a real trial the measured peak exceeds the old accounting (the forward's
    working memory is not among the parts), and both are kept, labelled."""
    from tests.workloads.test_train import cfg
    from workloads import run_trial

    r = run_trial(cfg(cache_dir, "freesolv", "full"))
    mem = r.memory
    assert mem.method.startswith("cpu_allocator_events_peak")
    assert mem.peak_train_bytes > mem.sum_of_parts_bytes > 0
    assert set(mem.parts) == {"parameter_bytes", "gradient_bytes", "optimizer_state_bytes", "saved_activation_bytes"}
    assert r.objectives["train_memory_mb"] == pytest.approx(mem.peak_train_bytes / 2**20)
