"""Load a built-in or uploaded dataset and split it into training and validation rows.

The split is seeded and stratified by default, or the last rows in the dataset's order
(``split: last``, as Keras's ``validation_split`` takes them).

Standardization is deliberately NOT done here: the model's ``Normalization`` layer is adapted on
``x_train`` only, so validation rows never leak into the statistics.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from search_spaces.datasets import UPLOAD_PREFIX, DatasetInfo, Task, keras_cache_dir
from search_spaces.schema import DatasetSpec

_FASHION_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


class DatasetUnavailableError(RuntimeError):
    """A Keras dataset is neither in the local cache nor downloadable, or an upload is gone."""


@dataclass(frozen=True)
class LoadedDataset:
    """Training and validation arrays, plus the facts recorded on the job (``info``)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    info: dict[str, Any]
    #: the rows of each part: indices into the dataset's rows in their original order.
    train_rows: np.ndarray
    validation_rows: np.ndarray


def _load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    from sklearn import datasets as skd

    loader = {
        "digits": skd.load_digits,
        "iris": skd.load_iris,
        "wine": skd.load_wine,
        "breast_cancer": skd.load_breast_cancer,
        "diabetes": skd.load_diabetes,
    }[name]
    bunch = loader()
    names = getattr(bunch, "target_names", None)
    labels = [str(n) for n in names] if names is not None else None
    return np.asarray(bunch.data), np.asarray(bunch.target), labels


def _load_keras(info: DatasetInfo) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    from keras import datasets as kd

    loaders = {
        "mnist": (kd.mnist.load_data, {}, [str(i) for i in range(10)]),
        "fashion_mnist": (kd.fashion_mnist.load_data, {}, _FASHION_LABELS),
        "california_housing": (kd.california_housing.load_data, {"version": "large"}, None),
        "boston_housing": (kd.boston_housing.load_data, {}, None),
    }
    loader, kwargs, labels = loaders[info.name]
    try:
        (x, y), _test = loader(**kwargs)
    except Exception as exc:
        cache = keras_cache_dir()
        files = ", ".join(info.cache_files) or info.name
        raise DatasetUnavailableError(
            f"dataset {info.name!r} is not in Keras's cache and could not be downloaded "
            f"({type(exc).__name__}: {exc}); place {files} under {cache}"
        ) from exc
    return np.asarray(x), np.asarray(y), labels


def _load_upload(info: DatasetInfo) -> tuple[np.ndarray, np.ndarray, list[str] | None, dict]:
    """The normalised arrays the API stored at upload time (``allow_pickle=False``, always)."""
    from db.repositories.uploads import load_upload

    upload = load_upload(info.name.removeprefix(UPLOAD_PREFIX))
    if upload is None:
        raise DatasetUnavailableError(f"uploaded dataset {info.name!r} no longer exists")
    labels = list(upload.class_labels) if upload.class_labels is not None else None
    extra = {"upload_name": upload.name, "feature_names": upload.feature_names}
    content = upload.content
    with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
        x, y = arrays["x"], arrays["y"]
    return x, y, labels, extra


def _split(
    x: np.ndarray, y: np.ndarray, size: int, seed: int, stratify: bool, index: np.ndarray
) -> tuple[list[np.ndarray], bool]:
    """Seeded split of ``x``, ``y`` and their row ``index`` with ``size`` rows in the second
    part; stratified when it can be."""
    if stratify:
        try:
            parts = train_test_split(x, y, index, test_size=size, random_state=seed, stratify=y)
            return parts, True
        except ValueError:
            pass  # too few rows of some class to stratify (tiny max_rows): a plain split
    return train_test_split(x, y, index, test_size=size, random_state=seed), False


def _owned(array: np.ndarray) -> np.ndarray:
    """``array`` C-contiguous in memory of its own: a slice of the whole dataset (``split:
    last`` with ``max_rows``) would keep all its rows alive as long as the part is kept."""
    return np.array(array, order="C") if array.base is not None else np.ascontiguousarray(array)


def remembered_dataset(spec: DatasetSpec) -> LoadedDataset:
    """``load_dataset(spec)``, kept in this process for the last ``DATASETS_KEPT`` built-in
    datasets asked for, read-only: the next jobs on the same rows skip reading and splitting
    them (Fashion-MNIST's 10,000-row subset: ~0.4 s a job in each pool process, bench/
    job_context.py). An upload is read again each time: its name can be given to other rows."""
    if spec.info.source == "upload":
        return load_dataset(spec)
    return _remembered(spec.model_dump_json())


#: built-in datasets a process keeps (``remembered_dataset``)
DATASETS_KEPT = 2


@functools.lru_cache(maxsize=DATASETS_KEPT)
def _remembered(spec_json: str) -> LoadedDataset:
    data = load_dataset(DatasetSpec.model_validate_json(spec_json))
    arrays = (data.x_train, data.y_train, data.x_val, data.y_val)
    for array in (*arrays, data.train_rows, data.validation_rows):
        array.setflags(write=False)  # shared by the jobs that follow: never changed in place
    return data


def load_dataset(spec: DatasetSpec) -> LoadedDataset:
    """Load ``spec.name``, subsample to ``max_rows`` and split off the validation rows."""
    info = spec.info
    extra: dict[str, Any] = {}
    if info.source == "upload":
        x, y, labels, extra = _load_upload(info)
    elif info.source == "sklearn":
        x, y, labels = _load_sklearn(info.name)
    else:
        x, y, labels = _load_keras(info)
    classification = info.task is not Task.REGRESSION
    x = x.astype(np.float32)
    y = y.astype(np.int32) if classification else y.astype(np.float32)
    rows_total = len(x)
    # The row indices go through every split with the data (same permutation): they say which
    # rows each part holds.
    index = np.arange(rows_total, dtype=np.int32)

    in_order = spec.split == "last"
    if spec.max_rows is not None and spec.max_rows < len(x):
        if in_order:
            x, y, index = x[: spec.max_rows], y[: spec.max_rows], index[: spec.max_rows]
        else:
            (_, x, _, y, _, index), _ = _split(
                x, y, spec.max_rows, spec.split_seed, classification, index
            )
    rows = len(x)
    n_val = max(1, round(rows * spec.validation_split))
    if in_order:
        # Keras's fit(validation_split=...): the last rows, in the dataset's order, unshuffled.
        x_train, x_val, y_train, y_val = x[:-n_val], x[-n_val:], y[:-n_val], y[-n_val:]
        train_rows, validation_rows = index[:-n_val], index[-n_val:]
        stratified = False
    else:
        (x_train, x_val, y_train, y_val, train_rows, validation_rows), stratified = _split(
            x, y, n_val, spec.split_seed, classification, index
        )

    return LoadedDataset(
        train_rows=_owned(np.asarray(train_rows, dtype="<i4")),
        validation_rows=_owned(np.asarray(validation_rows, dtype="<i4")),
        x_train=_owned(x_train),
        y_train=_owned(y_train),
        x_val=_owned(x_val),
        y_val=_owned(y_val),
        info={
            "name": info.name,
            "source": info.source,
            "task": str(info.task),
            "rows_total": rows_total,
            "rows_used": rows,
            "rows_train": len(x_train),
            "rows_val": len(x_val),
            "split": spec.split,
            "split_seed": spec.split_seed,
            "validation_split": spec.validation_split,
            "max_rows": spec.max_rows,
            "stratified": stratified,
            "input_shape": list(info.input_shape),
            "n_classes": info.n_classes,
            "class_labels": labels if classification else None,
            "standardization": "fitted on the training split only",
            **extra,
        },
    )
