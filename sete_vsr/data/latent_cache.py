"""Precompute frozen outputs (VAE latents, SAM2 embeddings...) once and train from the cache.

:func:`precompute` runs every item of a dataset through a dict of frozen
``encoders`` and writes one safetensors file per item; :class:`CachedDataset`
reads them back. The module knows nothing about the encoders: each is a
callable ``item -> tensor`` that picks what it needs from the item (e.g.
``lambda item: vae_encode(item["lr"])``).

The cache freezes one draw (crop, flips, degradation) per item and pass. Use a
seeded dataset so the cache is reproducible, and ``passes > 1`` to store
several draws (pass ``p`` calls ``dataset.set_epoch(p)`` when the dataset has it).

Layout of ``out_dir``: ``index.json`` (file list, encoder names, stored item
keys, passes, and the caller's ``metadata``) and ``<pass>_<index>.safetensors``,
each holding the item tensors named in ``keep`` and one tensor per encoder, with
``clip`` and ``start`` as metadata.

:class:`CachedDataset` reads every stored item (``passes * len(dataset)``);
:class:`CachedEpochDataset` reads one pass per epoch, as the dataset it was made
from would draw them: item ``i`` of epoch ``e`` is item ``i`` of pass ``e % passes``.
The training loop fills and reads the cache through :mod:`sete_vsr.train.cache`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset

from ..errors import SeteVSRError

INDEX = "index.json"


@torch.no_grad()
def precompute(
    dataset: Dataset,
    encoders: dict[str, Callable[[dict], torch.Tensor]],
    out_dir: str | Path,
    keep: Iterable[str] = ("hr", "lr"),
    passes: int = 1,
    overwrite: bool = False,
    metadata: dict | None = None,
    num_workers: int = 0,
) -> Path:
    """Write the cache of ``dataset`` to ``out_dir`` and return the folder.

    Args:
        dataset: items following the :mod:`sete_vsr.data.train_datasets` contract (a dict
            with tensors, ``"clip"`` and ``"start"``).
        encoders: ``name -> callable(item) -> tensor``, run under ``torch.no_grad()``;
            outputs are stored on the CPU, contiguous, in their own dtype.
        keep: item tensors stored next to the encoder outputs.
        passes: draws stored per item.
        overwrite: replace an existing cache instead of raising :class:`SeteVSRError`.
        metadata: JSON-serialisable description of what made the cache, stored in the index (read it back with
            :attr:`CachedDataset.metadata`, e.g. to check that a cache matches a config).
        num_workers: ``DataLoader`` workers making the items (in order; a seeded dataset gives the same items
            whatever the number).
    """
    if not encoders:
        raise SeteVSRError("precompute needs at least one encoder")
    out_dir = Path(out_dir)
    if (out_dir / INDEX).exists() and not overwrite:
        raise SeteVSRError(f"a cache already exists in {out_dir} (pass overwrite=True to replace it)")
    keep = tuple(keep)
    clash = set(keep) & set(encoders)
    if clash:
        raise SeteVSRError(f"encoder names clash with stored item keys: {sorted(clash)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for p in range(passes):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(p)
        # batch_size=None: items one by one, uncollated, in index order; workers are made after set_epoch.
        items = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers)
        for i, item in enumerate(items):
            tensors = {key: item[key] for key in keep}
            tensors.update({name: encode(item) for name, encode in encoders.items()})
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
            name = f"{p:03d}_{i:08d}.safetensors"
            save_file(
                tensors, str(out_dir / name), metadata={"clip": str(item["clip"]), "start": str(int(item["start"]))}
            )
            files.append(name)
    index = {
        "files": files,
        "encoders": sorted(encoders),
        "keep": list(keep),
        "passes": passes,
        "metadata": metadata or {},
    }
    (out_dir / INDEX).write_text(json.dumps(index, indent=1))
    return out_dir


class CachedDataset(Dataset):
    """Items read back from a :func:`precompute` cache.

    Each item is a dict with the stored tensors (the ``keep`` keys and one per
    encoder), ``"clip"`` (str) and ``"start"`` (int).
    """

    def __init__(self, cache_dir: str | Path):
        self.cache_dir = Path(cache_dir)
        index_path = self.cache_dir / INDEX
        if not index_path.is_file():
            raise SeteVSRError(f"no cache index found: {index_path} (run precompute first)")
        self.index = json.loads(index_path.read_text())
        if not self.index["files"]:
            raise SeteVSRError(f"the cache in {self.cache_dir} is empty")

    @property
    def metadata(self) -> dict:
        """The ``metadata`` given to :func:`precompute` (``{}`` when none)."""
        return self.index.get("metadata", {})

    @property
    def passes(self) -> int:
        """Draws stored per item of the source dataset."""
        return int(self.index.get("passes", 1))

    def __len__(self) -> int:
        return len(self.index["files"])

    def __getitem__(self, i: int) -> dict:
        with safe_open(str(self.cache_dir / self.index["files"][i]), framework="pt") as f:
            item = {key: f.get_tensor(key) for key in f.keys()}
            meta = f.metadata()
        item["clip"] = meta["clip"]
        item["start"] = int(meta["start"])
        return item


class CachedEpochDataset(CachedDataset):
    """A :func:`precompute` cache read one pass per epoch: as many items as the source dataset.

    Items also carry their ``"index"`` in the pass. :meth:`set_epoch` ``(e)`` selects pass ``e % passes``, so the first ``passes`` epochs give exactly the items the
    (seeded) source dataset gives in those epochs; later epochs reuse the stored draws.
    """

    def __init__(self, cache_dir: str | Path):
        super().__init__(cache_dir)
        if len(self.index["files"]) % self.passes:
            raise SeteVSRError(f"the cache in {self.cache_dir} is incomplete ({len(self.index['files'])} files)")
        self.items_per_pass = len(self.index["files"]) // self.passes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Read pass ``epoch % passes`` from now on (reaches ``DataLoader`` workers created after the call)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.items_per_pass

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.items_per_pass:
            raise IndexError(i)
        return {**super().__getitem__((self.epoch % self.passes) * self.items_per_pass + i), "index": i}
