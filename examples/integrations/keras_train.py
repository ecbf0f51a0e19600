"""A small Keras 3 classifier of scikit-learn's digits, tuned by Tunelab.

The Tunelab part is the callback (`callbacks=[tunelab]`); the rest is plain Keras, on any
backend (KERAS_BACKEND; the study file picks torch). Under Tunelab
(`tunelab study create -f examples/integrations/keras.yaml`) the hyperparameters arrive
as flags; on its own, `--study ID` asks that study for a trial.
"""

from __future__ import annotations

import argparse

import keras
from sklearn.datasets import load_digits

from tunelab.integrations.keras import TunelabCallback


def build(lr: float, hidden: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--study", type=int, default=None, help="outside Tunelab: a study id")
    parser.add_argument("--url", default=None, help="outside Tunelab: the server (TUNELAB_URL)")
    args = parser.parse_args()

    tunelab = TunelabCallback(study=args.study, url=args.url)
    params = {**vars(args), **tunelab.params}  # the trial's values win
    model = tunelab.resumed_model() or build(params["lr"], int(params["hidden"]))
    x, y = load_digits(return_X_y=True)
    history = model.fit(
        (x / 16.0).astype("float32"),
        y,
        validation_split=0.25,
        epochs=int(tunelab.budget or params["epochs"]),
        initial_epoch=tunelab.initial_epoch,
        batch_size=64,
        verbose=0,
        callbacks=[tunelab],
    )
    epochs = len(history.history["loss"])
    print(f"trial {tunelab.trial_id}: {tunelab.decision} after {epochs} epochs")


if __name__ == "__main__":
    main()
