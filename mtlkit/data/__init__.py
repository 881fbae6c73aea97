"""Real dataset readers, multi-task views and fast in-memory batching.

``load(name, split)`` reads the upstream formats (IDX, CIFAR binary records,
pickle-free npz, JPEG-in-npz), verifies every file's sha256, and returns an
:class:`ImageDataset` of uint8 images and int64 labels. The view functions
turn those into the multi-task datasets of the reproductions, and
:class:`InMemoryBatches` batches them without a ``DataLoader`` (:class:`CropFlipBatches` with
the standard crop + flip augmentation).
"""

from mtlkit.data._augment import CropFlipBatches, crop_flip
from mtlkit.data._batches import IGNORE_INDEX, InMemoryBatches, ScaleNormalize
from mtlkit.data._dataset import ImageDataset, Split
from mtlkit.data._errors import ChecksumError, DataError, FormatError, MissingFileError
from mtlkit.data._load import available, load
from mtlkit.data._per_task_batches import PerTaskBatches
from mtlkit.data._registry import REGISTRY, DatasetSpec, FileSpec
from mtlkit.data._root import cache_dir, download_file, resolve_root, verify_file
from mtlkit.data._sampling import balanced_sample, group_split, stratified_fraction
from mtlkit.data._views_cifar import cifar100_tasks
from mtlkit.data._views_fashion import FASHION_MNIST_GROUPS, fashion_mnist_tasks
from mtlkit.data._views_mnist import SemiSupervised, mnist_one_vs_all, mnist_semi_supervised
from mtlkit.data._views_multi_mnist import MULTI_MNIST_VARIANTS, multi_mnist
from mtlkit.data._views_omniglot import omniglot_alphabets
from mtlkit.data._views_pooled import POOLABLE, notmnist_split, pooled_digits
from mtlkit.data._views_utkface import AGE_GROUPS, age_group, utkface_tasks

__all__ = [
    "AGE_GROUPS",
    "FASHION_MNIST_GROUPS",
    "IGNORE_INDEX",
    "MULTI_MNIST_VARIANTS",
    "POOLABLE",
    "REGISTRY",
    "ChecksumError",
    "CropFlipBatches",
    "DataError",
    "DatasetSpec",
    "FileSpec",
    "FormatError",
    "ImageDataset",
    "InMemoryBatches",
    "MissingFileError",
    "PerTaskBatches",
    "ScaleNormalize",
    "SemiSupervised",
    "Split",
    "age_group",
    "available",
    "balanced_sample",
    "cache_dir",
    "cifar100_tasks",
    "crop_flip",
    "download_file",
    "fashion_mnist_tasks",
    "group_split",
    "load",
    "mnist_one_vs_all",
    "mnist_semi_supervised",
    "multi_mnist",
    "notmnist_split",
    "omniglot_alphabets",
    "pooled_digits",
    "resolve_root",
    "stratified_fraction",
    "utkface_tasks",
    "verify_file",
]
