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
