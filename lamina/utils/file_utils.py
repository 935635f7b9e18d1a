"""``get_file``: Keras 3's download-and-cache helper (``keras.utils.get_file``), with the
cache in ``$LAMINA_HOME`` or ``~/.lamina`` (Keras uses ``$KERAS_HOME`` / ``~/.keras``).

Downloads (``urllib``: ``http(s)://``, ``file://``, ...) are written to a temporary name and
renamed, after the hash check, so the cache never holds a partial or unverified file.
Archives are extracted into a temporary folder renamed when complete. Extraction refuses an
archive with a member that would land outside the target folder (an absolute name, ``..``
components, a symbolic or hard link pointing outside, a device file): it raises and nothing
is extracted, where Keras skips such members with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile

from lamina.saving.atomic import atomic_write
from lamina.utils.logging_control import print_msg

__all__ = ["get_file", "lamina_home"]

_CHUNK = 1 << 16


def lamina_home():
    """The folder of lamina's caches: ``$LAMINA_HOME`` if set, else ``~/.lamina``.

    Example:
        >>> import os
        >>> lamina_home() == os.environ.get("LAMINA_HOME", os.path.expanduser("~/.lamina"))
        True
    """
    return os.environ.get("LAMINA_HOME") or os.path.join(os.path.expanduser("~"), ".lamina")


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """Download ``origin`` into the cache unless it is there already; return its local path.

    The file goes to ``cache_dir/cache_subdir/fname`` (``cache_dir`` defaults to
    ``lamina_home()``: ``$LAMINA_HOME`` or ``~/.lamina``; an absolute ``cache_subdir`` is used
    as is; an unwritable ``cache_dir`` falls back to ``<tmp>/.lamina``). ``fname`` defaults
    to the last part of the URL's path and may not contain a folder.

    ``file_hash`` (sha256, or md5 for a 32-character hash, ``hash_algorithm="auto"``) is
    checked after each download: a mismatch removes the download and raises a ``ValueError``;
    a cached file that does not match is downloaded again. ``md5_hash`` is Keras's older
    name. ``force_download=True`` always downloads.

    ``extract=True`` (or ``untar=True``, tar only) extracts a tar (``.tar``, ``.tar.gz``,
    ``.tar.bz2``, ``.tar.xz``) or zip archive, trying the formats of ``archive_format``
    (``"auto"`` is ``["tar", "zip"]``, also ``"tar"``, ``"zip"``, a list, or ``None``), and
    returns the extraction folder, named as Keras names it: ``fname`` (the archive is kept
    as ``<fname>_archive``), or ``<stem>_extracted`` when the given ``fname`` has an extension.
    The archive is extracted when it was downloaded or when that folder is missing. A member
    that would be written outside the folder makes extraction raise a ``ValueError``, leaving
    nothing extracted.

    Raises:
        ValueError: no ``origin``, a ``fname`` with a folder, a hash mismatch, an unsafe archive.
        OSError: the download failed (``"URL fetch failure on <url>: <code> -- <reason>"``).

    Example:
        >>> import os, tempfile, pathlib
        >>> source = os.path.join(tempfile.mkdtemp(), "notes.txt")
        >>> _ = open(source, "w").write("hello")
        >>> path = get_file(origin=pathlib.Path(source).as_uri(), cache_dir=tempfile.mkdtemp())
        Downloading data from file://...notes.txt
        5/5 ━━━━━━━━━━━━━━━━━━━━ ...
        >>> os.path.basename(path), open(path).read()
        ('notes.txt', 'hello')
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    if hash_algorithm not in ("auto", "sha256", "md5"):
        raise ValueError(f'`hash_algorithm` must be "auto", "sha256" or "md5". Received: hash_algorithm={hash_algorithm!r}')
    base = os.path.expanduser(os.fspath(cache_dir) if cache_dir is not None else lamina_home())
    if not _writable_folder(base):
        base = os.path.join(tempfile.gettempdir(), ".lamina")
    datadir = os.path.join(base, os.fspath(cache_subdir))
    os.makedirs(datadir, exist_ok=True)

    given = os.fspath(fname) if fname is not None else None
    if not given:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'. "
                             "Please specify the `fname` argument.")
    else:
        fname = given
        if os.sep in fname or (os.altsep and os.altsep in fname) or fname in (".", ".."):
            raise ValueError("Paths are no longer accepted as the `fname` argument. To specify the file's "
                             f"parent directory, use the `cache_dir` argument. Received: fname={fname}")

    extraction_dir = None
    if extract or untar:
        if given and "." in fname:
            target = os.path.join(datadir, fname)
            extraction_dir = os.path.join(datadir, f"{fname[:fname.find('.')]}_extracted")
        else:
            target = os.path.join(datadir, f"{fname}_archive")
            extraction_dir = os.path.join(datadir, fname)
    else:
        target = os.path.join(datadir, fname)

    download = force_download or not os.path.exists(target)
    if not download and file_hash is not None and not validate_file(target, file_hash, hash_algorithm):
        print_msg("A local file was found, but it seems to be incomplete or outdated because the "
                  f"{hash_algorithm} file hash does not match the original value of {file_hash} so we "
                  "will re-download the data.")
        download = True
    if download:
        print_msg(f"Downloading data from {origin}")
        _download(origin, target, file_hash, hash_algorithm)

    if extraction_dir is None:
        return target
    if download or not os.path.isdir(extraction_dir):
        if not extract_archive(target, extraction_dir, "tar" if untar else archive_format):
            warnings.warn(f"Could not extract archive {target!r}: not a {archive_format} archive.", stacklevel=2)
    return extraction_dir


