"""load_settings and its helpers: YAML < environment < overrides, and every problem reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from passport_sync.config import (
    DEFAULT_DATABASE,
    DatabaseConfig,
    Settings,
    check_passwords,
    load_settings,
    mongo_database_name,
    read_yaml,
    redact_uri,
    world_readable_secret_warnings,
)
from passport_sync.errors import ConfigError

PASSWORD = "Zq7-Secret!pw#2025"


@pytest.fixture(autouse=True)
def _no_ambient_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings falls back to ./hospitals.yaml: run in an empty directory.
    monkeypatch.chdir(tmp_path)


def hospital(hospital_id: str = "h1", title: str = "Hospital One", **db: Any) -> dict[str, Any]:
    """A YAML hospital entry; keyword arguments are ``db`` keys."""
    return {"id": hospital_id, "name": title, "db": {"host": "db.example.org", "user": "reader", **db}}


def write_yaml(tmp_path: Path, data: Any, name: str = "hospitals.yaml", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    path.chmod(mode)
    return path


def env_hospital(n: int, hospital_id: str | None, **extra: str) -> dict[str, str]:
    env = {f"HOSPITAL_{n}_NAME": f"Hospital {n}", f"HOSPITAL_{n}_DB_HOST": f"db{n}.example.org"}
    env[f"HOSPITAL_{n}_DB_USER"] = "reader"
    if hospital_id is not None:
        env[f"HOSPITAL_{n}_ID"] = hospital_id
    env.update({f"HOSPITAL_{n}_{k}": v for k, v in extra.items()})
    return env


def config_error(*args: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(*args, **kwargs)
    return info.value


def password_error(hospitals: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        check_passwords(list(hospitals))
    return info.value


def problem_matching(exc: ConfigError, prefix: str) -> str:
    matches = [p for p in exc.problems if p.startswith(prefix)]
    assert matches, f"no problem starts with {prefix!r}: {exc.problems}"
    return matches[0]


class TestDefaults:
    def test_nothing_configured(self) -> None:
        settings = load_settings(None, environ={})
        assert settings.hospitals == []
        assert settings.sync.batch_size == 1000
        assert settings.sync.interval_minutes == 5
        assert settings.database_name == "patientpassport" == DEFAULT_DATABASE
        assert settings.source_path is None

    def test_empty_yaml_file_is_the_defaults(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, "")
        settings = load_settings(path, environ={})
        assert settings.hospitals == []
        assert settings.source_path == path

    def test_config_path_from_the_environment(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"hospitals": [hospital("from-env-path")]}, name="elsewhere.yaml")
        settings = load_settings(None, environ={"PASSPORT_SYNC_CONFIG": str(path)})
        assert [h.id for h in settings.hospitals] == ["from-env-path"]
        assert settings.source_path == path

    def test_hospitals_yaml_in_the_working_directory(self, tmp_path: Path) -> None:
        write_yaml(tmp_path, {"hospitals": [hospital("cwd")]})
        assert [h.id for h in load_settings(None, environ={}).hospitals] == ["cwd"]


class TestYaml:
    def test_full_hospital(self, tmp_path: Path) -> None:
        path = write_yaml(
            tmp_path,
            {
                "sync": {"batch_size": 200, "locale": "fr"},
                "hospitals": [
                    {
                        "id": "kch",
                        "name": "Kigali Central",
                        "enabled": False,
                        "timezone": "Africa/Kigali",
                        "db": {
                            "host": "10.0.0.5",
                            "port": 3307,
                            "name": "openmrs_kch",
                            "user": "ro",
                            "password": PASSWORD,
                        },
                    }
                ],
            },
        )
        settings = load_settings(path, environ={})
        (h,) = settings.hospitals
        assert (h.id, h.name, h.enabled, h.timezone) == ("kch", "Kigali Central", False, "Africa/Kigali")
        assert (h.db.host, h.db.port, h.db.name, h.db.user) == ("10.0.0.5", 3307, "openmrs_kch", "ro")
        assert h.db.resolved_password().get_secret_value() == PASSWORD
        assert settings.enabled_hospitals() == []
        assert (settings.sync.batch_size, settings.sync.locale) == (200, "fr")

    def test_merge_keys_are_allowed(self, tmp_path: Path) -> None:
        text = (
            "hospitals:\n"
            "  - id: h1\n"
            "    name: Hospital One\n"
            "    db: &shared\n"
            "      host: db.example.org\n"
            "      user: reader\n"
            "      name: openmrs1\n"
            "  - id: h2\n"
            "    name: Hospital Two\n"
            "    db:\n"
            "      <<: *shared\n"
            "      name: openmrs2\n"
        )
        settings = load_settings(write_yaml(tmp_path, text), environ={})
        assert [(h.id, h.db.host, h.db.user, h.db.name) for h in settings.hospitals] == [
            ("h1", "db.example.org", "reader", "openmrs1"),
            ("h2", "db.example.org", "reader", "openmrs2"),
        ]

    def test_duplicate_keys_are_an_error_with_their_line(self, tmp_path: Path) -> None:
        text = "hospitals:\n  - id: h1\n    name: One\n    id: h2\n    db: {host: a, user: b}\n"
        exc = config_error(write_yaml(tmp_path, text), environ={})
        (problem,) = exc.problems
        assert "duplicate key 'id'" in problem
        assert "line 4" in problem

    def test_duplicate_top_level_keys_are_an_error(self, tmp_path: Path) -> None:
        text = "sync:\n  batch_size: 10\nsync:\n  batch_size: 20\n"
        exc = config_error(write_yaml(tmp_path, text), environ={})
        assert "duplicate key 'sync'" in exc.problems[0]
        assert "line 3" in exc.problems[0]

    def test_malformed_yaml_names_the_line(self, tmp_path: Path) -> None:
        text = "sync:\n  batch_size: 10\nhospitals: [\n  - id: h1\n  name: : x\n"
        path = write_yaml(tmp_path, text)
        exc = config_error(path, environ={})
        (problem,) = exc.problems
        assert problem.startswith(f"{path}: line ")
        line = int(problem.split("line ", 1)[1].split(",", 1)[0])
        assert 3 <= line <= 6
        assert "fix the YAML syntax" in problem

    def test_tab_indentation_names_the_line(self, tmp_path: Path) -> None:
        exc = config_error(write_yaml(tmp_path, "sync:\n\tbatch_size: 10\n"), environ={})
        assert "line 2, column 1" in exc.problems[0]

    def test_top_level_must_be_a_mapping(self, tmp_path: Path) -> None:
        exc = config_error(write_yaml(tmp_path, "- id: h1\n"), environ={})
        assert "top level must be a mapping" in exc.problems[0]

    def test_missing_file(self, tmp_path: Path) -> None:
        exc = config_error(tmp_path / "nope.yaml", environ={})
        assert "file not found" in exc.problems[0]

    def test_hospitals_must_be_a_list(self, tmp_path: Path) -> None:
        exc = config_error(write_yaml(tmp_path, {"hospitals": {"id": "h1"}}), environ={})
        problem_matching(exc, "hospitals: must be a list")

    def test_read_yaml_returns_the_mapping(self, tmp_path: Path) -> None:
        assert read_yaml(write_yaml(tmp_path, "a: 1\nb: [x, y]\n")) == {"a": 1, "b": ["x", "y"]}


class TestEnvironment:
    @pytest.mark.parametrize("numbers", [[1], [2], [7], [12], [1, 2, 7, 12]])
    def test_numbered_hospitals(self, numbers: list[int]) -> None:
        environ: dict[str, str] = {}
        for n in numbers:
            environ.update(env_hospital(n, f"hosp-{n}", DB_PORT=str(3300 + n), DB_NAME=f"openmrs{n}"))
        settings = load_settings(None, environ=environ)
        assert [h.id for h in settings.hospitals] == [f"hosp-{n}" for n in numbers]
        for n, h in zip(numbers, settings.hospitals, strict=True):
            assert h.name == f"Hospital {n}"
            assert h.db.host == f"db{n}.example.org"
            assert h.db.port == 3300 + n
            assert h.db.name == f"openmrs{n}"
            assert h.db.user == "reader"

    def test_hospitals_are_ordered_by_number_not_text(self) -> None:
        environ = {**env_hospital(12, "twelve"), **env_hospital(2, "two"), **env_hospital(10, "ten")}
        assert [h.id for h in load_settings(None, environ=environ).hospitals] == ["two", "ten", "twelve"]

    def test_password_and_enabled(self) -> None:
        environ = env_hospital(1, "h1", DB_PASSWORD=PASSWORD, ENABLED="false")
        (h,) = load_settings(None, environ=environ).hospitals
        assert h.db.resolved_password().get_secret_value() == PASSWORD
        assert h.enabled is False

    def test_env_overrides_the_yaml_hospital_with_the_same_id(self, tmp_path: Path) -> None:
        path = write_yaml(
            tmp_path,
            {"hospitals": [hospital("h1", port=3307, name="openmrs_yaml"), hospital("h2", title="Hospital Two")]},
        )
        environ = {"HOSPITAL_1_ID": "h1", "HOSPITAL_1_DB_HOST": "env-host", "HOSPITAL_1_NAME": "Renamed"}
        settings = load_settings(path, environ=environ)
        assert [h.id for h in settings.hospitals] == ["h1", "h2"]
        h1 = settings.hospitals[0]
        assert (h1.name, h1.db.host) == ("Renamed", "env-host")
        # Keys the environment does not set keep their YAML values.
        assert (h1.db.port, h1.db.name, h1.db.user) == (3307, "openmrs_yaml", "reader")

    def test_env_hospital_with_a_new_id_is_added_after_the_yaml_ones(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1")]})
        settings = load_settings(path, environ=env_hospital(1, "h9"))
        assert [h.id for h in settings.hospitals] == ["h1", "h9"]
        assert settings.hospitals[0].db.host == "db.example.org"

    def test_group_without_an_id_is_an_error_naming_the_variable(self) -> None:
        environ = {**env_hospital(1, "h1"), **env_hospital(3, None)}
        exc = config_error(None, environ=environ)
        problem = problem_matching(exc, "HOSPITAL_3_ID:")
        assert "not set" in problem
        assert not any(p.startswith("HOSPITAL_1") for p in exc.problems)

    def test_two_groups_with_the_same_id_are_an_error(self) -> None:
        environ = {**env_hospital(1, "same"), **env_hospital(2, "same")}
        exc = config_error(None, environ=environ)
        problem = problem_matching(exc, "HOSPITAL_2_ID:")
        assert "duplicate hospital id 'same'" in problem
        assert "HOSPITAL_1_ID" in problem

    def test_sync_variables(self) -> None:
        environ = {"OPENMRS_MAX_RECORDS": "250", "OPENMRS_SYNC_INTERVAL": "15", "OPENMRS_DETAILED_LOGS": "true"}
        sync = load_settings(None, environ=environ).sync
        assert (sync.batch_size, sync.interval_minutes, sync.detailed_logs) == (250, 15, True)

    def test_medical_history_links_are_off_unless_the_yaml_or_the_environment_opts_in(self, tmp_path: Path) -> None:
        assert load_settings(None, environ={}).sync.medical_history_links is False
        on = write_yaml(tmp_path, {"sync": {"medical_history_links": True}})
        assert load_settings(on, environ={}).sync.medical_history_links is True
        variable = {"PASSPORT_SYNC_MEDICAL_HISTORY_LINKS": "false"}
        assert load_settings(on, environ=variable).sync.medical_history_links is False
        assert load_settings(None, environ={"PASSPORT_SYNC_MEDICAL_HISTORY_LINKS": "true"}).sync.medical_history_links
        exc = config_error(None, environ={"PASSPORT_SYNC_MEDICAL_HISTORY_LINKS": "sometimes"})
        assert problem_matching(exc, "PASSPORT_SYNC_MEDICAL_HISTORY_LINKS:").endswith(
            "(environment variable; sync.medical_history_links in the YAML file)"
        )

    def test_env_beats_yaml_for_sync(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"sync": {"batch_size": 10, "locale": "fr"}})
        sync = load_settings(path, environ={"OPENMRS_MAX_RECORDS": "250"}).sync
        assert (sync.batch_size, sync.locale) == (250, "fr")

    def test_invalid_batch_size_names_the_setting(self) -> None:
        exc = config_error(None, environ={"OPENMRS_MAX_RECORDS": "0"})
        assert problem_matching(exc, "OPENMRS_MAX_RECORDS:").endswith(
            "(environment variable; sync.batch_size in the YAML file)"
        )

    @pytest.mark.parametrize(
        ("uri", "database"),
        [
            ("mongodb://mongo.example.org:27017/passport_prod", "passport_prod"),
            ("mongodb://u:p@mongo.example.org/passport_prod?authSource=admin", "passport_prod"),
            ("mongodb+srv://u:p@cluster0.example.net/?retryWrites=true", "patientpassport"),
            ("mongodb://mongo.example.org:27017", "patientpassport"),
            ("mongodb://mongo.example.org:27017/", "patientpassport"),
        ],
    )
    def test_mongodb_uri_and_database_name(self, uri: str, database: str) -> None:
        settings = load_settings(None, environ={"MONGODB_URI": uri})
        assert settings.mongodb.uri.get_secret_value() == uri
        assert settings.database_name == database
        assert mongo_database_name(uri) == database

    def test_mongodb_uri_beats_yaml_and_empty_is_ignored(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"mongodb": {"uri": "mongodb://yaml-host/yamldb"}})
        assert load_settings(path, environ={"MONGODB_URI": "mongodb://env-host/envdb"}).database_name == "envdb"
        assert load_settings(path, environ={"MONGODB_URI": ""}).database_name == "yamldb"

    def test_unrelated_variables_are_ignored(self) -> None:
        environ = {"HOSPITAL_X_ID": "x", "HOSPITAL_1_COLOUR": "red", "PATH": "/usr/bin", "HOSPITALS": "3"}
        assert load_settings(None, environ=environ).hospitals == []


class TestOverrides:
    def test_overrides_beat_env_and_yaml(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"sync": {"batch_size": 10, "locale": "fr"}})
        environ = {"OPENMRS_MAX_RECORDS": "250", "OPENMRS_SYNC_INTERVAL": "15"}
        sync = load_settings(path, environ=environ, overrides={"sync": {"batch_size": 7}}).sync
        assert sync.batch_size == 7
        # A nested override changes only the keys it names.
        assert (sync.interval_minutes, sync.locale) == (15, "fr")

    def test_override_of_the_mongodb_uri(self) -> None:
        settings = load_settings(
            None, environ={"MONGODB_URI": "mongodb://env/envdb"}, overrides={"mongodb": {"uri": "mongodb://cli/clidb"}}
        )
        assert settings.database_name == "clidb"

    def test_overrides_replace_the_hospital_list(self) -> None:
        settings = load_settings(None, environ=env_hospital(1, "env-h"), overrides={"hospitals": [hospital("cli-h")]})
        assert [h.id for h in settings.hospitals] == ["cli-h"]


class TestProblems:
    def test_unknown_keys(self, tmp_path: Path) -> None:
        h = hospital("h1")
        h["db"]["hots"] = "typo"
        path = write_yaml(tmp_path, {"mongodbb": {}, "sync": {"batchsize": 3}, "hospitals": [h]})
        exc = config_error(path, environ={})
        for key in ("mongodbb", "sync.batchsize", "hospitals[0].db.hots"):
            assert "unknown key" in problem_matching(exc, f"{key}:")

    def test_missing_required_keys(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"hospitals": [{"id": "h1", "db": {"host": "x"}}]})
        exc = config_error(path, environ={})
        assert "required" in problem_matching(exc, "hospitals[0].name:")
        assert "required" in problem_matching(exc, "hospitals[0].db.user:")

    def test_every_problem_is_reported_at_once(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"sync": {"batch_size": 0}, "hospitals": [{"id": "h1", "name": "One"}]})
        environ = env_hospital(4, None)
        exc = config_error(path, environ=environ)
        problem_matching(exc, "HOSPITAL_4_ID:")
        problem_matching(exc, "sync.batch_size:")
        problem_matching(exc, "hospitals[0].db:")
        for problem in exc.problems:
            assert f"  - {problem}" in str(exc)

    def test_duplicate_hospital_ids_in_yaml(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1"), hospital("h2"), hospital("h1")]})
        exc = config_error(path, environ={})
        problem = problem_matching(exc, "hospitals[2].id:")
        assert "duplicate hospital id 'h1'" in problem
        assert "hospitals[0]" in problem

    def test_invalid_hospital_id(self, tmp_path: Path) -> None:
        exc = config_error(write_yaml(tmp_path, {"hospitals": [hospital("bad id!")]}), environ={})
        problem_matching(exc, "hospitals[0].id:")

    def test_invalid_category_override(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"sync": {"categories": {"classes": {"Finding": "diagnosis"}}}})
        exc = config_error(path, environ={})
        problem_matching(exc, "sync.categories.classes.Finding:")


class TestSecretsNeverInMessages:
    def test_env_password_next_to_an_invalid_port(self) -> None:
        environ = env_hospital(1, "h1", DB_PASSWORD=PASSWORD, DB_PORT="not-a-port")
        exc = config_error(None, environ=environ)
        problem_matching(exc, "HOSPITAL_1_DB_PORT:")
        assert PASSWORD not in str(exc)
        assert "not-a-port" not in str(exc)

    def test_yaml_password_next_to_an_out_of_range_port(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1", password=PASSWORD, port=70000)]})
        exc = config_error(path, environ={})
        problem_matching(exc, "hospitals[0].db.port:")
        assert PASSWORD not in str(exc)

    def test_password_of_the_wrong_type(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1", password=987654321012)]})
        exc = config_error(path, environ={})
        problem_matching(exc, "hospitals[0].db.password:")
        assert "987654321012" not in str(exc)

    def test_password_with_another_password_source(self, tmp_path: Path) -> None:
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1", password=PASSWORD, password_env="DB_PW")]})
        exc = config_error(path, environ={})
        assert "set only one of password, password_env" in problem_matching(exc, "hospitals[0].db:")
        assert PASSWORD not in str(exc)

    def test_mongodb_password_next_to_an_invalid_timeout(self) -> None:
        uri = f"mongodb://admin:{PASSWORD}@mongo.example.org/pp"
        exc = config_error(
            None, environ={"MONGODB_URI": uri}, overrides={"mongodb": {"server_selection_timeout_ms": 1}}
        )
        problem_matching(exc, "mongodb.server_selection_timeout_ms:")
        assert PASSWORD not in str(exc)

    def test_settings_repr_hides_passwords(self) -> None:
        settings = load_settings(
            None,
            environ={**env_hospital(1, "h1", DB_PASSWORD=PASSWORD), "MONGODB_URI": f"mongodb://a:{PASSWORD}@h/db"},
        )
        assert PASSWORD not in repr(settings)
        assert PASSWORD not in str(settings.model_dump())


class TestPasswordSources:
    def test_password_env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PASSPORT_SYNC_UNIT_DB_PW", PASSWORD)
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1", password_env="PASSPORT_SYNC_UNIT_DB_PW")]})
        (h,) = load_settings(path, environ={}).hospitals
        assert h.db.resolved_password().get_secret_value() == PASSWORD

    def test_missing_password_env_names_the_variable(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("PASSPORT_SYNC_UNIT_MISSING_PW", raising=False)
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1", password_env="PASSPORT_SYNC_UNIT_MISSING_PW")]})
        exc = password_error(load_settings(path, environ={}).hospitals)
        (problem,) = exc.problems
        assert problem.startswith("hospitals[h1].db.password_env:")
        assert "PASSPORT_SYNC_UNIT_MISSING_PW" in problem
        assert "not set" in problem

    @pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
    def test_password_file_without_its_line_ending(self, tmp_path: Path, ending: str) -> None:
        secret = tmp_path / "db-password"
        secret.write_bytes(f"{PASSWORD}{ending}".encode())
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1", password_file=str(secret))]})
        (h,) = load_settings(path, environ={}).hospitals
        assert h.db.resolved_password().get_secret_value() == PASSWORD

    def test_password_file_keeps_inner_and_leading_spaces(self, tmp_path: Path) -> None:
        secret = tmp_path / "db-password"
        secret.write_text(" two words \n", encoding="utf-8")
        db = DatabaseConfig(host="h", user="u", password_file=secret)
        assert db.resolved_password().get_secret_value() == " two words "

    def test_password_file_under_credentials_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "h1").write_text(PASSWORD + "\n", encoding="utf-8")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        db = DatabaseConfig(host="h", user="u", password_file=Path("$CREDENTIALS_DIRECTORY/h1"))
        assert db.resolved_password().get_secret_value() == PASSWORD

    def test_unreadable_password_file(self, tmp_path: Path) -> None:
        missing = tmp_path / "absent"
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1", password_file=str(missing))]})
        exc = password_error(load_settings(path, environ={}).hospitals)
        (problem,) = exc.problems
        assert problem.startswith("hospitals[h1].db.password_file: cannot read")
        assert str(missing) in problem

    def test_only_the_selected_hospitals_need_their_credentials(self, tmp_path: Path) -> None:
        # A per-hospital systemd unit holds only its own credential file.
        own = tmp_path / "h1-password"
        own.write_text(PASSWORD, encoding="utf-8")
        path = write_yaml(
            tmp_path,
            {
                "hospitals": [
                    hospital("h1", password_file=str(own)),
                    hospital("h2", password_file=str(tmp_path / "h2-password-absent"), name="openmrs_h2"),
                ]
            },
        )
        h1, h2 = load_settings(path, environ={}).hospitals
        check_passwords([h1])
        (problem,) = password_error([h1, h2]).problems
        assert problem.startswith("hospitals[h2].db.password_file: cannot read")

    def test_no_password_is_empty(self) -> None:
        assert DatabaseConfig(host="h", user="u").resolved_password().get_secret_value() == ""


class TestWorldReadableWarnings:
    @pytest.mark.parametrize("mode", [0o644, 0o604])
    def test_inline_password_in_a_world_readable_file_warns(self, tmp_path: Path, mode: int) -> None:
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1", password=PASSWORD)]}, mode=mode)
        warnings: list[str] = []
        load_settings(path, environ={}, warnings=warnings)
        (warning,) = warnings
        assert f"run 'chmod o-rwx {path}' (0640 with the service user's group is fine)" in warning
        assert PASSWORD not in warning

    @pytest.mark.parametrize("mode", [0o600, 0o640])
    def test_a_file_only_owner_and_group_read_does_not_warn(self, tmp_path: Path, mode: int) -> None:
        # 0640 root:passport-sync is how the installer lets the service user read it.
        path = write_yaml(tmp_path, {"hospitals": [hospital("h1", password=PASSWORD)]}, mode=mode)
        warnings: list[str] = []
        load_settings(path, environ={}, warnings=warnings)
        assert warnings == []

    def test_readable_file_without_inline_password_does_not_warn(self, tmp_path: Path) -> None:
        raw = {"hospitals": [hospital("h1", password_file="/run/credentials/x"), hospital("h2")]}
        path = write_yaml(tmp_path, raw, mode=0o644)
        assert world_readable_secret_warnings(path, raw) == []

    def test_mongodb_password_in_a_world_readable_file_warns(self, tmp_path: Path) -> None:
        raw = {"mongodb": {"uri": f"mongodb://sync:{PASSWORD}@mongo.example.org/pp"}}
        (warning,) = world_readable_secret_warnings(write_yaml(tmp_path, raw, mode=0o644), raw)
        assert "holds the MongoDB password" in warning and PASSWORD not in warning
        assert world_readable_secret_warnings(write_yaml(tmp_path, raw, mode=0o640), raw) == []
        no_password = {"mongodb": {"uri": "mongodb://mongo.example.org/pp"}}
        assert world_readable_secret_warnings(write_yaml(tmp_path, no_password, mode=0o644), no_password) == []

    def test_world_readable_password_file_warns(self, tmp_path: Path) -> None:
        secret = tmp_path / "central-db-password"
        secret.write_text(PASSWORD)
        raw = {"hospitals": [hospital("h1", password_file=str(secret))]}
        config = write_yaml(tmp_path, raw, mode=0o600)
        secret.chmod(0o644)
        (warning,) = world_readable_secret_warnings(config, raw)
        assert f"{secret} (password_file of hospital h1) is readable by every user" in warning
        secret.chmod(0o640)
        assert world_readable_secret_warnings(config, raw) == []

    def test_helper_directly(self, tmp_path: Path) -> None:
        raw = {"hospitals": [hospital("h1"), hospital("h2", password=PASSWORD)]}
        assert len(world_readable_secret_warnings(write_yaml(tmp_path, raw, mode=0o644), raw)) == 1
        assert world_readable_secret_warnings(tmp_path / "missing.yaml", raw) == []


class TestRedactUri:
    @pytest.mark.parametrize(
        ("uri", "redacted"),
        [
            (
                "mongodb://admin:s3cret@mongo.example.org:27017/pp?authSource=admin",
                "mongodb://***@mongo.example.org:27017/pp?authSource=admin",
            ),
            ("mongodb+srv://admin:s3cret@cluster0.example.net/pp", "mongodb+srv://***@cluster0.example.net/pp"),
            ("mongodb://admin@mongo.example.org/pp", "mongodb://***@mongo.example.org/pp"),
            ("mongodb://a:b@h1:27017,h2:27017/pp?replicaSet=rs0", "mongodb://***@h1:27017,h2:27017/pp?replicaSet=rs0"),
            ("mongodb://mongo.example.org:27017/pp", "mongodb://mongo.example.org:27017/pp"),
        ],
    )
    def test_credentials_are_removed(self, uri: str, redacted: str) -> None:
        assert redact_uri(uri) == redacted

    @pytest.mark.parametrize("password", ["p@ss", "pa/ss", "pa:ss?x", "a@b/c@d"])
    def test_unescaped_characters_in_the_password_never_leak(self, password: str) -> None:
        # redact_uri is used for the URIs pymongo rejects, typically for such passwords.
        uri = f"mongodb://admin:{password}@mongo.example.org/pp"
        redacted = redact_uri(uri)
        assert password not in redacted
        assert "admin" not in redacted
        assert redacted == "mongodb://***@mongo.example.org/pp"

    def test_without_a_scheme(self) -> None:
        assert redact_uri("admin:s3cret@mongo.example.org") == "<unparseable uri>"


def test_settings_are_frozen() -> None:
    settings = load_settings(None, environ={})
    assert isinstance(settings, Settings)
    with pytest.raises(ValueError, match="frozen"):
        setattr(settings, "hospitals", [])
