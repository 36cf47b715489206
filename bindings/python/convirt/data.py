"""Dataset readers, label-fraction subsets, the threaded loader and the synthetic generator.

Every reader is a :class:`torch.utils.data.Dataset`: ``len(ds)`` and ``ds[i]``, which returns a dict
of tensors and metadata, so it drops into a ``torch.utils.data.DataLoader`` (its default collate
stacks the images and labels and lists the strings)::

    import convirt.data as D, convirt.transforms as T
    ds = D.MimicCxrDataset("/data/mimic-cxr-jpg", split="train", transform=T.paper_augmentation(size=224))
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=2)
    for batch in loader:
        batch["image"]   # [32, 3, 224, 224] float32
        batch["text"]    # 32 sentences, one drawn per study

Paired samples (MIMIC-CXR-JPG, CSV pairs) hold ``image, text, study, patient, path, index``; labelled
samples (CheXpert, RSNA, COVIDx, MURA, the 8x200 retrieval set) hold ``image, labels, mask, study,
patient, path, index``. Decoding and a native ``convirt.transforms`` transform run in C++ with the
GIL released; any other callable ``transform(image, seed) -> image`` works too (with the GIL).

Randomness (view, sentence, augmentation) is drawn from a per-sample seed: by default from torch's
generator (so ``torch.manual_seed`` and DataLoader worker seeding behave as with torchvision); with
``seed=`` given, the seed is a pure function of ``(seed, epoch, index)`` (see :meth:`Dataset.set_epoch`),
the same the C++ :class:`Loader` uses.

Bad input: a missing folder or CSV, a malformed file, or too many unusable rows raise ``ValueError`` /
``RuntimeError`` with the reader's message; an index out of range raises ``IndexError``; a sample whose
image cannot be decoded raises ``RuntimeError`` naming the file. A table row that is ragged (more or
fewer fields than the header) or holds invalid UTF-8 is a ``ValueError`` naming the file, the line and
the column; every table reader takes ``skip_bad_rows=True`` to skip such rows instead, listing them in
:meth:`Dataset.skipped` and counting them against ``max_bad_fraction`` (for tables known to be dirty).
"""
from __future__ import annotations

import operator
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.data

from ._C import data as _data

__all__ = [
    "Dataset", "PairedDataset", "MimicCxrDataset", "CsvPairsDataset", "LabeledDataset",
    "ChexpertDataset", "RsnaDataset", "CovidxDataset", "MuraDataset", "SubsetDataset",
    "RetrievalSet", "Loader", "label_fraction_indices", "label_fraction_subset", "stratified_split",
    "chexpert_paper_labels", "chexpert_all_labels", "retrieval_categories", "report_sentences",
    "UNCERTAIN_POLICIES", "generate_synthetic", "synthetic_example", "synthetic_text_queries",
    "finding_names",
]

PathLike = Union[str, "os.PathLike[str]"]
TransformLike = Optional[Callable[..., torch.Tensor]]

#: What a CheXpert uncertain label (-1) becomes: 0, 1, or masked out of loss and metric.
UNCERTAIN_POLICIES: Tuple[str, ...] = ("zeros", "ones", "ignore")


def _draw_seed() -> int:
    return int(torch.randint(0, 2 ** 63 - 1, (1,)).item())


def _rebuild(cls: type, args: tuple, kwargs: Dict[str, Any], state: Dict[str, Any]) -> "Dataset":
    obj = cls(*args, **kwargs)
    obj.__dict__.update(state)
    return obj


def _retrieval_part(owner: "RetrievalSet", name: str, state: Dict[str, Any]) -> "Dataset":
    part = getattr(owner, name)
    part.__dict__.update(state)
    return part


