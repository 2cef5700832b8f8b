"""DC-IGN train/test steps for the JAX backend (stateless, on Keras' state tuple)."""

import jax
import keras


class JAXTrainer:
    def _stateless_objective(
        self,
        trainable_variables,
        non_trainable_variables,
        images,
        groups,
        training,
        optimizer_variables=None,
    ):
        """`objective` as a pure function of the variables, for `jax.value_and_grad`."""
        mapping = list(zip(self.trainable_variables, trainable_variables))
        mapping += list(zip(self.non_trainable_variables, non_trainable_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            loss, terms = self.objective(images, groups, training=training)
        non_trainable_variables = [_current(scope, v) for v in self.non_trainable_variables]
        unscaled_loss = loss
        if training and optimizer_variables is not None:
            mapping = list(zip(self.optimizer.variables, optimizer_variables))
            with keras.StatelessScope(state_mapping=mapping):
                loss = self.optimizer.scale_loss(loss)
        return loss, (unscaled_loss, terms, non_trainable_variables)

    def _stateless_trackers(self, metrics_variables, loss, terms):
        mapping = list(zip(self.metrics_variables, metrics_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self.update_trackers(loss, terms)
        return logs, [_current(scope, v) for v in self.metrics_variables]

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        images, groups, _ = keras.utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self._stateless_objective, has_aux=True)
        (_, (loss, terms, non_trainable)), grads = grad_fn(
            trainable, non_trainable, images, groups, True, optimizer_variables
        )
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, grads, trainable
        )
        logs, metrics_variables = self._stateless_trackers(metrics_variables, loss, terms)
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    def test_step(self, state, data):
        trainable, non_trainable, metrics_variables = state
        images, groups, _ = keras.utils.unpack_x_y_sample_weight(data)
        _, (loss, terms, non_trainable) = self._stateless_objective(
            trainable, non_trainable, images, groups, False
        )
        logs, metrics_variables = self._stateless_trackers(metrics_variables, loss, terms)
        return logs, (trainable, non_trainable, metrics_variables)


def _current(scope, variable):
    value = scope.get_current_value(variable)
    return variable.value if value is None else value
