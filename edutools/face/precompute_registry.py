"""The course's slider grids: which run function each lesson's panel calls, over which values.

One entry per slider panel whose results are worth keeping (training runs), with the ``fixed``
parameters the lesson passes in full mode with its default ``SEED``; the lesson builds its sliders
from the same grid constants, so the panel and ``python -m edutools.face.precompute`` compute the
same points and share one disk cache. (Lesson 07's panel reads the grid runner's own cache, which
the lesson fills itself.)
"""

from __future__ import annotations

from edutools.engine.experiments import (
    cohen_eos,
    eoss,
    jelassi_li,
    large_batch,
    long_bartlett,
    momentum_eoss,
    seed_network,
)
from edutools.face.precompute import SliderGrid

SLIDER_GRIDS: list[SliderGrid] = [
    SliderGrid(lesson="00", name="momentum β × batch size B (MNIST MLP)",
               run=seed_network.train_seed_network, grid=seed_network.SLIDER_GRID,
               fixed={"lr": 0.01, "epochs": seed_network.EPOCHS, "seed": 0}),
    SliderGrid(lesson="01", name="learning rate η (GD at the edge of stability)",
               run=cohen_eos.gd_edge_run, grid=cohen_eos.SLIDER_GRID,
               fixed={"seed": 0, "num_steps": 4000, "measure_every": 100}),
    SliderGrid(lesson="02", name="batch size B (lesson-01 network)",
               run=eoss.run_teacher, grid=eoss.SLIDER_GRID,
               fixed={"lr": 0.2, "num_steps": 4000, "seed": 0}),
    SliderGrid(lesson="03", name="momentum β (full batch)",
               run=momentum_eoss.run_full_batch, grid=momentum_eoss.FULL_BATCH_GRID,
               fixed={"lr": 0.3, "num_steps": momentum_eoss.FULL_BATCH_SLIDER_STEPS, "seed": 0}),
    # The momentum × batch-size panel: FAST-sized runs (momentum_eoss.PANEL) in both modes.
    SliderGrid(lesson="03", name="momentum β × batch size B (plateau 2(1−β)/η)",
               run=momentum_eoss.run_momentum_batch, grid=momentum_eoss.PANEL_GRID,
               fixed={"seed": 0}),
    # Jelassi–Li's momentum slider; the lesson's full mode runs PATCH_STEPS = 2000 steps.
    SliderGrid(lesson="03", name="momentum γ (Jelassi–Li patches)",
               run=jelassi_li.run_patch_momentum, grid=jelassi_li.SLIDER_GRID,
               fixed={"seed": 0, "num_steps": 2000}),
    SliderGrid(lesson="04", name="batch size B × momentum β (noise scale)",
               run=large_batch.run_sgd, grid=large_batch.SLIDER_GRID,
               fixed={"lr": 0.05, "seed": 0, "num_epochs": 30}),
    # Lesson 06: full-batch SAM for SLIDER_STEPS steps; the lesson passes fixed={"seed": SEED}.
    SliderGrid(lesson="06", name="SAM radius ρ × learning rate η",
               run=long_bartlett.sam_edge_run, grid=long_bartlett.SLIDER_GRID,
               fixed={"seed": 0}),
]
