"""Image classification data sets read from local files (no downloads, ever).

Fashion-MNIST comes from the Debian package's idx files, CIFAR-10/100 from their
python-pickle layout (parsed without unpickling code objects), any other set from an
ImageFolder tree (one sub-folder per class). Everything is returned as uint8 NHWC
arrays plus int64 labels and the class names, so the same arrays feed training,
ONNX calibration and the camera replay.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitfleet.errors import UserError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
FASHION_MNIST_INSTALL_HINT = "sudo apt-get install dataset-fashion-mnist"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class DatasetError(UserError):
    """A data set is missing or malformed; the message says how to fix it."""


@dataclass(frozen=True)
class ImageDataset:
    """uint8 images (N, H, W, C) with int64 labels and the class names they index."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    name: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise DatasetError(f"{self.name}: images must be uint8 NHWC, got {self.images.dtype} {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise DatasetError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: np.ndarray | slice) -> "ImageDataset":
        return ImageDataset(self.images[indices], self.labels[indices], self.class_names, self.name)

    def head(self, n: int | None) -> "ImageDataset":
        return self if n is None or n >= len(self) else self.subset(slice(0, n))

    def stratified_head(self, n: int | None, seed: int = 0) -> "ImageDataset":
        """A class-balanced random sample of about n images (small slices for tests stay balanced)."""
        if n is None or n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        per_class = max(1, n // self.num_classes)
        picks = [rng.permutation(np.flatnonzero(self.labels == c))[:per_class] for c in range(self.num_classes)]
        return self.subset(np.sort(np.concatenate(picks)))


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The user's data directory: the explicit argument, else $VITFLEET_DATA, else None."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("VITFLEET_DATA")
    return Path(env) if env else None


def _open_maybe_gz(path: Path) -> bytes:
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        return f.read()


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (the MNIST container): magic, dims, big-endian sizes, then uint8 data."""
    raw = _open_maybe_gz(path)
    if len(raw) < 4:
        raise DatasetError(f"{path} is truncated ({len(raw)} bytes); reinstall it with: {FASHION_MNIST_INSTALL_HINT}")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DatasetError(f"{path} is not a uint8 idx file (magic {raw[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetError(f"{path} is truncated: header says {dims}, found {body.size} values")
    return body.reshape(dims)


def _find_idx(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.exists():
            return candidate
    raise DatasetError(
        f"Fashion-MNIST file {stem}[.gz] not found in {root}; install it with "
        f"'{FASHION_MNIST_INSTALL_HINT}' or point --data-dir / VITFLEET_DATA at a folder holding the idx files"
    )


def load_fashion_mnist(split: str, data_dir: str | os.PathLike[str] | None = None) -> ImageDataset:
    if split not in ("train", "test"):
        raise DatasetError(f"unknown split {split!r}; use 'train' or 'test'")
    root = data_root(data_dir) or FASHION_MNIST_DIR
    if not root.is_dir():
        raise DatasetError(
            f"Fashion-MNIST folder {root} does not exist; install it with '{FASHION_MNIST_INSTALL_HINT}' "
            "or point --data-dir / VITFLEET_DATA at a folder holding the idx files"
        )
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find_idx(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find_idx(root, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    return ImageDataset(images[..., None], labels, list(FASHION_MNIST_CLASSES), f"fashion-mnist/{split}")


class _SafeCifarUnpickler(pickle.Unpickler):
    """CIFAR batches are plain dicts of bytes/lists/ndarrays; refuse anything that would run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle API
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise DatasetError(f"CIFAR file references {module}.{name}; refusing to load it (not a CIFAR batch)")


def _load_cifar_batch(path: Path) -> dict:
    if not path.exists():
        raise DatasetError(f"CIFAR file {path} not found; unpack cifar-*-python.tar.gz so that {path.parent} holds it")
    with open(path, "rb") as f:
        return _SafeCifarUnpickler(f, encoding="bytes").load()


def load_cifar(variant: str, split: str, data_dir: str | os.PathLike[str] | None = None) -> ImageDataset:
    root = data_root(data_dir)
    if root is None:
        raise DatasetError(f"CIFAR-{variant} needs --data-dir (or VITFLEET_DATA) pointing at cifar-{variant}-batches-py")
    if variant == "10":
        names = [b.decode() for b in _load_cifar_batch(root / "batches.meta")[b"label_names"]]
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        label_key = b"labels"
    elif variant == "100":
        names = [b.decode() for b in _load_cifar_batch(root / "meta")[b"fine_label_names"]]
        files = ["train"] if split == "train" else ["test"]
        label_key = b"fine_labels"
    else:
        raise DatasetError(f"unknown CIFAR variant {variant!r}; use cifar10 or cifar100")
    batches = [_load_cifar_batch(root / f) for f in files]
    data = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return ImageDataset(images, labels, names, f"cifar{variant}/{split}")


def load_image_folder(root: Path, size: int, channels: int) -> ImageDataset:
    """One sub-folder per class (sorted names = class ids), resized to size x size."""
    import cv2  # lazily: only ImageFolder data needs OpenCV here

    if not root.is_dir():
        raise DatasetError(f"ImageFolder {root} does not exist; give a folder with one sub-folder per class")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not class_dirs:
        raise DatasetError(f"ImageFolder {root} has no class sub-folders; put each class's images in its own folder")
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
            img = cv2.imread(str(file), flag)
            if img is None:
                raise DatasetError(f"cannot decode image {file}; remove it or replace it with a valid image")
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            img = img[..., None] if channels == 1 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            images.append(img)
            labels.append(label)
    if not images:
        raise DatasetError(f"ImageFolder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return ImageDataset(np.stack(images), np.asarray(labels, dtype=np.int64), [d.name for d in class_dirs], root.name)


def load_dataset(name: str, split: str, data_dir: str | os.PathLike[str] | None = None,
                 size: int = 32, channels: int = 3) -> ImageDataset:
    """Resolve a data set by name: fashion-mnist, cifar10, cifar100, or folder:<path> (ImageFolder)."""
    key = name.lower()
    if key in ("fashion-mnist", "fashion_mnist", "fmnist"):
        return load_fashion_mnist(split, data_dir)
    if key in ("cifar10", "cifar-10"):
        return load_cifar("10", split, data_dir)
    if key in ("cifar100", "cifar-100"):
        return load_cifar("100", split, data_dir)
    if key.startswith("folder:"):
        return load_image_folder(Path(name[len("folder:"):]) / split, size, channels)
    raise DatasetError(f"unknown data set {name!r}; use fashion-mnist, cifar10, cifar100 or folder:/path/to/imagefolder")
