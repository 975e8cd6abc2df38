"""Metric-learning losses: cosine-softmax cross-entropy, soft-margin batch-hard triplet, unimodal magnet."""
import tensorflow as tf


def cosine_softmax_loss(logits, labels):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def _squared_distances(a, b):
    """||a_i - b_j||^2 for all rows, clipped at 0 against rounding."""
    sq = (tf.reduce_sum(tf.square(a), 1, keepdims=True) - 2.0 * tf.matmul(a, b, transpose_b=True)
          + tf.transpose(tf.reduce_sum(tf.square(b), 1, keepdims=True)))
    return tf.maximum(sq, 0.0)


def triplet_loss(features, labels):
    """Soft-margin batch-hard triplet: mean softplus(hardest positive - hardest negative), Euclidean."""
    dist = tf.sqrt(_squared_distances(features, features) + 1e-12)
    same = tf.equal(labels[:, None], labels[None, :])
    big = tf.reduce_max(dist) + 1.0
    hardest_pos = tf.reduce_max(tf.where(same, dist, tf.zeros_like(dist)), axis=1)
    hardest_neg = tf.reduce_min(tf.where(same, dist + big, dist), axis=1)
    return tf.reduce_mean(tf.nn.softplus(hardest_pos - hardest_neg))


def magnet_loss(features, labels, margin=1.0, eps=1e-4):
    """Unimodal magnet loss with class means and a shared variance estimated from the batch."""
    classes, index = tf.unique(labels)
    onehot = tf.one_hot(index, tf.size(classes), dtype=tf.float32)  # [N, K]
    counts = tf.reduce_sum(onehot, axis=0)
    means = tf.matmul(onehot, features, transpose_a=True) / counts[:, None]
    sq = _squared_distances(features, means)  # [N, K]
    n = tf.cast(tf.shape(features)[0], tf.float32)
    variance = tf.reduce_sum(onehot * sq) / (n - 1.0)
    scaled = -sq / (2.0 * (variance + eps)) - onehot * margin
    shift = tf.stop_gradient(tf.reduce_max(scaled, axis=1, keepdims=True))
    expo = tf.exp(scaled - shift)
    own = tf.reduce_sum(onehot * expo, axis=1)
    others = tf.reduce_sum((1.0 - onehot) * expo, axis=1)
    return tf.reduce_mean(tf.maximum(0.0, -tf.math.log(eps + own / (eps + others))))


# --loss_mode names -> loss of (features, logits, labels). Training logs every loss and minimises one;
# evaluation compares features with the distance that loss trains for.
LOSSES = {
    "cosine-softmax": lambda features, logits, labels: cosine_softmax_loss(logits, labels),
    "magnet": lambda features, logits, labels: magnet_loss(features, labels),
    "triplet": lambda features, logits, labels: triplet_loss(features, labels),
}
DISTANCES = {"cosine-softmax": "cosine", "magnet": "sqeuclidean", "triplet": "sqeuclidean"}
# The original's TensorBoard tag of each loss. It logged the cross-entropy only when training with it (no
# cosine-softmax head otherwise) and the magnet and triplet losses always.
TAGS = {"cosine-softmax": "cross_entropy_loss", "magnet": "magnet_loss", "triplet": "triplet_loss"}
ALWAYS_LOGGED = ("magnet", "triplet")