class Dataset(torch.utils.data.Dataset):
    """A convirt reader as a torch Dataset: ``ds[i]`` is a dict of tensors and metadata.

    ``seed``: ``None`` draws each sample's seed from torch's default generator; an int makes sample
    ``i`` a pure function of ``(seed, epoch, i)``. Readers built from constructor arguments pickle by
    those arguments, so they work in DataLoader workers started with ``spawn``.
    """

    def __init__(self, native: Any, *, seed: Optional[int] = None) -> None:
        if not isinstance(native, _data.Dataset):
            raise TypeError(f"Dataset wraps a convirt._C.data.Dataset, got {type(native).__name__}")
        self._native = native
        self.seed = seed
        self.epoch = 0
        self._reduce: Optional[Tuple[Callable[..., Any], tuple]] = None

    def _init(self, native_cls: Any, args: tuple, kwargs: Dict[str, Any], seed: Optional[int],
              ctor: Tuple[tuple, Dict[str, Any]]) -> None:
        Dataset.__init__(self, native_cls(*args, **kwargs), seed=seed)
        self._reduce = (_rebuild, (type(self),) + ctor)

    @property
    def native(self) -> Any:
        """The ``convirt._C.data`` dataset that does the work."""
        return self._native

    def __len__(self) -> int:
        return self._native.size()

    def set_epoch(self, epoch: int) -> None:
        """With a fixed ``seed``: samples of another epoch draw other views, sentences and crops."""
        self.epoch = int(epoch)

    def sample_seed(self, index: int) -> int:
        """The seed sample ``index`` gets now (fresh from torch's generator when ``seed`` is None)."""
        if self.seed is None:
            return _draw_seed()
        return _data.Loader.sample_seed(int(self.seed), self.epoch, index)

    def _index(self, index: Any) -> int:
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"{type(self).__name__} indices must be integers, got "
                            f"{type(index).__name__}") from None
        n = len(self)
        return i + n if -n <= i < 0 else i

    def get(self, index: int, seed: int = 0) -> Dict[str, Any]:
        """Sample ``index`` drawn from an explicit ``seed``: every field, ``None`` where undefined."""
        return self._native.get(self._index(index), seed)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        i = self._index(index)
        sample = self._native.get(i, self.sample_seed(i))
        # Only the fields the dataset defines, so torch's default collate can batch every one.
        if sample["labels"] is not None:
            del sample["text"]
        return {k: v for k, v in sample.items() if v is not None}

    def source(self, index: int) -> str:
        """The (first) image file behind sample ``index``."""
        return self._native.source(self._index(index))

    @property
    def label_names(self) -> List[str]:
        """Label columns in output order; empty for paired datasets."""
        return self._native.label_names()

    def labels(self) -> Optional[torch.Tensor]:
        """All labels ``[N, L]`` float32 without decoding any image; ``None`` for paired datasets."""
        return self._native.labels()

    def skipped(self) -> List[Dict[str, Any]]:
        """Rows skipped while indexing: dicts with ``index``, ``path`` and ``reason``."""
        return self._native.skipped()

    def __reduce__(self) -> Tuple[Any, ...]:
        if self._reduce is None:
            raise TypeError(f"this {type(self).__name__} wraps a native dataset directly and cannot be "
                            "pickled; build it from its constructor arguments instead")
        fn, args = self._reduce
        return fn, args + ({"seed": self.seed, "epoch": self.epoch},)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(len={len(self)}, seed={self.seed})"


def _path(p: PathLike) -> str:
    return os.fspath(p)


class PairedDataset(Dataset):
    """Paired (image, sentence) data over explicit records.

    ``records``: ``(image_paths, sentences, study, patient)`` per study; a sample draws one view and
    one sentence from its seed. ``channels``: 0 as decoded, 1 gray, 3 gray replicated after the
    transform.
    """

    def __init__(self, records: Sequence[Tuple[Sequence[PathLike], Sequence[str], str, str]],
                 transform: TransformLike = None, channels: int = 3, *, seed: Optional[int] = None) -> None:
        recs = [([_path(p) for p in imgs], list(sents), str(study), str(patient))
                for imgs, sents, study, patient in records]
        self._init(_data.PairedDataset, (recs,), {"transform": transform, "channels": channels}, seed,
                   ((records,), {"transform": transform, "channels": channels}))

    def num_images(self) -> int:
        """Image files over all studies."""
        return self._native.num_images()

    def records(self) -> List[Tuple[List[str], List[str], str, str]]:
        """The studies: (image paths, sentences, study, patient)."""
        return self._native.records()


