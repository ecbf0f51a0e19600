"""An Optuna study brought in through a real server: by the client (from an
`optuna.Study` or a storage URL) and by `tunelab import optuna --url`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.cli import main
from tests.client.live import patient_live_server
from tests.transfer.test_optuna_import import make_study
from tunelab.client import Client


@pytest.fixture
def server(sqlite_url: str, tmp_path) -> Iterator[str]:
    with patient_live_server(sqlite_url, tmp_path) as url:
        yield url


def test_the_client_imports_an_optuna_study_and_goes_on(server, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    source = make_study(storage)
    with Client(server) as client:
        from_object = client.import_optuna(source, strategy="random", more_trials=2)
        from_storage = client.import_optuna(storage=storage, study_name="mnist", name="again")
        for study in (from_object, from_storage):
            assert study.data["n_trials"] == 8
            assert study.best_value == pytest.approx(source.best_value)
        assert from_storage.name == "again" and from_storage.data["strategy"]["name"] == "tpe"
        trial = from_object.ask()
        assert trial.number == 8
        trial.complete(value=0.01)
        from_object.refresh()
        assert from_object.best_value == pytest.approx(0.01)
        with pytest.raises(ValueError):
            client.import_optuna()

    argv = ["import", "optuna", "--storage", storage, "--study", "mnist", "--url", server]
    assert main(argv) == 0
    study_id = int(capsys.readouterr().out.strip())
    with Client(server) as client:
        assert client.study(study_id).data["tags"]["optuna"]["imported"]["trials"] == 8
