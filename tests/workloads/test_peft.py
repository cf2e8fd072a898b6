"""One test matrix for every PEFT method; adding a method adds a row to CASES."""
import pytest
import torch

from tests.conftest import TINY_ARCH, tiny_model
from workloads.peft import METHODS, count_parameters
from workloads.registry import Registry

D, L, F = TINY_ARCH["hidden_dim"], TINY_ARCH["num_layers"], TINY_ARCH["ffn_dim"]
HEAD = D + 1
PRETRAIN_ONLY = "backbone.mask_embedding"  # replaces masked atoms in pretraining; unused when fine-tuning

CASES = {
    "full": dict(params={}, trains=lambda n: True, expected=None),
    "linear_probe": dict(params={}, trains=lambda n: n.startswith("head."), expected=HEAD),
    # LoRA on 4 attention projections per layer: A [r, D] and B [D, r]
    "lora": dict(params={"r": 2}, trains=lambda n: n.startswith("head.") or ".lora_" in n,
                 expected=HEAD + L * 4 * (2 * D + D * 2)),
    # per layer: q/k/v/out (4 x D) + fc1 (F) + fc2 (D) + two LayerNorms (2 x D); final LayerNorm (D)
    "bitfit": dict(params={}, trains=lambda n: n.startswith("head.") or n.endswith(".bias"),
                   expected=HEAD + L * (4 * D + F + D + 2 * D) + D),
    # P prompt tokens of width D; extra tokens change attention, so not identity at init
    "prompt": dict(params={"num_tokens": 3}, trains=lambda n: n.startswith("head.") or ".prefix." in n,
                   expected=HEAD + 3 * D, identity_at_init=False),
    # graph-convolution bottleneck per layer, same parameter shapes as the plain adapter
    "g_adapter": dict(params={"bottleneck": 4}, trains=lambda n: n.startswith("head.") or ".adapter." in n,
                      expected=HEAD + L * (D * 4 + 4 + 4 * D + D)),
    # one bottleneck per layer: down D->b (+b), up b->D (+D)
    "adapter": dict(params={"bottleneck": 4}, trains=lambda n: n.startswith("head.") or ".adapter." in n,
                    expected=HEAD + L * (D * 4 + 4 + 4 * D + D)),
}


def test_every_registered_method_has_a_row():
    assert set(METHODS.names()) == set(CASES)


def adapted(name, seed=0):
    model = tiny_model(seed)
    torch.manual_seed(seed + 100)
    method = METHODS.get(name)
    hooks = method.apply(model, method.parse(CASES[name]["params"]))
    return model, hooks


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_backward_finite(name, batch):
    model, _ = adapted(name)
    out = model(batch)
    assert out.shape == (batch.num_graphs, 1) and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    for n, p in model.named_parameters():
        if p.requires_grad and n != PRETRAIN_ONLY:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n


@pytest.mark.parametrize("name", sorted(CASES))
def test_only_its_parameters_train(name, batch):
    model, _ = adapted(name)
    case = CASES[name]
    for n, p in model.named_parameters():
        assert p.requires_grad == case["trains"](n), n
    trainable, total = count_parameters(model)
    assert trainable == (total if case["expected"] is None else case["expected"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    model(batch).pow(2).mean().backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed, "an optimizer step changed nothing"
    assert all(case["trains"](n) for n in changed)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.get("identity_at_init", True)))
def test_starts_from_the_pretrained_function(name, batch):
    base = tiny_model(0).eval()
    model, _ = adapted(name, 0)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(base(batch), model(batch), atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_same_result_and_save_load(name, batch, tmp_path):
    a, _ = adapted(name, 1)
    b, _ = adapted(name, 1)
    a.train(), b.train()
    with torch.no_grad():
        for p in a.parameters():  # move off the zero-initialised start so the check bites
            p.add_(0.01 * torch.randn_like(p))
    torch.save(a.state_dict(), tmp_path / "m.pt")
    c, _ = adapted(name, 2)
    c.load_state_dict(torch.load(tmp_path / "m.pt"))
    a.eval(), c.eval()
    with torch.no_grad():
        assert torch.equal(a(batch), c(batch))
        d, _ = adapted(name, 1)
        e, _ = adapted(name, 1)
        assert torch.equal(d.eval()(batch), e.eval()(batch))


def test_prompt_tokens_are_the_only_change(batch):
    from torch_geometric.data import Batch

    base = tiny_model(0).eval()
    model, _ = adapted("prompt", 0)
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model(batch), base(batch))
        one = Batch.from_data_list([batch.get_example(0)])
        assert torch.allclose(model(one), model(batch)[:1], atol=1e-5)  # prompts never padded away
        with pytest.raises(ValueError, match="already has prefix tokens"):
            METHODS.get("prompt").apply(model, METHODS.get("prompt").parse({}))
        model.backbone.prefix = None
        assert torch.allclose(model(batch), base(batch), atol=1e-6)