def _writable_folder(path):
    with contextlib.suppress(OSError):
        os.makedirs(path, exist_ok=True)
    return os.path.isdir(path) and os.access(path, os.W_OK)


def _download(origin, target, file_hash, algorithm):
    from lamina.utils.progbar import Progbar

    # A failed or mismatching download is removed with its temporary name; a copy already in
    # the cache stays as it was.
    with atomic_write(target) as tmp:
        try:
            with urllib.request.urlopen(origin) as response, open(tmp, "wb") as out:
                total = response.headers.get("Content-Length") if response.headers else None
                bar = Progbar(int(total) if total and total.isdigit() else None)
                done = 0
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    bar.update(done)
        except urllib.error.HTTPError as error:
            raise OSError(f"URL fetch failure on {origin}: {error.code} -- {error.msg}") from error
        except urllib.error.URLError as error:
            raise OSError(f"URL fetch failure on {origin}: {error.errno} -- {error.reason}") from error
        if file_hash is not None and not validate_file(tmp, file_hash, algorithm):
            raise ValueError(f"Incomplete or corrupted file detected. The {algorithm} file hash does not "
                             f"match the provided value of {file_hash}.")


def _hasher(algorithm, file_hash=None):
    if algorithm == "sha256" or (algorithm == "auto" and file_hash is not None and len(file_hash) == 64):
        return hashlib.sha256()
    return hashlib.md5()


