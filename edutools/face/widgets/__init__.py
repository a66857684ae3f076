"""Sliders bound to experiments (:mod:`.panel`) and the course's slider factories
(:mod:`.sliders`)."""

from edutools.face.widgets.panel import ExperimentPanel, RunCancelled, slider_panel
from edutools.face.widgets.sliders import (
    batch_size_slider,
    choice_slider,
    clean_value,
    lr_slider,
    momentum_slider,
)

__all__ = ["ExperimentPanel", "RunCancelled", "batch_size_slider", "choice_slider",
           "clean_value", "lr_slider", "momentum_slider", "slider_panel"]
