"""Layer assets in a ``.lamina`` file: the files a layer's ``save_assets(folder)`` writes.

``model.save`` calls ``save_assets`` on the model and every layer below it that defines it,
each with a fresh empty folder, and stores what it wrote as zip members
``assets/<layer key>/<relative path>`` (the layer key is the layer's path below the model,
as for its weights: ``text_vectorization``, ``encoder/lookup``; the model's own files sit
right under ``assets/``). ``metadata.json`` then lists, under ``"assets"``, the keys of the
layers that stored files, so that a member is owned by the longest listed key that prefixes
it. A file without assets has neither the members nor the entry (the original format).

``lm.load_model`` calls ``load_assets`` on every layer that defines it, after the weights are
loaded, with a fresh folder holding exactly the files that layer saved (empty if it saved
none). The folders lie in one temporary folder that lamina creates and removes afterwards;
member names were checked when the archive was opened (``check_member_name``) and are
written below that folder only, file by file, never through ``zipfile.extract``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import zipfile

ASSETS_PREFIX = "assets/"
ASSETS_METADATA = "assets"  # metadata.json: the layer keys that stored files
MAX_ASSET_FILES = 1000
MAX_ASSET_BYTES = 1024 ** 3  # all asset files together, uncompressed
MAX_NAME_BYTES = 1024  # one member name, UTF-8
_FORBIDDEN_CHARACTERS = frozenset("\\:") | frozenset(map(chr, range(32))) | {"\x7f"}


def unsafe_name_reason(name: str) -> str | None:
    """Why ``name`` cannot be a relative path below an assets folder, or ``None`` if it can.

    Allowed: ``/``-separated segments that are not empty, ``.`` or ``..``, without backslashes,
    colons (drive letters, NTFS streams) or control characters.

    >>> unsafe_name_reason("sub/vocabulary.txt") is None
    True
    >>> unsafe_name_reason("../x"), unsafe_name_reason("/etc/passwd"), unsafe_name_reason("C:x")
    ("it has a '..' segment", 'it is absolute', "it has the character ':'")
    """
    if not name:
        return "it is empty"
    if name.startswith("/"):
        return "it is absolute"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    bad = sorted(set(name) & _FORBIDDEN_CHARACTERS)
    if bad:
        return f"it has the character {bad[0]!r}"
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            return f"it has a {segment!r} segment" if segment else "it has an empty segment"
    return None


def member_problem(assets, names: set) -> tuple[bool, str] | None:
    """The first reason the asset members ``assets`` (zip infos below ``assets/``) of an
    archive whose member names are ``names`` cannot be extracted safely, as
    ``(damaged, reason)``, or ``None``: an unsafe name, a link or other non-regular file, a
    stored member whose sizes disagree (``damaged``), a name that is also another's folder.
    Both the ``.lamina`` and the ``.keras`` readers ask it and word the error their way."""
    for info in assets:
        name = info.filename
        reason = unsafe_name_reason(name[len(ASSETS_PREFIX):])
        if reason:
            return False, f"asset member {name!r} is not a safe relative path ({reason})."
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind != stat.S_IFREG:
            return False, f"asset member {name!r} is {'a link' if kind == stat.S_IFLNK else 'not a regular file'}."
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            return True, f"asset member {name!r} stores {info.compress_size} bytes but declares {info.file_size}."
        folder = name.rsplit("/", 1)[0]
        while folder + "/" != ASSETS_PREFIX:
            if folder in names:
                return False, f"{folder!r} is both an asset file and the folder of {name!r}."
            folder = folder.rsplit("/", 1)[0]
    return None


def check_layer_keys(keys) -> str | None:
    """Why ``metadata.json``'s ``"assets"`` entry is not a list of distinct layer keys, or ``None``.

    >>> check_layer_keys(["", "encoder/lookup"]) is None
    True
    >>> check_layer_keys(["a", "a"])
    "it lists 'a' twice"
    """
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return "it is not a list of layer keys"
    if len(keys) > MAX_ASSET_FILES:
        return f"it lists {len(keys)} layers (at most {MAX_ASSET_FILES})"
    seen = set()
    for key in keys:
        if key in seen:
            return f"it lists {key!r} twice"
        seen.add(key)
        reason = unsafe_name_reason(key) if key else None
        if reason:
            return f"layer key {key!r} is not a safe path: {reason}"
    return None


def owner(member: str, keys) -> tuple[str, str] | None:
    """``(layer key, relative path)`` of an asset member: the longest key in ``keys`` that is a
    whole-segment prefix of the member's path below ``assets/``; ``None`` if no key owns it.

    >>> owner("assets/encoder/lookup/vocab.txt", ["encoder", "encoder/lookup"])
    ('encoder/lookup', 'vocab.txt')
    >>> owner("assets/vocab.txt", [""]), owner("assets/other/x", ["encoder"])
    (('', 'vocab.txt'), None)
    """
    path = member[len(ASSETS_PREFIX):]
    best = None
    for key in keys:
        if (key == "" or path.startswith(key + "/")) and (best is None or len(key) > len(best)):
            best = key
    if best is None:
        return None
    return best, path[len(best) + 1:] if best else path


def layers_with(model, method: str | None, layers: list | None = None) -> list:
    """``[(key, layer)]`` for ``model`` and every layer below it that defines ``method`` (all of
    them for ``None``), a shared layer once (under its first path); the model's key is ``""``.
    ``layers``: ``model._flatten_layers()`` when the caller has just walked them."""
    prefix = model.path + "/"
    found = []
    if layers is None:
        layers = model._flatten_layers()  # depth first; each layer adopts its children first
    for layer in layers:
        if method is None or callable(getattr(layer, method, None)):
            path = layer.path
            key = "" if layer is model else (path[len(prefix):] if path.startswith(prefix) else path)
            found.append((key, layer))
    return found


@contextlib.contextmanager
def saved_assets(model):
    """Call every ``save_assets`` of ``model``; yield ``(keys, [(member name, file path)])``.

    The files lie in a temporary folder, removed on exit. Raises ``ValueError`` for what a
    file could not hold or lamina would refuse to read back: a link or special file, an
    unsafe name, too many files or bytes, or a file that a load would hand to another layer.
    """
    savers = layers_with(model, "save_assets")
    if not savers:
        yield [], []
        return
    root = tempfile.mkdtemp(prefix="lamina-save-assets-")
    try:
        written, total = [], 0  # (member name, file path, writing layer, its key)
        for index, (key, layer) in enumerate(savers):
            folder = os.path.join(root, str(index))
            os.mkdir(folder)
            layer.save_assets(folder)
            files = _files_below(folder, layer)
            reason = unsafe_name_reason(key) if key and files else None
            if reason:
                raise ValueError(f"Layer '{layer.path}' saved assets, but its key {key!r} cannot name a "
                                 f"folder in the model file: {reason}. Rename the layer.")
            for relative, path, size in files:
                total += size
                written.append((ASSETS_PREFIX + (f"{key}/{relative}" if key else relative), path, layer, key))
        if len(written) > MAX_ASSET_FILES or total > MAX_ASSET_BYTES:
            raise ValueError(f"save_assets() wrote {len(written)} files, {total} bytes in all; a model file "
                             f"holds at most {MAX_ASSET_FILES} files and {MAX_ASSET_BYTES} bytes of assets.")
        keys = list(dict.fromkeys(key for *_, key in written))
        for member, _, layer, key in written:
            found = owner(member, keys)[0]
            if found != key:  # block's "inner/x" next to the assets of its sublayer block/inner
                raise ValueError(
                    f"Layer '{layer.path}' saved asset {member[len(ASSETS_PREFIX) + len(key) + bool(key):]!r} "
                    f"in a folder named like its sublayer '{found}', which saved assets too: a load could "
                    "not tell whose it is. Rename that folder."
                )
        yield keys, [(member, path) for member, path, *_ in written]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _files_below(folder, layer) -> list:
    """``[(relative name, path, size)]`` of the regular files below ``folder``, sorted; a link
    or special file is refused (a link would store a file from elsewhere)."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = os.path.join(parent, name)
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                kind = "a link" if stat.S_ISLNK(mode) else "not a regular file"
                raise ValueError(f"Layer '{layer.path}': save_assets() left {relative!r}, which is {kind}; "
                                 "assets are regular files.")
            reason = unsafe_name_reason(relative)
            if reason:
                raise ValueError(f"Layer '{layer.path}': save_assets() wrote {relative!r}, which cannot be "
                                 f"named in a model file: {reason}.")
            found.append((relative, path, os.lstat(path).st_size))
    return sorted(found)


