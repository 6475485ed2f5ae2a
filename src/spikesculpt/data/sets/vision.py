"""Static image sets: ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``imagenet``.

The files are the ones torchvision downloads, read by spikesculpt itself (so torchvision is only
needed for ``--download``; install it with ``pip install 'spikesculpt[vision]'``):

==================  =========================================================================
``mnist``           ``DIR/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` (idx
                    format; LeCun et al. 1998), 60,000 / 10,000 grey 28x28, 10 classes
``fashion-mnist``   the same files under ``DIR/FashionMNIST/raw/`` (Xiao et al. 2017)
``cifar10``         ``DIR/cifar-10-batches-py/{data_batch_1..5,test_batch}`` or the archive
                    ``DIR/cifar-10-python.tar.gz`` (Krizhevsky 2009), 50,000 / 10,000 RGB 32x32
``cifar100``        ``DIR/cifar-100-python/{train,test}`` or ``cifar-100-python.tar.gz``, 100
                    (fine) classes
``imagenet[:SIZE]`` ``DIR/imagenet/{train,val}/<class>/*.JPEG`` (ImageFolder layout, the val
                    images sorted into class folders), RGB, resized (shorter side to
                    ``SIZE * 8/7``) and centre-cropped to ``SIZE`` (default 224), read lazily
==================  =========================================================================

(``DIR`` = ``--data-root``; the sub-folder names are also found one level down, and the MNIST
``raw/`` level is optional.) Pixels are scaled to [0, 1], shape ``[C, H, W]``; the shipped
train / test split is kept (ImageNet: ``val`` is the test split) and a stratified
``val_fraction`` of the training images, drawn by the run's seed, is held out for validation.
The standard augmentation (random crop with 4-px padding and horizontal flip; cutout as an
option) is ``--augment standard`` / ``flip+shift+cutout`` (``spikesculpt.data.augment``),
applied to training batches.

Files are checked: a truncated idx file, a pickle that is not a CIFAR batch or a folder without
the expected files are ``UserError``s naming the file and the expected layout. CIFAR pickles
are read with an unpickler that only admits NumPy arrays and plain containers.
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from spikesculpt.core.errors import UserError
from spikesculpt.data.base import DatasetInfo, DataSplits, make_splits, stratified_split
from spikesculpt.data.files import child, read_file, require_data_root
from spikesculpt.data.options import parse_options
from spikesculpt.data.registry import register_dataset

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
TORCHVISION = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10",
               "cifar100": "CIFAR100"}


# --------------------------------------------------------------------------------- torchvision
def download(dataset: str, root: Path) -> None:
    """Fetch ``dataset``'s files into ``root`` with torchvision (the layout read below)."""
    try:
        import torchvision.datasets as tvd
    except Exception as exc:  # ImportError, or a torchvision built for another torch
        raise UserError(f"--download needs torchvision ({type(exc).__name__} on import): pip "
                        f"install 'spikesculpt[vision]', or download the {dataset} files by "
                        f"hand into {root} (see 'spikesculpt.data.sets.vision')") from None
    cls = getattr(tvd, TORCHVISION[dataset])
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # network errors, checksum mismatches
        raise UserError(f"downloading {dataset} into {root} failed ({type(exc).__name__}: "
                        f"{exc}); check the network or download the files by hand") from None


