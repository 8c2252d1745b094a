"""training.config (a config without argv, as training.compare builds it) and training.state (the
checkpoint's train_state: its layout, and load restoring what save read)."""

import random

import numpy as np
import pytest
import torch

from training.config import arch_names, arch_recipe, build_parser, make_config, parse_overrides, resolve_defaults
from training.state import TrainState

# the train_state layout of every checkpoint written so far (old checkpoints must keep resuming)
TRAIN_STATE_KEYS = ["finished", "alpha", "epoch", "batch", "step", "optimizer", "scheduler", "scaler", "rng",
                    "history", "epoch_sums", "epoch_batches", "epoch_skipped", "elapsed_s", "world_size", "args"]


@pytest.mark.parametrize("argv,options", [
    ([], {}),
    (["--lr", "0.01", "--multi-crop", "--resolutions", "64", "48", "--mred", "vanilla", "--epochs", "3"],
     {"lr": 0.01, "multi_crop": True, "resolutions": [64, 48], "mred": "vanilla", "epochs": 3}),
    (["--arch", "resnet18", "--batch-size", "64", "--resolutions", "48", "96", "--resume", "auto", "--eval-every", "0"],
     {"arch": "resnet18", "batch_size": 64, "resolutions": (48, 96), "resume": "auto", "eval_every": 0}),
])
def test_make_config_is_the_parsed_command_line(argv, options):
    """Same values, same keys in the same order (the checkpoint's train_args keep their layout)."""
    parsed = vars(resolve_defaults(build_parser().parse_args(["--data", "D", "--out", "o.pt", *argv])))
    made = vars(make_config(data="D", out="o.pt", **options))
    assert list(made) == list(parsed)
    assert made == parsed


def test_make_config_refuses_what_the_parser_refuses():
    with pytest.raises(ValueError, match="unknown training option.*bogus"):
        make_config(data="D", out="o.pt", bogus=1)
    with pytest.raises(ValueError, match="--out"):
        make_config(data="D")
    with pytest.raises(ValueError, match="argument --views: invalid choice: 'bogus'"):
        make_config(data="D", out="o.pt", views="bogus")
    with pytest.raises(ValueError, match="--eval-every must be >= 0"):
        make_config(data="D", out="o.pt", eval_every=-1)


def test_parse_overrides_returns_only_the_flags_given():
    assert parse_overrides([]) == {}
    assert parse_overrides(["--zero-init-residual", "--dtype", "float64", "--resolutions", "64", "48"]) == {
        "zero_init_residual": True, "dtype": "float64", "resolutions": [64, 48]}
    with pytest.raises(SystemExit) as e:
        parse_overrides(["--bogus", "1"])
    assert e.value.code == 2


def test_arch_recipe_is_the_papers():
    assert {"mobilenet_v2", "resnet18", "resnet50"} <= set(arch_names()) and arch_names() == sorted(arch_names())
    assert arch_recipe("mobilenet_v2") == (0.05, 4e-5, 150)
    assert arch_recipe("resnet18") == arch_recipe("resnet50") == (0.1, 1e-4, 120)
    with pytest.raises(ValueError, match="vgg16"):
        arch_recipe("vgg16")
    cfg = make_config(data="D", out="o.pt", arch="resnet18", batch_size=64)
    assert (cfg.lr, cfg.weight_decay, cfg.epochs) == (0.1 * 64 / 256, 1e-4, 120)


def _objects(seed):
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 2)
    alpha = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([*net.parameters(), alpha], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    return net, alpha, opt, sched, scaler


def test_train_state_load_restores_what_save_read():
    net, alpha, opt, sched, scaler = _objects(0)
    net(torch.randn(4, 3)).sum().add(alpha.sum()).backward()
    opt.step()
    sched.step()
    with torch.no_grad():
        alpha.add_(torch.tensor([0.5, -0.5]))
    st = TrainState(epoch=2, batch=3, step=11, history=[{"epoch": 1, "metrics": {}}], elapsed=7.5,
                    sums={"total": 1.5, "cls": 1.0, "ens": 0.25, "dis": 0.25}, batches=3, skipped=1)
    random.seed(5)
    np.random.seed(6)
    torch.manual_seed(7)
    ts = st.save(alpha, opt, sched, scaler, world=1, args={"lr": 0.1})
    assert list(ts) == TRAIN_STATE_KEYS
    want = (random.random(), np.random.rand(), torch.rand(1))

    _, alpha2, opt2, sched2, scaler2 = _objects(1)             # other weights, fresh optimizer
    back = TrainState.load(ts, alpha2, opt2, sched2, scaler2)
    assert (random.random(), np.random.rand(), torch.rand(1)) == want  # every RNG where save found it
    assert torch.equal(alpha2.detach(), alpha.detach())
    assert sched2.last_epoch == sched.last_epoch == 1
    mom = [opt.state[p]["momentum_buffer"] for p in opt.param_groups[0]["params"]]
    mom2 = [opt2.state[p]["momentum_buffer"] for p in opt2.param_groups[0]["params"]]
    assert all(torch.equal(a, b) for a, b in zip(mom, mom2))
    assert (back.epoch, back.batch, back.step, back.history, back.elapsed, back.sums, back.batches, back.skipped,
            back.finished) == (2, 3, 11, st.history, ts["elapsed_s"], st.sums, 3, 1, False)
