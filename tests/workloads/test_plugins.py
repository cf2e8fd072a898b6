"""Training plug-ins (Bregman proximal point, GIST): on their own, on every method,
and combined on one trial."""
import math

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import TINY_ARCH, tiny_model
from tests.workloads.test_peft import CASES
from tests.workloads.test_train import cfg
from workloads import run_trial
from workloads.peft import METHODS, count_parameters
from workloads.plugins import PLUGINS, TaskInfo
from workloads.plugins.gist import bidirectional_kl
from workloads.plugins.base import symmetric_divergence

D = TINY_ARCH["hidden_dim"]
REGRESSION = TaskInfo(kind="regression", loss=lambda p, y: F.mse_loss(p, y))
CLASSIFICATION = TaskInfo(kind="classification", loss=lambda p, y: F.binary_cross_entropy_with_logits(p, y))


def with_plugins(case: str, plugins: dict, task=REGRESSION, seed=0):
    model = tiny_model(seed)
    torch.manual_seed(seed + 100)
    c = CASES[case]
    method = METHODS.get(c.get("method", case))
    hooks = method.apply(model, method.parse(c["params"]))
    for name, params in plugins.items():
        p = PLUGINS.get(name)
        hooks = hooks.combine(p.apply(model, p.parse(params), task))
    return model, hooks


def test_divergences_match_their_definitions():
    a, b = torch.tensor([[0.3], [-1.2]]), torch.tensor([[-0.5], [2.0]])
    p, q = torch.sigmoid(a), torch.sigmoid(b)
    kl = lambda x, y: x * torch.log(x / y) + (1 - x) * torch.log((1 - x) / (1 - y))  # noqa: E731
    expected = (kl(p, q) + kl(q, p)).mean()
    assert symmetric_divergence(a, b, "classification").item() == pytest.approx(expected.item(), rel=1e-5)
    t = 2.0
    pt, qt = torch.sigmoid(a / t), torch.sigmoid(b / t)
    assert bidirectional_kl(a, b, t, "classification").item() == pytest.approx(
        (kl(pt, qt) + kl(qt, pt)).mean().item(), rel=1e-5)
    # categorical heads: the softmax form
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    px, py = x.softmax(-1), y.softmax(-1)
    ref = ((px * (px / py).log()).sum(-1) + (py * (py / px).log()).sum(-1)).mean()
    assert symmetric_divergence(x, y, "multiclass").item() == pytest.approx(ref.item(), rel=1e-5)
    # several binary tasks: the Bernoulli divergences summed over tasks
    per_task = sum(symmetric_divergence(x[:, i:i + 1], y[:, i:i + 1], "classification") for i in range(4))
    assert symmetric_divergence(x, y, "classification").item() == pytest.approx(per_task.item(), rel=1e-5)
    assert symmetric_divergence(a, b, "regression").item() == pytest.approx(((a - b) ** 2).mean().item())
    assert symmetric_divergence(a, a, "classification").item() == 0.0


def test_proximal_with_zero_weight_equals_plain_training_exactly(cache_dir):
    """The anchor's forward runs (μ = 0 is not special-cased) and must leave the
    random stream, the gradients and so every figure exactly as plain training."""
    plain = run_trial(cfg(cache_dir, "freesolv", "g_adapter"))
    c = cfg(cache_dir, "freesolv", "g_adapter")
    c = c.model_copy(update={"method": c.method.model_copy(update={"plugins": {"proximal": {"weight": 0.0}}})})
    zero = run_trial(c)
    assert zero.notes["proximal"]["weight"] == 0.0
    assert zero.metrics.history == plain.metrics.history
    assert zero.metrics.val_scores == plain.metrics.val_scores
    assert zero.metrics.test_scores == plain.metrics.test_scores
    # and a real weight changes training
    c = c.model_copy(update={"method": c.method.model_copy(update={"plugins": {"proximal": {"weight": 5.0}}})})
    strong = run_trial(c)
    assert strong.metrics.history[-1].train_loss != plain.metrics.history[-1].train_loss


