"""The network of the original (`mnist_main.create_model` of tensorflow/models `official`). mnist_main.py
exposes it under that name; Keras is imported inside the function, so that importing this module (as
mnist_main.py does before it parses its flags) does not load TensorFlow."""


def create_model():
    """The `mnist` Keras model of the original: 1,643,370 parameters."""
    import keras

    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, 2, padding="same"),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, 2, padding="same"),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(0.4),
        layers.Dense(10, activation="softmax", dtype="float32"),  # float32 output under mixed precision
    ], name="mnist")
