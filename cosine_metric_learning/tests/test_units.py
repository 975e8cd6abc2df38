"""Units: network shape and size, losses against NumPy, CMC / AP against hand-computed cases, sampling."""
import functools
import itertools

import numpy as np
import pytest
import tensorflow as tf

import checkpoints
import cli
import input_pipeline
import losses
import metrics
import modes
import reporting
import run_report
import train_market1501
from datasets.util import create_validation_split
from nets.deep_sort import network_definition as net_def
from nets.deep_sort import residual_net as rn


def build(num_classes=None, is_training=True):
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, 128, 64, 3])
        features, logits = net_def.create_network(images, is_training, num_classes=num_classes)
    return graph, images, features, logits


def test_trainable_parameters_without_classifier():
    graph, _, _, _ = build(num_classes=751)
    with graph.as_default():
        trainable = tf.compat.v1.trainable_variables()
    trunk = sum(int(np.prod(v.shape)) for v in trainable if not v.op.name.startswith("ball/"))
    classifier = {v.op.name: v.shape.as_list() for v in trainable if v.op.name.startswith("ball/")}
    assert trunk == 2_800_864
    assert classifier == {"ball/mean_vectors": [128, 751], "ball/scale": []}


def test_stem_pools_before_the_elu_and_equals_the_originals_order_with_gradients():
    graph = tf.Graph()
    with graph.as_default():
        images = tf.constant(np.random.default_rng(2).uniform(0, 1, (4, 128, 64, 3)), tf.float32)
        ctx = rn.Context(is_training=True)
        got = net_def.stem(images, ctx)
        with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(), reuse=True):  # the same variables
            net = rn.conv2d(images, 32, 3, 1, "conv1_1", ctx, activation=tf.nn.elu, bn=True)
            net = rn.conv2d(net, 32, 3, 1, "conv1_2", ctx, activation=tf.nn.elu, bn=True)
            want = tf.nn.max_pool2d(net, 3, 2, "SAME")
        variables = tf.compat.v1.trainable_variables()
        upstream = tf.constant(np.random.default_rng(3).normal(0, 1, (4, 64, 32, 32)), tf.float32)
        gradients = [tf.gradients(maps, variables, upstream) for maps in (got, want)]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            got, want, (got_grads, want_grads) = session.run([got, want, gradients])
    assert got.shape == (4, 64, 32, 32) and (want < 0).sum() > 100  # ELU's negative side is compared too
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for variable, g, w in zip(variables, got_grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4 * np.abs(w).max(), err_msg=variable.op.name)


def test_original_variable_names():
    graph, _, _, _ = build()
    with graph.as_default():
        names = {v.op.name for v in tf.compat.v1.global_variables()}
    for name in ("conv1_1/weights", "conv1_1/conv1_1/bn/beta", "conv1_1/conv1_1/bn/moving_variance",
                 "conv2_1/1/weights", "conv2_1/2/biases", "conv2_3/bn/beta", "conv3_1/projection/weights",
                 "conv4_3/2/weights", "fc1/weights", "fc1/fc1/bn/moving_mean"):
        assert name in names
    assert "conv2_1/bn/beta" not in names  # the first block has no pre-activation
    assert not any(n.endswith("gamma") for n in names)  # center-only batch norm
    assert "fc1/biases" not in names and "conv1_1/biases" not in names


def test_features_are_unit_length_and_inference_is_deterministic():
    graph, images, features, _ = build(is_training=False)
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.variables_initializer(graph.get_collection("variables")))
        # The 1e-3 initial weights give near-zero activations (norm ~ sqrt(1e-8)); use He-scaled ones.
        rng = np.random.RandomState(1)
        for v in graph.get_collection("trainable_variables"):
            if v.op.name.endswith("weights"):
                shape = v.shape.as_list()
                v.load(rng.randn(*shape).astype(np.float32) * np.sqrt(2.0 / np.prod(shape[:-1])), sess)
        batch = np.random.RandomState(0).rand(3, 128, 64, 3).astype(np.float32)
        a, b = sess.run(features, {images: batch}), sess.run(features, {images: batch})
    assert a.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(a, b)


def _eval(tensor_fn, *arrays):
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        return sess.run(tensor_fn(*[tf.constant(a) for a in arrays]))


def test_triplet_loss_matches_numpy_batch_hard():
    rng = np.random.RandomState(0)
    x = rng.randn(8, 4).astype(np.float32)
    y = np.array([0, 0, 1, 1, 2, 2, 2, 3], np.int64)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    same = y[:, None] == y[None]
    expected = np.mean(np.log1p(np.exp(np.where(same, d, 0).max(1) - np.where(same, np.inf, d).min(1))))
    assert _eval(losses.triplet_loss, x, y) == pytest.approx(expected, rel=1e-4)


