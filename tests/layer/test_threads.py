"""Concurrent use from Python threads: the core releases the GIL and shares nothing."""

import threading

import numpy as np

import deconv3d


def call_concurrently(function, n_threads):
    """Run function(i) on n threads at once; return their results in order."""
    results = [None] * n_threads
    errors = []
    barrier = threading.Barrier(n_threads)

    def worker(i):
        try:
            barrier.wait()
            results[i] = function(i)
        except Exception as error:  # report, do not lose, a failure in a thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return results


def test_eight_threads_calling_one_layer_match_serial_calls():
    rng = np.random.default_rng(0)
    layer = deconv3d.Conv3DTranspose(16, 3, 2, padding="same", activation="gelu")
    inputs = [rng.standard_normal((2, 5, 6, 7, 8)).astype(np.float32) for _ in range(8)]
    serial = [layer(x) for x in inputs]
    for _ in range(3):
        concurrent = call_concurrently(lambda i: layer(inputs[i]), 8)
        for expected, actual in zip(serial, concurrent):
            np.testing.assert_array_equal(expected, actual)


def test_set_weights_racing_with_calls_gives_old_or_new_results_never_a_mix():
    rng = np.random.default_rng(1)
    layer = deconv3d.Conv3DTranspose(8, 2, 2)
    x = rng.standard_normal((1, 6, 6, 6, 4)).astype(np.float32)
    layer.build(x.shape)
    weight_sets = [[rng.standard_normal(w.shape) for w in layer.get_weights()] for _ in range(2)]
    expected = []
    for weights in weight_sets:
        layer.set_weights(weights)
        expected.append(layer(x))

    def work(i):
        outcomes = []
        for step in range(40):
            if i % 2:
                layer.set_weights(weight_sets[step % 2])
            else:
                outcomes.append(layer(x))
        return outcomes

    for outcomes in call_concurrently(work, 8):
        for y in outcomes or []:
            assert any(np.array_equal(y, e) for e in expected)
