"""export.py and predict.py in-process, on a tiny run trained on synthetic photos: the SavedModel and the frozen
graph give the training graph's held-out probabilities; predict.py's accuracy on the held-out photos is the one the
run reported; unusable checkpoints and photos are one line; both print progress lines. (--help without TensorFlow:
test_cli.py.)"""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import data_loader
import export
import main
import model
import predict
import run_report
import run_safety
import train
import training_run

HELD_OUT = 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory, photos):
    """(run folder as a launcher leaves it, its history, the held-out photos in file order, the training graph's
    softmax of them at its last evaluation)."""
    out = tmp_path_factory.mktemp("output") / "0"
    seen = []

    def evaluate(sess, net, batches):  # train.evaluate, also keeping the probabilities behind its hits
        hits = images = 0
        seen.clear()
        for _ in range(batches):
            (h, n), probabilities = sess.run((net.held_out, net.held_out_probabilities))
            hits, images = hits + int(h), images + int(n)
            seen.append(probabilities)
        return hits, images
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "evaluate", evaluate)
        history = training_run.run(main.parse([
            f"--data_path={photos}", f"--output_path={out}", "--batch_size=4", "--step=2", "--epoch=1",
            f"--val_photos={HELD_OUT}", "--log_every=1", "--precision_mode=must_keep_origin_dtype"]))
    entries, _ = data_loader.list_photos(photos, log=lambda line: None)
    return out, history, data_loader.split(entries, HELD_OUT)[1], np.concatenate(seen)


def test_saved_model_and_frozen_graph_give_the_training_graphs_probabilities(trained, tmp_path, capsys, monkeypatch):
    run_folder, _, held_out, expected = trained
    monkeypatch.setenv(run_report.PROGRESS_ENV, "1e-9")  # a progress line at every stage
    assert export.main([f"--checkpoint_path={run_folder}", f"--output_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert f"exported {run_folder}/model/model.ckpt-2 (--pixels=unit)" in out  # the newest, --pixels from the run
    assert [line.split(" stage ")[1].split()[0] for line in out.splitlines() if line.startswith("[progress]")] == \
        ["1/3", "2/3", "3/3"]
    photos = [data_loader.decode_jpeg(tf.io.read_file(path)).numpy()[None] for path, _, _ in held_out]

    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(tmp_path / export.SAVED_MODEL))
        signature = meta.signature_def["serving_default"]
        assert signature.inputs["images"].dtype == tf.uint8.as_datatype_enum
        fetch = [signature.outputs[k].name for k in ("probabilities", "classes")]
        served = [sess.run(fetch, {signature.inputs["images"].name: p}) for p in photos]
    np.testing.assert_allclose(np.concatenate([p for p, _ in served]), expected, atol=1e-5)
    assert [int(c[0]) for _, c in served] == list(expected.argmax(1))

    frozen = tf.compat.v1.GraphDef()
    frozen.ParseFromString((tmp_path / export.FROZEN).read_bytes())
    assert not [n.name for n in frozen.node if "Variable" in n.op]
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        tf.compat.v1.import_graph_def(frozen, name="")
        probabilities = np.concatenate([sess.run("probabilities:0", {"images:0": p}) for p in photos])
        # The network alone, fed where the preprocessing ends (a caller that preprocesses itself; the benchmark).
        pixels = sess.run("network_input:0", {"images:0": photos[0]})
        alone = sess.run("probabilities:0", {"network_input:0": pixels})
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(alone, probabilities[:len(photos[0])], atol=1e-6)

    # Exporting again replaces the earlier export whole (an earlier, different one stands in for it here).
    (tmp_path / export.FROZEN).write_bytes(b"an earlier export")
    (tmp_path / export.SAVED_MODEL / "earlier.txt").write_text("an earlier export")
    assert export.main([f"--checkpoint_path={run_folder}", f"--output_dir={tmp_path}"]) == 0
    assert (tmp_path / export.FROZEN).stat().st_size == len(frozen.SerializeToString())
    assert sorted(p.name for p in tmp_path.iterdir()) == [export.FROZEN, export.SAVED_MODEL]
    assert not (tmp_path / export.SAVED_MODEL / "earlier.txt").exists()


def test_predict_reports_the_runs_held_out_accuracy_and_skips_unreadable_photos(trained, tmp_path, capsys,
                                                                              monkeypatch):
    run_folder, history, held_out, _ = trained
    for path, _, _ in held_out:
        shutil.copy(path, tmp_path)
    (tmp_path / "dog.999.jpg").write_bytes(b"not a photo")
    monkeypatch.setenv(run_report.PROGRESS_ENV, "1e-9")
    assert predict.main([f"--checkpoint_path={run_folder}/model", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    progress = [line for line in err.splitlines() if line.startswith("[progress]")]  # on stderr: stdout is the answer
    assert len(progress) == HELD_OUT + 1 and f" photo {HELD_OUT + 1}/{HELD_OUT + 1} (100.0%) " in progress[-1]
    err = "".join(line + "\n" for line in err.splitlines() if not line.startswith("[progress]"))
    assert err.startswith(f"[Warning] skipping {tmp_path}/dog.999.jpg: ") and len(err.splitlines()) == 1
    lines = out.splitlines()
    assert len(lines) == HELD_OUT + 1 and all(line.split()[1] in ("cat", "dog") for line in lines[:-1])
    assert all(0.5 <= float(line.split()[2]) <= 1 for line in lines[:-1])
    assert lines[-1] == f"accuracy {history['test_acc'][-1]:.2f}% ({round(history['test_acc'][-1] * HELD_OUT / 100)} " \
                        f"of {HELD_OUT} photos named cat.<n>.jpg / dog.<n>.jpg)"


def test_unusable_checkpoints_and_photos_are_one_line(trained, tmp_path, capsys):
    run_folder = trained[0]
    assert predict.main([f"--checkpoint_path={tmp_path}", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"[Error] no photos (.jpg, .jpeg, .png, .bmp, .gif) in {tmp_path}\n"
    (tmp_path / "cat.1.jpg").write_bytes(b"")
    assert predict.main([f"--checkpoint_path={tmp_path}", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"[Error] --checkpoint_path={tmp_path}: no checkpoint there; ")
    assert predict.main([f"--checkpoint_path={run_folder}", str(tmp_path / "cat.1.jpg")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"[Warning] skipping {tmp_path}/cat.1.jpg: ") and \
        err[1:] == ["[Error] none of the 1 photos could be read"]

    graph = tf.Graph()  # a checkpoint of this AlexNet whose fc3 biases became NaN
    with graph.as_default(), tf.compat.v1.Session() as sess:
        model.inference(tf.compat.v1.placeholder(tf.float32, [None, 227, 227, 3]))
        sess.run(tf.compat.v1.global_variables_initializer())
        bias = next(v for v in tf.compat.v1.global_variables() if v.op.name == "fc3/biases")
        sess.run(bias.assign([np.nan, 0.0]))
        tf.compat.v1.train.Saver().save(sess, str(tmp_path / "model" / "model.ckpt"), global_step=5)
    assert export.main([f"--checkpoint_path={tmp_path}", f"--output_dir={tmp_path / 'export'}"]) == 1
    assert capsys.readouterr().err == f"[Error] {tmp_path}/model/model.ckpt-5: 1 weight tensors are not finite " \
                                      "(first: fc3/biases); use an earlier checkpoint\n"
    assert not os.path.exists(tmp_path / "export" / export.SAVED_MODEL)