def _perturb_trainable(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def test_g_adapter_convolves_over_the_molecule(batch):
    from torch_geometric.data import Batch

    from workloads.datasets.featurize import smiles_to_data

    g, _ = adapted("g_adapter", 0)
    plain, _ = adapted("adapter", 0)
    _perturb_trainable(g)
    plain.load_state_dict(g.state_dict())  # same weights; only the graph convolution differs
    g.eval(), plain.eval()
    with torch.no_grad():
        assert not torch.allclose(g(batch), plain(batch), atol=1e-4)
        a = g(Batch.from_data_list([smiles_to_data("OCC(=O)N")]))
        b = g(Batch.from_data_list([smiles_to_data("NC(=O)CO")]))  # same molecule, atoms reordered
        assert torch.allclose(a, b, atol=1e-5)


def test_normalised_adjacency_of_a_chain():
    from torch_geometric.data import Batch

    from workloads.datasets.featurize import smiles_to_data

    m = tiny_model()
    m.eval()
    with torch.no_grad():
        m(Batch.from_data_list([smiles_to_data("CCO"), smiles_to_data("C")]))
    adj = m.backbone.graph_context.norm_adj  # [2, 1 + 3, 1 + 3]
    assert adj.shape == (2, 4, 4) and torch.allclose(adj, adj.transpose(1, 2))
    assert adj[0, 0].tolist() == [1.0, 0.0, 0.0, 0.0]  # the graph token sees only itself
    # C-C-O with self-loops: degrees 2, 3, 2
    assert adj[0, 1, 2].item() == pytest.approx(1 / 6**0.5) and adj[0, 2, 2].item() == pytest.approx(1 / 3)
    assert adj[1, 2:, 2:].tolist() == [[1.0, 0.0], [0.0, 1.0]]  # padding: self-loops only


def test_bregman_term_in_training_steps(batch):
    """As the loop calls the hooks: zero at the anchor, positive once the iterate
    moves, and the momentum anchor trails the iterates."""
    model, hooks = adapted("g_adapter", 0)
    method = METHODS.get("g_adapter")
    assert method.parse({}).anchor_momentum == 0.99
    model.train()  # dropout on: the anchor replays the same masks
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    terms = []
    for _ in range(3):
        hooks.before_forward(model, batch)
        pred = model(batch)
        prox = hooks.extra_loss(model, batch, pred)
        terms.append(prox.item())
        opt.zero_grad()
        (pred.pow(2).mean() + prox).backward()
        opt.step()
        hooks.after_step(model)
    assert terms[0] == 0.0 and terms[1] > 0 and terms[2] > 0
    # refreshing the anchor to the iterate (momentum 0) zeroes the term again
    prox = hooks.after_step.__self__
    prox.momentum = 0.0
    prox.after_step(model)
    hooks.before_forward(model, batch)
    assert hooks.extra_loss(model, batch, model(batch)).item() == 0.0
    assert method.apply(tiny_model(), method.parse({"proximal_weight": 0})).extra_loss is None


def test_g_adapter_model_survives_deepcopy(batch):
    import copy

    model, _ = adapted("g_adapter", 0)
    _perturb_trainable(model)
    twin = copy.deepcopy(model)
    model.eval(), twin.eval()
    with torch.no_grad():
        assert torch.equal(model(batch), twin(batch))
    assert twin.backbone.graph_context is not model.backbone.graph_context


def test_registry_is_strict():
    r = Registry("thing")
    r.add("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        r.add("a", 2)
    with pytest.raises(KeyError, match="unknown thing 'b'; known: a"):
        r.get("b")
    with pytest.raises(ValueError):
        METHODS.get("lora").parse({"rank": 4})