class MimicCxrDataset(PairedDataset):
    """MIMIC-CXR-JPG 2.0.0 with its reports: one record per study, FINDINGS + IMPRESSION sentences.

    ``root`` holds ``files/pXX/pSUBJECT/sSTUDY/*.jpg``, the reports (or ``reports_dir``) and the
    ``mimic-cxr-2.0.0-{metadata,split}.csv`` tables. ``split``: "train", "validate", "test" or "" (all).
    """

    def __init__(self, root: PathLike, split: str = "train", *, frontal_only: bool = False,
                 frontal_views: Sequence[str] = ("PA", "AP"), reports_dir: PathLike = "",
                 image_extension: str = ".jpg", sections_only: bool = True, min_tokens: int = 3,
                 transform: TransformLike = None, channels: int = 3, max_bad_fraction: float = 0.05,
                 skip_bad_rows: bool = False, seed: Optional[int] = None) -> None:
        kw = dict(frontal_only=frontal_only, frontal_views=list(frontal_views),
                  reports_dir=_path(reports_dir), image_extension=image_extension,
                  sections_only=sections_only, min_tokens=min_tokens, transform=transform,
                  channels=channels, max_bad_fraction=max_bad_fraction,
                  skip_bad_rows=skip_bad_rows)
        self._init(_data.MimicCxrDataset, (_path(root), split), kw, seed,
                   ((root, split), dict(kw)))


class CsvPairsDataset(PairedDataset):
    """Pairs from a CSV: image path(s) (``path_separator``-joined views) and the report inline
    (``text_column``) or as a file (``report_file_column``). Relative paths resolve against ``root``
    ("" = the CSV's folder)."""

    def __init__(self, csv_path: PathLike, *, image_column: str = "image", path_separator: str = ";",
                 text_column: str = "text", report_file_column: str = "report_file",
                 study_column: str = "study", patient_column: str = "patient", root: PathLike = "",
                 sections_only: bool = True, min_tokens: int = 3, transform: TransformLike = None,
                 channels: int = 3, max_bad_fraction: float = 0.05, skip_bad_rows: bool = False,
                 seed: Optional[int] = None) -> None:
        kw = dict(image_column=image_column, path_separator=path_separator, text_column=text_column,
                  report_file_column=report_file_column, study_column=study_column,
                  patient_column=patient_column, root=_path(root), sections_only=sections_only,
                  min_tokens=min_tokens, transform=transform, channels=channels,
                  max_bad_fraction=max_bad_fraction, skip_bad_rows=skip_bad_rows)
        self._init(_data.CsvPairsDataset, (_path(csv_path),), kw, seed, ((csv_path,), dict(kw)))


class LabeledDataset(Dataset):
    """Labelled images over explicit records: ``(image_path, labels, mask, study, patient)``; an
    empty mask means every label is known."""

    def __init__(self, records: Sequence[Tuple[PathLike, Sequence[float], Sequence[float], str, str]],
                 label_names: Sequence[str], transform: TransformLike = None, channels: int = 3, *,
                 seed: Optional[int] = None) -> None:
        recs = [(_path(img), [float(x) for x in labels], [float(x) for x in mask], str(study),
                 str(patient)) for img, labels, mask, study, patient in records]
        kw = {"transform": transform, "channels": channels}
        self._init(_data.LabeledDataset, (recs, list(label_names)), kw, seed,
                   ((records, label_names), dict(kw)))

    def masks(self) -> torch.Tensor:
        """``[N, L]`` float32, 1 where the label is known."""
        return self._native.masks()

    def set_transform(self, transform: TransformLike) -> None:
        """Replaces the transform (e.g. augmentation for training, none for evaluation)."""
        self._native.set_transform(transform)
        if self._reduce is not None:
            fn, (cls, args, kwargs) = self._reduce
            self._reduce = (fn, (cls, args, dict(kwargs, transform=transform)))

    def records(self) -> List[Tuple[str, List[float], List[float], str, str]]:
        """The samples: (image path, labels, mask, study, patient)."""
        return self._native.records()


