"""One test matrix for every PEFT method on every graph backbone; adding a method adds a
row to CASES, adding a backbone adds a column (every test runs once per backbone)."""
import pytest
import torch

from tests.conftest import TINY_ARCH, tiny_model
from workloads.backbones import BACKBONES
from workloads.peft import METHODS, method_names, count_parameters
from workloads.registry import Registry

D, L, F = TINY_ARCH["hidden_dim"], TINY_ARCH["num_layers"], TINY_ARCH["ffn_dim"]
HEAD = D + 1
PRETRAIN_ONLY = "backbone.mask_embedding"  # replaces masked atoms in pretraining; unused when fine-tuning

LN = lambda n: ".ln1." in n or ".ln2." in n or "final_ln." in n  # noqa: E731  LayerNorms (Houlsby adapters train them)
BOTTLENECK = D * 4 + 4 + 4 * D + D  # down D->4 (+4), up 4->D (+D)

# One row per method configuration; "method" names the registered method when the
# row's key is a variant of it. Adding a method adds a row.
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
    "prompt_tokens": dict(params={"num_tokens": 3},
                          trains=lambda n: n.startswith("head.") or ".slots.prompt." in n,
                          expected=HEAD + 3 * D, identity_at_init=False),
    # GPF: one D-vector added to every atom (Glorot-initialised: not identity at init)
    "gpf": dict(params={}, trains=lambda n: n.startswith("head.") or ".input_prompt." in n,
                expected=HEAD + D, identity_at_init=False),
    # GPF-plus: k basis vectors (k x D) and the attention projection D -> k (+k)
    "gpf_plus": dict(params={"num_basis": 3}, trains=lambda n: n.startswith("head.") or ".input_prompt." in n,
                     expected=HEAD + 3 * D + D * 3 + 3, identity_at_init=False),
    # Houlsby: two bottlenecks per layer (after attention and FFN) and every LayerNorm (2 x D each)
    "adapter": dict(params={"bottleneck": 4}, trains=lambda n: n.startswith("head.") or ".adapter." in n or LN(n),
                    expected=HEAD + L * (2 * BOTTLENECK + 2 * 2 * D) + 2 * D),
    # Pfeiffer: one bottleneck per layer after the FFN, LayerNorms frozen
    "adapter[pfeiffer]": dict(method="adapter", params={"bottleneck": 4, "placement": "pfeiffer"},
                              trains=lambda n: n.startswith("head.") or ".adapter." in n,
                              expected=HEAD + L * BOTTLENECK),
    # graph-convolution bottlenecks: the same parameter shapes as the Houlsby adapter
    "g_adapter": dict(params={"bottleneck": 4},
                      trains=lambda n: n.startswith("head.") or ".adapter." in n or LN(n),
                      expected=HEAD + L * (2 * BOTTLENECK + 2 * 2 * D) + 2 * D),
}


GRAPH_BACKBONES = [n for n in BACKBONES.names() if BACKBONES.get(n).kind == "graph_transformer"]
_current = {"backbone": "graphormer"}


@pytest.fixture(autouse=True, params=GRAPH_BACKBONES)
def backbone(request):
    _current["backbone"] = request.param
    return request.param


def tiny(seed: int = 0):
    return tiny_model(seed, _current["backbone"])


def test_every_registered_method_has_a_row():
    graph = set(method_names("graph_transformer"))  # the reference baselines: tests/workloads/test_references.py
    assert graph == {c.get("method", k) for k, c in CASES.items()}


def adapted(name, seed=0):
    model = tiny(seed)
    torch.manual_seed(seed + 100)
    method = METHODS.get(CASES[name].get("method", name))
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
    base = tiny(0).eval()
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


def test_prompt_tokens_are_the_only_change(batch):
    from torch_geometric.data import Batch

    base = tiny(0).eval()
    model, _ = adapted("prompt_tokens", 0)
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model(batch), base(batch))
        one = Batch.from_data_list([batch.get_example(0)])
        assert torch.allclose(model(one), model(batch)[:1], atol=1e-5)  # prompts never padded away
        with pytest.raises(ValueError, match="already has a token slot 'prompt'"):
            METHODS.get("prompt_tokens").apply(model, METHODS.get("prompt_tokens").parse({}))
        del model.backbone.slots["prompt"]
        assert torch.allclose(model(batch), base(batch), atol=1e-6)


@pytest.mark.parametrize("name", ["gpf", "gpf_plus"])
def test_graph_prompt_features_change_only_the_node_inputs(name, batch):
    model, _ = adapted(name, 0)
    base = tiny(0)
    model.eval(), base.eval()
    with torch.no_grad():
        h = model.backbone.atom_encoder(batch.x)
        prompted = model.backbone.input_prompt(h)
        assert prompted.shape == h.shape and not torch.allclose(prompted, h)
        if name == "gpf":  # the same vector on every atom
            diff = prompted - h
            assert torch.allclose(diff, diff[:1].expand_as(diff), atol=1e-6)
        else:  # an attention mix of the basis vectors per atom
            w = torch.softmax(model.backbone.input_prompt.attn(h), -1)
            assert torch.allclose(w.sum(-1), torch.ones(len(h)))
            assert torch.allclose(prompted - h, w @ model.backbone.input_prompt.basis, atol=1e-6)
        model.backbone.input_prompt = None  # without the prompt: the pretrained function
        assert torch.allclose(model(batch), base(batch), atol=1e-6)


