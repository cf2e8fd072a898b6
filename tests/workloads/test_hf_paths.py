"""HF Graphormer's multi-hop paths, vectorised here (workloads.backbones.hf_graphormer), against
a line-by-line Python port of the reference loops (transformers 4.40.2,
models/graphormer/algos_graphormer.pyx: floyd_warshall, get_all_edges, gen_edge_input)."""
import numpy as np
import pytest

from workloads.backbones.hf_graphormer import UNREACHABLE, floyd_warshall, path_edges
from workloads.datasets.featurize import smiles_to_data


def reference_floyd_warshall(adj):
    n = adj.shape[0]
    m = adj.astype(np.int64).copy()
    path = -1 * np.ones((n, n), dtype=np.int64)
    for i in range(n):
        for j in range(n):
            if i == j:
                m[i][j] = 0
            elif m[i][j] == 0:
                m[i][j] = UNREACHABLE
    for k in range(n):
        for i in range(n):
            for j in range(n):
                cost = m[i][k] + m[k][j]
                if m[i][j] > cost:
                    m[i][j] = cost
                    path[i][j] = k
    for i in range(n):
        for j in range(n):
            if m[i][j] >= UNREACHABLE:
                path[i][j] = UNREACHABLE
                m[i][j] = UNREACHABLE
    return m, path


def reference_all_edges(path, i, j):
    k = path[i][j]
    if k == -1:
        return []
    return reference_all_edges(path, i, k) + [k] + reference_all_edges(path, k, j)


def reference_edge_input(max_dist, path, edge_feat):
    n = path.shape[0]
    out = -1 * np.ones([n, n, max_dist, edge_feat.shape[-1]], dtype=np.int64)
    for i in range(n):
        for j in range(n):
            if i == j or path[i][j] == UNREACHABLE:
                continue
            nodes = [i] + reference_all_edges(path, i, j) + [j]
            for k in range(len(nodes) - 1):
                out[i, j, k, :] = edge_feat[nodes[k], nodes[k + 1], :]
    return out


SMILES = ["C", "CC", "CCO", "c1ccccc1", "C1CC2CCC1C2", "CC(=O)Oc1ccccc1C(=O)O", "[Na+].[Cl-]",
          "CC(=O)[O-].[Na+]", "C" * 14, "OCCOCCOCCOCCOCCO", "c1ccc2c(c1)ccc1ccccc12",
          "C1CCC2(CC1)CCCCC2", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "C1CC1.C1CCCCC1.O"]


@pytest.mark.parametrize("smiles", SMILES)
def test_paths_are_hfs(smiles):
    g = smiles_to_data(smiles)
    ei, n = g.edge_index.numpy(), g.num_nodes
    adj = np.zeros((n, n), dtype=bool)
    adj[ei[0], ei[1]] = True
    ref_m, ref_p = reference_floyd_warshall(adj)
    m, p = floyd_warshall(ei, n)
    assert (m == ref_m).all() and (p == ref_p).all()
    assert (m.reshape(-1) == np.where(g.spd.numpy() < 0, UNREACHABLE, g.spd.numpy())).all()  # scipy agrees
    eid = np.full((n, n, 1), -1, dtype=np.int64)
    eid[ei[0], ei[1], 0] = np.arange(ei.shape[1])
    hops = 5
    max_dist = max(int(ref_m.max()), hops)  # HF: np.amax of the distances, then the model keeps the first hops
    want = reference_edge_input(max_dist, ref_p, eid)[:, :, :hops, 0].reshape(n * n, hops)
    assert (path_edges(ei, n, hops) == want).all()

