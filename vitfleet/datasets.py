"""Image classification data sets read from local files (no downloads, ever).

Fashion-MNIST comes from the Debian package's idx files, CIFAR-10/100 from their
python-pickle layout (parsed without unpickling code objects), any other set from an
ImageFolder tree (one sub-folder per class, any image size or colour mode). Everything is
returned as uint8 NHWC arrays plus int64 labels and the class names, so the same arrays
feed training, ONNX calibration and the camera replay.

`load_dataset(name, split, data_dir, pre)` is the one entry point: with a model's
`Preprocessing` every set comes out at (pre.size, pre.size, pre.channels), RGB order for
3 channels, converted by `vitfleet.preprocessing.fit_image` - the same function the
camera path (`Preprocessing.prepare`) ends in.
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
from vitfleet.preprocessing import Preprocessing, fit_image, fit_images

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
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
FASHION_MNIST_INSTALL_HINT = "sudo apt-get install dataset-fashion-mnist"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
FASHION_MNIST_ALIASES = ("fashion-mnist", "fashion_mnist", "fmnist")
CIFAR10_ALIASES = ("cifar10", "cifar-10")
CIFAR100_ALIASES = ("cifar100", "cifar-100")
# Image size given to folder data when a caller names no Preprocessing (older callers; kept for them).
LEGACY_FOLDER_SIZE, LEGACY_FOLDER_CHANNELS = 32, 3
# Folder images are surveyed on this many files (spread over the classes) to pick a default model size.
SURVEY_FILES = 64
# A folder teacher's default input side: the images' median shorter side, rounded to a multiple of 8 (so
# the presets' 8x8 / 4x4 token grids divide it) and kept within what trains on a CPU.
FOLDER_SIZE_MULTIPLE, FOLDER_SIZE_MIN, FOLDER_SIZE_MAX = 8, 16, 224


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

    def subset(self, indices: np.ndarray | slice) -> ImageDataset:
        return ImageDataset(self.images[indices], self.labels[indices], self.class_names, self.name)

    def head(self, n: int | None) -> ImageDataset:
        return self if n is None or n >= len(self) else self.subset(slice(0, n))

    def stratified_head(self, n: int | None, seed: int = 0) -> ImageDataset:
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
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
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

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

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
        raise DatasetError(
            f"CIFAR-{variant} needs --data-dir (or VITFLEET_DATA) pointing at cifar-{variant}-batches-py"
        )
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


def _folder_class_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DatasetError(
            f"ImageFolder {root} does not exist; give a folder with train/<class>/ and test/<class>/ "
            "sub-folders of images"
        )
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not class_dirs:
        raise DatasetError(f"ImageFolder {root} has no class sub-folders; put each class's images in its own folder")
    return class_dirs


def _image_files(class_dir: Path) -> list[Path]:
    return [f for f in sorted(class_dir.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]


def _read_rgb(file: Path) -> np.ndarray:
    """Any image file OpenCV decodes (gray, palette, 16-bit, alpha) -> uint8 RGB (H, W, 3).

    IMREAD_COLOR turns every mode into 8-bit BGR (gray is replicated), so from here on a folder
    image is exactly what a camera delivers, and `fit_image` does the rest for both.
    """
    import cv2  # lazily: only ImageFolder data needs OpenCV here

    img = cv2.imread(str(file), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot decode image {file}; remove it or replace it with a valid image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_image_folder(root: Path, size: int, channels: int) -> ImageDataset:
    """One sub-folder per class (sorted names = class ids), each image converted by `fit_image`."""
    class_dirs = _folder_class_dirs(root)
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        for file in _image_files(class_dir):
            images.append(fit_image(_read_rgb(file), size, channels))
            labels.append(label)
    if not images:
        raise DatasetError(f"ImageFolder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return ImageDataset(np.stack(images), np.asarray(labels, dtype=np.int64), [d.name for d in class_dirs], root.name)


@dataclass(frozen=True)
class NativeShape:
    """What a data set's images look like before any model conversion: a typical square side and channels."""

    size: int
    channels: int


