"""The web service behind ``sse-screen serve``: a FastAPI app built by :func:`create_app`, and the page at ``/``.

Routes only translate HTTP to the pure functions the CLI calls (:func:`screening.rank.rank_candidates`,
:func:`screening.predict.predict_table`, :func:`screening.table_io.read_candidates`); models are loaded once, in the
lifespan hook, into ``app.state``. CPU-heavy work runs in worker threads so ``/health`` answers while a long list is
ranked. Every error a client can cause is a JSON ``{"detail": "..."}`` with a status code (401/403/413/415/422); an
unexpected failure is a 500 with a reference number, its traceback only in the server log.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

import anyio
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from sse_screen.screening.api_io import (
    PredictRequest,
    RankOptionsIn,
    RankRequest,
    VariantsRequest,
    check_input_columns,
    dataframe_response,
    generate_variants,
    multipart_schema,
    read_request_table,
    validate_options,
)
from sse_screen.screening.settings import Settings

log = logging.getLogger("sse_screen.api")
STATIC_DIR = Path(__file__).resolve().parent / "static"


class BodyLimit:
    """ASGI middleware: a request body above ``max_bytes`` gets 413 (by Content-Length, or while streaming)."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"the request body is larger than the limit of {self.max_bytes:,} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            event = await receive()
            seen += len(event.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(status_code=413, detail=message)
            return event

        await self.app(scope, limited_receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    models: dict[str, Any] | None = None,
    cards: dict[str, dict] | None = None,
) -> FastAPI:
    """Build the web service (no app exists at import time).

    Args:
        settings: Models, limits and API token; defaults to :meth:`Settings.from_env`.
        models: Already loaded models (task -> model); by default they are loaded from ``settings.model_uris`` in
            the lifespan hook, once, before the first request.
        cards: What ``GET /api/models`` says about each model (:func:`screening.model_card.model_card`, built from
            the bundle's metadata); missing cards are built from the models themselves (no training date, no
            validation metrics).

    Returns:
        The FastAPI app: page at ``/``, API under ``/api``, ``/health``, OpenAPI at ``/openapi.json``.
    """
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from sse_screen.screening.model_card import load_served_models, model_card
        from sse_screen.screening.predict import PREDICT_TASKS

        given = dict(cards or {})
        if models is None:
            loaded, given = await anyio.to_thread.run_sync(load_served_models, dict(settings.model_uris), PREDICT_TASKS)
            app.state.models = loaded
        else:
            app.state.models = dict(models)

        def all_cards() -> dict[str, dict]:
            return {t: given.get(t) or model_card(t, m) for t, m in app.state.models.items()}

        app.state.cards = await anyio.to_thread.run_sync(all_cards)
        await anyio.to_thread.run_sync(_warm_up, app.state.models)  # element tables, reference hull: once, now
        app.state.limiter = anyio.CapacityLimiter(settings.max_parallel_jobs)
        log.info("models loaded: %s", "; ".join(f"{t}: {d}" for t, d in _describe(app).items()))
        yield

    app = FastAPI(
        title="sse-screen",
        summary="Rank solid-state electrolyte candidates: stability, conductivity, band gap, cost, with reasons.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    auth = [Depends(_check_token)]

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/health", summary="Liveness: answers while rankings run")
    async def health(request: Request) -> dict:
        return {"status": "ok", "models": sorted(getattr(request.app.state, "models", {}))}

    @app.get("/api/models", dependencies=auth, summary="Which models are served, their versions and metrics")
    async def list_models(request: Request) -> dict:
        """Per model: name, version, alias, origin, bundle SHA-256, training date and metrics grouped by where they
        come from (``cross_validation``, ``validation``, ``test``; see :mod:`screening.model_card`). No server paths.
        """
        return {"models": list(request.app.state.cards.values())}

    @app.get("/api/options", dependencies=auth, summary="Default ranking options and objective weights")
    async def options() -> dict:
        from sse_screen.screening.ranking import DEFAULT_OBJECTIVES

        defaults = RankOptionsIn().model_dump()
        defaults["weights"] = {o.name: o.weight for o in DEFAULT_OBJECTIVES}
        return {"defaults": defaults, "objectives": [dataclasses.asdict(o) for o in DEFAULT_OBJECTIVES]}

    @app.post("/api/rank", dependencies=auth, openapi_extra=_body_doc(RankRequest), summary="Rank candidates")
    async def rank(request: Request, format: Literal["json", "csv"] = Query("json")) -> Response:
        """Predict, check, score and order candidates: the columns of ``sse-screen rank``, best first.

        Send JSON ``{"formulas": [...], ...options}`` or a multipart form with ``file`` (CSV/TSV/TXT/Parquet or
        zip of CIFs) and optional ``options`` (the same options as a JSON object). Rows that cannot be used are
        kept with ``status`` = ``invalid``/``rejected`` and a ``reason``; they never fail the request.
        """
        from sse_screen.screening.mobile_ion import mobile_ion_notice
        from sse_screen.screening.rank import RankOptions, rank_candidates

        async with read_request_table(request, RankRequest, settings) as candidates:
            options = RankOptions(**candidates.parsed.model_dump(exclude={"formulas"}))
            await anyio.to_thread.run_sync(validate_options, options)
            check_input_columns(candidates.table, request.app.state.models, ranking=True)
            job = partial(rank_candidates, candidates.table, request.app.state.models, options=options)
            result = candidates.tidy(await _run(request, job))
        notices = [n for n in (mobile_ion_notice(options.mobile_ion),) if n]
        return dataframe_response(
            result, format=format, filename="ranked.csv", models=_describe(request.app), notices=notices
        )

    @app.post("/api/rank-variants", dependencies=auth, summary="Generate the variants of parents and rank them")
    async def rank_variants(
        request: Request, body: VariantsRequest, format: Literal["json", "csv"] = Query("json")
    ) -> Response:
        """``sse-screen rank --generate``: doped and substituted variants of ``parents`` (the parents included), ranked.

        The generated columns (``move``, ``parent``, ``dopant_fraction``, ``plausibility``, ``known_as``, ...) come
        with the ranking's; a parent that cannot be used is a row with its reason. At most ``max_rows`` rows.
        """
        from sse_screen.screening.mobile_ion import mobile_ion_notice
        from sse_screen.screening.rank import RankOptions, rank_candidates

        fields = set(VariantsRequest.model_fields) - set(RankOptionsIn.model_fields)
        options = RankOptions(**body.model_dump(exclude=fields))
        await anyio.to_thread.run_sync(validate_options, options)
        table = await _run(request, partial(generate_variants, body, options, settings.max_rows))
        job = partial(rank_candidates, table, request.app.state.models, options=options)
        result = await _run(request, job)
        notices = [n for n in (mobile_ion_notice(options.mobile_ion),) if n]
        return dataframe_response(
            result, format=format, filename="variants-ranked.csv", models=_describe(request.app), notices=notices
        )

    @app.post("/api/predict", dependencies=auth, openapi_extra=_body_doc(PredictRequest), summary="Predict only")
    async def predict(request: Request, format: Literal["json", "csv"] = Query("json")) -> Response:
        """Every prediction column of ``sse-screen predict`` for JSON ``{"formulas": [...]}`` or an uploaded file."""
        from sse_screen.screening.predict import predict_table

        async with read_request_table(request, PredictRequest, settings) as candidates:
            check_input_columns(candidates.table, request.app.state.models, ranking=False)
            job = partial(predict_table, candidates.table, request.app.state.models)
            result = candidates.tidy(await _run(request, job))
        return dataframe_response(result, format=format, filename="predicted.csv", models=_describe(request.app))

    _add_job_routes(app, settings, auth)
    return app


def _add_job_routes(app: FastAPI, settings: Settings, auth: list) -> None:
    """``POST /api/jobs``, ``GET /api/jobs/{id}`` and its result (:mod:`screening.jobs`)."""

    opening = threading.Lock()

    def store(request: Request) -> Any:
        with opening:  # one store per app, however many first requests arrive at once
            if getattr(request.app.state, "jobs", None) is None:  # the first job request opens the records
                from sse_screen.screening.jobs import JobStore

                request.app.state.jobs = JobStore(settings.home_folder(), max_running=settings.max_running_jobs)
        return request.app.state.jobs

    def token(request: Request) -> str | None:
        return request.headers.get("authorization", "").partition(" ")[2].strip() if settings.api_token else None

    @app.post(
        "/api/jobs", dependencies=auth, status_code=202, openapi_extra=_body_doc(RankRequest), summary="Rank as a job"
    )
    async def submit_job(request: Request) -> dict:
        """The inputs of ``POST /api/rank``; answers at once with the job's id and URL (status 202)."""
        from sse_screen.screening.rank import RankOptions

        async with read_request_table(request, RankRequest, settings) as candidates:
            if candidates.upload is not None or "cif_path" in candidates.table.columns:
                raise HTTPException(422, "jobs take formula lists; rank a zip of CIFs with POST /api/rank")
            options = RankOptions(**candidates.parsed.model_dump(exclude={"formulas"}))
            await anyio.to_thread.run_sync(validate_options, options)
            check_input_columns(candidates.table, request.app.state.models, ranking=True)
            jobs = await anyio.to_thread.run_sync(store, request)
            submit = partial(jobs.submit, candidates.table, request.app.state.models, options, token=token(request))
            job = await anyio.to_thread.run_sync(submit)
        return {"id": job, "status": "queued", "url": f"/api/jobs/{job}"}

    @app.get("/api/jobs/{job}", dependencies=auth, summary="A job's status and progress")
    async def job_status(request: Request, job: str) -> dict:
        """Status (queued, running, done, failed, expired), ``n_rows``/``done_rows``, times, and ``result_url``."""
        jobs = await anyio.to_thread.run_sync(store, request)
        record = await anyio.to_thread.run_sync(partial(jobs.get, job, token=token(request)))
        if record is None:
            raise HTTPException(404, f"no job {job!r}")
        if record["status"] == "done":
            record["result_url"] = f"/api/jobs/{job}/result"
        return record

    @app.get("/api/jobs/{job}/result", dependencies=auth, summary="A finished job's ranking (CSV, Parquet, JSON)")
    async def job_result(request: Request, job: str, format: Literal["csv", "parquet", "json"] = "csv") -> Response:
        jobs = await anyio.to_thread.run_sync(store, request)
        table = await anyio.to_thread.run_sync(partial(jobs.result, job, token=token(request)))
        if table is None:
            record = await anyio.to_thread.run_sync(partial(jobs.get, job, token=token(request)))
            if record is None:
                raise HTTPException(404, f"no job {job!r}")
            raise HTTPException(409, f"job {job} has no result: it is {record['status']} {record['error']}".strip())
        if format == "parquet":
            body = table.to_parquet(index=False)
            disposition = {"Content-Disposition": 'attachment; filename="ranked.parquet"'}
            return Response(body, media_type="application/vnd.apache.parquet", headers=disposition)
        return dataframe_response(table, format=format, filename="ranked.csv", models=_describe(request.app))


def _body_doc(model: type) -> dict:
    """OpenAPI of a route that takes JSON (``model``) or a multipart upload, and of its error answers."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": model.model_json_schema()},
                "multipart/form-data": {"schema": multipart_schema()},
            },
        },
        "responses": {
            "413": {"description": "Body or row count over the limit"},
            "415": {"description": "Neither JSON nor a multipart upload"},
            "422": {"description": "Malformed JSON, bad options, or a file that is not a candidate list"},
        },
    }


async def _run(request: Request, job: Any) -> Any:
    """Run CPU-heavy work in a worker thread (at most ``max_parallel_jobs`` at once).

    Client problems were answered (4xx) before the work starts; anything raised here, a ``ValueError`` included,
    is the server's: a 500 with a reference number and the traceback in the log.
    """
    return await anyio.to_thread.run_sync(job, limiter=request.app.state.limiter)


def _warm_up(models: dict) -> None:
    import pandas as pd

    from sse_screen.screening.rank import rank_candidates

    rank_candidates(pd.DataFrame({"formula": ["Li3PS4"]}), models)


def _check_token(request: Request) -> None:
    token = request.app.state.settings.api_token
    if not token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise HTTPException(
            401, "this API needs a token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"}
        )
    if not secrets.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(403, "the API token is not valid")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        return JSONResponse({"detail": f"invalid request: {text}", "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        reference = uuid.uuid4().hex[:12]
        log.error("internal error %s on %s %s", reference, request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": f"internal error (reference {reference}); the server log has the details"}, status_code=500
        )


def _describe(app: FastAPI) -> dict[str, str]:
    """Task -> one line about the model (name, version, training date, bundle hash); no server paths."""
    return {task: card["description"] for task, card in app.state.cards.items()}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sse-screen")
    except PackageNotFoundError:
        return "0"


def serve(host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None) -> None:
    """Serve the app with uvicorn until interrupted (what ``sse-screen serve`` calls).

    Raises:
        models.registry.ModelNotFoundError: A model could not be loaded (before anything is served).

    Args:
        host: Interface to bind; 127.0.0.1 unless the service should be reachable from other machines.
        port: TCP port.
        settings: Service settings; defaults to :meth:`Settings.from_env`.
    """
    import uvicorn

    from sse_screen.screening.model_card import load_served_models
    from sse_screen.screening.predict import PREDICT_TASKS

    settings = settings or Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Loaded here, before uvicorn starts, so that a missing model is one clear error (ModelNotFoundError) for the
    # CLI rather than a failed ASGI start-up with a traceback in the log.
    models, cards = load_served_models(dict(settings.model_uris), PREDICT_TASKS)
    app = create_app(settings, models=models, cards=cards)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=10)
