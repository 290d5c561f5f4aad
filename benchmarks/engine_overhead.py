"""Training throughput of fgvc_lib.engine.fit against a plain hand-written PyTorch loop.

Same model architecture and initial weights, same in-memory data, same batch size, same optimizer;
each side runs several times, interleaved, and the best time of each is kept (the least disturbed
by other processes). The last line printed is ``ratio: X`` = engine images/s / plain images/s.

    python benchmarks/engine_overhead.py [--repeats 3] [--epochs 2]
"""
import argparse
import copy
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from fgvc_lib.backbones import build_backbone
from fgvc_lib.engine import TrainConfig, fit
from fgvc_lib.models.baseline import BaselineNet, cross_entropy_loss


def plain_loop(model, loader, epochs, lr):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        for images, targets in loader:
            output = model(images)
            loss = torch.nn.functional.cross_entropy(output.logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def engine_loop(model, loader, epochs, lr):
    config = TrainConfig(epochs=epochs, lr=lr, momentum=0.9, weight_decay=1e-4, progress=True)
    fit(model, loader, cross_entropy_loss, config, desc="engine")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randn(args.images, 3, args.image_size, args.image_size)
    labels = torch.randint(0, 10, (args.images,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch_size, shuffle=True)
    reference = BaselineNet(build_backbone("vgg16", width=0.25), num_classes=10)
    seen = args.images * args.epochs
    best = {"plain": float("inf"), "engine": float("inf")}
    plain_loop(copy.deepcopy(reference), loader, 1, 0.01)  # warm-up (allocator, kernels)
    for _ in range(args.repeats):
        for name, loop in (("plain", plain_loop), ("engine", engine_loop)):
            model = copy.deepcopy(reference)
            started = time.perf_counter()
            loop(model, loader, args.epochs, 0.01)
            best[name] = min(best[name], time.perf_counter() - started)
    for name, seconds in best.items():
        print(f"{name}: {seen / seconds:.1f} images/s (best of {args.repeats})")
    print(f"ratio: {best['plain'] / best['engine']:.2f}")


if __name__ == "__main__":
    main()
