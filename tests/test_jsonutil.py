import json
import math

from w2sprobe.jsonutil import finite


def test_non_finite_floats_become_null_at_any_depth():
    data = {"a": math.nan, "b": [1.5, math.inf, {"c": -math.inf}], "d": (2, "x")}
    assert json.loads(json.dumps(finite(data), allow_nan=False)) == {
        "a": None,
        "b": [1.5, None, {"c": None}],
        "d": [2, "x"],
    }
