"""Network by name: mobilenet_v1 and its width variants _075, _050, _025."""
import functools

DEPTH_MULTIPLIERS = {"mobilenet_v1": 1.0, "mobilenet_v1_075": 0.75, "mobilenet_v1_050": 0.5,
                     "mobilenet_v1_025": 0.25}
DEFAULT_IMAGE_SIZE = 224


def get_network_fn(name, num_classes, weight_decay=0.0, is_training=False, batch_norm_decay=0.9997):
    """fn(images) -> (logits, end_points), built under the model's arg scope."""
    if name not in DEPTH_MULTIPLIERS:
        raise ValueError(f"unknown model_name {name!r} (known: {', '.join(DEPTH_MULTIPLIERS)})")
    # Imported here, not above: the entry scripts' flag parsers read DEPTH_MULTIPLIERS before TensorFlow loads.
    from nets import mobilenet_v1
    from nets.slim_compat import slim

    @functools.wraps(mobilenet_v1.mobilenet_v1)
    def network_fn(images, **kwargs):
        with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(
                is_training=is_training, weight_decay=weight_decay, batch_norm_decay=batch_norm_decay)):
            return mobilenet_v1.mobilenet_v1(images, num_classes=num_classes, is_training=is_training,
                                             depth_multiplier=DEPTH_MULTIPLIERS[name], **kwargs)

    network_fn.default_image_size = DEFAULT_IMAGE_SIZE
    return network_fn
