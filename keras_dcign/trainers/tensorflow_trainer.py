"""DC-IGN train/test steps for the TensorFlow backend (GradientTape)."""

import keras
import tensorflow as tf


class TensorFlowTrainer:
    def train_step(self, data):
        images, groups, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            loss, terms = self.objective(images, groups, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)
        weights = self.trainable_weights
        gradients = tape.gradient(scaled_loss, weights)
        self.optimizer.apply(gradients, weights)
        return self.update_trackers(loss, terms)

    def test_step(self, data):
        images, groups, _ = keras.utils.unpack_x_y_sample_weight(data)
        loss, terms = self.objective(images, groups, training=False)
        return self.update_trackers(loss, terms)