def test_linear_probe_keeps_the_backbone_in_eval_mode():
    model, hooks = adapted("linear_probe", 0)
    assert hooks.eval_modules == [model.backbone]


def test_lora_latency_is_timed_on_the_merged_model(batch):
    from peft.tuners.lora import LoraLayer

    model, hooks = adapted("lora", 0)
    _perturb_trainable(model)  # B starts at zero: move it so the merge matters
    model.eval()
    merged = hooks.deploy(model).eval()
    assert not any(isinstance(m, LoraLayer) for m in merged.modules())
    assert any(isinstance(m, LoraLayer) for m in model.modules())  # the trained model is untouched
    assert sum(p.numel() for p in merged.parameters()) < sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert torch.allclose(merged(batch), model(batch), atol=1e-5)
        assert not torch.allclose(model(batch), tiny(0).eval()(batch), atol=1e-4)


def test_normalised_adjacency_of_a_chain():
    from torch_geometric.data import Batch

    from workloads.datasets.featurize import smiles_to_data

    m = tiny()
    m.eval()
    with torch.no_grad():
        m(Batch.from_data_list([smiles_to_data("CCO"), smiles_to_data("C")]))
    ctx = m.backbone.graph_context
    adj = ctx.norm_adj(link_graph_token=False)  # [2, 1 + 3, 1 + 3]
    assert adj.shape == (2, 4, 4) and torch.allclose(adj, adj.transpose(1, 2))
    assert adj[0, 0].tolist() == [1.0, 0.0, 0.0, 0.0]  # unlinked, the graph token sees only itself
    # C-C-O with self-loops: degrees 2, 3, 2
    assert adj[0, 1, 2].item() == pytest.approx(1 / 6**0.5) and adj[0, 2, 2].item() == pytest.approx(1 / 3)
    assert adj[1, 2:, 2:].tolist() == [[1.0, 0.0], [0.0, 1.0]]  # padding: self-loops only
    # linked as Graphormer's virtual node: token degree 1 + 3; atoms gain one neighbour (3, 4, 3)
    adj = ctx.norm_adj(link_graph_token=True)
    assert torch.allclose(adj, adj.transpose(1, 2))
    assert adj[0, 0, 0].item() == pytest.approx(1 / 4)
    assert adj[0, 0, 1].item() == pytest.approx(1 / 12**0.5) and adj[0, 0, 2].item() == pytest.approx(1 / 4)
    assert adj[0, 1, 2].item() == pytest.approx(1 / 12**0.5)
    assert adj[1, 0, 1].item() == pytest.approx(1 / 2) and adj[1, 0, 2:].tolist() == [0.0, 0.0]  # not to padding
    assert adj[1, 2:, 2:].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_g_adapter_token_link_changes_the_graph_token_path(batch):
    linked, _ = adapted("g_adapter", 0)
    _perturb_trainable(linked)
    m = METHODS.get("g_adapter")
    unlinked = tiny(0)
    m.apply(unlinked, m.parse({"bottleneck": 4, "link_graph_token": False}))
    unlinked.load_state_dict(linked.state_dict())
    linked.eval(), unlinked.eval()
    with torch.no_grad():
        assert not torch.allclose(linked(batch), unlinked(batch), atol=1e-5)


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


def test_g_adapter_unlinked_graph_token_is_a_plain_adapter(batch):
    """link_graph_token false (the ablation): the graph token's row of the adjacency is its
    self-loop, so the adapter at the readout token is the plain bottleneck; linked (the
    default), it also pools the molecule's atoms."""
    from workloads.peft.adapter import Bottleneck
    from workloads.peft.g_adapter import GraphBottleneck

    model = tiny(0).eval()
    with torch.no_grad():
        model(batch)  # the graph context of this batch
        ctx = model.backbone.context_holder
        b, n = ctx.graph.mask.shape
        torch.manual_seed(1)
        plain = Bottleneck(D, 4, 1.0)
        torch.nn.init.normal_(plain.up.weight)  # off the zero initialisation
        h = torch.randn(b, ctx.graph.k + n, D)
        for link in (False, True):
            g = GraphBottleneck(D, 4, 1.0, ctx, link)
            g.load_state_dict(plain.state_dict())
            assert torch.allclose(g(h)[:, 0], plain(h)[:, 0], atol=1e-6) == (not link)
            assert not torch.allclose(g(h)[:, ctx.graph.k:], plain(h)[:, ctx.graph.k:], atol=1e-4)  # atoms: convolved
