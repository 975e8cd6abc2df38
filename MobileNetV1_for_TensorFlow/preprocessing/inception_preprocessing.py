"""Inception-style preprocessing, as slim's inception_preprocessing (used for mobilenet_v1 / inception_v2).

Train: random crop guided by the record's object boxes (whole image when it has none), resize, random
flip, colour distortion, scale to [-1, 1]. Eval: central crop of 87.5 %, resize, scale to [-1, 1].
The original calls slim's preprocess_image with its default fast_mode=True, so of slim's random choices only
one case remains: bilinear resize, and colour ordering 0 (brightness, then saturation). Both resizes are
slim's legacy bilinear (TF1 resize_bilinear, align_corners=False, no half-pixel centres): the weights
Google published were trained and evaluated on it, and tf.image.resize's half-pixel sampling costs them
about one point of top-1.
Both take the encoded JPEG so the train crop is decoded directly (decode_and_crop_jpeg). The train path
draws its randomness from stateless ops keyed by a per-image seed, so that a seeded input pipeline gives
the same images whatever the order in which parallel calls run.
"""
import tensorflow as tf

WHOLE_IMAGE = [[[0.0, 0.0, 1.0, 1.0]]]


def distort_color(image, seeds):
    """Brightness and saturation changes (slim's fast mode, ordering 0); image float in [0, 1]."""
    image = tf.image.stateless_random_brightness(image, max_delta=32.0 / 255.0, seed=seeds[0])
    image = tf.image.stateless_random_saturation(image, lower=0.5, upper=1.5, seed=seeds[1])
    return tf.clip_by_value(image, 0.0, 1.0)


def resize_like_slim(image, height, width):
    """[h, w, 3] float -> [height, width, 3] by the TF1 bilinear kernel slim used (see the module docstring)."""
    # The raw op spells out both switches (tf.compat.v1.image.resize_bilinear has the same defaults).
    resized = tf.raw_ops.ResizeBilinear(images=image[tf.newaxis], size=[height, width], align_corners=False,
                                        half_pixel_centers=False)[0]
    resized.set_shape([height, width, 3])
    return resized


def _scale_to_unit_range(image):
    """[0, 1] -> [-1, 1], the range MobileNet was trained on."""
    return (image - 0.5) * 2.0


def preprocess_for_train(encoded, height, width, seed, bbox=None, min_object_covered=0.1,
                         aspect_ratio_range=(0.75, 1.33), area_range=(0.05, 1.0), max_attempts=100):
    """seed: int64 [2], this image's; bbox: float [1, num_boxes, 4] (ymin, xmin, ymax, xmax) or None/empty
    for the whole image."""
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    if bbox is None:
        bbox = tf.constant(WHOLE_IMAGE, tf.float32)
    else:
        bbox = tf.cond(tf.shape(bbox)[1] > 0, lambda: bbox, lambda: tf.constant(WHOLE_IMAGE, tf.float32))
    shape = tf.image.extract_jpeg_shape(encoded)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=bbox, seed=seeds[0], min_object_covered=min_object_covered,
        aspect_ratio_range=aspect_ratio_range, area_range=area_range, max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True)
    crop_window = tf.stack([begin[0], begin[1], size[0], size[1]])
    image = tf.image.decode_and_crop_jpeg(encoded, crop_window, channels=3)
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = resize_like_slim(image, height, width)
    image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
    image = distort_color(image, seeds[2:])
    return _scale_to_unit_range(image)


def preprocess_for_eval(encoded, height, width, central_fraction=0.875):
    image = tf.image.decode_jpeg(encoded, channels=3)
    image = tf.image.convert_image_dtype(image, tf.float32)
    if central_fraction:
        image = tf.image.central_crop(image, central_fraction=central_fraction)
    image = resize_like_slim(image, height, width)
    return _scale_to_unit_range(image)


def preprocess_image(encoded, height, width, is_training=False, bbox=None, seed=None):
    if is_training:
        return preprocess_for_train(encoded, height, width, seed, bbox)
    return preprocess_for_eval(encoded, height, width)
