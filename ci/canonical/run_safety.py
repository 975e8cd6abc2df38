"""Never lose a run: the safety pieces every model's training shares.

Canonical copy: ci/canonical/run_safety.py; each model folder holds a byte-identical copy (ci/vendored.toml),
so edit this one and run `python ci/vendor.py sync`. TensorFlow is imported only inside the functions that
read checkpoints, so that an entry script can parse its flags and take its lock before paying for it.

- RunSafetyError: a one-line reason the run cannot go on (the entry script prints `[Error] <reason>`, exit 1).
- writable_folder(path, flag): creates the folder and proves a file can be written in it.
- write_whole(path, data) / replace_folder(folder, build): an export (frozen graph, SavedModel) replaces the
  earlier one only once it is complete, so a kill mid-export leaves the earlier one whole.
- no_room(err): a write that found a full disk, a quota or a file size limit, in one line with what makes room.
  The lock and the exports turn it into RunSafetyError after removing what the failed write left.
- FolderLock(folder): one run per output folder, an flock held until the process ends, even by SIGKILL; its
  holder removes what a save cut short by a kill left in a checkpoint folder (remove_unfinished_saves).
- numbered_checkpoints / resume_point: the newest checkpoint that loads, damaged ones skipped with a reason.
- check_variables(prefix, wanted): a checkpoint of another model in one line of at most ~300 characters.
- StopSignals: SIGTERM / SIGINT end the run after the current step, with a checkpoint, exit 143 / 130.
- check_finite: the NaN/Inf guard, `loss is nan at step N; lower --learning_rate`.
- locate_bad_tfrecord(files): the file and record number of a damaged TFRecord.
"""
import contextlib
import errno
import glob
import math
import os
import re
import shutil
import signal
import socket
import sys

import fcntl

MAX_MESSAGE = 300
LOCK_NAME = ".run.lock"
# What TensorFlow writes while a save is in progress and renames or deletes when the save ends: the tensor
# bundle's <file>.tempstate<n>, the <file>.tmp<uuid hex> of its atomic writes (the state file, the meta graph,
# tf.io.write_graph's graph.pbtxt), and the TF2 saver's <prefix>-<n>_temp/ shard folder (older builds:
# <prefix>-<n>_temp_<uuid hex>).
UNFINISHED_FILE = re.compile(r"\.tempstate\d+$|\.tmp[0-9a-f]{32}$")
UNFINISHED_FOLDER = re.compile(r"-\d+_temp(_[0-9a-f]{32})?$")
PARTIAL, EARLIER = ".partial", ".earlier"  # write_whole / replace_folder: the new one being written, the old one
# A write that found no room, and what makes room. TensorFlow's errors carry it as text: '<file>; <strerror>'.
NO_ROOM = {errno.ENOSPC: "free space on that disk", errno.EDQUOT: "free space or raise the disk quota",
           errno.EFBIG: "raise the file size limit (ulimit -f)"}
NO_ROOM_CODES = {os.strerror(code): code for code in NO_ROOM}
NO_ROOM_TEXT = re.compile(r"(\S+); (" + "|".join(map(re.escape, NO_ROOM_CODES)) + ")")


class RunSafetyError(Exception):
    """The run cannot go on for a reason the user can act on; one line, exit status 1."""


class TrainingDiverged(RunSafetyError):
    """The loss became NaN or infinite: the flags were valid, training failed."""


class Stopped(Exception):
    """SIGTERM or SIGINT ended the run after a checkpoint; `status` is 143 or 130."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def short(text, limit=MAX_MESSAGE):
    """The first line of text, cut to limit characters."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