class ChexpertDataset(LabeledDataset):
    """CheXpert (train.csv / valid.csv). ``uncertain`` maps the -1 labels: "zeros", "ones", or
    "ignore" (label 0 with mask 0). ``labels``: columns in output order (the paper's five by
    default); ``blank_is_negative=False`` masks unmentioned labels out."""

    def __init__(self, csv_path: PathLike, *, labels: Optional[Sequence[str]] = None,
                 uncertain: str = "zeros", blank_is_negative: bool = True, frontal_only: bool = False,
                 image_root: PathLike = "", transform: TransformLike = None, channels: int = 3,
                 max_bad_fraction: float = 0.05, skip_bad_rows: bool = False,
                 seed: Optional[int] = None) -> None:
        kw = dict(labels=list(labels) if labels is not None else _data.chexpert_paper_labels(),
                  uncertain=uncertain, blank_is_negative=blank_is_negative,
                  frontal_only=frontal_only, image_root=_path(image_root), transform=transform,
                  channels=channels, max_bad_fraction=max_bad_fraction,
                  skip_bad_rows=skip_bad_rows)
        self._init(_data.ChexpertDataset, (_path(csv_path),), kw, seed, ((csv_path,), dict(kw)))


class RsnaDataset(LabeledDataset):
    """RSNA Pneumonia: one sample per patientId (label "Pneumonia" = any box row with Target 1)."""

    def __init__(self, root: PathLike, *, labels_csv: str = "stage_2_train_labels.csv",
                 images_dir: str = "stage_2_train_images", extension: str = ".dcm",
                 transform: TransformLike = None, channels: int = 3, max_bad_fraction: float = 0.05,
                 skip_bad_rows: bool = False, seed: Optional[int] = None) -> None:
        kw = dict(labels_csv=labels_csv, images_dir=images_dir, extension=extension,
                  transform=transform, channels=channels, max_bad_fraction=max_bad_fraction,
                  skip_bad_rows=skip_bad_rows)
        self._init(_data.RsnaDataset, (_path(root),), kw, seed, ((root,), dict(kw)))


class CovidxDataset(LabeledDataset):
    """COVIDx: lines "patient_id filename label source"; labels one-hot over ``classes``."""

    def __init__(self, root: PathLike, split_file: str = "train.txt", *,
                 classes: Sequence[str] = ("COVID-19", "pneumonia", "normal"),
                 images_dir: PathLike = "", transform: TransformLike = None, channels: int = 3,
                 max_bad_fraction: float = 0.05, skip_bad_rows: bool = False,
                 seed: Optional[int] = None) -> None:
        kw = dict(classes=list(classes), images_dir=_path(images_dir), transform=transform,
                  channels=channels, max_bad_fraction=max_bad_fraction,
                  skip_bad_rows=skip_bad_rows)
        self._init(_data.CovidxDataset, (_path(root), split_file), kw, seed,
                   ((root, split_file), dict(kw)))


class MuraDataset(LabeledDataset):
    """MURA v1.1: each image takes its study's "Abnormal" label; patient = body part + patient."""

    def __init__(self, root: PathLike, split: str = "train", *, transform: TransformLike = None,
                 channels: int = 3, max_bad_fraction: float = 0.05, skip_bad_rows: bool = False,
                 seed: Optional[int] = None) -> None:
        kw = dict(transform=transform, channels=channels, max_bad_fraction=max_bad_fraction,
                  skip_bad_rows=skip_bad_rows)
        self._init(_data.MuraDataset, (_path(root), split), kw, seed, ((root, split), dict(kw)))


class SubsetDataset(Dataset):
    """The samples ``indices`` of ``base`` (``IndexError`` for an index outside it)."""

    def __init__(self, base: Dataset, indices: Sequence[int], *, seed: Optional[int] = None) -> None:
        if not isinstance(base, Dataset):
            raise TypeError(f"base must be a convirt.data.Dataset, got {type(base).__name__}")
        idx = [operator.index(i) for i in indices]
        self.base = base
        self._init(_data.SubsetDataset, (base.native, idx), {}, base.seed if seed is None else seed,
                   ((base, idx), {"seed": seed}))

    @property
    def indices(self) -> List[int]:
        """Indices into ``base``, in subset order."""
        return list(self._native.indices)


