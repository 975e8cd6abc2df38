"""The network: parameter count from the layer table, shapes, shared variables, the 12 decayed weights."""
import numpy as np
import pytest
import tensorflow as tf

import cli
import model


def layer_table_count():
    """Written out by hand from the original's layer table (per tower: weights + biases)."""
    conv1 = 2 * (11 * 11 * 3 * 48 + 48)
    conv2 = 2 * (5 * 5 * 48 * 128 + 128)
    conv3 = 3 * 3 * 256 * 384 + 384
    conv4 = 2 * (3 * 3 * 192 * 192 + 192)
    conv5 = 2 * (3 * 3 * 192 * 128 + 128)
    fc = (9216 * 4096 + 4096) + (4096 * 1000 + 1000) + (1000 * 2 + 2)
    return conv1 + conv2 + conv3 + conv4 + conv5 + fc


@pytest.fixture
def graph():
    g = tf.Graph()
    with g.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, 227, 227, 3])
        train_logits = model.inference(images, model.KEEP_PROB)
        eval_logits = model.inference(images)
        yield g, images, train_logits, eval_logits


def test_parameter_count_matches_layer_table(graph):
    assert layer_table_count() == 44_185_914
    assert model.parameter_count() == layer_table_count()
    variables = tf.compat.v1.global_variables()
    assert sum(int(np.prod(v.shape)) for v in variables) == layer_table_count()


def test_train_and_eval_graphs_share_variables_and_have_12_weight_tensors(graph):
    assert len(tf.compat.v1.global_variables()) == 24  # 12 weights + 12 biases, created once
    assert len(model.weight_tensors()) == 12


def test_shapes_and_dropout_only_in_training(graph):
    g, images, train_logits, eval_logits = graph
    assert train_logits.shape.as_list() == [None, 2]
    x = np.random.RandomState(0).uniform(0, 255, (2, 227, 227, 3)).astype(np.float32)
    with tf.compat.v1.Session(graph=g) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        e1, e2 = sess.run(eval_logits, {images: x}), sess.run(eval_logits, {images: x})
        t1, t2 = sess.run(train_logits, {images: x}), sess.run(train_logits, {images: x})
        biases = {v.name: sess.run(v) for v in tf.compat.v1.global_variables() if "bias" in v.name}
    np.testing.assert_array_equal(e1, e2)
    assert not np.allclose(t1, t2)
    assert np.all(biases["conv2/biases_1:0"] == 1) and np.all(biases["conv1/biases_1:0"] == 0)
    assert np.all(biases["fc2/biases:0"] == 1) and np.all(biases["fc3/biases:0"] == 0)


def test_lrn_keeps_the_original_parameters():
    assert model.LRN == dict(depth_radius=5, bias=2.0, alpha=1e-4, beta=0.75)  # model.lrn hard-codes beta 0.75