def _hooked_step(model, hooks, batch, opt, between=lambda: None):
    """One training step as the loop calls the hooks (``between``: after the before-forward
    hooks, before the forward); the extra loss term's value and the forward's output."""
    for f in hooks.before_forward:
        f(model, batch)
    between()
    out = model(batch, with_slots=True)
    term = hooks.extra_loss[0](model, batch, out)
    opt.zero_grad()
    (out["pred"].pow(2).mean() + term).backward()
    opt.step()
    for f in hooks.after_step:
        f(model)
    return term.item(), out


@pytest.mark.parametrize("task", [REGRESSION, CLASSIFICATION], ids=["regression", "classification"])
def test_bregman_term_in_training_steps(task, batch):
    """As the loop calls the hooks: zero at the anchor, positive once the iterate
    moves; the anchor holds only trainable parameters and trails the iterates."""
    model, hooks = with_plugins("lora", {"proximal": {"weight": 1.0, "momentum": 0.5}}, task)
    prox = hooks.after_step[0].__self__
    model.train()  # dropout on: the anchor replays the same masks
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    terms = [_hooked_step(model, hooks, batch, opt)[0] for _ in range(3)]
    assert terms[0] == 0.0 and terms[1] > 0 and terms[2] > 0
    assert set(prox.anchor) == {n for n, p in model.named_parameters() if p.requires_grad}
    prox.momentum = 0.0  # the anchor jumps to the iterate: the term is zero again
    prox.after_step(model)
    hooks.before_forward[0](model, batch)
    assert hooks.extra_loss[0](model, batch, model(batch, with_slots=True)).item() == 0.0


@pytest.mark.parametrize("case", sorted(CASES))
def test_gist_adds_hidden_dim_parameters_and_the_one_way_token_starts_from_the_plain_prediction(case, batch):
    plain, _ = with_plugins(case, {})
    gist, hooks = with_plugins(case, {"gist": {"visible": False}})
    assert count_parameters(gist)[0] == count_parameters(plain)[0] + D
    assert count_parameters(gist)[1] == count_parameters(plain)[1] + D
    assert gist.backbone.slots["gist"].token.requires_grad
    gist.eval(), plain.eval()
    with torch.no_grad():
        assert torch.allclose(gist(batch), plain(batch), atol=1e-5)
        out = gist(batch, with_slots=True)
        assert out["slots"]["gist"].shape == (batch.num_graphs, 1, D)
        assert torch.isfinite(hooks.extra_loss[0](gist, batch, out))


def test_gist_defaults_are_the_authors():
    """JCruan519/GIST: train.py's loss weights 0.5 and 0.75 at T = 3; GIST's U(-0.5, 0.5)
    initialisation and dropout 0.1; a token every other token attends to."""
    model, hooks = with_plugins("lora", {"gist": {}})
    notes = hooks.notes["gist"]
    assert (notes["gist_weight"], notes["kl_weight"], notes["temperature"]) == (0.5, 0.75, 3.0)
    assert notes["visible"] is True and notes["dropout"] == 0.1
    token = model.backbone.slots["gist"].token
    assert token.abs().max().item() <= 0.5 and token.abs().max().item() > 0.25  # U(-0.5, 0.5), D draws
    assert token.std().item() == pytest.approx(1 / math.sqrt(12), rel=0.35)  # std of U(-0.5, 0.5)


