"""A tiny, deterministic training task shared by the engine tests and their killed subprocess."""
import sys

import torch
from torch.utils.data import DataLoader, TensorDataset

from fgvc_lib.backbones import build_backbone
from fgvc_lib.engine import TrainConfig, fit
from fgvc_lib.models.baseline import BaselineNet, cross_entropy_loss


def make_task(seed: int = 0):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(123)
    labels = torch.arange(64) % 4
    images = torch.randn(64, 3, 32, 32, generator=g) + labels.view(-1, 1, 1, 1).float() * 0.5
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True)
    torch.manual_seed(seed)
    model = BaselineNet(build_backbone("resnet34", width=0.25), num_classes=4)
    return model, loader


def config(epochs: int = 4, **changes) -> TrainConfig:
    settings = dict(epochs=epochs, lr=0.05, scheduler="step", step_size=2, gamma=0.5, progress=False)
    return TrainConfig(**{**settings, **changes})


if __name__ == "__main__":  # the run the resume test kills: python engine_task.py CHECKPOINT_DIR SLEEP
    import time
    checkpoint_dir, pause = sys.argv[1], float(sys.argv[2])
    model, loader = make_task()

    def slow_loss(output, targets):
        time.sleep(pause)
        return cross_entropy_loss(output, targets)

    fit(model, loader, slow_loss, config(), checkpoint_dir=checkpoint_dir)