def writable_folder(path, flag):
    """Creates path when missing and writes a probe file in it; RunSafetyError naming flag, path and reason."""
    probe = os.path.join(path, f".write-probe-{os.getpid()}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise RunSafetyError(f"{flag}={path}: cannot write there: {err.strerror or err}") from None
    return path


def no_room(err, target=None):
    """'<reason> writing <file>: <what makes room>' when err, or an error it was raised from, is a write that
    found no room (a full disk, a quota, a file size limit); else None. The file is target when given, else the
    one the error names, without the temporary suffix of the save that failed."""
    while err is not None:
        if isinstance(err, OSError):
            found = (err.filename, err.errno) if err.errno in NO_ROOM else None
        else:
            match = NO_ROOM_TEXT.search(str(err))
            found = match and (match.group(1), NO_ROOM_CODES[match.group(2)])
        if found:
            path, code = found
            written = target or (UNFINISHED_FILE.sub("", os.fsdecode(path)) if path else "a file")
            return f"{os.strerror(code)} writing {written}: {NO_ROOM[code]}"
        err = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    return None


@contextlib.contextmanager
def _whole_or_untouched(partial, final):
    """Around the write of partial, to be renamed to final: a write that found no room removes partial (the room
    it took is free again) and becomes RunSafetyError, final as it was."""
    try:
        yield
    except Exception as err:
        room = no_room(err, final)
        if room is None:
            raise
        if os.path.isdir(partial):
            shutil.rmtree(partial, ignore_errors=True)
        elif os.path.lexists(partial):
            os.remove(partial)
        raise RunSafetyError(f"{room}, and run again; {final} is as it was") from None


def write_whole(path, data):
    """Writes data (bytes, or a function that writes to a binary file) to path through <path>.partial, renamed
    over path when complete: a process killed while writing leaves the earlier file as it was (and a .partial
    that the next write replaces)."""
    with _whole_or_untouched(path + PARTIAL, path), open(path + PARTIAL, "wb") as handle:
        if callable(data):
            data(handle)
        else:
            handle.write(data)
    os.replace(path + PARTIAL, path)


def replace_folder(folder, build):
    """Calls build(path) to write a new folder beside `folder` (<folder>.partial), then puts it in folder's
    place: a kill or an error while building leaves the earlier folder whole. The swap is two renames; a kill
    between them leaves the earlier folder at <folder>.earlier, which the next call puts back first."""
    partial, earlier = folder + PARTIAL, folder + EARLIER
    if not os.path.exists(folder) and os.path.isdir(earlier):
        os.replace(earlier, folder)
    for leftover in (partial, earlier):
        shutil.rmtree(leftover, ignore_errors=True)
    with _whole_or_untouched(partial, folder):
        build(partial)
    if os.path.exists(folder):
        os.replace(folder, earlier)
    os.replace(partial, folder)
    shutil.rmtree(earlier, ignore_errors=True)
    return folder


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FolderLock:
    """An exclusive lock on <folder>/.run.lock holding 'pid=<pid> host=<host> cmd=<script>'.

    flock is released by the kernel when the holder dies, so a lock left by a killed run is free; its stale
    text is reported once as a notice and replaced. A `with` block that ends in a write that found no room
    (no_room) first removes the failed save's partial files from the folders remove_unfinished_saves swept, then
    raises RunSafetyError: the room is free again for the run's last lines and for the rerun.
    """

    def __init__(self, folder):
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd = None
        self._swept = []

    def acquire(self, notice=None):
        notice = notice or (lambda text: print(text, file=sys.stderr, flush=True))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise RunSafetyError(f"{os.path.dirname(self.path)} is in use by another run ({holder}); "
                                 "wait for it to end or choose another output folder") from None
        previous = os.pread(fd, 512, 0).decode(errors="replace").strip()
        match = re.match(r"pid=(\d+) host=(\S+)", previous)
        if match and not (match.group(2) == socket.gethostname() and _pid_alive(int(match.group(1)))):
            notice(f"[Warning] taking over the lock of a run that is no longer running ({previous})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()} cmd={os.path.basename(sys.argv[0])}\n"
                  .encode(), 0)
        self._fd = fd
        return self

    def remove_unfinished_saves(self, folder, notice=None):
        """Deletes from folder (the locked folder or one inside it) what saves cut short by a kill left: never a
        checkpoint, yet up to a checkpoint's size each, which the saver's rotation never removes. Only the lock's
        holder may: no save of another run can be in progress there. One notice names them and their size."""
        if self._fd is None:
            raise RuntimeError("remove_unfinished_saves needs the lock held")
        locked = os.path.realpath(os.path.dirname(self.path))
        if os.path.commonpath([locked, os.path.realpath(folder)]) != locked:
            raise RuntimeError(f"{folder} is not inside the locked folder {locked}")
        if folder not in self._swept:
            self._swept.append(folder)
        if not os.path.isdir(folder):
            return []
        removed, size = [], 0
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_file(follow_symlinks=False) and UNFINISHED_FILE.search(entry.name):
                size += entry.stat(follow_symlinks=False).st_size
                os.remove(entry.path)
            elif entry.is_dir(follow_symlinks=False) and UNFINISHED_FOLDER.search(entry.name):
                size += sum(os.path.getsize(os.path.join(root, name))
                            for root, _, names in os.walk(entry.path) for name in names)
                shutil.rmtree(entry.path)
            else:
                continue
            removed.append(entry.name)
        if removed:
            notice = notice or (lambda text: print(text, file=sys.stderr, flush=True))
            amount = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size:,} bytes"
            notice(short(f"[Warning] removed {len(removed)} partial file(s) of a checkpoint save cut short "
                         f"({amount}) from {folder}: {', '.join(removed)}"))
        return removed

    def release(self):
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire() if self._fd is None else self

    def __exit__(self, kind, err, trace):
        room = no_room(err) if err is not None and not isinstance(err, RunSafetyError) else None
        try:
            if room:
                for folder in self._swept:
                    self.remove_unfinished_saves(folder)
        finally:
            self.release()
        if room:
            resumable = any(numbered_checkpoints(folder) for folder in self._swept)
            raise RunSafetyError(f"{room}, and run again " + ("(a launcher: with --resume=True) to continue from the "
                                 "last whole checkpoint" if resumable else "(no checkpoint was written yet)")) from None


