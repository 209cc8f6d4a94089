"""Tune a toy objective with hyperdial. Start a server first: ``hyperdial serve``."""

import contextlib
import math
import os

import hyperdial as hd

SPACE = [
    hd.Float("learning_rate", 1e-5, 1e-1, log=True),
    hd.Int("layers", 1, 6),
    hd.Categorical("optimizer", ["sgd", "adam"]),
    hd.Float("momentum", 0.0, 0.99, when=("optimizer", ["sgd"])),  # only for sgd
]


def objective(trial: hd.Trial) -> float:
    """A quadratic bowl with its minimum at lr=1e-3, 3 layers, adam (or sgd with momentum 0.9)."""
    p = trial.params
    loss = (math.log10(float(p["learning_rate"])) + 3) ** 2 + (int(p["layers"]) - 3) ** 2
    return loss + (abs(float(p["momentum"]) - 0.9) if p["optimizer"] == "sgd" else 0.1)


with hd.Client(os.environ.get("HYPERDIAL_TARGET", "localhost:50051")) as client:
    with contextlib.suppress(hd.NotFoundError):  # start afresh on every run
        client.delete_study("quickstart")
    study = client.create_study("quickstart", SPACE, "minimize", seed=42)
    study.optimize(objective, n_trials=30, n_workers=4)
    best = study.best_trial
    print(f"best of {len(study.trials())} trials: #{best.number} loss={best.value:.4f}")
    print(f"  params: {best.params}")
