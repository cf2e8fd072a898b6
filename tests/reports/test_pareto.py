import numpy as np
import pytest

from reports.pareto import front_order, hypervolume_2d, non_dominated


def test_non_dominated_minimize_maximize():
    # (memory, score): lower memory, higher score is better
    pts = [(10, 0.9), (5, 0.8), (5, 0.7), (20, 0.85), (1, 0.6)]
    mask = non_dominated(pts, ["minimize", "maximize"])
    assert mask.tolist() == [True, True, False, False, True]
    assert front_order(pts, ["minimize", "maximize"]).tolist() == [4, 1, 0]


def test_equal_points_are_both_kept_and_three_objectives():
    assert non_dominated([(1, 1), (1, 1)], ["minimize", "minimize"]).all()
    pts = [(1, 2, 3), (2, 1, 3), (2, 2, 4)]
    assert non_dominated(pts, ["minimize"] * 3).tolist() == [True, True, False]


def test_hypervolume_known_areas():
    dirs = ["minimize", "minimize"]
    assert hypervolume_2d([(1, 1)], dirs, (3, 3)) == pytest.approx(4)
    # staircase: (1,2) and (2,1) within (3,3): 2*1 + 1*1 + ... = 3
    assert hypervolume_2d([(1, 2), (2, 1)], dirs, (3, 3)) == pytest.approx(3)
    # a dominated point adds nothing; a point outside the reference adds nothing
    assert hypervolume_2d([(1, 2), (2, 1), (2.5, 2.5), (4, 0)], dirs, (3, 3)) == pytest.approx(3)
    # maximize the second objective: score 0.9 with reference score 0.5 and cost ref 10
    assert hypervolume_2d([(2, 0.9)], ["minimize", "maximize"], (10, 0.5)) == pytest.approx(8 * 0.4)
    assert hypervolume_2d([], dirs, (1, 1)) == 0.0


def test_shape_and_direction_errors():
    with pytest.raises(ValueError, match="do not match"):
        non_dominated(np.zeros((3, 2)), ["minimize"])
    with pytest.raises(ValueError, match="directions"):
        non_dominated(np.zeros((3, 2)), ["minimize", "up"])


def _brute_front(pts, dirs):
    sign = np.array([1 if d == "minimize" else -1 for d in dirs])
    p = np.asarray(pts, float) * sign
    return [i for i in range(len(p)) if not any(np.all(p[j] <= p[i]) and np.any(p[j] < p[i]) for j in range(len(p)))]


@pytest.mark.parametrize("seed", range(5))
def test_front_matches_brute_force_and_optunas_best_trials(seed):
    import optuna

    rng = np.random.default_rng(seed)
    pts = np.column_stack([rng.integers(1, 30, 40), rng.integers(0, 20, 40) / 20])  # ties on purpose
    dirs = ["minimize", "maximize"]
    mask = non_dominated(pts, dirs)
    assert np.flatnonzero(mask).tolist() == _brute_front(pts, dirs)
    study = optuna.create_study(directions=dirs)
    for x in pts:
        study.add_trial(optuna.trial.create_trial(values=[float(x[0]), float(x[1])]))
    assert sorted(t.number for t in study.best_trials) == np.flatnonzero(mask).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_matches_a_grid_count_and_optuna(seed):
    from optuna._hypervolume import compute_hypervolume  # Optuna's own (internal) routine

    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 20, size=(15, 2)).astype(float)
    ref = (20.0, 20.0)
    # on an integer grid, count the unit cells some point dominates
    grid = sum(1 for x in range(20) for y in range(20) if any(px <= x and py <= y for px, py in pts))
    hv = hypervolume_2d(pts, ["minimize", "minimize"], ref)
    assert hv == pytest.approx(grid)
    assert hv == pytest.approx(compute_hypervolume(pts, np.array(ref)))


def test_knee_is_the_bend_of_the_front():
    from reports.pareto import knee_index

    dirs = ["minimize", "maximize"]
    # (cost, score): score climbs fast up to cost 10, then barely: the bend is at cost 10
    pts = [(1, 0.2), (10, 0.88), (100, 0.9), (1000, 0.91), (50, 0.5)]
    assert knee_index(pts, dirs) == 1
    # a brute-force check of the definition on random fronts
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = np.column_stack([10 ** rng.uniform(0, 3, 12), rng.uniform(0, 1, 12)])
        k = knee_index(p, dirs)
        f = front_order(p, dirs)
        if len(f) < 3:  # no bend: the best score, the last along the cost axis
            assert k == f[-1]
            continue
        q = np.column_stack([np.log10(p[f, 0]), p[f, 1]])
        q = (q - q.min(0)) / (q.max(0) - q.min(0))
        a, b = q[0], q[-1]
        dist = [abs((b - a)[0] * (x - a)[1] - (b - a)[1] * (x - a)[0]) / np.linalg.norm(b - a) for x in q]
        assert k == f[int(np.argmax(dist))]
    assert knee_index([(5, 0.1), (1, 0.9)], dirs) == 1  # one point dominates: it is the knee
    assert knee_index([(1, 0.1), (5, 0.9)], dirs) == 1  # two on the front: the better score
    assert knee_index(np.zeros((0, 2)), dirs) is None
