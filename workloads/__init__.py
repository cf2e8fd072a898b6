"""Everything a trial runs: datasets, backbones, PEFT methods, training and pretraining."""


def run_trial(cfg, **kwargs):
    """See :func:`workloads.train.run_trial` (imported lazily: it pulls in torch)."""
    from workloads.train import run_trial as _run

    return _run(cfg, **kwargs)
