"""Alembic migrations upgrade and downgrade on SQLite and PostgreSQL, keeping existing rows."""

from __future__ import annotations

from sqlalchemy import Connection, create_engine, inspect, text

from db.migrate import downgrade, upgrade


def _insert_job(conn: Connection, status: str) -> None:
    """Job 'j1' with the columns every revision has."""
    conn.execute(
        text(
            "INSERT INTO jobs (id, status, spec, warnings, algorithm, dataset, objective, "
            "direction, max_trials, trials_completed, trials_failed, trials_diverged, "
            "cancel_requested, attempts, created_at) VALUES ('j1', :status, '{}', '[]', "
            "'random', 'digits', 'val_accuracy', 'max', 3, 0, 0, 0, false, 1, "
            "CURRENT_TIMESTAMP)"
        ),
        {"status": status},
    )


def _insert_upload(conn: Connection, content: bytes) -> None:
    """Upload 'd1' with the columns of revision 0003."""
    conn.execute(
        text(
            "INSERT INTO uploaded_datasets (id, name, format, task, input_shape, n_features, "
            "n_classes, rows, summary, size_bytes, sha256, content, created_at) VALUES "
            "('d1', 'n', 'csv', 'binary', '[3]', 3, 2, 10, '{}', 5, 'x', :blob, "
            "CURRENT_TIMESTAMP)"
        ),
        {"blob": content},
    )


def test_0002_upgrades_a_0001_database_with_rows_and_downgrades(database_url: str) -> None:
    downgrade(database_url, "0001")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        _insert_job(conn, "running")
        conn.execute(
            text(
                "INSERT INTO trials (job_id, number, status, hyperparameters, epochs_run, "
                "started_at) VALUES ('j1', 0, 'completed', '{}', 2, CURRENT_TIMESTAMP)"
            )
        )
    upgrade(database_url)
    columns = {c["name"] for c in inspect(engine).get_columns("trials")}
    assert {"attempts", "worker", "heartbeat_at", "enqueued_at", "release_requested"} <= columns
    assert "trial_checkpoints" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        row = conn.execute(text("SELECT attempts, release_requested FROM trials")).one()
        assert (row.attempts, bool(row.release_requested)) == (0, False)
        conn.execute(
            text(
                "INSERT INTO trials (job_id, number, status, hyperparameters, epochs_run, "
                "attempts, release_requested) VALUES ('j1', 1, 'waiting', '{}', 0, 0, false)"
            )
        )
    downgrade(database_url, "0001")
    assert "trial_checkpoints" not in inspect(engine).get_table_names()
    with engine.begin() as conn:  # the trial that never started cannot exist in the old schema
        assert conn.execute(text("SELECT number FROM trials")).scalars().all() == [0]
    upgrade(database_url)
    engine.dispose()


def test_0003_adds_and_removes_uploaded_datasets(database_url: str) -> None:
    downgrade(database_url, "0002")
    engine = create_engine(database_url)
    assert "uploaded_datasets" not in inspect(engine).get_table_names()
    upgrade(database_url)
    columns = {c["name"] for c in inspect(engine).get_columns("uploaded_datasets")}
    assert {
        "id",
        "name",
        "format",
        "task",
        "input_shape",
        "summary",
        "content",
        "sha256",
    } <= columns
    with engine.begin() as conn:
        _insert_upload(conn, b"\x00\x01")
    downgrade(database_url, "0002")
    assert "uploaded_datasets" not in inspect(engine).get_table_names()
    upgrade(database_url)
    engine.dispose()


def test_0004_gives_existing_rows_to_the_open_mode_owner(database_url: str) -> None:
    downgrade(database_url, "0003")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        _insert_job(conn, "succeeded")
        _insert_upload(conn, b"\x00\x01\x02")
    upgrade(database_url)
    assert {"owners", "api_keys"} <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        assert conn.execute(text("SELECT owner FROM jobs")).scalar_one() == "local"
        row = conn.execute(text("SELECT owner, stored_bytes FROM uploaded_datasets")).one()
        assert (row.owner, row.stored_bytes) == ("local", 3)
    downgrade(database_url, "0003")
    assert "api_keys" not in inspect(engine).get_table_names()
    assert "owner" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
    with engine.begin() as conn:
        assert conn.execute(text("SELECT id FROM jobs")).scalar_one() == "j1"
    upgrade(database_url)
    engine.dispose()


def test_0005_adds_trial_leases_and_service_markers_keeping_trials(database_url: str) -> None:
    downgrade(database_url, "0004")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        _insert_job(conn, "running")
        conn.execute(
            text(
                "INSERT INTO trials (job_id, number, status, hyperparameters, epochs_run, "
                "attempts, worker, release_requested) "
                "VALUES ('j1', 0, 'running', '{}', 1, 1, 'h:1:2', false)"
            )
        )
    upgrade(database_url)
    assert "service_markers" in inspect(engine).get_table_names()
    with engine.begin() as conn:  # a trial running across the upgrade has no lease: the
        row = conn.execute(text("SELECT lease, worker FROM trials")).one()  # reaper takes it
        assert (row.lease, row.worker) == (None, "h:1:2")
    downgrade(database_url, "0004")
    assert "service_markers" not in inspect(engine).get_table_names()
    assert "lease" not in {c["name"] for c in inspect(engine).get_columns("trials")}
    with engine.begin() as conn:
        assert conn.execute(text("SELECT number FROM trials")).scalar_one() == 0
    upgrade(database_url)
    engine.dispose()