@pytest.mark.parametrize("backbone_case", ["linear_probe", "lora"])
def test_gist_token_attends_is_attended_and_evaluation_reads_the_graph_token(backbone_case, batch):
    """The paper's token is visible both ways: moving it moves the graph token's prediction,
    and moving the molecule moves the gist token's; the model's output (what evaluation and
    latency call) is the head on the graph token alone."""
    model, hooks = with_plugins(backbone_case, {"gist": {}}, CLASSIFICATION)
    plain, _ = with_plugins(backbone_case, {}, CLASSIFICATION)
    model.eval(), plain.eval()
    with torch.no_grad():
        before = model(batch)
        assert not torch.allclose(before, plain(batch), atol=1e-4)  # the token is read from the start
        out = model(batch, with_slots=True)
        enc = model.backbone(batch)
        assert torch.allclose(before, model.head(enc.graph), atol=1e-6)  # the graph token only
        assert torch.allclose(out["pred"], before, atol=1e-6)
        gist_pred = model.head(out["slots"]["gist"][:, 0])
        assert not torch.allclose(gist_pred, before, atol=1e-3)
        # (a shift of every entry by one constant would vanish in the pre-LayerNorm: move it at random)
        shift = torch.randn_like(model.backbone.slots["gist"].token)
        model.backbone.slots["gist"].token.add_(shift)  # it is attended ...
        assert not torch.allclose(model(batch), before, atol=1e-4)
        model.backbone.slots["gist"].token.sub_(shift)
        moved = batch.clone()
        moved.x = moved.x.roll(1, dims=0)  # ... and it attends: other atoms, another gist state
        gist_moved = model.head(model(moved, with_slots=True)["slots"]["gist"][:, 0])
        assert not torch.allclose(gist_moved, gist_pred, atol=1e-4)
        expected = 0.5 * CLASSIFICATION.loss(gist_pred, batch.y) + 0.75 * bidirectional_kl(
            out["pred"], gist_pred, 3.0, "classification")
        assert hooks.extra_loss[0](model, batch, out).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gist_loss_matches_the_authors_train_py_for_a_categorical_head():
    """Their loss, transcribed from JCruan519/GIST train.py (the training step):
    CE(out) + 0.5 CE(gist) + 0.75 KL(p_out||p_gist) + 0.75 KL(p_gist||p_out), p = softmax(z/3),
    F.kl_div(log q, p, reduction='batchmean')."""
    out, gist = torch.randn(5, 4), torch.randn(5, 4)
    y = torch.tensor([0, 3, 1, 2, 0])
    theirs = (F.cross_entropy(out, y) + F.cross_entropy(gist, y) * 0.5
              + F.kl_div(F.softmax(gist / 3.0, dim=-1).log(), F.softmax(out / 3.0, dim=-1), reduction="batchmean") * 0.75
              + F.kl_div(F.softmax(out / 3.0, dim=-1).log(), F.softmax(gist / 3.0, dim=-1), reduction="batchmean") * 0.75)
    ours = F.cross_entropy(out, y) + 0.5 * F.cross_entropy(gist, y) + 0.75 * bidirectional_kl(out, gist, 3.0, "multiclass")
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_one_way_gist_token_is_read_by_the_head_and_nothing_attends_to_it(batch):
    model, hooks = with_plugins("linear_probe", {"gist": {"gist_weight": 1.0, "kl_weight": 0.5, "temperature": 1.0,
                                                          "visible": False}}, CLASSIFICATION)
    model.eval()
    with torch.no_grad():
        before = model(batch)
        model.backbone.slots["gist"].token.add_(torch.randn_like(model.backbone.slots["gist"].token))  # nothing reads it ...
        assert torch.allclose(model(batch), before, atol=1e-6)
        out = model(batch, with_slots=True)
        gist_pred = model.head(out["slots"]["gist"][:, 0])
        assert not torch.allclose(gist_pred, before, atol=1e-3)  # ... but it reads the molecule
        y = batch.y
        expected = CLASSIFICATION.loss(gist_pred, y) + 0.5 * bidirectional_kl(out["pred"], gist_pred, 1.0,
                                                                               "classification")
        assert hooks.extra_loss[0](model, batch, out).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gist_and_proximal_combine_on_one_trial(cache_dir):
    c = cfg(cache_dir, "b3db", "adapter")
    c = c.model_copy(update={"method": c.method.model_copy(
        update={"plugins": {"gist": {"kl_weight": 0.5}, "proximal": {"weight": 0.1}}, "variant": "adapter_both"})})
    r = run_trial(c)
    # the variant label is the driver's to assign (record.method); the worker records what it ran
    assert r.config["method"]["variant"] == "adapter_both" and r.base_method == "adapter"
    assert r.plugins == ["gist", "proximal"] and set(r.notes) == {"gist", "proximal", "plugin_params"}
    # what each plug-in itself adds to the trainable parameters: GIST its token, proximal nothing
    assert r.notes["plugin_params"] == {"gist": TINY_ARCH["hidden_dim"], "proximal": 0}
    assert math.isfinite(r.metrics.val_score) and math.isfinite(r.metrics.test_score)
    plain = run_trial(cfg(cache_dir, "b3db", "adapter"))
    assert r.trainable_params == plain.trainable_params + D