def test_banded_lrn_equals_tensorflows_lrn_per_tower_with_gradients():
    x = tf.constant(np.random.RandomState(1).normal(0, 40, (2, 3, 3, 32)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = model.lrn(x, groups=2)
        reference = tf.concat([tf.nn.local_response_normalization(t, **model.LRN) for t in tf.split(x, 2, 3)], 3)
        weights = tf.constant(np.random.RandomState(2).normal(size=x.shape).astype(np.float32))
        ours_loss, reference_loss = tf.reduce_sum(ours * weights), tf.reduce_sum(reference * weights)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(tape.gradient(ours_loss, x).numpy(), tape.gradient(reference_loss, x).numpy(),
                               rtol=1e-4, atol=1e-5)
    # one group over all 32 channels differs from two towers of 16: the towers are kept apart
    assert not np.allclose(model.lrn(x).numpy(), ours.numpy())


@pytest.mark.parametrize("init", cli.INITS)
def test_initial_weights(init):
    g = tf.Graph()
    with g.as_default():
        model.inference(tf.compat.v1.placeholder(tf.float32, [None, 227, 227, 3]), init=init)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            stds = {v.name.split("/")[0]: sess.run(v).std() for v in model.weight_tensors()}
            biases = {v.name.split("/")[0]: sess.run(v) for v in tf.compat.v1.global_variables() if "bias" in v.name}
    for name, shape, _, _, _, bias_init, *_ in model.LAYERS:
        assert np.all(biases[name] == (bias_init if init == "original" else 0.0)), name
        fan_in = int(np.prod(shape[:-1]))
        scaled = init == "scaled" and name != "fc3"
        expected = np.sqrt(2.0 / fan_in) if scaled else model.WEIGHT_STDDEV
        assert abs(stds[name] / expected - 1) < 0.1, (name, stds[name], expected)


def test_network_input_modes():
    bgr = np.array(model.MEAN_BGR, np.float32) + np.array(model.STD_BGR, np.float32) * [[-1.0], [1.0]]
    images = tf.constant(bgr.reshape(2, 1, 1, 3))
    np.testing.assert_array_equal(model.network_input(images, "raw").numpy(), images.numpy())
    np.testing.assert_allclose(model.network_input(images, "unit").numpy().reshape(2, 3), [[-1.0] * 3, [1.0] * 3],
                               rtol=1e-5)


def test_decayed_momentum_takes_the_steps_of_momentum_on_the_loss_with_its_decay_term():
    """training_graph.DecayedMomentum adds the decay into the accumulator in place; three steps from the same
    start must match MomentumOptimizer on loss + decay * l2 (only the decayed variable is decayed)."""
    import training_graph

    start = np.random.RandomState(3).normal(size=(4, 3))
    inputs = np.random.RandomState(4).normal(size=(5, 4))

    def three_steps(make_optimizer, with_term):
        g = tf.Graph()
        with g.as_default():
            w = tf.compat.v1.get_variable("w", initializer=tf.constant(start))
            b = tf.compat.v1.get_variable("b", initializer=tf.constant(np.ones(3)))
            loss = tf.reduce_sum(tf.square(tf.matmul(tf.constant(inputs), w) + b))
            term = 0.05 * tf.nn.l2_loss(w)
            step = make_optimizer([w]).minimize(loss + term if with_term else loss)
            with tf.compat.v1.Session() as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                for _ in range(3):
                    sess.run(step)
                return sess.run([w, b])

    expected = three_steps(lambda _: tf.compat.v1.train.MomentumOptimizer(0.01, 0.9), True)
    ours = three_steps(lambda decayed: training_graph.DecayedMomentum(0.01, 0.9, 0.05, decayed), False)
    undecayed = three_steps(lambda _: tf.compat.v1.train.MomentumOptimizer(0.01, 0.9), False)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, rtol=1e-8)  # decay / momentum * momentum: rounding only
    assert not np.allclose(ours[0], undecayed[0])


@pytest.mark.parametrize("height, width, size, stride", [(227, 227, 11, 4), (30, 25, 5, 3), (16, 17, 4, 2)])
def test_strided_convolution_as_blocks_equals_conv2d_with_gradients(height, width, size, stride):
    """conv1's blocked convolution gives conv2d's VALID result and kernel gradient, also where the kernel is
    not a whole number of blocks and where input rows past the last window are never read."""
    rng = np.random.RandomState(5)
    x = tf.constant(rng.normal(size=(2, height, width, 3)).astype(np.float32))
    w = tf.constant(rng.normal(size=(size, size, 3, 8)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(w)
        ours = model.conv_as_blocks(x, w, stride)
        reference = tf.nn.conv2d(x, w, stride, "VALID")
        weights = tf.constant(rng.normal(size=reference.shape).astype(np.float32))
        ours_loss, reference_loss = tf.reduce_sum(ours * weights), tf.reduce_sum(reference * weights)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(tape.gradient(ours_loss, w).numpy(), tape.gradient(reference_loss, w).numpy(),
                               rtol=1e-4, atol=1e-2)
