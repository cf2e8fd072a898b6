"""A corpus of malformed specs (tests/specs/bad/*.yaml, each with one defect and the
words its error must hold on its first line), run through `orchestrator sweep` as a
user would: exit code 2, one readable line naming the file and the YAML path,
nothing created, no trial run (and no Ray started)."""
from pathlib import Path

import pytest

from orchestrator.cli import main

CORPUS = sorted((Path(__file__).resolve().parents[1] / "specs" / "bad").glob("*.yaml"))


def test_the_corpus_is_large():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("spec", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_spec_one_line_nothing_created(spec, tmp_path, monkeypatch, capsys):
    expect = spec.read_text().splitlines()[0].removeprefix("# expect: ")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # relative paths in the spec (runs/, data files) resolve here
    assert main(["sweep", str(spec), "--num-cpus", "2"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err, err  # one line
    assert err.startswith(f"error: {spec}") and expect in err, err
    assert "Traceback" not in err and "hunter2" not in err
    assert list(work.iterdir()) == []  # no run folder, no pretraining cache, nothing
    assert captured.out == ""  # no progress line: no work started
    import sys

    if "ray" in sys.modules:
        import ray

        assert not ray.is_initialized()