def hash_file(fpath, algorithm="sha256", chunk_size=65535):
    """The hex digest of the file at ``fpath`` (``"sha256"`` or ``"md5"``), as Keras's helper.

    Example:
        >>> import tempfile
        >>> path = tempfile.mkstemp()[1]
        >>> hash_file(path)
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    hasher = _hasher(algorithm) if isinstance(algorithm, str) else algorithm
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=65535):
    """Whether the file at ``fpath`` has hash ``file_hash`` (sha256 for a 64-character hash
    with ``algorithm="auto"``, else md5).

    Example:
        >>> import tempfile
        >>> validate_file(tempfile.mkstemp()[1], "d41d8cd98f00b204e9800998ecf8427e")
        True
    """
    return str(hash_file(fpath, _hasher(algorithm, file_hash), chunk_size)) == str(file_hash)


# -- archives ---------------------------------------------------------------------------------


def extract_archive(file_path, path=".", archive_format="auto"):
    """Extract the tar or zip archive at ``file_path`` into the folder ``path``; return whether
    it was an archive of one of the ``archive_format`` kinds (``"auto"``: tar then zip).

    The archive is extracted into a temporary folder beside ``path`` which then replaces
    ``path``. A member that would be written outside ``path`` (absolute name, ``..``, a link
    pointing outside, a device file) raises a ``ValueError`` and nothing is extracted.

    Example:
        >>> import io, os, tarfile, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> archive = os.path.join(folder, "a.tar")
        >>> with tarfile.open(archive, "w") as tar:
        ...     info = tarfile.TarInfo("../evil.txt"); info.size = 1
        ...     tar.addfile(info, io.BytesIO(b"x"))
        >>> extract_archive(archive, os.path.join(folder, "out"))
        Traceback (most recent call last):
        ...
        ValueError: Refusing to extract ...a.tar: member '../evil.txt' would be written outside ...
    """
    if archive_format is None:
        return False
    formats = ["tar", "zip"] if archive_format == "auto" else (
        [archive_format] if isinstance(archive_format, str) else list(archive_format))
    file_path, path = os.fspath(file_path), os.fspath(path)
    for kind in formats:
        if kind == "tar":
            matches = tarfile.is_tarfile(file_path)
        elif kind == "zip":
            matches = zipfile.is_zipfile(file_path)
        else:
            raise ValueError(f'`archive_format` must be "auto", "tar", "zip", a list of them or None. '
                             f"Received: {archive_format!r}")
        if matches:
            _extract_atomically(file_path, path, kind)
            return True
    return False


def _extract_atomically(file_path, path, kind):
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    try:
        if kind == "tar":
            with tarfile.open(file_path) as archive:
                _extract_tar(archive, staging, file_path, path)
        else:
            with zipfile.ZipFile(file_path) as archive:
                _extract_zip(archive, staging, file_path, path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _refuse(archive_path, name, folder, why):
    raise ValueError(f"Refusing to extract {archive_path}: member {name!r} would be written outside "
                     f"{folder} ({why}); nothing was extracted.")


def _inside(base, path):
    try:
        return os.path.commonpath([base, path]) == base
    except ValueError:  # another drive on Windows
        return False


def _check_name(base, name, archive_path, final):
    if os.path.isabs(name) or name.startswith(("/", "\\")) or os.path.splitdrive(name)[0]:
        _refuse(archive_path, name, final, "absolute path")
    # realpath resolves links already extracted, so a path through an earlier link is caught too.
    if not _inside(base, os.path.realpath(os.path.join(base, name))):
        _refuse(archive_path, name, final, "path escapes the folder")


def _safe_tar_members(archive, base, archive_path, final):
    # A generator: tarfile extracts each member before asking for the next, so the checks
    # see the links extracted so far (a chain of links cannot escape).
    for member in archive:
        _check_name(base, member.name, archive_path, final)
        if member.issym():
            if os.path.isabs(member.linkname):
                _refuse(archive_path, member.name, final, f"symbolic link to absolute path {member.linkname!r}")
            pointed = os.path.join(base, os.path.dirname(member.name), member.linkname)
            if not _inside(base, os.path.realpath(pointed)):
                _refuse(archive_path, member.name, final, f"symbolic link to {member.linkname!r}")
        elif member.islnk():
            if os.path.isabs(member.linkname) or not _inside(
                    base, os.path.realpath(os.path.join(base, member.linkname))):
                _refuse(archive_path, member.name, final, f"hard link to {member.linkname!r}")
        elif not (member.isfile() or member.isdir()):
            _refuse(archive_path, member.name, final, "device or special file")
        yield member


def _extract_tar(archive, staging, archive_path, final):
    base = os.path.realpath(staging)
    members = _safe_tar_members(archive, base, archive_path, final)
    kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # a second guard where Python has it
    try:
        archive.extractall(staging, members=members, **kwargs)
    except tarfile.FilterError as error:
        raise ValueError(f"Refusing to extract {archive_path}: {error}; nothing was extracted.") from error


def _extract_zip(archive, staging, archive_path, final):
    base = os.path.realpath(staging)
    members = archive.infolist()
    for member in members:  # zip members are plain files and folders: check them all first
        _check_name(base, member.filename, archive_path, final)
    archive.extractall(staging, members=members)
