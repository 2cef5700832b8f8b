"""One small train/test-step module per Keras backend, as Keras keeps its own trainers.

Each defines `train_step`/`test_step` around the one shared objective
(`DCIGN.objective`); only gradient bookkeeping differs between backends.
"""

import keras


def backend_trainer():
    """The trainer mix-in class of the active Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from keras_dcign.trainers.tensorflow_trainer import TensorFlowTrainer

        return TensorFlowTrainer
    if backend == "jax":
        from keras_dcign.jax_cpu import configure_xla_flags
        from keras_dcign.trainers.jax_trainer import JAXTrainer

        configure_xla_flags()  # before JAX's first computation; see keras_dcign.jax_cpu

        return JAXTrainer
    if backend == "torch":
        from keras_dcign.trainers.torch_trainer import TorchTrainer

        return TorchTrainer
    raise ValueError(
        f"Keras backend {backend!r} is not supported; expected tensorflow, jax or torch."
    )
