"""All file I/O of the lake goes through :class:`Lake`, a thin layer over pyarrow.fs.

Why one module: the lake starts on a local disk and moves to S3-compatible storage when a team
outgrows one machine. Keeping every read, write, listing and rename here means that move changes
one constructor argument, not the pipeline. Paths handed to Lake are relative, '/'-separated, and
checked so that nothing taken from an API payload can climb out of the lake ('..', absolute
paths, backslashes, NUL).

Atomicity: on a local disk a file is written to a temporary sibling whose name does not end in
``.parquet`` (so readers' globs never see it), flushed with fsync, renamed over the final name,
and the directory is fsynced. On object stores a single PUT/multipart-complete is already atomic,
so the final key is written directly.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from runai_extract.core.errors import ConfigError, StorageError
from transforms.object_store import ObjectStore, is_s3

_FORBIDDEN = ("\\", "\x00")


class Lake:
    """A root directory on some pyarrow filesystem, addressed with relative '/'-paths."""

    def __init__(self, uri: str, store: ObjectStore | None = None) -> None:
        parts = urlsplit(uri) if "://" in uri else None
        if parts is not None and (parts.username or parts.password or parts.query):
            # Keys in the URI would be printed wherever the lake's location is (logs, errors, views).
            raise ConfigError("the lake URI must not carry credentials or options; use the AWS_* variables")
        self.store: ObjectStore | None = None
        try:
            if parts is not None and is_s3(uri):
                self.store = store if store is not None else ObjectStore.from_env()
                fs, root = self.store.pyarrow_fs(), f"{parts.netloc}{parts.path}"
                if not parts.netloc:
                    raise ConfigError(f"the lake URI {uri!r} names no bucket (s3://bucket/prefix)")
            elif parts is not None:
                fs, root = pafs.FileSystem.from_uri(uri)
            else:
                fs, root = pafs.LocalFileSystem(), os.path.abspath(uri)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ConfigError(f"cannot open lake {uri!r}: {exc}") from exc
        self.uri = uri
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self.is_local = isinstance(fs, pafs.LocalFileSystem)

    def delta_options(self) -> dict[str, str] | None:
        """What delta-rs needs to reach this lake's store (None: a local path needs nothing)."""
        return self.store.delta_options() if self.store is not None else None

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    # -- paths -----------------------------------------------------------------
    def full_path(self, rel: str) -> str:
        """The filesystem path of ``rel``; rejects anything that could leave the lake."""
        check_relative_path(rel)
        return f"{self.root}/{rel}" if rel else self.root

    def location(self, rel: str) -> str:
        """Where DuckDB (or a person) finds ``rel``: an absolute path locally, a URI elsewhere."""
        path = self.full_path(rel)
        if self.is_local:
            return path
        scheme = self.uri.split("://", 1)[0]
        return f"{scheme}://{path}"

    # -- reading ---------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        info = self.fs.get_file_info(self.full_path(rel))
        return info.type != pafs.FileType.NotFound

    def read_bytes(self, rel: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        path = self.full_path(rel)
        try:
            with self.fs.open_input_stream(path) as stream:
                return bytes(stream.read())
        except FileNotFoundError:
            return None
        except OSError as exc:
            if _is_not_found(exc):
                return None
            raise StorageError(f"cannot read {self.location(rel)}: {exc}") from exc

    def list_files(self, rel_dir: str, suffix: str = ".parquet") -> list[str]:
        """Relative paths of files under ``rel_dir`` (recursive) ending in ``suffix``, sorted."""
        base = self.full_path(rel_dir)
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:
            raise StorageError(f"cannot list {self.location(rel_dir)}: {exc}") from exc
        prefix = self.root + "/"
        found = [
            info.path[len(prefix) :]
            for info in infos
            if info.type == pafs.FileType.File and info.path.endswith(suffix)
        ]
        return sorted(found)

    def read_parquet(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        """The columns of one Parquet file (all by default), exactly as stored.

        Through ``pq.ParquetFile`` rather than ``pq.read_table``: the latter goes through
        pyarrow.dataset, whose import pulls in pandas (~0.7 s) for every command that reads one
        file, verify and status included. Errors propagate as pyarrow raises them.
        """
        with self.fs.open_input_file(self.full_path(rel)) as handle:
            return pq.ParquetFile(handle).read(columns=columns)

    def file_stamps(self, rel_dir: str) -> dict[str, tuple[int, int]]:
        """Relative path -> (size, modification time in ns) of every file under ``rel_dir``.

        One listing (one LIST request per 1,000 keys on object storage), not a request per file:
        how ``verify`` tells which files changed since it last hashed them.
        """
        base = self.full_path(rel_dir)
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:
            raise StorageError(f"cannot list {self.location(rel_dir)}: {exc}") from exc
        prefix = self.root + "/"
        return {
            info.path[len(prefix) :]: (int(info.size or 0), int(info.mtime_ns or 0))
            for info in infos
            if info.type == pafs.FileType.File
        }

    def file_size(self, rel: str) -> int:
        return int(self.fs.get_file_info(self.full_path(rel)).size or 0)

    # -- writing ---------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``rel`` atomically (readers see the old file or the new, never half)."""
        with self.open_output(rel) as out:
            out.write(data)

    @contextmanager
    def open_output(self, rel: str) -> Iterator[Any]:
        """A writable stream whose content appears at ``rel`` only if the block exits cleanly."""
        final = self.full_path(rel)
        parent = final.rsplit("/", 1)[0]
        try:
            if self.is_local:  # object stores have no directories: creating one is a wasted PUT
                self.fs.create_dir(parent, recursive=True)
        except OSError as exc:
            raise StorageError(f"cannot create {parent}: {os_error_reason(exc)}") from exc
        target = f"{final}.tmp-{uuid.uuid4().hex}" if self.is_local else final
        try:
            stream = self.fs.open_output_stream(target)
        except OSError as exc:
            raise StorageError(f"cannot write {self.location(rel)}: {os_error_reason(exc)}") from exc
        try:
            yield stream
            stream.close()
            if self.is_local:
                _fsync_file(target)
                self.fs.move(target, final)
                _fsync_dir(parent)
        except BaseException as exc:
            _close_quietly(stream)
            if self.is_local:
                self._remove_if_present(target)
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write {self.location(rel)}: {os_error_reason(exc)}") from exc
            raise

    def delete(self, rel: str) -> None:
        self._remove_if_present(self.full_path(rel))

    def _remove_if_present(self, path: str) -> None:
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            if not _is_not_found(exc):
                raise StorageError(f"cannot delete {path}: {os_error_reason(exc)}") from exc


def check_relative_path(rel: str) -> None:
    """Raise ConfigError unless ``rel`` is a plain relative path inside the lake."""
    if rel.startswith("/") or any(ch in rel for ch in _FORBIDDEN):
        raise ConfigError(f"unsafe lake path {rel!r}")
    if any(part in ("..", ".") for part in rel.split("/")):
        raise ConfigError(f"unsafe lake path {rel!r}")


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # some filesystems refuse to open directories; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        return  # fsync on a directory is unsupported on a few filesystems; nothing more to do
    finally:
        os.close(fd)


def _close_quietly(stream: Any) -> None:
    try:
        stream.close()
    except OSError:
        return  # the original error is the one worth reporting


def _is_not_found(exc: OSError) -> bool:
    return exc.errno == errno.ENOENT or "not found" in str(exc).lower() or "No such file" in str(exc)


def os_error_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC or "No space left" in str(exc):
        return "no space left on the device"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) or "Read-only" in str(exc):
        return "the lake is read-only or not writable"
    return str(exc)
