"""The training loop knows optimizers only through its protocols: closures, a second pass at a
perturbed point with BatchNorm statistics frozen, and no import of edutools.engine.sam."""

import ast
from pathlib import Path

import torch
from torch import nn

import edutools.engine.training as training
from edutools.engine.sam import SAM
from edutools.engine.training import ClosureOptimizer, TwoPassOptimizer, train
from edutools.ground import batchnorm
from edutools.ground.models import mlp


def test_the_training_package_imports_nothing_from_sam():
    for path in Path(training.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            assert not any(name.startswith("edutools.engine.sam") for name in names), path.name


def test_sam_declares_the_two_pass_protocol_and_plain_sgd_does_not(teacher):
    model = mlp([teacher.input_dim, 8, teacher.num_classes], seed=0)
    sam = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1)
    assert TwoPassOptimizer in SAM.__mro__ and isinstance(sam, TwoPassOptimizer)  # declared
    assert not isinstance(torch.optim.SGD(model.parameters(), lr=0.1), ClosureOptimizer)
    from edutools.engine.sam.batchnorm import frozen_running_stats
    assert frozen_running_stats is batchnorm.frozen_running_stats


class Perturbing(torch.optim.SGD):
    """A two-pass optimizer that is not SAM: a second pass at θ + 0.01 (every parameter), then
    the SGD step with that gradient; ``fresh_every`` steps it asks for the loop's pass at θ."""

    requires_closure = True

    def __init__(self, params, *, fresh_every, **kwargs):
        super().__init__(params, **kwargs)
        self.fresh_every, self.steps, self.perturbed = fresh_every, 0, False
        self.stats_moved = []  # per step: did the perturbed pass change BatchNorm buffers?
        self.model = None

    @property
    def ascent_due(self):
        return self.steps % self.fresh_every == 0

    def step(self, closure):
        params = [p for group in self.param_groups for p in group["params"]]
        with torch.no_grad():
            for p in params:
                p.add_(0.01)
        before = {k: v.clone() for k, v in self.model.state_dict().items() if "running" in k}
        self.perturbed = True
        loss = closure()
        self.perturbed = False
        after = {k: v for k, v in self.model.state_dict().items() if "running" in k}
        self.stats_moved.append(any(not torch.equal(before[k], after[k]) for k in before))
        with torch.no_grad():
            for p in params:
                p.sub_(0.01)
        super().step()
        self.steps += 1
        return loss


def test_a_two_pass_optimizer_gets_frozen_statistics_and_skips_the_pass_at_theta(teacher):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(teacher.input_dim, 8), nn.BatchNorm1d(8), nn.Tanh(),
                          nn.Linear(8, teacher.num_classes))
    made = []

    def factory(params):
        made.append(Perturbing(params, fresh_every=2, lr=0.1))
        made[-1].model = model
        return made[-1]

    result = train(model, teacher, lr=0.1, num_steps=6, batch_size=50, measure_every=6,
                   optimizer=factory, progress=False)
    opt = made[0]
    assert isinstance(opt, TwoPassOptimizer) and result.num_steps == 6
    assert opt.stats_moved == [False] * 6  # the perturbed passes left the statistics alone
    # Only the loop's passes at θ count: steps 0, 2, 4 (ascent due); 1, 3, 5 reuse.
    assert int(model[1].num_batches_tracked) == 3
