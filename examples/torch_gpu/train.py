"""A PyTorch MLP on scikit-learn's digits, on the GPU(s) Tunelab gives the trial.

Run alone (`python train.py --lr 0.05`) or under torchrun for several GPUs per trial
(`torchrun --nproc_per_node 2 train.py ...`): it reads its world size from
torch.distributed (or WORLD_SIZE), scales the learning rate linearly with it (the
batch grows with the number of processes), and prints a line per epoch from rank 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn


def world() -> tuple[int, int]:
    if "RANK" in os.environ and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, int(os.environ.get("WORLD_SIZE", "1"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--lr", type=float, default=0.05, help="for one process; scaled by world size"
    )
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=64, help="per process")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rank, world_size = world()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    lr = (
        args.lr * world_size
    )  # the linear scaling rule: the global batch is world_size times larger
    torch.manual_seed(args.seed)

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x / 16.0, y, test_size=0.25, random_state=args.seed, stratify=y
    )
    # Each rank trains on its own shard.
    x_train, y_train = x_train[rank::world_size], y_train[rank::world_size]
    xt = torch.tensor(x_train, dtype=torch.float32, device=device)
    yt = torch.tensor(y_train, dtype=torch.long, device=device)
    xv = torch.tensor(x_val, dtype=torch.float32, device=device)
    yv = torch.tensor(y_val, dtype=torch.long, device=device)

    model: nn.Module = nn.Sequential(
        nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10)
    ).to(device)
    if world_size > 1 and dist.is_initialized():
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    folder = os.environ.get("TUNELAB_CHECKPOINT_DIR")
    path = os.path.join(folder, "model.pt") if folder else None
    start = 0
    if path and os.path.exists(path):
        state = torch.load(path, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
    epoch_done = {"n": start}

    def save_and_exit(_signum: int, _frame: object) -> None:
        if path and rank == 0:
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch_done["n"],
                },
                path,
            )
        sys.exit(0)

    signal.signal(signal.SIGTERM, save_and_exit)
    if rank == 0:
        print(f"world_size={world_size} device={device} lr={lr:g}", flush=True)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(start + 1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(xt), device=device)
        for begin in range(0, len(order), args.batch_size):
            batch = order[begin : begin + args.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(xt[batch]), yt[batch])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_acc = (model(xv).argmax(1) == yv).float().mean().item()
        epoch_done["n"] = epoch
        if rank == 0:
            print(f"epoch {epoch} loss={loss.item():.5f} val_acc={val_acc:.4f}", flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
