"""A small PyTorch model for population-based training: an MLP on scikit-learn's digits.

    python bench/strategies/pbt_torch_train.py --lr 0.1 --epochs 24

What PBT asks of a script, and all it asks: save the state in TUNELAB_CHECKPOINT_DIR
(here after every epoch, with tunelab.save_checkpoint: a temporary file renamed into
place, so a copy never reads half a file) and load it when starting. The learning rate comes from the flags of this
run, not from the checkpoint: a member that exploited goes on from the donor's weights
with its own new value.
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import tunelab

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--epochs", type=int, required=True)
args = parser.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)

digits = load_digits()
x_train, x_val, y_train, y_val = train_test_split(
    digits.data / 16.0, digits.target, test_size=0.3, random_state=0
)
x_train_t = torch.tensor(x_train, dtype=torch.float32)
y_train_t = torch.tensor(y_train)
x_val_t = torch.tensor(x_val, dtype=torch.float32)
y_val_t = torch.tensor(y_val)

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
path = tunelab.checkpoint_path("model.pt")
epoch = 0
if path is not None and path.exists():
    state = torch.load(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    epoch = state["epoch"]
    print(f"loaded epoch {epoch} (lr was {state['lr']:g}, now {args.lr:g})", flush=True)
for group in optimizer.param_groups:
    group["lr"] = args.lr

generator = torch.Generator().manual_seed(epoch)
while epoch < args.epochs:
    epoch += 1
    model.train()
    order = torch.randperm(len(x_train_t), generator=generator)
    for start in range(0, len(order), 32):
        batch = order[start : start + 32]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x_train_t[batch]), y_train_t[batch])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_val_t).argmax(1) == y_val_t).float().mean().item()
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "lr": args.lr,
    }
    tunelab.save_checkpoint(lambda p, state=state: torch.save(state, p), "model.pt")
    print(f"epoch {epoch} val_acc={accuracy!r}", flush=True)
