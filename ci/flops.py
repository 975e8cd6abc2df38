"""Training FLOPs per image of each zoo model, counted from its layer list (no TensorFlow needed).

The rule, the usual one for dense networks: a convolution or dense layer costs one multiply-accumulate
(MAC) per weight per output position; a MAC is 2 FLOPs; a training step costs 3x the forward pass (the
backward pass computes the gradients of the inputs and of the weights, each about one forward). Batch norm,
activations, pooling, LRN, dropout, the loss and the optimizer update are left out: they are memory-bound
and small next to the convolutions, so the count is a lower bound of the work done and the "% of the matmul
roof" derived from it is conservative.

Layers are tuples: ("conv", out_h, out_w, k_h, k_w, c_in, c_out), ("dwconv", out_h, out_w, k_h, k_w, c)
(depthwise, one filter per channel), ("dense", n_in, n_out).
"""
import math

TRAIN_OVER_FORWARD = 3
FLOPS_PER_MAC = 2


def same_size(size, stride):
    """Output side of a SAME convolution or pooling."""
    return math.ceil(size / stride)


def valid_size(size, kernel, stride):
    """Output side of a VALID convolution or pooling."""
    return (size - kernel) // stride + 1


def layer_macs(layer):
    kind, *dims = layer
    if kind == "conv":
        out_h, out_w, k_h, k_w, c_in, c_out = dims
        return out_h * out_w * k_h * k_w * c_in * c_out
    if kind == "dwconv":
        out_h, out_w, k_h, k_w, channels = dims
        return out_h * out_w * k_h * k_w * channels
    if kind == "dense":
        n_in, n_out = dims
        return n_in * n_out
    raise ValueError(f"unknown layer kind {kind!r}")


def forward_macs(layers):
    return sum(layer_macs(layer) for layer in layers)


def train_flops_per_image(layers):
    return TRAIN_OVER_FORWARD * FLOPS_PER_MAC * forward_macs(layers)


def lenet():
    """LeNet_ID0127: 28x28x1, two 5x5 SAME convolutions (6, 16 maps) each pooled 2x2, dense 784-120-84-10."""
    return [("conv", 28, 28, 5, 5, 1, 6), ("conv", 14, 14, 5, 5, 6, 16),
            ("dense", 7 * 7 * 16, 120), ("dense", 120, 84), ("dense", 84, 10)]


def mnist_tf2():
    """MNIST_ID2481 (mnist_main.create_model): two 5x5 SAME convolutions of 32 maps, dense 1568-1024-10."""
    return [("conv", 28, 28, 5, 5, 1, 32), ("conv", 14, 14, 5, 5, 32, 32),
            ("dense", 7 * 7 * 32, 1024), ("dense", 1024, 10)]


def alexnet(size=227, classes=2):
    """AlexNet_ID0259 (model.LAYERS): two towers, conv1 11x11/4 VALID, pools 3x3/2 VALID after conv1, 2, 5."""
    s1 = valid_size(size, 11, 4)
    p1 = valid_size(s1, 3, 2)
    p2 = valid_size(p1, 3, 2)
    p5 = valid_size(p2, 3, 2)
    towers = [("conv", s1, s1, 11, 11, 3, 48), ("conv", p1, p1, 5, 5, 48, 128),
              ("conv", p2, p2, 3, 3, 192, 192), ("conv", p2, p2, 3, 3, 192, 128)]
    return towers * 2 + [("conv", p2, p2, 3, 3, 256, 384), ("dense", p5 * p5 * 256, 4096),
                         ("dense", 4096, 1000), ("dense", 1000, classes)]


# MobileNetV1 (width 1.0): the depthwise-separable blocks after the 3x3/2 stem, (stride, pointwise maps).
MOBILENET_BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512),
                    (1, 512), (1, 512), (2, 1024), (1, 1024))


def mobilenet_v1(size=224, classes=1001):
    side = same_size(size, 2)
    layers = [("conv", side, side, 3, 3, 3, 32)]
    channels = 32
    for stride, maps in MOBILENET_BLOCKS:
        side = same_size(side, stride)
        layers += [("dwconv", side, side, 3, 3, channels), ("conv", side, side, 1, 1, channels, maps)]
        channels = maps
    return layers + [("dense", channels, classes)]  # after global average pooling


def cosine_net(classes=751):
    """cosine_metric_learning (nets/deep_sort): 128x64 input, 2 convs, max-pool 3x3/2, 6 residual blocks
    (32, 32, 64, 64, 128, 128 maps; the first of each new width strides 2 with a 1x1 projection), dense
    16x8x128 -> 128, cosine-softmax head 128 -> classes (751 Market-1501 training identities)."""
    h, w = 128, 64
    layers = [("conv", h, w, 3, 3, 3, 32), ("conv", h, w, 3, 3, 32, 32)]
    h, w, channels = same_size(h, 2), same_size(w, 2), 32
    for maps in (32, 32, 64, 64, 128, 128):
        if maps != channels:
            h, w = same_size(h, 2), same_size(w, 2)
            layers.append(("conv", h, w, 1, 1, channels, maps))
        layers += [("conv", h, w, 3, 3, channels, maps), ("conv", h, w, 3, 3, maps, maps)]
        channels = maps
    return layers + [("dense", h * w * channels, 128), ("dense", 128, classes)]


NETWORKS = {
    "LeNet_ID0127_for_TensorFlow": lenet,
    "MNIST_ID2481_for_TensorFlow2.X": mnist_tf2,
    "AlexNet_ID0259_for_TensorFlow": alexnet,
    "MobileNetV1_for_TensorFlow": mobilenet_v1,
    "cosine_metric_learning": cosine_net,
}


def model_train_flops(model, **shape):
    """Training FLOPs per image of a zoo model; shape: the network function's keywords (size, classes)."""
    return train_flops_per_image(NETWORKS[model](**shape))
