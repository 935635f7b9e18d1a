"""``lm.utils.get_file``: downloads from a local HTTP server and ``file://`` URLs, the cache,
hash checks, and archive extraction that refuses members escaping the target folder."""

import functools
import hashlib
import http.server
import io
import os
import pathlib
import tarfile
import threading
import zipfile

import pytest

import lamina as lm

PAYLOAD = b"lamina get_file payload\n" * 100


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local HTTP server over a folder, counting the requests per path."""
    root = tmp_path_factory.mktemp("served")
    (root / "data.txt").write_bytes(PAYLOAD)
    _tar(root / "bundle.tar.gz", {"bundle/a.txt": b"A", "bundle/sub/b.txt": b"B"}, "w:gz")
    hits = {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits[self.path] = hits.get(self.path, 0) + 1
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def _tar(path, files, mode="w", links=()):
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info)
    return path


def test_downloads_once_into_the_cache_then_reuses_it(server, tmp_path, capsys):
    url, hits = server
    path = lm.utils.get_file(origin=f"{url}/data.txt", cache_dir=tmp_path)
    assert path == str(tmp_path / "datasets" / "data.txt")
    assert pathlib.Path(path).read_bytes() == PAYLOAD
    assert f"Downloading data from {url}/data.txt" in capsys.readouterr().out
    before = hits["/data.txt"]
    assert lm.utils.get_file("renamed.txt", f"{url}/data.txt", cache_dir=tmp_path, cache_subdir="x") == \
        str(tmp_path / "x" / "renamed.txt")
    assert lm.utils.get_file(origin=f"{url}/data.txt", cache_dir=tmp_path) == path
    assert hits["/data.txt"] == before + 1  # the second name downloaded, the cached one did not
    lm.utils.get_file(origin=f"{url}/data.txt", cache_dir=tmp_path, force_download=True)
    assert hits["/data.txt"] == before + 2
    # No temporary file is left beside the cached one.
    assert sorted(os.listdir(tmp_path / "datasets")) == ["data.txt"]


def test_default_cache_is_lamina_home(server, tmp_path, monkeypatch):
    url, _ = server
    monkeypatch.setenv("LAMINA_HOME", str(tmp_path / "home"))
    path = lm.utils.get_file(origin=f"{url}/data.txt")
    assert path == str(tmp_path / "home" / "datasets" / "data.txt")
    absolute = lm.utils.get_file(origin=f"{url}/data.txt", cache_subdir=str(tmp_path / "abs"))
    assert absolute == str(tmp_path / "abs" / "data.txt")


def test_hash_checks_sha256_and_md5(server, tmp_path):
    url, hits = server
    sha, md5 = hashlib.sha256(PAYLOAD).hexdigest(), hashlib.md5(PAYLOAD).hexdigest()
    path = lm.utils.get_file(origin=f"{url}/data.txt", file_hash=sha, cache_dir=tmp_path)
    assert lm.utils.get_file(origin=f"{url}/data.txt", md5_hash=md5, cache_dir=tmp_path) == path
    # A wrong hash: the download is deleted and a ValueError raised; the folder stays clean.
    wrong = "0" * 64
    with pytest.raises(ValueError, match="file hash does not match the provided value of 0{64}"):
        lm.utils.get_file("other.txt", f"{url}/data.txt", file_hash=wrong, cache_dir=tmp_path)
    assert sorted(os.listdir(tmp_path / "datasets")) == ["data.txt"]
    # A cached file that does not match the hash is downloaded again.
    pathlib.Path(path).write_bytes(b"stale")
    before = hits["/data.txt"]
    lm.utils.get_file(origin=f"{url}/data.txt", file_hash=sha, cache_dir=tmp_path)
    assert hits["/data.txt"] == before + 1 and pathlib.Path(path).read_bytes() == PAYLOAD


def test_failed_download_raises_keras_message_and_keeps_the_cache_clean(server, tmp_path):
    url, _ = server
    with pytest.raises(OSError, match=f"URL fetch failure on {url}/missing.bin: 404 -- "):
        lm.utils.get_file(origin=f"{url}/missing.bin", cache_dir=tmp_path)
    assert os.listdir(tmp_path / "datasets") == []


def test_bad_arguments_raise_keras_errors(tmp_path):
    with pytest.raises(ValueError, match='specify the "origin" argument'):
        lm.utils.get_file("a.txt", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="Paths are no longer accepted as the `fname` argument"):
        lm.utils.get_file("sub/a.txt", "file:///nothing", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="Can't parse the file name from the origin"):
        lm.utils.get_file(origin="http://127.0.0.1/", cache_dir=tmp_path)


def test_extracts_tar_and_zip_with_keras_folder_names(server, tmp_path):
    url, _ = server
    folder = lm.utils.get_file(origin=f"{url}/bundle.tar.gz", extract=True, cache_dir=tmp_path)
    assert folder == str(tmp_path / "datasets" / "bundle.tar.gz")
    assert (pathlib.Path(folder) / "bundle" / "sub" / "b.txt").read_bytes() == b"B"
    assert os.path.isfile(tmp_path / "datasets" / "bundle.tar.gz_archive")
    # A given fname with an extension: the archive keeps it, the folder is <stem>_extracted.
    named = lm.utils.get_file("flowers.tgz", f"{url}/bundle.tar.gz", untar=True, cache_dir=tmp_path)
    assert named == str(tmp_path / "datasets" / "flowers_extracted")
    assert (pathlib.Path(named) / "bundle" / "a.txt").read_bytes() == b"A"
    zipped = tmp_path / "src" / "pack.zip"
    zipped.parent.mkdir()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("pack/x.txt", "X")
    out = lm.utils.get_file("pack", zipped.as_uri(), extract=True, cache_dir=tmp_path)
    assert out == str(tmp_path / "datasets" / "pack")
    assert (pathlib.Path(out) / "pack" / "x.txt").read_text() == "X"
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path / "datasets"))


@pytest.mark.parametrize("files, links, why", [
    ({"ok.txt": b"1", "../evil.txt": b"x"}, (), "path escapes the folder"),
    ({"/etc/evil.txt": b"x"}, (), "absolute path"),
    ({}, [("link", "../../outside", tarfile.SYMTYPE)], "symbolic link to '../../outside'"),
    ({}, [("link", "/etc", tarfile.SYMTYPE)], "symbolic link to absolute path '/etc'"),
    ({}, [("hard", "../outside.txt", tarfile.LNKTYPE)], "hard link to '../outside.txt'"),
    # A link inside the folder, then a file written through it and a link out through it.
    ({}, [("up", ".", tarfile.SYMTYPE), ("up/../../x", "y", tarfile.SYMTYPE)], "path escapes the folder"),
])
def test_tar_members_escaping_the_folder_are_refused(tmp_path, files, links, why):
    archive = _tar(tmp_path / "evil.tar", files, links=links)
    with pytest.raises(ValueError, match="Refusing to extract") as error:
        lm.utils.get_file("evil", archive.as_uri(), extract=True, cache_dir=tmp_path / "cache")
    assert why in str(error.value) and "nothing was extracted" in str(error.value)
    assert os.listdir(tmp_path / "cache" / "datasets") == ["evil_archive"]
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "cache" / "evil.txt").exists()


def test_zip_members_escaping_the_folder_are_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("fine.txt", "ok")
        z.writestr("../../evil.txt", "x")
    with pytest.raises(ValueError, match="member '../../evil.txt' would be written outside"):
        lm.utils.get_file("evil", archive.as_uri(), extract=True, cache_dir=tmp_path / "cache")
    assert os.listdir(tmp_path / "cache" / "datasets") == ["evil_archive"]


def test_device_files_are_refused(tmp_path):
    archive = _tar(tmp_path / "dev.tar", {}, links=[("fifo", "", tarfile.FIFOTYPE)])
    with pytest.raises(ValueError, match="device or special file"):
        lm.utils.get_file("dev", archive.as_uri(), extract=True, cache_dir=tmp_path / "cache")


def test_symlink_inside_the_folder_is_extracted(tmp_path):
    archive = _tar(tmp_path / "ok.tar", {"data/a.txt": b"A"}, links=[("data/alias.txt", "a.txt", tarfile.SYMTYPE)])
    out = pathlib.Path(lm.utils.get_file("ok", archive.as_uri(), extract=True, cache_dir=tmp_path / "cache"))
    assert (out / "data" / "alias.txt").read_bytes() == b"A"
