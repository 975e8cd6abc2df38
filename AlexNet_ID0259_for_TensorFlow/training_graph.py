"""The AlexNet training graph (TF1): the training step with Momentum 0.9 and L2 weight decay, the held-out
evaluation, the learning-rate variable and, with several workers, their broadcast and averaged figures."""
from typing import NamedTuple

import tensorflow as tf

import alexnet_device
import model

MOMENTUM = 0.9


class LearningRate(NamedTuple):
    variable: tf.Variable
    new_value: tf.Tensor  # placeholder
    assign: tf.Operation

    def get(self, sess):
        return float(sess.run(self.variable))

    def set(self, sess, value):
        sess.run(self.assign, {self.new_value: value})


class Averaged(NamedTuple):
    """A worker's epoch figures in, their mean over the workers out (unchanged with one worker)."""
    local: tf.Tensor  # placeholder
    mean: tf.Tensor   # None with one worker

    def __call__(self, sess, values):
        return [float(v) for v in (values if self.mean is None else sess.run(self.mean, {self.local: values}))]


class TrainingGraph(NamedTuple):
    graph: tf.Graph
    init: list            # variables and both iterators
    step: tuple           # (train op, total loss with weight decay, cross-entropy alone, hits in the batch)
    global_step: tf.Variable  # steps trained since the start of the run: the checkpoints' numbers
    held_out: tuple       # (hits, images) of one held-out batch
    held_out_probabilities: tf.Tensor  # softmax of that batch: what export.py's graph must reproduce
    learning_rate: LearningRate
    averaged: Averaged    # [mean loss, training accuracy, held-out hits, held-out images] over the workers
    broadcast: tf.Operation
    weights: list         # the trainable variables (their digest shows the workers agree)
    conv1: list           # conv1's kernels, one per tower (the kernel images)


class DecayedMomentum(tf.compat.v1.train.MomentumOptimizer):
    """Momentum SGD on the loss plus decay * sum(w ** 2) / 2 over the `decayed` variables, the weight decay
    added to each one's momentum accumulator in place (accum += decay / momentum * w, then the usual
    accum = momentum * accum + grad): the same update as differentiating the decay term, without the two
    passes over each weight that the gradient's Mul and AddN took (fc1's 37.7M weights: a tenth of a
    bfloat16 step on an AMX CPU). Slots and checkpoints are MomentumOptimizer's."""

    def __init__(self, learning_rate, momentum, decay, decayed):
        super().__init__(learning_rate, momentum)
        self._decay = decay
        self._decayed = {v.ref() for v in decayed}

    def _resource_apply_dense(self, grad, var):
        if var.ref() not in self._decayed:
            return super()._resource_apply_dense(grad, var)
        accum = self.get_slot(var, "momentum")
        decayed = tf.raw_ops.ResourceApplyGradientDescent(
            var=accum.handle, alpha=tf.constant(-self._decay / self._momentum, var.dtype), delta=var.read_value())
        with tf.control_dependencies([decayed]):
            return super()._resource_apply_dense(grad, var)


def _hits(logits, labels):
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels), tf.int32))


def build(inputs, learning_rate, init, pixels, seed, ranks=None):
    """inputs: data_loader.Inputs of this worker; ranks: distributed.ranks() when there are several workers.
    Each worker draws its own dropout masks and augmentations (seed); the broadcast equalises the weights."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        train_ds, held_out_ds = inputs.datasets()
        train_it = tf.compat.v1.data.make_initializable_iterator(train_ds)
        held_out_it = tf.compat.v1.data.make_initializable_iterator(held_out_ds)
        images, labels = train_it.get_next()
        logits = model.inference(model.network_input(images, pixels), model.KEEP_PROB, alexnet_device.dropout_op(),
                                 init)
        xent = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        decayed = model.weight_tensors()
        loss = xent + model.WEIGHT_DECAY * tf.add_n([tf.nn.l2_loss(w) for w in decayed])
        lr = tf.compat.v1.get_variable("learning_rate", initializer=float(learning_rate), trainable=False)
        new_lr = tf.compat.v1.placeholder(tf.float32, [])
        optimizer = alexnet_device.wrap_optimizer(DecayedMomentum(lr, MOMENTUM, model.WEIGHT_DECAY, decayed), ranks)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        train_op = optimizer.minimize(xent, global_step=global_step)
        val_images, val_labels = held_out_it.get_next()
        val_logits = model.inference(model.network_input(val_images, pixels))
        figures = tf.compat.v1.placeholder(tf.float32, [4])
        weights = tf.compat.v1.trainable_variables()
        return TrainingGraph(
            graph=graph,
            init=[tf.compat.v1.global_variables_initializer(), train_it.initializer, held_out_it.initializer],
            step=(train_op, loss, xent, _hits(logits, labels)),
            global_step=global_step,
            held_out=(_hits(val_logits, val_labels), tf.size(val_labels)),
            held_out_probabilities=tf.nn.softmax(val_logits),
            learning_rate=LearningRate(lr, new_lr, lr.assign(new_lr)),
            averaged=Averaged(figures, ranks.mean(figures) if ranks else None),
            broadcast=alexnet_device.broadcast(tf.compat.v1.global_variables(), ranks),
            weights=weights,
            conv1=[v for v in weights if v.name.startswith("conv1/weights")])
