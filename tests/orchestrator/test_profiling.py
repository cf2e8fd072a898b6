import torch

from orchestrator import profiling
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
    return profiling.cpu_memory_report(profiling.tensor_accounting(model, opt, meter.bytes))


def test_full_finetuning_accounts_more_memory_than_lora(batch):
    model = tiny_model(0)
    full = one_step_accounting("full", batch, model)
    lora = one_step_accounting("lora", batch)
    probe = one_step_accounting("linear_probe", batch)
    assert full.peak_train_bytes > lora.peak_train_bytes > probe.peak_train_bytes
    assert full.gradient_bytes > lora.gradient_bytes
    # AdamW keeps two fp32 moments (and a scalar step) for each parameter that got a gradient;
    # the mask embedding, used only in pretraining, gets none
    with_grad = [p for p in model.parameters() if p.grad is not None]
    assert len(with_grad) == len(list(model.parameters())) - 1
    n = sum(p.numel() for p in with_grad)
    assert full.gradient_bytes == 4 * n
    assert full.optimizer_state_bytes == 2 * 4 * n + 4 * len(with_grad)
    assert full.saved_activation_bytes > 0 and full.rss_bytes > 0 and full.rss_peak_bytes >= full.rss_bytes
    assert full.to_dict()["peak_train_mb"] == full.peak_train_bytes / 2**20


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
    assert rep.to_dict()["ms_per_graph"] == 1000 * rep.median_s / 8
    assert rep.num_threads == torch.get_num_threads()
