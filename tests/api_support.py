"""Helpers for the web-service tests: small real model bundles and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import background_server, free_port

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0
SMALL = {"n_estimators": 20, "n_folds": 3, "max_depth": 4, "n_jobs": 2}
#: Formulas with known outcomes: good Li conductors, a row without Li, a toxic element, unparseable rows.
EXAMPLE_FORMULAS = ["Li3PS4", "Li7La3Zr2O12", "Li6PS5Cl", "Li3InCl6", "NaCl", "Li2PbO3", "Xx2O", "Li10GeP2S12"]


_STACK = contextlib.ExitStack()
_SERVERS: dict[tuple, str] = {}
_BUNDLES: dict[str, dict[str, str]] = {}
_CLEANUP: list[bool] = []


def model_uris_for_tests(config: pytest.Config) -> dict[str, str]:
    """Model URIs for the test servers: the shipped bundle of a task if there is one, else a small bundle trained
    once and kept in pytest's cache folder (retrained if it no longer loads, e.g. after a featurizer change)."""
    from sse_screen.models.property_model import PropertyModel

    if "uris" in _BUNDLES:
        return _BUNDLES["uris"]
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    root = cache.mkdir("sse-screen-api-bundles") if cache else _session_stack(config).enter_context(_temporary_folder())
    uris = build_bundles(root, only_missing=True)
    for task, path in uris.items():
        try:
            PropertyModel.load(path, task=task)
        except Exception:  # stale bundle: train it again
            shutil.rmtree(path, ignore_errors=True)
            build_bundles(root, only_missing=True)
    _BUNDLES["uris"] = uris
    return uris


def _session_stack(config: pytest.Config) -> contextlib.ExitStack:
    """Servers and temporary folders that live until the end of the test session."""
    if not _CLEANUP:
        config.add_cleanup(_STACK.close)
        _CLEANUP.append(True)
    return _STACK


@contextlib.contextmanager
def _temporary_folder() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sse-screen-api-bundles-") as folder:
        yield Path(folder)


def shared_server(config: pytest.Config, log_dir: Path, **env: str) -> str:
    """A real server for these settings, started once per test session and shared by the test modules."""
    key = tuple(sorted(env.items()))
    if key not in _SERVERS:
        uris = model_uris_for_tests(config)
        server = running_server(uris, log_dir / f"server-{len(_SERVERS)}.log", **env)
        _SERVERS[key] = _session_stack(config).enter_context(server)
    return _SERVERS[key]


def build_bundles(root: Path, *, only_missing: bool = False) -> dict[str, str]:
    """Train small stability and band-gap bundles once under ``root`` (reused if there); return task -> path.

    The conductivity model is the shipped one. The stability bundle leaves out the reference-hull features (no
    ``decomposition`` column): building that hull costs ~20 s per process, too much for three test servers.
    Training both took 1.5-2.5 min on 2 cores busy with other work; the bundles are then reused from the cache.
    """
    from sse_screen.features.datasets import load_mp_e_hull, load_mp_gap
    from sse_screen.models.persistence import SHIPPED_ROOT
    from sse_screen.models.property_model import PropertyModel

    meta = {"training_data_sha256": "0" * 64, "metrics": {}}
    uris = {}
    gap_dir, stab_dir = root / "band_gap", root / "stability"
    skip = {t for t in ("band_gap", "stability") if only_missing and (SHIPPED_ROOT / t / "metadata.json").exists()}
    if "band_gap" not in skip and not (gap_dir / "metadata.json").exists():
        gap = load_mp_gap(aggregate="median").sample(300, random_state=0)
        PropertyModel(task="band_gap", use_reference_hull=False, **SMALL).fit(
            gap["reduced_formula"], gap["band_gap_ev"]
        ).save(gap_dir, metadata=meta, overwrite=True)
    if "stability" not in skip and not (stab_dir / "metadata.json").exists():
        hull = load_mp_e_hull("train")
        hull = hull[hull["reduced_formula"].str.contains("Li")].sample(300, random_state=0)
        PropertyModel(task="stability", use_reference_hull=False, **SMALL).fit(
            hull["reduced_formula"], hull["e_hull_ev_per_atom"]
        ).save(stab_dir, metadata=meta, overwrite=True)
    for task, folder in (("band_gap", gap_dir), ("stability", stab_dir)):
        if task not in skip:
            uris[task] = str(folder)
    return uris


@contextlib.contextmanager
def running_server(model_uris: dict[str, str], log_path: Path, **env: str) -> Iterator[str]:
    """Start ``screening.api.serve`` in its own process (real uvicorn, 127.0.0.1, free port); yield its URL."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SSE_SCREEN_")}
    environment.update({f"SSE_SCREEN_{task.upper()}_MODEL_URI": uri for task, uri in model_uris.items()})
    environment.update(env)
    environment.setdefault("SSE_SCREEN_HOME", str(log_path.with_suffix("")) + "-home")  # job records: per server
    code = (
        "from screening.api import serve; from screening.settings import Settings; "
        f"serve('127.0.0.1', {port}, Settings.from_env())"
    )
    url = f"http://127.0.0.1:{port}"
    with background_server(
        [sys.executable, "-c", code], url=url, cwd=ROOT, env=environment, log_path=log_path, timeout_s=START_TIMEOUT_S
    ):
        yield url
