"""The per-kind org views are one definition written out for every kind of ORG_KINDS."""

from __future__ import annotations

from pathlib import Path

import pytest

from runai_extract.core.errors import ConfigError
from transforms.orgunits import ORG_KINDS
from warehouse.models import SQL_DIR, load_models


def test_every_org_kind_gets_its_source_history_and_current_view_from_one_file_each() -> None:
    models = {model.name: model for model in load_models()}
    for kind in ORG_KINDS.values():
        source = models[f"src_{kind.name}"]
        assert source.path == f"10_sources/src_{kind.name}.sql"
        assert f"{{{{ {kind.name}_files }}}}" in source.template
        assert source.description.startswith(
            f"One row per observed version of an org unit of one kind ({kind.name})"
        )
        history = models[f"{kind.name}_history"]
        assert history.path == f"22_org_history/{kind.name}_history.sql"
        assert f"inner join src_{kind.name} as units" in history.template
        assert f"units.{kind.id_column} = versions.unit_id" in history.template
        assert f"from {kind.name}_history" in models[kind.name].template
    per_kind = sorted(p.name for p in SQL_DIR.glob("*/*.per_org_kind"))
    assert per_kind == [
        "src_{kind}.sql.per_org_kind",
        "{kind}.sql.per_org_kind",
        "{kind}_history.sql.per_org_kind",
    ]


def test_a_per_kind_file_whose_view_is_not_named_by_kind_is_refused(tmp_path: Path) -> None:
    layer = tmp_path / "23_org"
    layer.mkdir()
    (layer / "{kind}.sql.per_org_kind").write_text("-- why\ncreate or replace view orgs as select 1\n")
    with pytest.raises(ConfigError, match="defines orgs, but the file name says clusters"):
        load_models(tmp_path)