def test_magnet_loss_matches_numpy():
    rng = np.random.RandomState(1)
    x = rng.randn(6, 3).astype(np.float32)
    y = np.array([5, 5, 7, 7, 9, 9], np.int64)
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(0) for c in classes])
    sq = ((x[:, None] - means[None]) ** 2).sum(-1)
    own = y[:, None] == classes[None]
    var = sq[own].sum() / (len(x) - 1)
    lin = -sq / (2 * (var + 1e-4)) - own * 1.0
    e = np.exp(lin)
    expected = np.mean(np.maximum(0, -np.log(1e-4 + e[own] / (1e-4 + (e * ~own).sum(1)))))
    assert _eval(losses.magnet_loss, x, y) == pytest.approx(expected, rel=1e-4)


def test_cosine_softmax_loss_is_cross_entropy():
    logits = np.array([[2.0, 0.0], [0.0, 1.0]], np.float32)
    labels = np.array([0, 0], np.int64)
    expected = np.mean([np.log(1 + np.exp(-2.0)), np.log(1 + np.exp(1.0))])
    assert _eval(losses.cosine_softmax_loss, logits, labels) == pytest.approx(expected, rel=1e-5)


def test_average_precision_by_hand():
    # Ranked gallery: g0 good, g1 negative, g2 junk, g3 good. Junk is skipped: ranks become 1, 2, 3.
    # Official trapezoid rule, (recall, precision) after each kept rank: (.5, 1), (.5, .5), (1, 2/3);
    # AP = .5 * (1 + 1) / 2 + 0 + .5 * (.5 + 2/3) / 2.
    ap, cmc = metrics.average_precision([0, 1, 2, 3], good={0, 3}, junk={2})
    assert ap == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert cmc.tolist() == [1, 1, 1, 1]
    # First good at rank 3 after a junk image at rank 1: junk does not count, so CMC hits at rank 2.
    ap, cmc = metrics.average_precision([4, 1, 0], good={0}, junk={4})
    assert cmc.tolist()[:2] == [0, 1]
    # (recall, precision): (0, 0) at the negative, then (1, 1/2): AP = 1 * (0 + 1/2) / 2.
    assert ap == pytest.approx(0.25)


def test_protocol_junk_and_distractors_by_hand():
    # Query id 7 on camera 1. Gallery: [7 cam1 (junk), -1 (junk), 0 distractor, 7 cam2 (good), 3 cam2].
    g_ids, g_cams = [7, -1, 0, 7, 3], [1, 2, 3, 2, 2]
    dist = np.array([[0.0, 0.1, 0.2, 0.3, 0.4]])
    result = metrics.evaluate_protocol(dist, [7], [1], g_ids, g_cams, ks=(1, 2, 3))
    # Without junk the ranking is: distractor (a negative), good -> rank 2; AP = 1 * (0 + 1/2) / 2.
    assert result["rank1"] == 0 and result["rank2"] == 1
    assert result["mAP"] == pytest.approx(0.25)
    assert result["queries"] == 1


def test_cmc_ranks_and_random_galleries():
    labels = np.array([1, 1, 2, 2, 3, 3])
    cams = np.array([1, 2, 1, 2, 1, 1])
    galleries = metrics.random_galleries(labels, cams, 3, 4321)
    for probes, gallery in galleries:
        assert sorted(labels[probes]) == [1, 2, 3] and sorted(labels[gallery]) == [1, 2, 3]
        assert all(cams[p] != cams[g] for p, g in zip(probes, gallery) if labels[p] != 3)
        assert all(p != g for p, g in zip(probes, gallery))
    dist = np.array([[0.1, 0.0, 0.5], [0.0, 0.2, 0.3], [0.9, 0.8, 0.1]])
    cmc = metrics.cmc_ranks(dist, [1, 2, 3], [1, 2, 3], ks=(1, 2))
    assert cmc == {1: pytest.approx(1 / 3), 2: 1.0}


def test_identity_batches_draw_distinct_identities_four_images_each():
    labels = np.repeat(np.arange(40), 5)
    labels[:5] = 99  # identity 99 has only two images below
    labels = labels[3:]
    paths = [f"img{i}" for i in range(len(labels))]
    stream = input_pipeline.identity_batches(paths, labels, 128, np.random.RandomState(0))
    for _ in range(3):
        batch = [next(stream) for _ in range(128)]
        ids = [label for _, label in batch]
        assert len(set(ids)) == 32
        assert all(ids[i:i + 4] == [ids[i]] * 4 for i in range(0, 128, 4))


def test_validation_split_holds_out_ten_percent_of_identities():
    labels = np.repeat(np.arange(2, 202), 3)
    train, val = create_validation_split(labels)
    held_out = set(labels[val])
    assert len(held_out) == 20 and not held_out & set(labels[train])
    expected = np.random.RandomState(1234).choice(np.unique(labels), 20, replace=False)
    assert held_out == set(expected.tolist())


