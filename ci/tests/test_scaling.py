"""ci/scaling.py: the byte count and the projection arithmetic (the measurement itself is not a test)."""
import pytest

from ci import scaling

# LeNet-5 as in LeCun et al. (1998) without its sparse C3 table, counted by hand: conv 5x5 1->6 (150 + 6),
# conv 5x5 6->16 (2,400 + 16), dense 400->120 (48,000 + 120), 120->84 (10,080 + 84), 84->10 (840 + 10).
LENET = [("c1/w", [5, 5, 1, 6], "float32"), ("c1/b", [6], "float32"),
         ("c3/w", [5, 5, 6, 16], "float32"), ("c3/b", [16], "float32"),
         ("f5/w", [400, 120], "float32"), ("f5/b", [120], "float32"),
         ("f6/w", [120, 84], "float32"), ("f6/b", [84], "float32"),
         ("out/w", [84, 10], "float32"), ("out/b", [10], "float32")]


def test_gradient_bytes_are_the_hand_count():
    assert scaling.gradient_bytes(LENET) == 61_706 * 4
    assert scaling.gradient_bytes([("w", [3, 2], "bfloat16"), ("s", [], "float64")]) == 6 * 2 + 8


def test_variables_of_a_built_network_are_counted_like_the_hand_count():
    """The LeNet above built as a Keras network: describe() reads its variables as the model counts do."""
    keras = pytest.importorskip("keras")
    network = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(6, 5), keras.layers.MaxPooling2D(),
                                keras.layers.Conv2D(16, 5), keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                                keras.layers.Dense(120), keras.layers.Dense(84), keras.layers.Dense(10)])
    described = scaling.describe(network.trainable_weights)
    assert [shape for _, shape, _ in described] == [shape for _, shape, _ in LENET]
    assert scaling.gradient_bytes(described) == 61_706 * 4


def test_ring_projection():
    assert [scaling.ring_factor(n) for n in (2, 8, 64)] == [1.0, 1.75, 1.96875]
    # 100 ms compute, 40 ms two-worker all-reduce, batch 32: 8 workers all-reduce 40 x 1.75 = 70 ms.
    step, images, efficiency = scaling.project(100.0, 32, 40.0, 8)
    assert step == pytest.approx(170.0)
    assert images == pytest.approx(8 * 32 * 1000 / 170.0)
    assert efficiency == pytest.approx(100.0 / 170.0)
    assert scaling.project(100.0, 32, 40.0, 2) == pytest.approx((140.0, 2 * 32 * 1000 / 140.0, 100.0 / 140.0))


def test_compute_time_comes_from_the_bench_float32_row():
    bench = {"rows": [{"model": "M", "mode": "bf16", "batch": 8, "project": {"images_per_sec": 1.0}},
                      {"model": "M", "mode": "float32", "batch": 32, "project": {"images_per_sec": 16.0}}]}
    assert scaling.step_compute(bench, "M") == (32, 2000.0)
    with pytest.raises(SystemExit, match="no float32 row for N"):
        scaling.step_compute(bench, "N")


def test_the_table_says_what_is_measured_and_projected():
    rows = [{"model": "M", "bytes": 1_000_000, "batch": 32, "compute_ms": 100.0}]
    links = {None: (5000.0, {1_000_000: 0.004}), 10000: (4900.0, {1_000_000: 0.004}),
             25000: (5000.0, {1_000_000: 0.004})}
    text = scaling.table(rows, links, "python ci/scaling.py")
    assert "Shaping to 10 Gbit/s and 25 Gbit/s is above what the veth reaches unshaped" in text
    assert "moves at most 2.0 Gbit/s here, below every link rate" in text and "command: `python ci/scaling.py`" in text
    line = [row for row in text.splitlines() if row.startswith("| M | ") and "tc 10 Gbit/s" in row and "| 8 |" in row]
    assert line == ["| M | 1.00 | 32 | 100 | tc 10 Gbit/s | 4.0 | 2.00 | 8 | 107 | 2,393 | 93% |"]


def test_a_fast_veth_and_a_fast_all_reduce_get_no_such_remark():
    rows = [{"model": "M", "bytes": 1_000_000, "batch": 32, "compute_ms": 100.0}]
    links = {None: (13000.0, {1_000_000: 0.0005}), 10000: (6000.0, {1_000_000: 0.0009}),
             25000: (12000.0, {1_000_000: 0.0006})}
    remarks = scaling.link_remarks(rows, links)
    assert remarks == " Shaping to 25 Gbit/s is above what the veth reaches unshaped, so it changes nothing."
