"""DC-IGN train/test steps for the PyTorch backend (autograd)."""

import keras
import torch


class TorchTrainer:
    def train_step(self, data):
        images, groups, _ = keras.utils.unpack_x_y_sample_weight(data)
        self.zero_grad()
        loss, terms = self.objective(images, groups, training=True)
        self.optimizer.scale_loss(loss).backward()
        weights = self.trainable_weights[:]
        gradients = [w.value.grad for w in weights]
        with torch.no_grad():
            self.optimizer.apply(gradients, weights)
        return self.update_trackers(loss.detach(), {k: v.detach() for k, v in terms.items()})

    def test_step(self, data):
        images, groups, _ = keras.utils.unpack_x_y_sample_weight(data)
        with torch.no_grad():
            loss, terms = self.objective(images, groups, training=False)
        return self.update_trackers(loss, terms)
