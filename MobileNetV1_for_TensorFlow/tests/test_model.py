"""Units: the network (parameter count from the layer table, end points, names), the lr rule, parameters and
flag choices, sharding and the input pipeline."""
import math
import os

import numpy as np
import pytest
import tensorflow as tf

import lr_schedule
import optimizers
import train
import train_params
import zoo_precision
from dataloader import data_provider
from nets import nets_factory

# The paper's table: conv 3x3/2 to 32, then (stride, output channels) of the 13 separable blocks.
BLOCKS = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [(2, 1024), (1, 1024)]


def expected_counts(num_classes, multiplier=1.0):
    """(trainable parameters, batch-norm moving statistics), derived by hand from the table."""
    depth = lambda c: max(int(c * multiplier), 8)  # noqa: E731
    trainable, moving = 3 * 3 * 3 * depth(32) + 2 * depth(32), 2 * depth(32)  # conv + BN beta/gamma
    channels = depth(32)
    for _, out in BLOCKS:
        trainable += 3 * 3 * channels + 2 * channels  # depthwise 3x3 (no bias) + BN
        moving += 2 * channels
        trainable += channels * depth(out) + 2 * depth(out)  # pointwise 1x1 + BN
        moving += 2 * depth(out)
        channels = depth(out)
    trainable += channels * num_classes + num_classes  # logits 1x1 conv with bias
    return trainable, moving


def build(name="mobilenet_v1", num_classes=1001, size=224, is_training=True):
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3], name="input")
        logits, end_points = nets_factory.get_network_fn(name, num_classes, 0.00004, is_training=is_training)(images)
    return graph, logits, end_points


def test_layer_table_gives_the_published_counts():
    assert expected_counts(1001) == (4233001, 21888)


@pytest.mark.parametrize("name,multiplier", [("mobilenet_v1", 1.0), ("mobilenet_v1_025", 0.25)])
def test_parameter_count_matches_the_layer_table(name, multiplier):
    graph, _, _ = build(name)
    with graph.as_default():
        trainable = sum(v.shape.num_elements() for v in tf.compat.v1.trainable_variables())
        moving = sum(v.shape.num_elements() for v in tf.compat.v1.global_variables() if "moving_" in v.name)
    assert (trainable, moving) == expected_counts(1001, multiplier)
    if name == "mobilenet_v1":
        assert trainable == 4233001


def test_end_points_scope_names_and_regularisation():
    graph, logits, end_points = build()
    assert logits.shape.as_list() == [None, 1001]
    assert end_points["Conv2d_0"].shape.as_list() == [None, 112, 112, 32]
    assert end_points["Conv2d_1_depthwise"].shape.as_list() == [None, 112, 112, 32]
    assert end_points["Conv2d_1_pointwise"].shape.as_list() == [None, 112, 112, 64]
    assert end_points["Conv2d_6_pointwise"].shape.as_list() == [None, 14, 14, 512]
    assert end_points["Conv2d_13_pointwise"].shape.as_list() == [None, 7, 7, 1024]
    assert end_points["AvgPool_1a"].shape.as_list() == [None, 1, 1, 1024]
    assert end_points["Predictions"].op.name == "MobilenetV1/Predictions/Reshape_1"
    with graph.as_default():
        names = {v.op.name for v in tf.compat.v1.global_variables()}
        regularised = tf.compat.v1.losses.get_regularization_losses()
        updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
    for name in ("MobilenetV1/Conv2d_0/weights", "MobilenetV1/Conv2d_13_depthwise/depthwise_weights",
                 "MobilenetV1/Conv2d_13_pointwise/BatchNorm/moving_variance",
                 "MobilenetV1/Logits/Conv2d_1c_1x1/biases"):
        assert name in names
    assert len(regularised) == 15  # 14 regular convs + logits; depthwise kernels are not decayed
    assert not any("depthwise" in r.name for r in regularised)
    assert len(updates) == 2 * 27  # moving mean and variance of every batch norm


def test_batch_norm_trains_and_updates_moving_statistics():
    """The fused slim.batch_norm path works on this TensorFlow without tf-keras and learns its statistics."""
    graph, logits, _ = build(size=32, num_classes=3)
    with graph.as_default():
        mean = [v for v in tf.compat.v1.global_variables() if v.op.name == "MobilenetV1/Conv2d_0/BatchNorm/moving_mean"][0]
        with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
            step = tf.no_op()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            before = session.run(mean)
            session.run(step, {"input:0": np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3))})
            after = session.run(mean)
    assert np.all(before == 0) and np.any(after != 0)