# ------------------------------------------------------------------------------- MNIST (idx)
def read_idx(data: bytes, source: str) -> np.ndarray:
    """An array from the bytes of an idx file (magic 0 0 TYPE NDIM, big-endian int32 sizes)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise UserError(f"{source} is not an idx file (bad magic number); download it again")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise UserError(f"{source} is truncated (its header is cut short); download it again")
    shape = tuple(int(v) for v in np.frombuffer(data, ">i4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[data[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != need:
        raise UserError(f"{source} is truncated or corrupt: {len(body)} data bytes for shape "
                        f"{list(shape)} ({need} expected); download it again")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _idx_file(folder: Path, name: str) -> Optional[Path]:
    return child(folder, name, want_dir=False) or child(folder, name + ".gz", want_dir=False)


def _read_idx_path(path: Path) -> np.ndarray:
    data = read_file(path)
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise UserError(f"{path} is not a readable gzip file ({type(exc).__name__}); "
                            f"download it again") from None
    return read_idx(data, str(path))


def _mnist_folder(root: Path, sub: str) -> Optional[Path]:
    for base in (child(root, sub, True), root):
        if base is None:
            continue
        for folder in (child(base, "raw", True), base):
            if folder is not None and _idx_file(folder, MNIST_FILES["train"][0]):
                return folder
    return None


def load_mnist_like(dataset: str, root: Path, dl: bool):
    sub = TORCHVISION[dataset]
    folder = _mnist_folder(root, sub)
    if folder is None and dl:
        download(dataset, root)
        folder = _mnist_folder(root, sub)
    if folder is None:
        raise UserError(f"{dataset}: no {MNIST_FILES['train'][0]}[.gz] under {root}; expected "
                        f"{root}/{sub}/raw/ with the four idx files as torchvision downloads "
                        f"them, or pass --download")
    arrays = {}
    for split, (images, labels) in MNIST_FILES.items():
        paths = [_idx_file(folder, images), _idx_file(folder, labels)]
        if None in paths:
            missing = images if paths[0] is None else labels
            raise UserError(f"{dataset}: {folder} lacks {missing}[.gz]; expected the four idx "
                            f"files {', '.join(sum(MNIST_FILES.values(), ()))}")
        x, y = (_read_idx_path(p) for p in paths)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise UserError(f"{dataset}: {paths[0]} holds {list(x.shape)} images but {paths[1]} "
                            f"{list(y.shape)} labels; expected [N, 28, 28] and [N]")
        arrays[split] = (x.astype(np.float32)[:, None] / 255.0, y.astype(np.int64))
    return arrays["train"], arrays["test"], 10


# ------------------------------------------------------------------------- CIFAR (python pickles)
class _SafeUnpickler(pickle.Unpickler):
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
                                                           "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("copyreg", "_reconstructor"),
               ("builtins", "object"), ("_codecs", "encode")}  # bytes in protocol-2 pickles

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")


def read_cifar_batch(data: bytes, source: str, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(images [N, 3, 32, 32] uint8, labels [N])`` of one CIFAR python batch's bytes."""
    try:
        d = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # truncated or foreign pickles raise many kinds of errors
        raise UserError(f"{source} is not a readable CIFAR batch ({type(exc).__name__}); the "
                        f"file is truncated or corrupt: download it again") from None
    if not isinstance(d, dict) or b"data" not in d or label_key not in d:
        raise UserError(f"{source} is not a CIFAR batch (no {b'data'!r} / {label_key!r} keys); "
                        f"download it again")
    x = np.asarray(d[b"data"], dtype=np.uint8)
    y = np.asarray(d[label_key], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
        raise UserError(f"{source}: data {list(x.shape)} and {len(y)} labels; a CIFAR batch holds "
                        f"[N, 3072] and N labels")
    return x.reshape(-1, 3, 32, 32), y


CIFAR = {"cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz",
                     [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
         "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", ["train"], ["test"],
                      b"fine_labels", 100)}


def _cifar_sources(root: Path, folder_name: str, archive_name: str):
    """``{member name: (source, read())}`` from the extracted folder or the archive."""
    for base in (root, *[p for p in sorted(root.iterdir()) if p.is_dir()]):
        folder = child(base, folder_name, True)
        if folder is not None:
            return {p.name: (str(p), lambda p=p: read_file(p))
                    for p in folder.iterdir() if p.is_file()}
    archive = child(root, archive_name, False)
    if archive is None:
        return None
    try:
        with tarfile.open(archive) as tar:
            out = {}
            for m in tar.getmembers():
                if m.isfile() and Path(m.name).parent.name == folder_name:
                    data = tar.extractfile(m).read()
                    out[Path(m.name).name] = (f"{archive}:{m.name}", lambda data=data: data)
            return out
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise UserError(f"{archive} is not a readable tar archive ({type(exc).__name__}); "
                        f"download it again") from None


def load_cifar(dataset: str, root: Path, dl: bool):
    folder_name, archive_name, train_files, test_files, label_key, classes = CIFAR[dataset]
    sources = _cifar_sources(root, folder_name, archive_name)
    if sources is None and dl:
        download(dataset, root)
        sources = _cifar_sources(root, folder_name, archive_name)
    if sources is None:
        raise UserError(f"{dataset}: neither {folder_name}/ nor {archive_name} under {root}; "
                        f"expected the python version as torchvision downloads it, or pass "
                        f"--download")
    out = []
    for names in (train_files, test_files):
        xs, ys = [], []
        for name in names:
            if name not in sources:
                raise UserError(f"{dataset}: {folder_name}/{name} is missing under {root}; "
                                f"expected {', '.join(train_files + test_files)}")
            source, read = sources[name]
            x, y = read_cifar_batch(read(), source, label_key)
            xs.append(x)
            ys.append(y)
        out.append((np.concatenate(xs).astype(np.float32) / 255.0, np.concatenate(ys)))
    if out[0][1].max(initial=0) >= classes or out[1][1].max(initial=0) >= classes:
        raise UserError(f"{dataset}: labels >= {classes}; the files are corrupt")
    return out[0], out[1], classes


# ----------------------------------------------------------------------------------- factories
def _in_memory(dataset: str, arg, seed, val_fraction, data_root, dl) -> DataSplits:
    if arg:
        raise UserError(f"{dataset} takes no options, got {dataset}:{arg}")
    root = require_data_root(dataset, data_root, f"the {dataset} files (or pass --download to "
                                                 f"fetch them into it)")
    loader = load_mnist_like if dataset in ("mnist", "fashion-mnist") else load_cifar
    (x, y), (xt, yt), classes = loader(dataset, root, dl)
    return make_splits(dataset, "static", x, y, xt, yt, classes, val_fraction, seed)


@register_dataset("mnist")
def mnist(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
          timesteps: Optional[int] = None, download: bool = False) -> DataSplits:
    """MNIST (idx files, torchvision layout) under --data-root: 1x28x28 in [0, 1], 10 classes."""
    return _in_memory("mnist", arg, seed, val_fraction, data_root, download)


@register_dataset("fashion-mnist")
def fashion_mnist(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
                  timesteps: Optional[int] = None, download: bool = False) -> DataSplits:
    """Fashion-MNIST (idx files) under --data-root: 1x28x28 in [0, 1], 10 classes."""
    return _in_memory("fashion-mnist", arg, seed, val_fraction, data_root, download)


@register_dataset("cifar10")
def cifar10(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
            timesteps: Optional[int] = None, download: bool = False) -> DataSplits:
    """CIFAR-10 (python batches or archive) under --data-root: 3x32x32 in [0, 1], 10 classes."""
    return _in_memory("cifar10", arg, seed, val_fraction, data_root, download)


@register_dataset("cifar100")
def cifar100(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
             timesteps: Optional[int] = None, download: bool = False) -> DataSplits:
    """CIFAR-100 (python files or archive) under --data-root: 3x32x32 in [0, 1], 100 classes."""
    return _in_memory("cifar100", arg, seed, val_fraction, data_root, download)


# ----------------------------------------------------------------------------------- ImageNet
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


class ImageFolderDataset(Dataset):
    """Images of an ImageFolder layout, decoded on access with Pillow: resize the shorter side
    to ``round(size * 8 / 7)`` (bilinear), centre-crop ``size``, ``[3, size, size]`` in [0, 1]."""

    def __init__(self, files: list[Path], labels: np.ndarray, size: int):
        self.files, self.labels, self.size = files, np.asarray(labels, dtype=np.int64), size

    def __len__(self) -> int:
        return len(self.files)

    @property
    def targets(self) -> np.ndarray:
        """The labels in dataset order (without decoding any image)."""
        return self.labels

    def __getitem__(self, i: int):

        path = self.files[i]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                short = round(self.size * 8 / 7)
                scale = short / min(w, h)
                im = im.resize((max(short, round(w * scale)), max(short, round(h * scale))),
                               Image.BILINEAR)
                w, h = im.size
                left, top = (w - self.size) // 2, (h - self.size) // 2
                im = im.crop((left, top, left + self.size, top + self.size))
                a = np.asarray(im, dtype=np.float32) / 255.0
        except (OSError, UnidentifiedImageError) as exc:
            raise UserError(f"{path} is not a readable image ({type(exc).__name__}); remove or "
                            f"replace it") from None
        return torch.from_numpy(a.transpose(2, 0, 1).copy()), torch.tensor(int(self.labels[i]))


def _image_folder(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files, labels = [], []
    for k, cls in enumerate(classes):
        for p in sorted((folder / cls).rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(p)
                labels.append(k)
    return files, np.asarray(labels, dtype=np.int64), classes


@register_dataset("imagenet")
def imagenet(arg: Optional[str], *, seed: int, val_fraction: float, data_root=None,
             timesteps: Optional[int] = None) -> DataSplits:
    """ImageNet (ImageFolder train/ and val/) under --data-root: 3xSxS (S = 224), read lazily."""
    opts = parse_options("imagenet", arg, {"size": 224}, positional="size")
    if opts["size"] <= 0:
        raise UserError(f"imagenet: size={opts['size']} must be a positive number of pixels")
    expected = ("imagenet/train/<class>/*.JPEG and imagenet/val/<class>/*.JPEG (the validation "
                "images sorted into class folders)")
    root = require_data_root("imagenet", data_root, expected)
    base = next((b for b in (child(root, "imagenet", True), child(root, "ILSVRC2012", True), root)
                 if b is not None and child(b, "train", True) and child(b, "val", True)), None)
    if base is None:
        raise UserError(f"imagenet: no train/ and val/ folders under {root}; expected {expected}")
    files, labels, classes = _image_folder(child(base, "train", True))
    tfiles, tlabels, tclasses = _image_folder(child(base, "val", True))
    if not files or not tfiles:
        raise UserError(f"imagenet: no images in {base}/train or {base}/val; expected {expected}")
    if tclasses != classes:
        raise UserError(f"imagenet: val/ has {len(tclasses)} class folders but train/ has "
                        f"{len(classes)}; sort the validation images into the same class folders")
    keep, val = stratified_split(labels, val_fraction, seed)
    if len(keep) == 0 or len(val) == 0:
        raise UserError(f"imagenet: too few training images ({len(labels)}) to hold out a "
                        f"validation split")
    size = opts["size"]
    info = DatasetInfo("imagenet" + (f":{arg}" if arg else ""), "static", (3, size, size),
                       len(classes))
    return DataSplits(ImageFolderDataset([files[i] for i in keep], labels[keep], size),
                      ImageFolderDataset([files[i] for i in val], labels[val], size),
                      ImageFolderDataset(tfiles, tlabels, size), info)
