"""A small PyTorch Lightning classifier of scikit-learn's digits, tuned by Tunelab.

The Tunelab part is the callback (`callbacks=[tunelab]`); the rest is plain Lightning.
Under Tunelab (`tunelab study create -f examples/integrations/lightning.yaml`) the
hyperparameters arrive as flags; on its own, `--study ID` asks that study for a trial.
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tunelab.integrations.lightning import TunelabCallback


class Classifier(pl.LightningModule):
    def __init__(self, lr: float, hidden: int) -> None:
        super().__init__()
        self.lr = lr
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
        )

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def loaders() -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.25, random_state=0)

    def loader(x: object, y: object, shuffle: bool) -> torch.utils.data.DataLoader:
        data = torch.utils.data.TensorDataset(
            torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)
        )
        return torch.utils.data.DataLoader(data, batch_size=64, shuffle=shuffle)

    return loader(x_train, y_train, True), loader(x_val, y_val, False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--study", type=int, default=None, help="outside Tunelab: a study id")
    parser.add_argument("--url", default=None, help="outside Tunelab: the server (TUNELAB_URL)")
    args = parser.parse_args()

    tunelab = TunelabCallback(study=args.study, url=args.url)
    params = {**vars(args), **tunelab.params}  # the trial's values win
    torch.manual_seed(0)
    model = Classifier(lr=params["lr"], hidden=int(params["hidden"]))
    trainer = pl.Trainer(
        max_epochs=int(tunelab.budget or params["epochs"]),
        callbacks=[tunelab],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    train, val = loaders()
    trainer.fit(model, train, val, ckpt_path=tunelab.resume_checkpoint)
    print(f"trial {tunelab.trial_id}: {tunelab.decision} after epoch {trainer.current_epoch}")


if __name__ == "__main__":
    main()
