"""The network of the original (`mnist_main.create_model` of tensorflow/models `official`). mnist_main.py
exposes it under that name; Keras is imported inside the function, so that importing this module (as
mnist_main.py does before it parses its flags) does not load TensorFlow."""


def create_model():
    """The `mnist` Keras model of the original: 1,643,370 parameters, the same layers and variables.

    One difference in the order of operations: each convolution's ReLU runs after its 2x2 max pooling instead
    of before it. ReLU is monotonic, so max(relu(x)) = relu(max(x)) and the outputs and gradients are the same
    (tests/test_units.py compares them with the original order), but the ReLU and its gradient touch a quarter
    of the values: under bf16 the gradient is a plain elementwise kernel, not fused into a oneDNN convolution,
    and it took 15 % of a bf16 step's op time (RESULTS.md)."""
    import keras

    layers = keras.layers

    def pool_then_relu(name):
        # One layer slot, as the original's MaxPooling2D: the layers that hold variables keep their positions, so
        # checkpoints of either order load into the other; stock layers, so a saved .keras model loads anywhere.
        return keras.Sequential([layers.MaxPooling2D(2, 2, padding="same"), layers.ReLU()], name=name)

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 5, padding="same"),
        pool_then_relu("pool_relu_1"),
        layers.Conv2D(32, 5, padding="same"),
        pool_then_relu("pool_relu_2"),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(0.4),
        layers.Dense(10, activation="softmax", dtype="float32"),  # float32 output under mixed precision
    ], name="mnist")