def survey_image_folder(root: Path, sample: int = SURVEY_FILES) -> NativeShape:
    """Median shorter side and colour mode of up to `sample` images spread over the classes.

    Channels are 1 only when every surveyed file is stored as grayscale; one colour file makes it RGB.
    """
    import cv2

    files = [f for d in _folder_class_dirs(root) for f in _image_files(d)]
    if not files:
        raise DatasetError(f"ImageFolder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    picked = [files[i] for i in np.linspace(0, len(files) - 1, min(sample, len(files))).astype(int)]
    sides, gray = [], True
    for file in picked:
        img = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise DatasetError(f"cannot decode image {file}; remove it or replace it with a valid image")
        sides.append(min(img.shape[:2]))
        gray = gray and (img.ndim == 2 or img.shape[2] == 1)
    return NativeShape(size=int(np.median(sides)), channels=1 if gray else 3)


def _folder_root(name: str) -> Path:
    return Path(name[len("folder:") :]).expanduser()


def _kind(name: str) -> str:
    key = name.lower()
    if key in FASHION_MNIST_ALIASES:
        return "fashion-mnist"
    if key in CIFAR10_ALIASES:
        return "cifar10"
    if key in CIFAR100_ALIASES:
        return "cifar100"
    if key.startswith("folder:") and len(name) > len("folder:"):
        return "folder"
    raise DatasetError(
        f"unknown data set {name!r}; use fashion-mnist, cifar10, cifar100 or folder:/path/to/imagefolder"
    )


def dataset_reference(name: str) -> str:
    """The name a card stores so another process, in another directory, reloads the same data.

    fashion-mnist / cifar10 / cifar100 keep their canonical names; folders become `folder:<absolute path>`.
    """
    kind = _kind(name)
    return f"folder:{_folder_root(name).resolve()}" if kind == "folder" else kind


def native_shape(name: str, data_dir: str | os.PathLike[str] | None = None) -> NativeShape:
    """The data set's own image shape: 28x28x1, 32x32x3, or a folder's surveyed train split."""
    kind = _kind(name)
    if kind == "fashion-mnist":
        return NativeShape(28, 1)
    if kind in ("cifar10", "cifar100"):
        return NativeShape(32, 3)
    root = _folder_root(name)
    return survey_image_folder(root / "train" if (root / "train").is_dir() else root / "test")


def default_model_size(name: str, data_dir: str | os.PathLike[str] | None = None) -> int:
    """The input side a new teacher trains at: 28 for Fashion-MNIST, 32 for CIFAR, for folders the median
    shorter side rounded to a multiple of 8 within 16..224."""
    side = native_shape(name, data_dir).size
    if _kind(name) != "folder":
        return side
    rounded = int(round(side / FOLDER_SIZE_MULTIPLE)) * FOLDER_SIZE_MULTIPLE
    return min(FOLDER_SIZE_MAX, max(FOLDER_SIZE_MIN, rounded))


def load_dataset(
    name: str,
    split: str,
    data_dir: str | os.PathLike[str] | None = None,
    pre: Preprocessing | None = None,
    *,
    size: int | None = None,
    channels: int | None = None,
) -> ImageDataset:
    """Resolve a data set by name (fashion-mnist, cifar10, cifar100, folder:<path>) and convert it for a model.

    With `pre`, every set comes out uint8 (N, pre.size, pre.size, pre.channels), RGB order for 3 channels.
    Without it, Fashion-MNIST and CIFAR come out as stored and folder images at `size` x `size` x `channels`
    (32x32x3 unless given; folder images have no single native size): the keyword form older callers use.
    """
    if split not in ("train", "test"):
        raise DatasetError(f"unknown split {split!r}; use 'train' or 'test'")
    kind = _kind(name)
    if pre is not None:
        if (size, channels) not in ((None, None), (pre.size, pre.channels)):
            raise ValueError(f"load_dataset got pre {pre.size}x{pre.channels} and size/channels {size}x{channels}")
        size, channels = pre.size, pre.channels
    if kind == "folder":
        return load_image_folder(
            _folder_root(name) / split, size or LEGACY_FOLDER_SIZE, channels or LEGACY_FOLDER_CHANNELS
        )
    data = load_fashion_mnist(split, data_dir) if kind == "fashion-mnist" else load_cifar(kind[5:], split, data_dir)
    if pre is None:
        return data
    return ImageDataset(fit_images(data.images, pre.size, pre.channels), data.labels, data.class_names, data.name)


def load_test_split_for(
    card_dataset: str, pre: Preprocessing, data_dir: str | os.PathLike[str] | None = None
) -> ImageDataset:
    """The test split a teacher or bundle card was measured on, converted exactly as the model expects.

    `card_dataset` is teacher.json / bundle.json `dataset`, `pre` their `preprocessing`.
    """
    return load_dataset(card_dataset, "test", data_dir, pre)


def class_names_of(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The data set's class names without decoding any image (a missing data set fails here, fast)."""
    kind = _kind(name)
    if kind == "folder":
        return [d.name for d in _folder_class_dirs(_folder_root(name) / "test")]
    if kind == "fashion-mnist":
        return load_fashion_mnist("test", data_dir).class_names
    return load_cifar(kind[5:], "test", data_dir).class_names
