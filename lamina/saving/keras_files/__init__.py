"""Keras 3 files: ``.keras`` models and ``.weights.h5`` weights, read and written by lamina.

``lm.load_model("m.keras")`` rebuilds a Keras 3 model as the equivalent lamina model (built-in
layers, Sequential, Functional, and classes registered in both libraries under the same
name); ``model.save("m.keras")`` writes a file ``keras.saving.load_model`` reads;
``model.save_weights("x.weights.h5")`` / ``model.load_weights("x.weights.h5")`` use Keras's
weights layout. Nothing from a file is imported or executed. Needs h5py
(``pip install "lamina[keras-files]"``).

Modules: ``archive`` (the zip), ``h5`` (the HDF5 weights file), ``config_in`` / ``models_in``
(Keras config to lamina objects), ``config_out`` (lamina to Keras config), ``layout`` (where
each weight sits in the file), ``assets_in`` (a Keras file's assets: adapted vocabularies),
``model_io`` (the loading and saving functions).
"""

from lamina.saving.keras_files.model_io import (
    load_keras_model,
    load_keras_weights,
    save_keras_model,
    save_keras_weights,
)

__all__ = ["load_keras_model", "load_keras_weights", "save_keras_model", "save_keras_weights"]
