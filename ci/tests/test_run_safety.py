"""The shared never-lose-a-run pieces (ci/canonical/run_safety.py) on their own: lock, writable check,
newest loadable checkpoint, wrong-checkpoint message, clean stop, NaN guard, damaged-TFRecord locator."""
import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ci.canonical import run_safety as rs
from ci.tests.conftest import REPO

tf = pytest.importorskip("tensorflow")


def save_checkpoints(folder, steps, value=1.0):
    """Numbered TF2 checkpoints model-<step> holding one variable 'w' of shape [2]."""
    w = tf.Variable([value, value])
    checkpoint = tf.train.Checkpoint(w=w)
    return [checkpoint.write(os.path.join(folder, f"model-{step}")) for step in steps]


def test_writable_folder_names_the_flag_the_folder_and_the_reason(tmp_path):
    assert rs.writable_folder(str(tmp_path / "new" / "run"), "--output_path") == str(tmp_path / "new" / "run")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(rs.RunSafetyError) as err:
        rs.writable_folder(str(blocker / "run"), "--output_path")
    assert str(err.value) == f"--output_path={blocker}/run: cannot write there: Not a directory"


def test_a_second_lock_on_the_folder_names_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import sys, time
        sys.path.insert(0, {os.path.join(REPO, 'ci', 'canonical')!r})
        import run_safety
        run_safety.FolderLock({str(tmp_path)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(rs.RunSafetyError) as err:
            rs.FolderLock(str(tmp_path)).acquire()
        assert f"is in use by another run (pid={holder.pid} " in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    notices = []
    with rs.FolderLock(str(tmp_path)).acquire(notices.append):
        assert f"pid={os.getpid()} " in (tmp_path / rs.LOCK_NAME).read_text()
    assert len(notices) == 1 and f"pid={holder.pid}" in notices[0] and "no longer running" in notices[0]
    assert (tmp_path / rs.LOCK_NAME).read_text() == ""  # released cleanly: the next run gets no notice


def test_the_lock_holder_removes_what_a_killed_save_left_and_nothing_else(tmp_path):
    """The names are those a SIGKILL during a save left on TF 2.21: tf.compat.v1's Saver (the bundle's
    .tempstate, the meta graph's and the state file's .tmp<uuid>), tf.io.write_graph (.tmp<uuid>) and
    tf.train.CheckpointManager (a _temp folder); the checkpoints, the state file and a user's own files stay."""
    run = tmp_path / "run"
    save_checkpoints(str(run), [1])
    leftovers = ["model-2.data-00000-of-00001.tempstate17355720193550928440",
                 "model-2.index.tempstate9912", f"model-2.meta.tmp{'0a' * 16}", f"checkpoint.tmp{'f3' * 16}"]
    for name in leftovers:
        (run / name).write_bytes(b"x" * 300_000)
    leftovers.append(f"graph.pbtxt.tmp{'5c' * 16}")  # LeNet's tf.io.write_graph, killed mid-write
    (run / leftovers[-1]).write_bytes(b"x" * 2_000)
    (run / "ckpt-3_temp").mkdir()
    (run / "ckpt-3_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate151369").write_bytes(b"x" * 500)
    kept = sorted(p.name for p in run.iterdir() if p.name not in leftovers and p.name != "ckpt-3_temp")
    (run / "notes.tmp").write_text("mine")
    (run / "model_temp").mkdir()
    with pytest.raises(RuntimeError, match="needs the lock held"):
        rs.FolderLock(str(run)).remove_unfinished_saves(str(run))
    notices = []
    with rs.FolderLock(str(tmp_path)).acquire() as lock:
        with pytest.raises(RuntimeError, match="not inside the locked folder"):
            lock.remove_unfinished_saves(str(tmp_path.parent))
        removed = lock.remove_unfinished_saves(str(run), notices.append)
        assert lock.remove_unfinished_saves(str(run), notices.append) == []
    assert sorted(removed) == sorted(leftovers + ["ckpt-3_temp"])
    assert sorted(p.name for p in run.iterdir()) == sorted(kept + ["notes.tmp", "model_temp"])
    assert len(notices) == 1 and notices[0].startswith("[Warning] removed 6 partial file(s) of a checkpoint "
                                                        f"save cut short (1.2 MB) from {run}: checkpoint.tmp")
    assert rs.resume_point(str(run)) == str(run / "model-1")


def test_write_whole_replaces_a_file_only_with_a_complete_one(tmp_path, monkeypatch):
    def killed(*_):
        raise KeyboardInterrupt

    target = tmp_path / "model.pb"
    target.write_bytes(b"earlier graph")
    with monkeypatch.context() as patch:  # killed after writing, before the rename
        patch.setattr(rs.os, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            rs.write_whole(str(target), b"new graph")
    assert target.read_bytes() == b"earlier graph" and (tmp_path / "model.pb.partial").is_file()
    rs.write_whole(str(target), b"new graph")
    assert target.read_bytes() == b"new graph" and sorted(os.listdir(tmp_path)) == ["model.pb"]
    rs.write_whole(str(target), lambda handle: handle.write(b"streamed"))  # a writer instead of bytes
    assert target.read_bytes() == b"streamed" and sorted(os.listdir(tmp_path)) == ["model.pb"]


def test_replace_folder_keeps_the_earlier_folder_until_the_new_one_is_complete(tmp_path):
    folder = tmp_path / "saved_model"

    def build(text, fail=False):
        def write(path):
            os.makedirs(path)
            with open(os.path.join(path, "saved_model.pb"), "w") as handle:
                handle.write(text)
            if fail:
                raise OSError("disk full")
        return write

    assert rs.replace_folder(str(folder), build("one")) == str(folder)
    with pytest.raises(OSError):
        rs.replace_folder(str(folder), build("two", fail=True))
    assert (folder / "saved_model.pb").read_text() == "one"
    rs.replace_folder(str(folder), build("three"))
    assert (folder / "saved_model.pb").read_text() == "three" and os.listdir(tmp_path) == ["saved_model"]
    # Killed between the two renames: the earlier folder waits at .earlier; the next call puts it back before
    # it builds, so a failing build still leaves it in place.
    os.replace(folder, str(folder) + ".earlier")
    with pytest.raises(OSError):
        rs.replace_folder(str(folder), build("four", fail=True))
    assert (folder / "saved_model.pb").read_text() == "three"


def test_resume_point_skips_a_damaged_newest_checkpoint_and_says_why(tmp_path):
    save_checkpoints(str(tmp_path), [10, 20, 30])
    data = next(tmp_path.glob("model-30.data-*"))
    data.write_bytes(data.read_bytes()[:-3] + b"\x00\x00\x00")
    notices = []
    assert rs.resume_point(str(tmp_path), notices.append) == str(tmp_path / "model-20")
    assert len(notices) == 1 and "skipping damaged checkpoint" in notices[0] and "model-30" in notices[0]


def test_resume_point_lists_the_folder_so_a_moved_run_still_resumes(tmp_path):
    save_checkpoints(str(tmp_path / "a"), [5, 7])
    (tmp_path / "a" / "checkpoint").write_text('model_checkpoint_path: "/gone/model-7"\n')
    os.rename(tmp_path / "a", tmp_path / "b")
    assert rs.resume_point(str(tmp_path / "b")) == str(tmp_path / "b" / "model-7")
    assert rs.resume_point(str(tmp_path / "empty-or-missing")) is None


def test_resume_point_refuses_when_no_checkpoint_loads(tmp_path):
    save_checkpoints(str(tmp_path), [1])
    next(tmp_path.glob("model-1.data-*")).write_bytes(b"")
    with pytest.raises(rs.RunSafetyError) as err:
        rs.resume_point(str(tmp_path), lambda text: None)
    assert str(err.value).startswith(f"none of the 1 checkpoints in {tmp_path} loads (newest: model-1)")


def test_check_variables_counts_and_names_the_first_mismatch_in_one_short_line(tmp_path):
    prefix = save_checkpoints(str(tmp_path), [1])[0]
    name = "w/.ATTRIBUTES/VARIABLE_VALUE"
    rs.check_variables(prefix, {name: [2]})
    with pytest.raises(rs.RunSafetyError) as err:
        rs.check_variables(prefix, {name: [3], **{f"layer{i}/kernel" * 5: [4, 4] for i in range(40)}})
    message = str(err.value)
    assert "holds 0 of its 41 variables" in message and len(message) <= rs.MAX_MESSAGE
    assert "\n" not in message
    with pytest.raises(rs.RunSafetyError, match=r"w/.ATTRIBUTES/VARIABLE_VALUE has shape \[2\] there, \[3\]"):
        rs.check_variables(prefix, {name: [3]})


def test_check_finite_names_value_step_and_flag():
    rs.check_finite(3, loss=1.5, total_loss=2.0)
    with pytest.raises(rs.TrainingDiverged, match=r"^total_loss is inf at step 7; lower --learing_rata$"):
        rs.check_finite(7, "--learing_rata", loss=1.5, total_loss=float("inf"))


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_after_the_step_with_a_checkpoint(signum, status):
    saved = []
    with rs.StopSignals() as stop:
        stop.stop_if_requested(1, lambda: saved.append(1))
        os.kill(os.getpid(), signum)
        assert stop.requested
        with pytest.raises(rs.Stopped) as err:
            stop.stop_if_requested(2, lambda: saved.append(2) or "model-2")
    assert saved == [2] and err.value.status == status
    assert str(err.value).startswith(f"stopped by {signal.Signals(signum).name} at step 2; checkpoint model-2")
    assert signal.getsignal(signum) is not stop._handle  # the previous handler is back


def test_locate_bad_tfrecord_names_file_and_record(tmp_path):
    good, bad = str(tmp_path / "a.tfrecord"), str(tmp_path / "b.tfrecord")
    for path in (good, bad):
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(3):
                writer.write(b"record %d" % i)
    raw = bytearray(open(bad, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(bad, "wb").write(bytes(raw))
    assert rs.locate_bad_tfrecord([good]) is None
    path, record, reason = rs.locate_bad_tfrecord([good, bad])
    assert path == bad and record == 1 and reason


def test_no_room_names_the_file_the_reason_and_what_makes_room():
    full = OSError(errno.ENOSPC, "No space left on device", "/run/ckpt/model-4.data-00000-of-00001.tempstate991")
    assert rs.no_room(full) == "No space left on device writing /run/ckpt/model-4.data-00000-of-00001: free " \
                               "space on that disk"
    assert rs.no_room(OSError(errno.EDQUOT, "Disk quota exceeded"), "/x/model.pb") == \
        "Disk quota exceeded writing /x/model.pb: free space or raise the disk quota"
    assert rs.no_room(OSError(errno.EDQUOT, "Disk quota exceeded")).startswith("Disk quota exceeded writing a file:")
    # TensorFlow's errors say it in their text; Saver.save raises a second error while handling the first.
    try:
        try:
            raise ValueError("/r/model-2.index.tempstate17; File too large")
        except ValueError:
            raise RuntimeError("Graph execution error: save/SaveV2")
    except RuntimeError as err:
        assert rs.no_room(err) == "File too large writing /r/model-2.index: raise the file size limit (ulimit -f)"
    assert rs.no_room(OSError(errno.EACCES, "Permission denied", "/r/model.pb")) is None
    assert rs.no_room(ValueError("No space left on the canvas")) is None
    try:
        try:
            raise full
        except OSError:
            raise rs.RunSafetyError("reported already") from None  # a suppressed context is not looked at
    except rs.RunSafetyError as err:
        assert rs.no_room(err) is None


def test_a_write_that_finds_no_room_leaves_the_earlier_checkpoint_and_export_and_frees_the_room(tmp_path):
    """A real TensorFlow save (its TF2 shard folder model-2_temp/ removed after), a folder and a file written
    under a 64 KB file size limit, in a child process: a full disk gives ENOSPC where the limit gives EFBIG, on
    the same code path."""
    child = textwrap.dedent(f"""\
        import os, resource, sys
        sys.path.insert(0, {os.path.join(REPO, 'ci', 'canonical')!r})
        import run_safety
        import tensorflow as tf
        run = {str(tmp_path / 'run')!r}
        small = tf.train.Checkpoint(w=tf.Variable(tf.zeros([100])))
        small.write(os.path.join(run, "model-1"))
        open(os.path.join(run, "model.pb"), "wb").write(b"earlier graph")
        os.makedirs(os.path.join(run, "saved_model"))
        resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, resource.RLIM_INFINITY))
        for write in (lambda: run_safety.write_whole(os.path.join(run, "model.pb"), b"x" * 100_000),
                      lambda: run_safety.replace_folder(os.path.join(run, "saved_model"), lambda path: (
                          os.makedirs(path), open(os.path.join(path, "variables"), "wb").write(b"x" * 100_000)))):
            try:
                write()
            except run_safety.RunSafetyError as err:
                print(err)
        try:
            with run_safety.FolderLock(run) as lock:
                lock.remove_unfinished_saves(run)
                big = tf.train.Checkpoint(w=tf.Variable(tf.zeros([100_000])))
                big.write(os.path.join(run, "model-2"))
        except run_safety.RunSafetyError as err:
            print(err)
        print(sorted(os.listdir(run)))
        """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "run"
    assert proc.stdout.splitlines() == [
        f"File too large writing {run}/model.pb: raise the file size limit (ulimit -f), and run again; "
        f"{run}/model.pb is as it was",
        f"File too large writing {run}/saved_model: raise the file size limit (ulimit -f), and run again; "
        f"{run}/saved_model is as it was",
        f"File too large writing {run}/model-2_temp/part-00000-of-00001.data-00000-of-00001: raise the file size "
        "limit (ulimit -f), and run again (a launcher: with --resume=True) to continue from the last whole checkpoint",
        str(sorted([rs.LOCK_NAME, "model-1.data-00000-of-00001", "model-1.index", "model.pb", "saved_model"]))]
    assert (run / "model.pb").read_bytes() == b"earlier graph" and os.listdir(run / "saved_model") == []
    assert rs.resume_point(str(run)) == str(run / "model-1")
