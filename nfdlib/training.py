"""Training loops on finite networks: mini-batch (or stream, batch 1) SGD over epochs, with
periodic evaluation, recording divergence (a non-finite loss) as data instead of raising, and
optionally a *twin* network trained in lockstep to measure how far a small perturbation of
the initial weights carries (the sensitivity of training to rounding)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .network import GROUPS, Network, loss_and_chi


@dataclass
class History:
    """Losses of one training run. ``steps`` are the step indices of the evaluations;
    ``diverged_at`` is the first step whose loss was not finite (None if none), with
    ``reason``; curves stop there. ``twin_distance`` (training with a twin only) holds the
    relative distance between the two networks' test outputs at initialisation and at each
    evaluation (None where the twin's outputs were not finite)."""
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    diverged_at: int | None = None
    reason: str | None = None
    twin_distance: list[float | None] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"steps": self.steps, "train_loss": self.train_loss, "test_loss": self.test_loss,
               "test_accuracy": self.test_accuracy, "diverged_at": self.diverged_at,
               "reason": self.reason}
        if self.twin_distance:
            out["twin_distance"] = self.twin_distance
        return out


def evaluate(net: Network, X, Y, loss: str, batch: int = 512) -> tuple[float, float]:
    """Mean loss and accuracy (cross-entropy: arg-max; mse: NaN) over (X, Y)."""
    losses, correct = [], 0
    for start in range(0, len(X), batch):
        f = net.predict(X[start:start + batch])
        lo, _ = loss_and_chi(f, Y[start:start + batch], loss)
        losses.append(lo)
        if loss == "cross_entropy":
            correct += int(np.sum(np.argmax(f, axis=1) == np.asarray(Y[start:start + batch])))
    acc = correct / len(X) if loss == "cross_entropy" else float("nan")
    return float(np.mean(np.concatenate(losses))), acc


def relative_distance(net: Network, twin: Network, X, batch: int = 512) -> float | None:
    """‖f − f_twin‖_F / ‖f‖_F over the rows of ``X``: how far the twin's outputs are from the
    network's (None if either is not finite)."""
    num = den = 0.0
    for start in range(0, len(X), batch):
        f, ft = net.predict(X[start:start + batch]), twin.predict(X[start:start + batch])
        num += float(np.sum((f - ft) ** 2))
        den += float(np.sum(f ** 2))
    dist = np.sqrt(num / den) if den > 0 else np.nan
    return float(dist) if np.isfinite(dist) else None


def train(net: Network, X, Y, *, eta_c: float, epochs: int = 1, batch: int = 128,
          loss: str = "cross_entropy", train_groups=GROUPS, X_test=None, Y_test=None,
          eval_every: int = 10, rng: np.random.Generator | int = 0,
          progress: bool = False, twin: Network | None = None) -> History:
    """Mini-batch SGD (Eq. 2, η = η_c·n) for ``epochs`` passes over (X, Y), shuffled by
    ``rng``. Every ``eval_every`` steps (and at the end) the training loss is the mean loss
    of the last ``eval_every`` batches and the test loss is evaluated on (X_test, Y_test).
    A non-finite loss or weight stops training and is recorded in ``diverged_at``.
    With ``twin`` (a network of the same spec, e.g. with perturbed initial weights), the twin
    takes the same SGD steps on the same batches, and ``twin_distance`` records
    :func:`relative_distance` on (X_test) at initialisation and at each evaluation."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    hist = History()
    if twin is not None:
        hist.twin_distance.append(relative_distance(net, twin, X_test))
    n_batches = max(1, len(X) // batch)
    total = epochs * n_batches
    recent: list[float] = []
    step = 0
    bar = tqdm(total=total, disable=not progress, leave=False, desc="SGD")
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(epochs):
            order = rng.permutation(len(X))
            for b in range(n_batches):
                idx = order[b * batch:(b + 1) * batch]
                losses = net.step(X[idx], Y[idx], eta_c, loss=loss, train=train_groups)
                if twin is not None:
                    twin.step(X[idx], Y[idx], eta_c, loss=loss, train=train_groups)
                mean_loss = float(np.mean(losses))
                if not np.isfinite(mean_loss):
                    hist.diverged_at, hist.reason = step, "non-finite training loss"
                    bar.close()
                    return hist
                recent.append(mean_loss)
                step += 1
                bar.update(1)
                if step % eval_every == 0 or step == total:
                    bar.set_postfix(loss=f"{mean_loss:.3g}")
                    hist.steps.append(step)
                    hist.train_loss.append(float(np.mean(recent)))
                    recent = []
                    if X_test is not None:
                        tl, acc = evaluate(net, X_test, Y_test, loss)
                        if not np.isfinite(tl):
                            hist.diverged_at, hist.reason = step, "non-finite test loss"
                            bar.close()
                            return hist
                        hist.test_loss.append(tl)
                        hist.test_accuracy.append(acc)
                    if twin is not None:
                        hist.twin_distance.append(relative_distance(net, twin, X_test))
    bar.close()
    return hist
