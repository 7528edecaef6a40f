"""The schema head the start-up check compares with is Alembic's own head."""

from alembic.script import ScriptDirectory

from gitward.storage.database import MIGRATIONS_DIR, SCHEMA_HEAD, alembic_config


def test_schema_head_is_the_newest_migration():
    config = alembic_config("sqlite://")
    assert str(MIGRATIONS_DIR)
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_HEAD]
