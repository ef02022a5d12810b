"""Planning a stage: the checks every stage kind shares, and planning without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from w2sprobe.errors import UsageError
from w2sprobe.options import TrainOptions
from w2sprobe.train.plans import STAGE_NAMES, check_stage


def test_stage_names_and_a_student_without_labels_are_refused():
    assert STAGE_NAMES == ("weak", "ceiling", "student")
    for stage in ("weak", "ceiling"):
        check_stage(stage, None)
    with pytest.raises(UsageError, match="unknown stage 'teacher'; use one of weak, ceiling"):
        check_stage("teacher", None)
    with pytest.raises(UsageError, match="a student needs a label set"):
        check_stage("student", None)


def test_recipes_and_plans_import_no_torch():
    """A stage's key is computed from its recipe before anything trains: the recipe and plan
    modules load with torch unimportable."""
    code = (
        "import sys; sys.modules['torch'] = None; "
        "from w2sprobe.train.plans import plan_stage, plan_head; "
        "from w2sprobe.train.configs import TrainConfig, HeadConfig; "
        "from w2sprobe.train.inputs import train_config, head_config; "
        "print(TrainConfig().describe()['lr'], HeadConfig().describe()['lr'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    defaults = TrainOptions()
    assert done.stdout.split() == [str(defaults.strong_lr), str(defaults.head_lr)]