def _labels_tensor(labels: Any) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels, dtype=torch.float32)
    return labels


def label_fraction_indices(labels: Any, fraction: float, seed: int = 0) -> List[int]:
    """Sorted indices of a seeded, stratified ``fraction`` of the rows of ``labels`` ([N] or [N, L]);
    every label column with positives keeps at least one positive and one negative."""
    return _data.label_fraction_indices(_labels_tensor(labels), float(fraction), int(seed))


def label_fraction_subset(dataset: Dataset, fraction: float, seed: int = 0) -> SubsetDataset:
    """The paper's 1% / 10% / 100% training subsets: :func:`label_fraction_indices` of the dataset's
    labels as a :class:`SubsetDataset` (``ValueError`` for a dataset without labels)."""
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a convirt.data.Dataset, got {type(dataset).__name__}")
    labels = dataset.labels()
    if labels is None:
        # The C++ check words the error; call it for its message.
        _data.label_fraction_subset(dataset.native, float(fraction), int(seed))
    return SubsetDataset(dataset, label_fraction_indices(labels, fraction, seed))


def stratified_split(labels: Any, first_fraction: float, seed: int = 0,
                     groups: Sequence[str] = ()) -> Tuple[List[int], List[int]]:
    """Seeded, stratified (first, rest) split of the rows of ``labels``; rows sharing a ``groups`` id
    (e.g. a patient) stay on one side."""
    return _data.stratified_split(_labels_tensor(labels), float(first_fraction), int(seed),
                                  [str(g) for g in groups])


class RetrievalSet:
    """The CheXpert 8x200-style retrieval set: candidates and image queries as labelled datasets
    (labels one-hot over ``categories``) and the text queries."""

    def __init__(self, dir: PathLike, *, categories: Optional[Sequence[str]] = None,
                 image_root: PathLike = "", transform: TransformLike = None, channels: int = 3,
                 max_bad_fraction: float = 0.05, skip_bad_rows: bool = False,
                 seed: Optional[int] = None) -> None:
        self._args = ((dir,), dict(categories=categories, image_root=image_root, transform=transform,
                                    channels=channels, max_bad_fraction=max_bad_fraction,
                                    skip_bad_rows=skip_bad_rows, seed=seed))
        cats = list(categories) if categories is not None else _data.retrieval_categories()
        self._native = _data.RetrievalSet(_path(dir), categories=cats, image_root=_path(image_root),
                                          transform=transform, channels=channels,
                                          max_bad_fraction=max_bad_fraction,
                                          skip_bad_rows=skip_bad_rows)
        self.candidates = self._part("candidates", seed)
        self.image_queries = self._part("image_queries", seed)
        self.text_candidates = self._part("text_candidates", seed)

    def _part(self, name: str, seed: Optional[int]) -> Dataset:
        part = Dataset(getattr(self._native, name), seed=seed)
        part._reduce = (_retrieval_part, (self, name))
        return part

    @property
    def categories(self) -> List[str]:
        """The categories in order (CheXpert column names)."""
        return self._native.categories

    @property
    def text_queries(self) -> List[Dict[str, Any]]:
        """Text queries: dicts with ``category`` (index), ``category_name`` and ``text``."""
        return [{"category": c, "category_name": n, "text": t} for c, n, t in self._native.text_queries]

    def __reduce__(self) -> Tuple[Any, ...]:
        args, kwargs = self._args
        return _rebuild, (RetrievalSet, args, kwargs, {})


