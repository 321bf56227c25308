"""Hyperband's checkpoints: a trial's weights, kept in the database so that any worker can
resume the trial a later round promotes."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import keras

log = logging.getLogger(__name__)


def load_checkpoint(
    content: bytes | None,
    model: keras.Model,
    past_number: int,
    initial_epoch: int,
    notes: list[str],
) -> int:
    """Continue from the weights (``content``) of the trial this one promotes: the epoch to
    start from. If they are gone, train from scratch and say so in ``notes``."""
    if content is not None:
        with tempfile.TemporaryDirectory(prefix="hpsearch-ckpt-") as tmp:
            path = Path(tmp) / "w.weights.h5"
            path.write_bytes(content)
            with warnings.catch_warnings():  # the fresh optimizer has no slots yet: expected
                warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                model.load_weights(path)
        return initial_epoch
    note = f"checkpoint of trial {past_number} missing; trained from scratch"
    log.warning(note)
    if note not in notes:
        notes.append(note)
    return 0


def checkpoint_bytes(model: keras.Model) -> bytes:
    """The model's weights in Keras's ``.weights.h5`` format."""
    with tempfile.TemporaryDirectory(prefix="hpsearch-ckpt-") as tmp:
        path = Path(tmp) / "w.weights.h5"
        model.save_weights(path)
        return path.read_bytes()