def numbered_checkpoints(folder):
    """[(number, prefix)] of every '<name>-<number>.index' checkpoint in folder, newest (highest) first.

    Found by listing the folder, not by reading the 'checkpoint' state file, so a folder that was moved or
    copied (whose state file may hold the old absolute paths) still shows all its checkpoints.
    """
    found = []
    for index in glob.glob(os.path.join(glob.escape(folder), "*-*.index")):
        prefix = index[:-len(".index")]
        number = prefix.rsplit("-", 1)[1]
        if number.isdigit():
            found.append((int(number), prefix))
    return sorted(found, reverse=True)


def load_problem(prefix):
    """None when every tensor of the checkpoint reads back (checksums included), else the reason."""
    import tensorflow as tf
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as err:  # any failure to read back makes this checkpoint unusable; the reason is reported
        return short(f"{type(err).__name__}: {err}", 160)
    return None


def resume_point(folder, notice=None):
    """The newest checkpoint in folder that loads, or None when the folder holds none.

    A damaged checkpoint (a kill during its save, a truncated copy) is skipped with a notice naming it and
    the reason; when checkpoints exist but none loads, RunSafetyError: never a silent fresh start.
    """
    notice = notice or (lambda text: print(text, file=sys.stderr, flush=True))
    found = numbered_checkpoints(folder)
    for _, prefix in found:
        problem = load_problem(prefix)
        if problem is None:
            return prefix
        notice(f"[Warning] skipping damaged checkpoint {prefix}: {problem}")
    if found:
        raise RunSafetyError(f"none of the {len(found)} checkpoints in {folder} loads (newest: "
                             f"{os.path.basename(found[0][1])}); move the folder aside to start a fresh run")
    return None


def check_variables(prefix, wanted, what="this model"):
    """RunSafetyError unless the checkpoint holds every variable of wanted ({name: shape}) with its shape.

    The message says how many of the model's variables the checkpoint holds and the first missing or
    mis-shaped one, in one line (never the arrays).
    """
    import tensorflow as tf
    try:
        have = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except Exception as err:  # an unreadable file is reported the same one-line way
        raise RunSafetyError(short(f"{prefix} is not a readable checkpoint: {err}")) from None
    matched = [name for name in wanted if name in have and list(have[name]) == list(wanted[name])]
    if len(matched) == len(wanted):
        return
    first = next(name for name in sorted(wanted) if name not in matched)
    detail = (f"first missing: {first}" if first not in have else
              f"{first} has shape {list(have[first])} there, {list(wanted[first])} in {what}")
    raise RunSafetyError(short(f"{prefix} is not a checkpoint of {what}: it holds {len(matched)} of its "
                               f"{len(wanted)} variables; {detail}"))


class StopSignals:
    """SIGTERM and SIGINT ask the training loop to stop after its current step.

    The loop calls `stop_if_requested(step, save)` once per step: save() writes a checkpoint and returns
    its path, then Stopped is raised with exit status 143 (SIGTERM) or 130 (SIGINT). Repeated signals are
    the same request (Ctrl-C reaches both the launcher, which forwards it, and the script).
    """

    STATUS = {signal.SIGTERM: 143, signal.SIGINT: 130}

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        for signum in self.STATUS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum

    @property
    def requested(self):
        return self.signum is not None

    def stop_if_requested(self, step, save):
        if self.signum is None:
            return
        name = signal.Signals(self.signum).name
        saved = save()
        raise Stopped(f"stopped by {name} at step {step}; checkpoint {saved} saved, run again with "
                      "--resume=True to continue", self.STATUS[self.signum])


def check_finite(step, flag="--learning_rate", **values):
    """TrainingDiverged on the first NaN or infinite value: '<name> is nan at step N; lower <flag>'."""
    for name, value in values.items():
        if not math.isfinite(float(value)):
            raise TrainingDiverged(f"{name} is {float(value)} at step {step}; lower {flag}")


def locate_bad_tfrecord(files):
    """(file, record number, reason) of the first damaged record in files, or None when all read back."""
    import tensorflow as tf
    for path in files:
        count = 0
        try:
            # The record reader, not tf.data: it works in graph mode too and stops at the damaged record.
            for _ in tf.compat.v1.io.tf_record_iterator(path):
                count += 1
        except (OSError, tf.errors.OpError) as err:
            return path, count, short(getattr(err, "message", err), 160)
    return None