class Loader:
    """The C++ loader: worker threads decode and collate batches ahead of the consumer.

    Iterating yields one epoch of batch dicts (``images``, ``texts``, ``labels``, ``mask``,
    ``studies``, ``patients``, ``paths``, ``indices``, ``epoch``, ``step``); the order is a pure
    function of ``(seed, epoch, step, rank, world_size)``, whatever ``workers`` is. Samples whose image
    cannot be decoded are skipped and listed in :meth:`bad_samples`.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 32, *, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0, workers: int = 2, prefetch: int = 4,
                 rank: int = 0, world_size: int = 1, max_bad_fraction: float = 0.01) -> None:
        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a convirt.data.Dataset, got {type(dataset).__name__}")
        self.dataset = dataset
        self._native = _data.Loader(dataset.native, batch_size=batch_size, shuffle=shuffle,
                                    drop_last=drop_last, seed=seed, workers=workers,
                                    prefetch=prefetch, rank=rank, world_size=world_size,
                                    max_bad_fraction=max_bad_fraction)

    def __len__(self) -> int:
        return self._native.steps_per_epoch()

    def next(self) -> Optional[Dict[str, Any]]:
        """The next batch of the current epoch, or ``None`` once it is over (the next call starts the
        following epoch)."""
        batch = self._native.next()
        if batch is not None:
            batch["indices"] = torch.tensor(batch["indices"], dtype=torch.int64)
        return batch

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        while True:
            batch = self.next()
            if batch is None:
                return
            yield batch

    @property
    def position(self) -> Tuple[int, int]:
        """(epoch, step) of the next batch."""
        return self._native.position()

    def set_position(self, epoch: int, step: int) -> None:
        """Moves to a saved position; the batches that follow are those produced there before."""
        self._native.set_position(epoch, step)

    def epoch_indices(self, epoch: int) -> List[int]:
        """This rank's sample order in ``epoch``."""
        return self._native.epoch_indices(epoch)

    def bad_samples(self) -> List[Dict[str, Any]]:
        """Samples skipped while loading: dicts with ``index``, ``path`` and ``reason``."""
        return self._native.bad_samples()

    def close(self) -> None:
        """Stops the worker threads (also done when the loader is garbage-collected)."""
        self._native.close()

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def chexpert_paper_labels() -> List[str]:
    """The five CheXpert labels the paper evaluates."""
    return _data.chexpert_paper_labels()


def chexpert_all_labels() -> List[str]:
    """The 14 CheXpert observation columns in the official order."""
    return _data.chexpert_all_labels()


def retrieval_categories() -> List[str]:
    """The eight 8x200 retrieval categories in the paper's order."""
    return _data.retrieval_categories()


def report_sentences(report: str, sections_only: bool = True, min_tokens: int = 3) -> List[str]:
    """The sentences a paired reader keeps from a report (FINDINGS + IMPRESSION when
    ``sections_only``); ``ValueError`` naming the reason when the report would be skipped."""
    sentences, why = _data.report_sentences(report, sections_only, min_tokens)
    if why:
        raise ValueError(f"report_sentences: the report is skipped: {why}")
    return sentences


def generate_synthetic(out_dir: PathLike, **options: Any) -> Dict[str, Any]:
    """Writes the seeded synthetic dataset under ``out_dir`` and returns what it wrote (paths:
    ``mimic_root``, ``chexpert_train_csv``, ``chexpert_valid_csv``, ``chexpert_root``,
    ``retrieval_dir``; counts). Options as ``convirt::data::synthetic::SyntheticOptions``:
    train_studies, validate_studies, test_studies, lateral_fraction, chexpert_train, chexpert_valid,
    retrieval_candidates, retrieval_image_queries, retrieval_text_queries, image_size, image_format
    ("jpg" | "png"), difficulty, prevalence, uncertain_fraction, device_fraction, seed, threads."""
    return _data.synthetic.generate(_path(out_dir), **options)


def synthetic_example(seed: int, image_size: int = 128, lateral: bool = False, only: int = -1,
                      **options: Any) -> Dict[str, Any]:
    """One synthetic study without writing files: ``image`` [1, S, S], ``report``, ``report_labels``
    (the CheXpert-labeler reading: 1, -1, 0, NaN) and ``labels`` (ground truth), 14 columns each.
    ``only``: -1 samples findings, 0..6 forces one finding, 7 none."""
    return _data.synthetic.example(int(seed), image_size, lateral, only, **options)


def synthetic_text_queries(category: int, count: int, seed: int = 0) -> List[str]:
    """``count`` different text queries for a retrieval category (0..6 a finding, 7 No Finding)."""
    return _data.synthetic.text_queries(category, count, seed)


def finding_names() -> List[str]:
    """The seven findings the synthetic generator draws, in label order."""
    return _data.synthetic.finding_names()