def test_unknown_plugin_or_field_is_refused():
    from pydantic import ValidationError

    from workloads.config import MethodSpec

    with pytest.raises(KeyError, match="unknown training plug-in 'gits'"):
        MethodSpec(name="lora", plugins={"gits": {}})
    with pytest.raises(ValidationError):
        MethodSpec(name="lora", plugins={"gist": {"lambda": 1.0}})


def _proximal_trial(cache_dir, **prox):
    c = cfg(cache_dir, "freesolv", "g_adapter")
    return c.model_copy(update={"method": c.method.model_copy(update={"plugins": {"proximal": {"weight": 0.1, **prox}}})})


def test_proximal_anchor_forward_runs_before_the_training_forward(cache_dir, monkeypatch):
    """In the real loop: every training step makes exactly one anchor forward (no
    gradients, plain output) and then the training forward (gradients, with slots)."""
    from workloads.backbones import GraphModel

    calls = []
    forward = GraphModel.forward

    def recorded(self, batch, with_slots=False):
        if self.training:
            calls.append(("training" if torch.is_grad_enabled() else "anchor", with_slots))
        return forward(self, batch, with_slots=with_slots)

    monkeypatch.setattr(GraphModel, "forward", recorded)
    run_trial(_proximal_trial(cache_dir))
    assert len(calls) >= 4 and len(calls) % 2 == 0
    assert calls == [("anchor", False), ("training", True)] * (len(calls) // 2)


def test_proximal_anchor_before_trains_exactly_as_after_and_peaks_no_higher(cache_dir, monkeypatch):
    """The former order (the anchor's forward inside extra_loss, after the training
    forward, replaying its random state) gives exactly the same training; running the
    anchor first keeps its activations out of the training forward's peak."""
    from torch.func import functional_call

    from workloads.plugins import proximal

    class AnchorAfter(proximal.BregmanProximal):
        def before_forward(self, model, batch):
            if self.anchor is None:
                self.anchor = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            self._rng = torch.get_rng_state()

        def extra_loss(self, model, batch, out):
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.set_rng_state(self._rng)
                ref = functional_call(model, self.anchor, (batch,))
            return self.weight * symmetric_divergence(out["pred"], ref, self.kind)

    before = run_trial(_proximal_trial(cache_dir))
    with monkeypatch.context() as m:
        m.setattr(proximal, "BregmanProximal", AnchorAfter)
        after = run_trial(_proximal_trial(cache_dir))
    assert before.metrics.history == after.metrics.history
    assert before.metrics.test_scores == after.metrics.test_scores
    assert before.objectives["train_memory_mb"] <= after.objectives["train_memory_mb"]


@pytest.mark.parametrize("task", [REGRESSION, CLASSIFICATION], ids=["regression", "classification"])
def test_proximal_previous_anchor_is_the_iterate_before_the_last_step(task, batch):
    """anchor: previous (SMART's plain Bregman proximal point, one step per outer
    iteration): step t is anchored at theta_{t-1}; zero at the first step."""
    model, hooks = with_plugins("lora", {"proximal": {"weight": 1.0, "anchor": "previous"}}, task)
    prox = hooks.after_step[0].__self__
    assert hooks.notes["proximal"]["anchor"] == "previous"
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    trainable = lambda: {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    starts, terms = [], []
    def anchored_where_the_previous_step_started():
        if len(starts) > 1:
            assert all(torch.equal(prox.anchor[n], t) for n, t in starts[-2].items())

    for _ in range(3):
        starts.append(trainable())
        term, out = _hooked_step(model, hooks, batch, opt, between=anchored_where_the_previous_step_started)
        terms.append(term)
    assert terms[0] == 0.0 and terms[1] > 0 and terms[2] > 0
    assert all(torch.equal(prox.anchor[n], t) for n, t in starts[-1].items())
    with pytest.raises(RuntimeError, match="before_forward"):  # the anchor's predictions serve one forward
        hooks.extra_loss[0](model, batch, out)
    with pytest.raises(ValueError):
        PLUGINS.get("proximal").parse({"anchor": "pretrained"})
