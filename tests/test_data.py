"""Dataset registry, verification, MNIST loading, fetching (from a local server only) and safe extraction.

No test uses the internet: downloads come from an http.server bound to 127.0.0.1 in a background thread.
"""

import functools
import gzip
import hashlib
import http.server
import io
import os
import shutil
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deepzoo.data import registry
from deepzoo.data.mnist import load_mnist, read_idx, write_idx
from deepzoo.data.registry import REGISTRY, ArchiveSpec, Dataset, FileSpec
from deepzoo.errors import DeepzooError

NINE = {"mnist", "wordvec-eval", "tinyshakespeare", "ptb", "sst2", "chnsenticorp", "planetoid", "multi30k", "cifar10"}
MNIST_FILES = [f.name for f in REGISTRY["mnist"].files]


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def mnist_copy(shared_data, tmp_path):
    """A writable copy of the real MNIST files: returns the data root (holding mnist/)."""
    root = tmp_path / "data"
    shutil.copytree(shared_data / "mnist", root / "mnist", ignore=shutil.ignore_patterns("*.md"))
    for p in (root / "mnist").iterdir():
        p.chmod(0o644)
    return root


@pytest.fixture
def serve():
    """serve(folder) -> (base_url, requested_paths): an HTTP server on 127.0.0.1 in a background thread."""
    servers = []

    def start(folder):
        requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}", requests

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def flip_byte(path: Path, where: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if where is None else where
    data[i] ^= 0xFF
    st = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a new mtime even on coarse clocks


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part") or p.name.startswith((".staging-", ".extract-")))


# ---------------------------------------------------------------------------------------------- registry


def test_registry_lists_the_nine_datasets_with_sources():
    assert NINE <= set(REGISTRY)
    for name in NINE:
        ds = REGISTRY[name]
        assert ds.name == name and ds.task and ds.description and ds.homepage.startswith("http") and ds.license
        assert ds.files
        for f in ds.files:
            assert f.size > 0 and len(f.sha256) == 64 and int(f.sha256, 16) >= 0
            from_archive = any(f.name in a.members.values() for a in ds.archives)
            assert (f.url is not None) != from_archive or name == "cifar10", f
        for a in ds.archives:
            assert set(a.members.values()) <= {f.name for f in ds.files}
    assert REGISTRY["mnist"].files[0].url == "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    assert REGISTRY["cifar10"].files[0].url is None and not REGISTRY["cifar10"].archives


def test_get_unknown_name_suggests_the_closest():
    assert registry.get("mnist") is REGISTRY["mnist"]
    with pytest.raises(DeepzooError) as e:
        registry.get("mnsit")
    assert str(e.value) == "unknown dataset 'mnsit'; did you mean 'mnist'? (deepzoo data list shows all)"


def test_search_roots_order(tmp_path, monkeypatch):
    cache = Path(os.environ["DEEPZOO_CACHE"])
    assert registry.search_roots() == [cache]
    monkeypatch.setenv("DEEPZOO_DATA", str(tmp_path / "env"))
    assert registry.search_roots(tmp_path / "arg") == [tmp_path / "arg", tmp_path / "env", cache]
    monkeypatch.delenv("DEEPZOO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert registry.search_roots()[-1] == tmp_path / "xdg" / "deepzoo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert registry.search_roots()[-1] == Path.home() / ".cache" / "deepzoo"


def test_samples_dir_is_inside_the_package():
    import deepzoo

    assert registry.samples_dir() == Path(deepzoo.__file__).resolve().parent / "samples"
    assert (registry.samples_dir() / "mnist" / "sample-train-images-idx3-ubyte.gz").is_file()


# ---------------------------------------------------------------------------------------------- real data


def test_registry_checksums_match_the_shared_files(shared_data):
    for name in sorted(NINE):
        for f in REGISTRY[name].files:
            path = shared_data / name / f.name
            assert path.stat().st_size == f.size, path
            assert sha256(path) == f.sha256, path
        assert registry.locate(name, shared_data) == shared_data / name


def test_locate_mnist_by_root_subfolder_and_env(shared_data, monkeypatch):
    assert registry.locate("mnist", data_dir=shared_data) == shared_data / "mnist"
    assert registry.locate("mnist", data_dir=shared_data / "mnist") == shared_data / "mnist"
    assert registry.locate("mnist", data_dir=str(shared_data / "mnist")) == shared_data / "mnist"
    monkeypatch.setenv("DEEPZOO_DATA", str(shared_data))
    assert registry.locate("mnist") == shared_data / "mnist"


def test_status_and_table(shared_data, tmp_path):
    state, path, _ = registry.status("mnist", shared_data)
    assert (state, path) == ("verified", shared_data / "mnist")
    rows = {r["name"]: r for r in registry.table(shared_data)}
    assert NINE <= set(rows)
    for name in NINE:
        assert rows[name]["state"] == "verified" and rows[name]["path"] == str(shared_data / name)
    assert rows["mnist"]["files"] == 4 and rows["mnist"]["size"] == 11594722
    assert rows["mnist"]["task"] == REGISTRY["mnist"].task
    assert registry.status("mnist", tmp_path)[:2] == ("missing", None)
    assert {r["state"] for r in registry.table(tmp_path)} == {"missing"}


def test_load_mnist_full(shared_data):
    data = load_mnist(shared_data)
    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert ytr.shape == (60000,) and yte.shape == (10000,)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.int64
    assert set(np.unique(ytr)) == set(range(10)) and set(np.unique(yte)) == set(range(10))
    assert xtr.max() == 255 and xtr.min() == 0
    assert ytr[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the well-known first labels
    assert yte[:5].tolist() == [7, 2, 1, 0, 4]
    assert xtr.flags.writeable


def test_sample_is_the_first_images_of_the_full_set(shared_data):
    full, sample = load_mnist(shared_data), load_mnist(sample=True)
    for split, n in (("train", 5000), ("test", 1000)):
        np.testing.assert_array_equal(sample[split][0], full[split][0][:n])
        np.testing.assert_array_equal(sample[split][1], full[split][1][:n])


def test_make_samples_is_deterministic(shared_data, tmp_path):
    import runpy
    import sys

    script = Path(__file__).resolve().parent.parent / "scripts" / "make_samples.py"
    argv = sys.argv
    sys.argv = [str(script), str(shared_data / "mnist"), "--out", str(tmp_path)]
    try:
        with pytest.raises(SystemExit) as e:
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    assert e.value.code == 0
    for name in MNIST_FILES:
        name = "sample-" + name
        assert (tmp_path / name).read_bytes() == (registry.samples_dir() / "mnist" / name).read_bytes()


# ---------------------------------------------------------------------------------------------- bad local data


def test_corrupted_file_is_reported(mnist_copy):
    folder = mnist_copy / "mnist"
    assert registry.locate("mnist", mnist_copy) == folder  # also memoises the good hashes
    flip_byte(folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(DeepzooError) as e:
        registry.locate("mnist", mnist_copy)
    msg = str(e.value)
    assert "corrupted data file" in msg and str(folder / "train-images-idx3-ubyte.gz") in msg
    assert "sha256" in msg and "deepzoo data fetch mnist" in msg and "\n" not in msg
    with pytest.raises(DeepzooError, match="train-images-idx3-ubyte.gz"):
        load_mnist(mnist_copy)
    assert registry.status("mnist", mnist_copy)[0] == "corrupt"


def test_truncated_file_is_reported(mnist_copy):
    path = mnist_copy / "mnist" / "t10k-images-idx3-ubyte.gz"
    with open(path, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DeepzooError) as e:
        registry.locate("mnist", mnist_copy / "mnist")
    msg = str(e.value)
    assert str(path) in msg and "truncated: 1000 bytes, expected 1648877" in msg
    assert "deepzoo data fetch mnist" in msg


def test_missing_dataset_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPZOO_DATA", str(tmp_path / "envdata"))
    with pytest.raises(DeepzooError) as e:
        registry.locate("mnist", tmp_path / "nowhere")
    msg = str(e.value)
    assert "'mnist'" in msg and "train-images-idx3-ubyte.gz" in msg
    for place in (tmp_path / "nowhere" / "mnist", tmp_path / "envdata" / "mnist", Path(os.environ["DEEPZOO_CACHE"])):
        assert str(place) in msg
    assert "deepzoo data fetch mnist" in msg and "--data-dir" in msg and "DEEPZOO_DATA" in msg
    assert "\n" not in msg


def test_partial_folder_names_the_missing_file(mnist_copy):
    (mnist_copy / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DeepzooError) as e:
        load_mnist(mnist_copy)
    assert "t10k-labels-idx1-ubyte.gz is missing" in str(e.value) and "3 of 4" in str(e.value)


def test_cifar10_missing_says_to_place_it_by_hand(tmp_path):
    with pytest.raises(DeepzooError, match="by hand"):
        registry.locate("cifar10", tmp_path)
    with pytest.raises(DeepzooError, match="no public download URL"):
        registry.fetch("cifar10", dest_root=tmp_path, progress=False)


# ---------------------------------------------------------------------------------------------- IDX format


def test_idx_roundtrip_raw_and_gzip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    assert raw[:4] == b"\x00\x00\x08\x03" and raw[4:16] == b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"
    (tmp_path / "a.raw").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.raw"), arr)
    f32 = np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)
    write_idx(tmp_path / "f.gz", f32)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.gz"), f32)
    write_idx(tmp_path / "b.gz", arr)
    assert (tmp_path / "b.gz").read_bytes() == (tmp_path / "a.gz").read_bytes()  # deterministic


def test_read_idx_truncated_gzip(tmp_path):
    src = (registry.samples_dir() / "mnist" / "sample-t10k-images-idx3-ubyte.gz").read_bytes()
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(src[: len(src) // 2])
    with pytest.raises(DeepzooError) as e:
        read_idx(bad)
    assert str(bad) in str(e.value) and "truncated" in str(e.value)
    assert "deepzoo data fetch mnist" in str(e.value)


def test_read_idx_bad_gzip_bad_magic_and_wrong_length(tmp_path):
    notgz = tmp_path / "notgz.gz"
    notgz.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DeepzooError, match="notgz.gz.*gzip"):
        read_idx(notgz)
    magic = tmp_path / "magic.gz"
    magic.write_bytes(gzip.compress(b"\x12\x34\x08\x01\x00\x00\x00\x01\x07"))
    with pytest.raises(DeepzooError) as e:
        read_idx(magic)
    assert str(magic) in str(e.value) and "bad magic" in str(e.value)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02"))
    with pytest.raises(DeepzooError, match="short.gz.*payload is 2 bytes, expected 5"):
        read_idx(short)


def test_sample_with_mismatched_counts_is_an_error(tmp_path, monkeypatch):
    fake = tmp_path / "pkg"
    shutil.copytree(registry.samples_dir() / "mnist", fake / "mnist")
    labels = read_idx(fake / "mnist" / "sample-t10k-labels-idx1-ubyte.gz")
    write_idx(fake / "mnist" / "sample-t10k-labels-idx1-ubyte.gz", labels[:999])
    monkeypatch.setattr(registry, "samples_dir", lambda: fake)
    with pytest.raises(DeepzooError, match="1000 images but .* 999 labels"):
        load_mnist(sample=True)


def test_load_mnist_sample():
    data = load_mnist(sample=True)
    assert data["train"][0].shape == (5000, 28, 28) and data["train"][1].shape == (5000,)
    assert data["test"][0].shape == (1000, 28, 28) and data["test"][1].shape == (1000,)
    assert data["train"][0].dtype == np.uint8 and data["train"][1].dtype == np.int64
    assert data["train"][1][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert set(np.unique(data["train"][1])) == set(range(10))


# ---------------------------------------------------------------------------------------------- fetch


def test_fetch_from_mirror_verifies_and_skips(mnist_copy, serve, tmp_path):
    base, requests = serve(mnist_copy / "mnist")
    dest = tmp_path / "dest"
    folder = registry.fetch("mnist", dest_root=dest, mirror=base + "/", progress=False)
    assert folder == dest / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(MNIST_FILES)
    for f in REGISTRY["mnist"].files:
        assert sha256(folder / f.name) == f.sha256
    assert sorted(requests) == sorted("/" + n for n in MNIST_FILES)
    assert registry.locate("mnist", dest) == folder
    registry.fetch("mnist", dest_root=dest, mirror=base, progress=False)
    assert len(requests) == 4  # all present and verified: nothing downloaded again


def test_fetch_uses_env_mirror_and_default_cache(mnist_copy, serve, monkeypatch):
    base, _ = serve(mnist_copy / "mnist")
    monkeypatch.setenv("DEEPZOO_MIRROR", base)
    folder = registry.fetch("mnist", progress=False)
    assert folder == Path(os.environ["DEEPZOO_CACHE"]) / "mnist"
    assert registry.locate("mnist") == folder


def test_fetch_rejects_a_corrupted_download(mnist_copy, serve, tmp_path):
    flip_byte(mnist_copy / "mnist" / "train-labels-idx1-ubyte.gz")
    base, _ = serve(mnist_copy / "mnist")
    dest = tmp_path / "dest"
    with pytest.raises(DeepzooError) as e:
        registry.fetch("mnist", dest_root=dest, mirror=base, progress=False)
    msg = str(e.value)
    assert base + "/train-labels-idx1-ubyte.gz" in msg and "sha256" in msg
    assert REGISTRY["mnist"].files[1].sha256 in msg
    assert not (dest / "mnist" / "train-labels-idx1-ubyte.gz").exists()
    assert leftovers(dest) == []


def test_fetch_network_errors_name_the_url(tmp_path, serve):
    (tmp_path / "empty").mkdir()
    base, _ = serve(tmp_path / "empty")  # serves nothing: 404
    with pytest.raises(DeepzooError, match=r"could not download http://127\.0\.0\.1:\d+/ptb\.train\.txt: HTTP 404"):
        registry.fetch("ptb", dest_root=tmp_path / "dest", mirror=base, progress=False)
    assert leftovers(tmp_path / "dest") == []


def _toy_archive(folder: Path) -> dict[str, bytes]:
    contents = {"toy/a.txt": b"hello\n", "toy/sub/b.bin": bytes(range(256)) * 10, "toy/extra.txt": b"not wanted"}
    with tarfile.open(folder / "toy.tar.gz", "w:gz") as tf:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return contents


def _toy_dataset(url: str, archive_sha: str | None, contents: dict[str, bytes]) -> Dataset:
    def spec(member, name):
        data = contents[member]
        return FileSpec(name, hashlib.sha256(data).hexdigest(), len(data), None)

    return Dataset(
        name="toy",
        task="testing",
        description="toy archive",
        homepage="http://127.0.0.1/",
        license="none",
        files=(spec("toy/a.txt", "a.txt"), spec("toy/sub/b.bin", "b.bin")),
        archives=(ArchiveSpec(url=url, sha256=archive_sha, members={"toy/a.txt": "a.txt", "toy/sub/b.bin": "b.bin"}),),
    )


@pytest.mark.parametrize("pinned", [True, False])
def test_fetch_extracts_archive_members(tmp_path, serve, monkeypatch, pinned):
    srv = tmp_path / "srv"
    srv.mkdir()
    contents = _toy_archive(srv)
    base, requests = serve(srv)
    archive_sha = sha256(srv / "toy.tar.gz") if pinned else None
    monkeypatch.setitem(REGISTRY, "toy", _toy_dataset(base + "/toy.tar.gz", archive_sha, contents))
    folder = registry.fetch("toy", dest_root=tmp_path / "dest", progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.bin"]
    assert (folder / "a.txt").read_bytes() == contents["toy/a.txt"]
    assert (folder / "b.bin").read_bytes() == contents["toy/sub/b.bin"]
    assert registry.locate("toy", tmp_path / "dest") == folder
    registry.fetch("toy", dest_root=tmp_path / "dest", progress=False)
    assert requests == ["/toy.tar.gz"]


def test_fetch_archive_through_mirror_and_bad_hashes(tmp_path, serve, monkeypatch):
    srv = tmp_path / "srv"
    srv.mkdir()
    contents = _toy_archive(srv)
    base, _ = serve(srv)
    canonical = "https://example.invalid/files/toy.tar.gz"  # never contacted: the mirror replaces it
    monkeypatch.setitem(REGISTRY, "toy", _toy_dataset(canonical, None, contents))
    folder = registry.fetch("toy", dest_root=tmp_path / "m", mirror=base, progress=False)
    assert (folder / "a.txt").read_bytes() == b"hello\n"

    monkeypatch.setitem(REGISTRY, "toy", _toy_dataset(base + "/toy.tar.gz", "0" * 64, contents))
    with pytest.raises(DeepzooError, match="toy.tar.gz failed verification"):
        registry.fetch("toy", dest_root=tmp_path / "d1", progress=False)
    assert list((tmp_path / "d1" / "toy").iterdir()) == []

    wrong = dict(contents, **{"toy/sub/b.bin": b"something else"})
    monkeypatch.setitem(REGISTRY, "toy", _toy_dataset(base + "/toy.tar.gz", None, wrong))
    with pytest.raises(DeepzooError, match="toy/sub/b.bin extracted from .* failed verification"):
        registry.fetch("toy", dest_root=tmp_path / "d2", progress=False)
    assert not (tmp_path / "d2" / "toy" / "b.bin").exists() and leftovers(tmp_path / "d2") == []


# ---------------------------------------------------------------------------------------------- safe_extract


def _tar(path: Path, entries) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def test_safe_extract_tar_and_zip(tmp_path):
    tar = _tar(tmp_path / "ok.tar.gz", [_file("d/a.txt", b"a"), _file("d/e/b.txt", b"b")])
    out = registry.safe_extract(tar, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in out) == ["d/a.txt", "d/e/b.txt"]
    assert (tmp_path / "out" / "d" / "e" / "b.txt").read_bytes() == b"b"
    with zipfile.ZipFile(tmp_path / "ok.zip", "w") as zf:
        zf.writestr("z/a.txt", "za")
        zf.writestr("z/b.txt", "zb")
    out = registry.safe_extract(tmp_path / "ok.zip", tmp_path / "zout", members=["z/b.txt"])
    assert out == [tmp_path / "zout" / "z" / "b.txt"] and not (tmp_path / "zout" / "z" / "a.txt").exists()
    assert leftovers(tmp_path) == []
    with pytest.raises(DeepzooError, match="no member z/c.txt"):
        registry.safe_extract(tmp_path / "ok.zip", tmp_path / "zout", members=["z/c.txt"])


@pytest.mark.parametrize(
    "entries, why",
    [
        ([_file("fine.txt"), _file("../evil")], "unsafe path"),
        ([_file("a/../../evil")], "unsafe path"),
        ([_file("fine.txt"), _file("/ABSOLUTE/evil")], "unsafe path"),
        ([_file("fine.txt"), _link("evil", "/etc/passwd")], "is a link"),
        ([_file("fine.txt"), _link("evil", "fine.txt", tarfile.LNKTYPE)], "is a link"),
        ([_file("fine.txt"), _link("evil", "", tarfile.CHRTYPE)], "device or special file"),
    ],
)
def test_safe_extract_rejects_unsafe_tar(tmp_path, entries, why):
    entries = [
        (info.replace(name=info.name.replace("/ABSOLUTE", str(tmp_path))), data) for info, data in entries
    ]
    tar = _tar(tmp_path / "bad.tar.gz", entries)
    dest = tmp_path / "sub" / "dest"
    with pytest.raises(DeepzooError, match=why):
        registry.safe_extract(tar, dest)
    assert list(dest.iterdir()) == []  # nothing half-written, not even the temp folder
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.tar.gz", "dest", "sub"]


def test_safe_extract_rejects_unsafe_zip(tmp_path):
    for name in ("../evil", str(tmp_path / "abs_evil")):
        with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
            zf.writestr("fine.txt", "ok")
            zf.writestr(zipfile.ZipInfo(name), "evil")
        dest = tmp_path / "sub" / "dest"
        with pytest.raises(DeepzooError, match="unsafe path"):
            registry.safe_extract(tmp_path / "bad.zip", dest)
        assert list(dest.iterdir()) == []
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.zip", "dest", "sub"]
    info = zipfile.ZipInfo("link")
    info.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DeepzooError, match="is a link"):
        registry.safe_extract(tmp_path / "bad.zip", tmp_path / "sub" / "dest")


def test_safe_extract_rejects_non_archives_and_damage(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"plain bytes, not an archive" * 100)
    with pytest.raises(DeepzooError, match="not a tar or zip"):
        registry.safe_extract(tmp_path / "x.bin", tmp_path / "d")
    tar = _tar(tmp_path / "t.tar.gz", [_file("a.bin", os.urandom(100_000))])
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) - 2000])
    with pytest.raises(DeepzooError, match="t.tar.gz"):
        registry.safe_extract(tar, tmp_path / "d")
    assert list((tmp_path / "d").iterdir()) == []