def schedule(**overrides):
    """100 steps per epoch, 10 epochs, 2 of warm-up (200 steps)."""
    fields = dict(kind="cosine_annealing", learning_rate=0.4, steps_per_epoch=100, total_epochs=10, warmup_epochs=2,
                  decay_steps=200, decay_factor=0.94, end_learning_rate=0.0001)
    fields.update(overrides)
    return lr_schedule.Schedule(**fields)


def test_cosine_with_warmup_matches_the_formula():
    s = schedule()
    assert s.warmup_steps == 200
    steps = [0, 99, 199, 200, 299, 300, 550, 999]
    expected = []
    for step in steps:
        if step < 200:
            expected.append(0.4 * (step + 1) / 200)
        else:
            epoch = step // 100
            expected.append(0.5 * 0.4 * (1 + math.cos(math.pi * (epoch - 2) / 8)))
    assert lr_schedule.rate(np.array(steps, np.float64), s) == pytest.approx(expected, rel=1e-12)
    # Constant within an epoch after warm-up, falling toward 0 at the end.
    values = lr_schedule.rate(np.array([300.0, 399.0, 400.0, 999.0]), s)
    assert values[0] == values[1] > values[2] > values[3] > 0


def test_other_schedules():
    rate = lambda steps, **kw: lr_schedule.rate(np.array(steps, np.float64), schedule(warmup_epochs=0, **kw))  # noqa: E731
    assert rate([0, 900], kind="fixed") == pytest.approx([0.4, 0.4])
    assert rate([199, 200, 450], kind="exponential") == pytest.approx([0.4, 0.4 * 0.94, 0.4 * 0.94 ** 2])
    assert rate([0, 100, 200, 500], kind="polynomial") == pytest.approx([0.4, 0.2 + 0.00005, 0.0001, 0.0001])


@pytest.mark.parametrize("kind", sorted(lr_schedule.DECAYS))
def test_graph_learning_rate_is_the_same_rule(kind):
    """The tensor the training graph uses against the NumPy evaluation of the same rule: float32 against float64,
    so within float32 rounding (relative 1e-6, and 1e-7 absolute where the cosine reaches 0)."""
    s = schedule(kind=kind)
    steps = [0, 1, 150, 199, 200, 201, 399, 400, 555, 999, 1500]
    with tf.Graph().as_default():
        step = tf.compat.v1.placeholder(tf.int64, [])
        lr = lr_schedule.tensor(step, s)
        with tf.compat.v1.Session() as session:
            graph_values = [float(session.run(lr, {step: value})) for value in steps]
    assert lr.op.name == "learning_rate"
    assert graph_values == pytest.approx(lr_schedule.rate(np.array(steps, np.float64), s), rel=1e-6, abs=1e-7)


def parse(*flags):
    return train.build_parser().parse_args(["--max_train_steps=1000", *flags])


