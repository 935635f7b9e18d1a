"""``lm.callbacks.RemoteMonitor`` against a local HTTP server thread that records the posts."""

import http.server
import json
import threading
import urllib.parse
import warnings

import numpy as np
import pytest

import lamina as lm


@pytest.fixture(scope="module")
def server():
    posts = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((self.path, dict(self.headers), body))
            self.send_response(500 if self.path == "/fail" else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", posts
    httpd.shutdown()
    httpd.server_close()


def test_fit_posts_each_epoch_as_a_form_field(server):
    root, posts = server
    posts.clear()
    model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(1)])
    model.compile("sgd", "mse", metrics=["mae"])
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 1), "float32")
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[lm.callbacks.RemoteMonitor(root=root)])
    assert [path for path, _, _ in posts] == ["/publish/epoch/end/"] * 2
    for epoch, (_, headers, body) in enumerate(posts):
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        form = urllib.parse.parse_qs(body.decode())
        sent = json.loads(form["data"][0])
        assert sent["epoch"] == epoch
        assert sent["loss"] == pytest.approx(history.history["loss"][epoch])
        assert sent["mae"] == pytest.approx(history.history["mae"][epoch])


def test_json_body_custom_field_path_and_headers(server):
    root, posts = server
    posts.clear()
    form = lm.callbacks.RemoteMonitor(root=root, path="/p", field="payload", headers={"X-Run": "7"})
    form.on_epoch_end(3, {"loss": np.float32(0.5), "vec": np.array([1, 2])})
    as_json = lm.callbacks.RemoteMonitor(root=root, path="/j", send_as_json=True)
    as_json.on_epoch_end(4, {"acc": 0.75})
    (path1, headers1, body1), (path2, headers2, body2) = posts
    assert path1 == "/p" and headers1["X-Run"] == "7"
    assert json.loads(urllib.parse.parse_qs(body1.decode())["payload"][0]) == {"epoch": 3, "loss": 0.5, "vec": [1, 2]}
    assert path2 == "/j" and headers2["Content-Type"] == "application/json"
    assert json.loads(body2) == {"epoch": 4, "acc": 0.75}


def test_server_down_warns_and_error_status_is_ignored(server):
    root, posts = server
    with pytest.warns(UserWarning, match="^Could not reach RemoteMonitor root server at http://127.0.0.1:9$"):
        lm.callbacks.RemoteMonitor(root="http://127.0.0.1:9").on_epoch_end(0, {"loss": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm.callbacks.RemoteMonitor(root=root, path="/fail").on_epoch_end(0, {"loss": 1.0})
    assert posts[-1][0] == "/fail"