def load_assets(model, archive, layers: list | None = None) -> None:
    """Call every ``load_assets`` of ``model`` with a fresh folder holding the files its layer
    saved in ``archive`` (a ``ModelArchive``); refuse assets no layer of ``model`` can take.
    ``layers``: ``model._flatten_layers()`` when the caller has just walked them (a model of
    thousands of layers pays a walk a tenth of its load)."""
    loaders = layers_with(model, "load_assets", layers)
    by_key = {}
    for info in archive.assets:
        key, relative = owner(info.filename, archive.asset_keys)
        by_key.setdefault(key, []).append((relative, info))
    known = {key for key, _ in loaders}
    for key in by_key:
        if key not in known:
            where = "the model itself" if key == "" else f"layer '{key}'"
            what = ("defines no load_assets()" if _has_layer(model, key)
                    else "is not in the model its config describes")
            raise archive.error(f"holds assets for {where}, which {what} ({len(by_key[key])} files).")
    if not loaders:
        return
    root = tempfile.mkdtemp(prefix="lamina-assets-")
    try:
        folders = []
        for index, (key, layer) in enumerate(loaders):
            folder = os.path.join(root, str(index))
            os.mkdir(folder)
            for relative, info in by_key.get(key, ()):
                archive.extract_asset(info, folder, relative)
            folders.append((layer, folder))
        for layer, folder in folders:
            layer.load_assets(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _has_layer(model, key) -> bool:
    return any(k == key for k, _ in layers_with(model, None))