def test_params_from_flags_and_ranks():
    args = train.build_parser().parse_args([
        "--batch_size=256", "--max_epoch=2", "--warmup_epochs=5", "--model_dir=results",
        "--restore_exclude=MobilenetV1/Logits/, MobilenetV1/AuxLogits"])
    params = train_params.from_args(args, {"RANK_ID": "3", "RANK_SIZE": "8"})
    assert params.global_batch_size == 2048
    assert params.steps_per_epoch == 1281167 // 2048
    assert params.max_train_steps == 2 * (1281167 // 2048)
    assert params.schedule.total_epochs == 2 and params.schedule.warmup_steps == 5 * (1281167 // 2048)
    assert params.model_dir == os.path.join("results", "3")
    assert params.restore_exclude == ("MobilenetV1/Logits/", "MobilenetV1/AuxLogits")
    with pytest.raises(ValueError, match="RANK_ID 8 is not in 0..RANK_SIZE-1"):
        train_params.from_args(args, {"RANK_ID": "8", "RANK_SIZE": "8"})


def test_defaults_are_the_originals_table():
    """The original README's parameter table, but for --model_name (README: Differences from the original)."""
    args = train.build_parser().parse_args([])
    assert (args.dataset_dir, args.max_train_steps, args.iterations_per_loop, args.model_name,
            args.moving_average_decay, args.label_smoothing, args.preprocessing_name, args.weight_decay,
            args.batch_size, args.learning_rate_decay_type, args.learning_rate, args.optimizer, args.momentum,
            args.warmup_epochs) == ("/opt/npu/slimImagenet", None, None, "mobilenet_v1", None, 0.1, "inception_v2",
                                    0.0, 256, "fixed", 0.1, "sgd", 0.9, 5.0)
    params = train_params.from_args(args, {})
    assert params.max_train_steps == 300 * params.steps_per_epoch  # --max_epoch 300
    assert params.iterations_per_loop == params.steps_per_epoch  # None: one loop per epoch, as the original


def test_flag_choices_come_from_the_factories():
    """Every choice train.py offers builds: the lists are the factories' own keys, not copies."""
    for name in optimizers.FACTORIES:
        assert isinstance(optimizers.build(parse(f"--optimizer={name}").optimizer, 0.1, 0.9),
                          tf.compat.v1.train.Optimizer)
    for name in lr_schedule.DECAYS:
        assert parse(f"--learning_rate_decay_type={name}").learning_rate_decay_type == name
    for name in nets_factory.DEPTH_MULTIPLIERS:
        assert parse(f"--model_name={name}").model_name == name
    assert set(zoo_precision.PRECISION_MODES) == {
        parse(f"--precision_mode={mode}").precision_mode for mode in zoo_precision.PRECISION_MODES}


def test_file_level_sharding_covers_every_file_once():
    files = [f"train-{i:05d}-of-00010" for i in range(10)]
    shards = [data_provider.shard_files(files, r, 4) for r in range(4)]
    assert all(not record_level for _, record_level in shards)
    assert sorted(f for part, _ in shards for f in part) == files
    assert data_provider.shard_files(files[:2], 1, 4) == (files[:2], True)


def first_batches(data, seed, count=2):
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(seed)
        batch = tf.compat.v1.data.make_one_shot_iterator(
            data_provider.build_dataset(data, "train", 8, True, 48, 11, seed=seed)).get_next()
        with tf.compat.v1.Session() as session:
            return [session.run(batch) for _ in range(count)]


def test_pipeline_output_and_seeded_reproducibility(small_data):
    """The training stream (parallel reads, random crops, flips and colours) is the same for the same seed."""
    (x, y), second = first_batches(small_data, seed=3)
    assert x.shape == (8, 48, 48, 3)
    assert -1.0 <= x.min() < 0 < x.max() <= 1.0
    assert set(y.tolist()) <= set(range(1, 11))
    again = first_batches(small_data, seed=3)
    for (a_images, a_labels), (b_images, b_labels) in zip([(x, y), second], again):
        np.testing.assert_array_equal(a_images, b_images)
        np.testing.assert_array_equal(a_labels, b_labels)
    other = first_batches(small_data, seed=4, count=1)[0]
    assert not np.array_equal(other[0], x)
    with tf.Graph().as_default():
        images, _ = tf.compat.v1.data.make_one_shot_iterator(
            data_provider.build_dataset(small_data, "validation", 8, False, 48, 11)).get_next()
        with tf.compat.v1.Session() as session:
            assert session.run(images).shape == (8, 48, 48, 3)


def slim_eval_reference(pixels, size, central_fraction=0.875):
    """slim's preprocess_for_eval written out in numpy, from slim's steps: uint8 -> [0, 1]; the window of
    tf.image.central_crop (start = int((n - n x fraction) / 2) on each side); TF1 resize_bilinear with
    align_corners=False, i.e. source coordinate = destination index x in / out with no half-pixel offset,
    the upper neighbour clamped to the edge; then (x - 0.5) x 2."""
    image = pixels.astype(np.float64) / 255.0
    h, w = image.shape[:2]
    top, left = int((h - h * central_fraction) / 2), int((w - w * central_fraction) / 2)
    image = image[top:h - top, left:w - left]

    def taps(n_in):
        source = np.arange(size) * (n_in / size)
        low = np.floor(source).astype(int)
        return low, np.minimum(low + 1, n_in - 1), source - low

    y0, y1, fy = taps(image.shape[0])
    x0, x1, fx = taps(image.shape[1])
    fx = fx[None, :, None]
    rows = lambda y: image[y][:, x0] * (1 - fx) + image[y][:, x1] * fx  # noqa: E731
    return (rows(y0) * (1 - fy)[:, None, None] + rows(y1) * fy[:, None, None] - 0.5) * 2


def test_eval_preprocessing_is_slims_to_the_pixel():
    """Odd sizes, so that the crop truncates and the resize ratio is not whole: half-pixel sampling
    (tf.image.resize) misses this by ~0.1, the legacy kernel matches to float32 rounding."""
    from preprocessing import preprocessing_factory

    pixels = np.random.default_rng(5).integers(0, 256, (75, 61, 3), dtype=np.uint8)
    with tf.Graph().as_default():
        encoded = tf.io.encode_jpeg(tf.constant(pixels), quality=95)
        decoded = tf.io.decode_jpeg(encoded, channels=3)  # the JPEG's own pixels: the codec is not under test
        image = preprocessing_factory.get_preprocessing("inception_v2", is_training=False)(encoded, 24, 24)
        with tf.compat.v1.Session() as session:
            jpeg_pixels, got = session.run([decoded, image])
    assert got.shape == (24, 24, 3)
    np.testing.assert_allclose(got, slim_eval_reference(jpeg_pixels, 24), atol=1e-5)
