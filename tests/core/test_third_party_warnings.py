"""Known third-party noise is silenced, even behind Airflow's own "show deprecations" filter; nothing else is."""

from __future__ import annotations

import warnings

import pytest

from runai_extract.core.third_party_warnings import silence_known_noise

AIRFLOW_MODULE = "airflow._shared.module_loading.file_discovery"
GITWILDMATCH = (
    "GitWildMatchPattern ('gitwildmatch') is deprecated. Use 'gitignore' for GitIgnoreBasicPattern "
    "or GitIgnoreSpecPattern instead."
)


def _emit(message: str, category: type[Warning], module: str) -> None:
    warnings.warn_explicit(message, category, filename="file_discovery.py", lineno=106, module=module)


def test_known_noise_is_silenced_after_airflows_filter() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("error")
        # What importing airflow.configuration does: show DeprecationWarnings from airflow.*.
        warnings.filterwarnings("default", category=DeprecationWarning, module="airflow")
        silence_known_noise()
        _emit(GITWILDMATCH, DeprecationWarning, AIRFLOW_MODULE)
    assert seen == []


def test_other_warnings_still_show() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        silence_known_noise()
        with pytest.raises(DeprecationWarning, match="something else"):
            _emit("something else is deprecated", DeprecationWarning, AIRFLOW_MODULE)
        with pytest.raises(UserWarning, match="GitWildMatchPattern"):
            _emit(GITWILDMATCH, UserWarning, AIRFLOW_MODULE)  # same text, another category
