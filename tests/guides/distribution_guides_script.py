"""The two Keras distribution guides on 8 simulated CPU devices, run by test_distribution_guides.py
(the device count must be set before JAX starts); prints one JSON object of what it found.

- "Distributed training with Keras" (keras-team/keras-io, guides/distribution.py): devices,
  ``DeviceMesh``, ``TensorLayout``, ``DataParallel`` and ``ModelParallel`` with a ``LayoutMap``
  that lays out weights and a layer's output.
- "Multi-GPU distributed training with JAX" (guides/distributed_training_with_jax.py): a
  hand-written ``jax.jit`` loop over ``stateless_call`` / ``stateless_apply`` with the state
  replicated and the batches split by ``jax.sharding``.

Translation: ``keras`` -> ``lm``; MNIST (downloaded, through tf.data) -> 256 random images of
the same shape whose label is a function of the image (so the loss can fall), batched with
NumPy; ``print`` -> findings; sizes unchanged except the data. The guides' variable paths
("d1/kernel") are written as lamina (and Keras 3 for a Sequential model) name them:
"sequential/d1/kernel".
"""

import json
import os


def main():
    # Set before JAX starts: this runs as its own process (pytest only imports the module).
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + (" --xla_force_host_platform_device_count=8 --xla_cpu_multi_thread_eigen=false "
                               "--xla_cpu_collective_call_terminate_timeout_seconds=120")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

    import jax
    import numpy as np
    from jax.experimental import mesh_utils
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    import lamina as lm
    from lamina import layers

    found = {}

    def spec(array):
        return [list(a) if isinstance(a, tuple) else a for a in array.sharding.spec]

    # -- guides/distribution.py ----------------------------------------------------------------
    lm.distribution.initialize()  # one process: nothing to connect
    devices = lm.distribution.list_devices()
    found["devices"] = devices
    found["device_count"] = lm.distribution.get_device_count()
    mesh_shape = (2, 4) if len(devices) >= 8 else (len(devices), 1)
    mesh = lm.distribution.DeviceMesh(shape=mesh_shape, axis_names=["data", "model"], devices=devices)
    layout_2d = lm.distribution.TensorLayout(axes=("model", "data"), device_mesh=mesh)
    found["layout_2d"] = [list(layout_2d.axes), list(layout_2d.device_mesh.shape)]
    placed = lm.distribution.distribute_tensor(np.arange(32.0, dtype="float32").reshape(8, 4), layout_2d)
    found["distribute_tensor"] = {"spec": spec(placed), "shards": sorted({s.data.shape for s in placed.addressable_shards}),
                                  "values": bool(np.array_equal(placed, np.arange(32.0).reshape(8, 4)))}

    data_parallel = lm.distribution.DataParallel()
    lm.distribution.set_distribution(data_parallel)
    found["active_is_data_parallel"] = lm.distribution.distribution() is data_parallel

    inputs = layers.Input(shape=(28, 28, 1))
    y = layers.Flatten()(inputs)
    y = layers.Dense(units=200, activation="relu")(y)
    y = layers.Dropout(0.4)(y)
    outputs = layers.Dense(units=10, activation="softmax")(y)
    model = lm.Model(inputs=inputs, outputs=outputs)
    model.compile(loss="mse", optimizer="adam")
    lines = []
    model.summary(print_fn=lines.append)
    found["dp_summary_params"] = next(line for line in lines if "Total params" in line).split(":")[1].split("(")[0].strip()
    found["dp_kernel_replicated"] = model.layers[2].kernel.value.sharding.is_fully_replicated

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(256, 28, 28, 1)).astype("float32")
    labels = (images.reshape(256, -1)[:, :392].mean(axis=1) > images.reshape(256, -1)[:, 392:].mean(axis=1)).astype("int32")
    history = model.fit(images / 255.0, np.eye(10, dtype="float32")[labels], batch_size=64, epochs=2, verbose=0)
    found["dp_fit_loss"] = history.history["loss"]

    layout_map = lm.distribution.LayoutMap(mesh)
    layout_map["sequential/d1/kernel"] = (None, "model")
    layout_map["sequential/d1/bias"] = ("model",)
    layout_map["sequential/d2/output"] = ("data", None)
    model_parallel = lm.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="data")
    lm.distribution.set_distribution(model_parallel)
    found["active_is_model_parallel"] = lm.distribution.distribution() is model_parallel

    model = lm.Sequential([
        layers.Input(shape=(784,)),
        layers.Dense(200, activation="relu", name="d1"),
        layers.Dense(10, activation="softmax", name="d2"),
    ])
    d1 = model.get_layer("d1")
    found["mp_kernel"] = {"spec": spec(d1.kernel.value), "shards": sorted({s.data.shape for s in d1.kernel.value.addressable_shards})}
    found["mp_bias"] = spec(d1.bias.value)
    flat = images.reshape(256, 784) / 255.0
    found["mp_output_spec"] = spec(lm.jit(lambda x: model(x))(flat[:64]))
    model.compile(loss="mse", optimizer="adam")
    found["mp_fit_loss"] = model.fit(flat, np.eye(10, dtype="float32")[labels], batch_size=64, epochs=2, verbose=0).history["loss"]
    found["mp_kernel_after_fit"] = spec(d1.kernel.value)

    # The same model without the output's layout: XLA chooses, and it is not ("data", None).
    plain_map = lm.distribution.LayoutMap(mesh)
    plain_map["sequential_1/d1/kernel"] = (None, "model")
    with lm.distribution.ModelParallel(layout_map=plain_map, batch_dim_name="data").scope():
        plain = lm.Sequential([layers.Input(shape=(784,)), layers.Dense(200, activation="relu", name="d1"),
                               layers.Dense(10, activation="softmax", name="d2")])
        found["plain_output_spec"] = spec(lm.jit(lambda x: plain(x))(flat[:64]))
    lm.distribution.set_distribution(None)

    # -- guides/distributed_training_with_jax.py -----------------------------------------------
    def get_model():
        inputs = lm.Input(shape=(28, 28, 1))
        x = lm.layers.Rescaling(1.0 / 255.0)(inputs)
        x = lm.layers.Conv2D(filters=12, kernel_size=3, padding="same", use_bias=False)(x)
        x = lm.layers.BatchNormalization(scale=False, center=True)(x)
        x = lm.layers.ReLU()(x)
        x = lm.layers.Conv2D(filters=24, kernel_size=6, use_bias=False, strides=2)(x)
        x = lm.layers.BatchNormalization(scale=False, center=True)(x)
        x = lm.layers.ReLU()(x)
        x = lm.layers.Conv2D(filters=32, kernel_size=6, padding="same", strides=2, name="large_k")(x)
        x = lm.layers.BatchNormalization(scale=False, center=True)(x)
        x = lm.layers.ReLU()(x)
        x = lm.layers.GlobalAveragePooling2D()(x)
        x = lm.layers.Dense(256, activation="relu")(x)
        x = lm.layers.Dropout(0.5)(x)
        outputs = lm.layers.Dense(10)(x)
        return lm.Model(inputs, outputs)

    num_epochs, batch_size = 2, 64
    train_data = [(images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, len(images), batch_size)]

    model = get_model()
    optimizer = lm.optimizers.Adam(1e-3)
    loss = lm.losses.SparseCategoricalCrossentropy(from_logits=True)
    one_batch, one_batch_labels = train_data[0]
    model.build(one_batch)
    optimizer.build(model.trainable_variables)

    def compute_loss(trainable_variables, non_trainable_variables, x, y):
        y_pred, updated_non_trainable_variables = model.stateless_call(trainable_variables, non_trainable_variables, x)
        return loss(y, y_pred), updated_non_trainable_variables

    compute_gradients = jax.value_and_grad(compute_loss, has_aux=True)

    @jax.jit
    def train_step(train_state, x, y):
        trainable_variables, non_trainable_variables, optimizer_variables = train_state
        (loss_value, non_trainable_variables), grads = compute_gradients(trainable_variables, non_trainable_variables, x, y)
        trainable_variables, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads, trainable_variables)
        return loss_value, (trainable_variables, non_trainable_variables, optimizer_variables)

    def get_replicated_train_state(devices):
        var_mesh = Mesh(devices, axis_names=("_"))
        var_replication = NamedSharding(var_mesh, P())
        trainable_variables = jax.device_put(model.trainable_variables, var_replication)
        non_trainable_variables = jax.device_put(model.non_trainable_variables, var_replication)
        optimizer_variables = jax.device_put(optimizer.variables, var_replication)
        return (trainable_variables, non_trainable_variables, optimizer_variables)

    num_devices = len(jax.local_devices())
    devices = mesh_utils.create_device_mesh((num_devices,))
    data_mesh = Mesh(devices, axis_names=("batch",))
    data_sharding = NamedSharding(data_mesh, P("batch"))

    x, y = train_data[0]
    sharded_x = jax.device_put(x, data_sharding)
    found["jax_sharded_batch"] = {"spec": spec(sharded_x), "shards": sorted({s.data.shape for s in sharded_x.addressable_shards})}
    # The loss of one batch split over 8 devices is the loss of the batch on one device.
    state0 = (model.trainable_variables, model.non_trainable_variables)
    found["jax_first_loss"] = [float(compute_loss(*state0, sharded_x, y)[0]), float(compute_loss(*state0, x, y)[0])]

    train_state = get_replicated_train_state(devices)
    found["jax_state_replicated"] = all(a.sharding.is_fully_replicated and len(a.sharding.device_set) == 8
                                        for a in jax.tree_util.tree_leaves(train_state))
    epoch_losses = []
    for _epoch in range(num_epochs):
        for x, y in train_data:
            sharded_x = jax.device_put(x, data_sharding)
            loss_value, train_state = train_step(train_state, sharded_x, y)
        epoch_losses.append(float(loss_value))
    found["jax_epoch_losses"] = epoch_losses

    trainable_variables, non_trainable_variables, optimizer_variables = train_state
    for variable, value in zip(model.trainable_variables, trainable_variables):
        variable.assign(value)
    for variable, value in zip(model.non_trainable_variables, non_trainable_variables):
        variable.assign(value)
    found["jax_written_back"] = all(
        np.array_equal(np.asarray(v), np.asarray(a)) for group, values in
        ((model.trainable_variables, trainable_variables), (model.non_trainable_variables, non_trainable_variables))
        for v, a in zip(group, values, strict=True))
    found["jax_predict_shape"] = list(model.predict(images[:8], verbose=0).shape)

    print(json.dumps(found, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


if __name__ == "__main__":
    main()
