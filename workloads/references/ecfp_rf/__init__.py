"""``ecfp_rf``: extended-connectivity fingerprints and a random forest.

Rogers & Hahn, "Extended-Connectivity Fingerprints" (J. Chem. Inf. Model. 2010) as
RDKit's Morgan fingerprints (radius 2, 2048 bits: ECFP4), and Breiman's random forest
(Machine Learning 2001) from scikit-learn: ``RandomForestRegressor`` on raw labels, or
``RandomForestClassifier`` whose positive-class probability is scored; one forest per
task on that task's labelled molecules (a multi-task set misses labels). The strong
classical baseline of molecular property prediction (e.g. MoleculeACE, van Tilborg et
al. 2022, where it beats most deep models on activity cliffs). Not searched: 500 trees
and scikit-learn's defaults otherwise; the seed is the forest's ``random_state``.

Memory is the ``tracemalloc`` peak while fitting the forests: scikit-learn's NumPy arrays
(the labelled rows' fingerprints, bootstrap indices), not the fingerprints computed
beforehand (the dataset, as a graph model's featurized set is not in its peak) nor the
trees' node buffers, which scikit-learn's C code allocates with ``malloc`` (the forest's
fitted node count is reported beside it).
Latency is one ``predict`` call on fingerprints computed beforehand, as a graph model's
latency is one forward on a batch featurized beforehand.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from workloads.peft.base import MethodConfig, ReferenceKind, register_method
from workloads.references.base import MEMORY_BY_TRACEMALLOC, Fitted


class EcfpRfConfig(MethodConfig):
    radius: int = Field(default=2, ge=1, le=6, description="Morgan radius (2: ECFP4)")
    bits: int = Field(default=2048, ge=64, le=65536, description="fingerprint length")
    trees: int = Field(default=500, ge=1, le=10_000, description="trees in the forest")


def fingerprints(smiles: list[str], radius: int, bits: int) -> np.ndarray:
    """[n, bits] uint8 Morgan bit vectors (RDKit's generator)."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    out = np.zeros((len(smiles), bits), np.uint8)
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)  # the featurized sets hold only SMILES that parsed
        DataStructs.ConvertToNumpyArray(gen.GetFingerprint(mol), out[i])
    return out


def fit(cfg, task, data, seed: int, measure) -> Fitted:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    p = EcfpRfConfig(**cfg.method.params)
    x = {s: fingerprints([g.smiles for g in getattr(data, s)], p.radius, p.bits) for s in ("train", "valid", "test")}
    y = task.label_matrix(data, "train")
    forests: list = []
    with measure():
        for t in range(y.shape[1]):
            lab = ~np.isnan(y[:, t])
            yt = y[lab, t]
            if data.task == "classification" and len(np.unique(yt)) < 2:
                forests.append(float(yt.mean()) if len(yt) else 0.5)  # one class only: its prior
                continue
            cls = RandomForestClassifier if data.task == "classification" else RandomForestRegressor
            forests.append(cls(n_estimators=p.trees, random_state=seed, n_jobs=cfg.num_threads or 1)
                           .fit(x["train"][lab], yt))

    def predict_x(feats: np.ndarray) -> np.ndarray:
        cols = []
        for f in forests:
            if isinstance(f, float):
                cols.append(np.full(len(feats), f))
            elif data.task == "classification":
                cols.append(f.predict_proba(feats)[:, list(f.classes_).index(1.0)])
            else:
                cols.append(f.predict(feats))
        return np.stack(cols, axis=1)

    lat = x["test"][: cfg.profile.latency_batch_size]
    nodes = sum(est.tree_.node_count for f in forests if not isinstance(f, float) for est in f.estimators_)
    return Fitted(predict=lambda split: predict_x(x[split]), latency_call=lambda: predict_x(lat),
                  latency_units=max(len(lat), 1), fitted_values=int(nodes),
                  notes={"ecfp_rf": p.model_dump() | {"tree_nodes": int(nodes)}})


def _never_built(model, cfg):
    raise TypeError("ecfp_rf is fitted outside the training loop (ReferenceKind.fit)")


register_method("ecfp_rf", EcfpRfConfig, backbones=("graph_transformer",),
                reference=ReferenceKind(memory_by=MEMORY_BY_TRACEMALLOC + "; the trees' C buffers are not seen",
                                        fit=fit))(_never_built)
