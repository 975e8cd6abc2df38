"""Preprocessing by name (slim's names that map to inception-style preprocessing)."""

NAMES = ("inception", "inception_v2", "inception_v3", "mobilenet_v1")


def get_preprocessing(name, is_training=False):
    """fn(encoded_jpeg, height, width, bbox=None, seed=None) -> float image in [-1, 1]; training needs the
    image's seed (int64 [2])."""
    if name not in NAMES:
        raise ValueError(f"unknown preprocessing_name {name!r} (known: {', '.join(NAMES)})")
    # Imported here, not above: the entry scripts' flag parsers read NAMES before TensorFlow loads.
    from preprocessing import inception_preprocessing

    def preprocessing_fn(encoded, height, width, bbox=None, seed=None):
        return inception_preprocessing.preprocess_image(encoded, height, width, is_training=is_training, bbox=bbox,
                                                        seed=seed)

    return preprocessing_fn
