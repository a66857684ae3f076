"""edutools.engine.experiments: the module → lesson map is read from the lessons."""

import pytest

from edutools.engine import experiments


def test_every_experiment_module_belongs_to_a_lesson():
    by_module = experiments.lesson_map()
    assert set(by_module) == set(experiments.module_names()) and len(by_module) >= 20
    orphans = [name for name, lessons in by_module.items() if not lessons]
    assert not orphans, f"no lesson imports {orphans}: use them in a lesson or remove them"
    assert by_module["cohen_eos"] == ("01",) and "03" in by_module["critical_lr"]


def test_the_two_directions_agree():
    by_module, by_lesson = experiments.lesson_map(), experiments.lesson_map(by="lesson")
    for lesson, modules in by_lesson.items():
        for name in modules:
            assert lesson in by_module[name]
    with pytest.raises(ValueError, match="by must"):
        experiments.lesson_map(by="paper")