def test_training_batches_repeat_with_the_same_seed(small_market):
    data = modes.read_training_data(train_market1501, small_market)

    def first_batches(seed):
        with tf.Graph().as_default():
            batch = tf.compat.v1.data.make_one_shot_iterator(
                input_pipeline.training_dataset(data.train, 16, seed)).get_next()
            with tf.compat.v1.Session() as sess:
                return [sess.run(batch) for _ in range(3)]

    a, b, c = first_batches(7), first_batches(7), first_batches(8)
    for (images_a, labels_a), (images_b, labels_b) in zip(a, b):
        np.testing.assert_array_equal(labels_a, labels_b)
        np.testing.assert_array_equal(images_a, images_b)  # flips included
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_split_keeps_validation_identities_out_of_training(small_market):
    data = modes.read_training_data(train_market1501, small_market)
    assert (data.train.num_ids, data.validation.num_ids, data.num_classes) == (54, 6, 121)
    assert not set(data.train.labels) & set(data.validation.labels)
    assert len(data.train.paths) == len(data.train.labels) == len(data.train.cameras) == 54 * 12


def test_choice_lists_are_the_implementations():
    parser = cli.build_parser(train_market1501)
    choices = {a.dest: a.choices for a in parser._actions if a.choices}
    assert choices["mode"] == tuple(modes.MODES) == ("train", "eval", "export", "finalize", "freeze", "evaluate_test")
    assert choices["loss_mode"] == tuple(losses.LOSSES) == tuple(losses.DISTANCES) == tuple(losses.TAGS)
    assert set(losses.DISTANCES.values()) <= set(metrics.DISTANCES)


def test_final_lines_are_the_step_clocks_figures():
    clock = run_report.StepClock(16)
    assert reporting.final_lines(clock) == ["Final Performance images/sec : NA", "Final Performance ms/step : NA"]
    for seconds in (5.0, 3.0, 0.5, 0.25, 0.25, 0.5):  # 6 steps: the first 3 left out
        clock.add(seconds)
    assert reporting.final_lines(clock) == ["Final Performance images/sec : 48.00",
                                            "Final Performance ms/step : 333.33"]


def test_step_reporter_lines_summaries_and_progress(capsys, monkeypatch):
    ticks = itertools.count()  # one second per progress update: a line every update after the first
    monkeypatch.setattr(run_report, "Progress", functools.partial(run_report.Progress, every=1, now=ticks.__next__))
    written = []

    class Writer:
        def add_summary(self, summary, step):
            written.append(({v.tag: round(v.simple_value, 4) for v in summary.value}, step))

    now = iter([0.0, 4.0, 9.0])
    reporter = reporting.StepReporter(Writer(), run_report.StepClock(8), 3, ("a", "b"), 4, now=lambda: next(now))
    for step in (1, 2, 3, 4):
        assert reporter.wants_summary(step) == (step in (3, 4))  # every 3 steps and the last
        reporter.step_done(step, 0.5, 1.5 + step, {"a": 1.0, "b": 0.5},
                           {"total_loss": step} if reporter.wants_summary(step) else None)
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if not line.startswith("[progress]")] == [
        "step 1, loss 2.5000 (a 1.0000, b 0.5000), 16.0 images/sec",
        "step 2, loss 3.5000 (a 1.0000, b 0.5000), 16.0 images/sec",
        "step 3, loss 4.5000 (a 1.0000, b 0.5000), 16.0 images/sec",
        "progress: step 3, 6.0 images/sec over the last 3 steps",
        "step 4, loss 5.5000 (a 1.0000, b 0.5000), 16.0 images/sec",
        "progress: step 4, 1.6 images/sec over the last 1 steps"]
    progress = [line for line in lines if line.startswith("[progress]")]
    assert len(progress) == 3 and " step 4/4 (100.0%) loss 5.5000 images/sec 16.0 " in progress[-1], progress
    assert written == [({"total_loss": 3, "images_per_sec": 16.0}, 3), ({"total_loss": 4, "images_per_sec": 16.0}, 4)]
    assert reporter.final_loss == 5.5


def test_timed_saver_saves_after_the_interval():
    saved = []

    class Saver:
        def save(self, sess, prefix, global_step):
            saved.append((prefix, global_step))
            return f"{prefix}-{global_step}"

    now = [100.0]
    timed = checkpoints.TimedSaver(Saver(), "/run", 60, clock=lambda: now[0])
    for step, t in ((1, 130.0), (2, 161.0), (3, 200.0), (4, 221.5)):
        now[0] = t
        timed.maybe_save(None, step)
    assert timed.save(None, 5) == "/run/model.ckpt-5"
    # A stop right after the final save (or at the step resumed from) does not overwrite a good checkpoint.
    assert timed.save(None, 5) == "/run/model.ckpt-5"
    assert saved == [("/run/model.ckpt", 2), ("/run/model.ckpt", 4), ("/run/model.ckpt", 5)]
