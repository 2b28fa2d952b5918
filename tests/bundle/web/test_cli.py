"""``python -m bundle.web``'s options: bad limits, ports, model options and images stop it before any model work."""

from __future__ import annotations

import socket

import pytest

from bundle.web import cli


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if the model would be built."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr("bundle.session.Session.from_configs", refuse)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "70000"], "--port must be a port number (0 to 65535), got 70000"),
        (["--max_upload_mb", "0"], "--max_upload_mb and --max_unpacked_mb must be positive"),
        (["--port", "0", "--batchsize", "2"], "config key 'batchsize' is not known (did you mean 'batch_size'?)"),
        (["--port", "0", "--image", "/no/such/volume.nii.gz"], "image not found: /no/such/volume.nii.gz"),
    ],
)
def test_bad_options_are_one_error_line_and_build_no_model(no_model, capsys, argv, message):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_taken_port_is_refused_before_the_model_is_built(no_model, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
