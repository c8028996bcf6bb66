"""ssrnet_tf.utils.notebook: the accelerator check and run_cli."""

import pytest

from ssrnet_tf.utils import notebook


def test_run_cli_echoes_the_command_and_runs_it(capsys):
    notebook.run_cli("weights")
    out = capsys.readouterr().out
    assert out.startswith("$ ssrnet-tf weights\n")
    assert "imdb" in out


def test_run_cli_quotes_arguments_in_the_echo(capsys):
    with pytest.raises(RuntimeError):
        notebook.run_cli("weights", "no such name")
    assert "$ ssrnet-tf weights 'no such name'" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["weights", "no_such_weights"], ["no_such_command"], ["train"]])
def test_run_cli_raises_when_the_command_fails(argv, capsys):
    with pytest.raises(RuntimeError, match="failed with exit status [25] "):
        notebook.run_cli(*argv)


def test_run_cli_accepts_paths_and_numbers(tmp_path, capsys):
    notebook.run_cli("weights", "--weights-dir", tmp_path)
    assert f"--weights-dir {tmp_path}" in capsys.readouterr().out


def test_check_accelerator_warns_loudly_without_a_gpu(monkeypatch, capsys):
    monkeypatch.setattr(notebook, "accelerator_names", lambda: [])
    with pytest.warns(RuntimeWarning, match="CPU"):
        assert notebook.check_accelerator() is False
    assert "NO GPU" in capsys.readouterr().out


def test_check_accelerator_names_the_gpu(monkeypatch, capsys):
    monkeypatch.setattr(notebook, "accelerator_names", lambda: ["Tesla T4"])
    assert notebook.check_accelerator() is True
    assert "GPU: Tesla T4" in capsys.readouterr().out


def test_accelerator_names_is_a_list_of_strings():
    names = notebook.accelerator_names()
    assert isinstance(names, list) and all(isinstance(name, str) for name in names)
