"""Request and response translation for the web service: JSON bodies and uploads in, tables out.

Uploads take the same code path as the CLI: the file is written to a private temporary folder under its own suffix
and read by :func:`screening.table_io.read_candidates`; results are written by the same spreadsheet-safe CSV writer.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal

import anyio
import pandas as pd
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from sse_screen.screening.settings import Settings

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".zip")
#: Columns ``sse-screen rank`` adds besides the prediction and known-composition columns.
RANK_ADDED_COLUMNS = ("input_row", "stability_drivers", "conductivity_drivers")


class RankOptionsIn(BaseModel):
    """Ranking options (all optional); the same as ``sse-screen rank``'s."""

    model_config = ConfigDict(extra="forbid")

    mobile_ion: str = Field("Li", pattern=r"^[A-Z][a-z]?$", description="Element every candidate must contain")
    exclusions: dict[str, str] | None = Field(
        None, description="Excluded element -> category for the reason; null: radioactive, toxic and noble gases"
    )
    max_e_hull_ev_per_atom: FiniteFloat | None = Field(None, description="Reject above this E_hull, eV/atom")
    min_band_gap_ev: FiniteFloat | None = Field(None, description="Reject below this band gap, eV")
    max_cost_usd_per_kg: FiniteFloat | None = Field(None, description="Reject above this element cost, USD/kg")
    weights: dict[str, FiniteFloat] = Field(
        default_factory=dict, description="Objective (stability, conductivity, band_gap, cost) -> weight >= 0"
    )
    mode: Literal["mean", "optimistic", "pessimistic"] = "mean"
    order_by: Literal["score", "pareto"] = "score"
    explain: bool = Field(True, description="Add the features that drove each ranked row's predictions")
    predict_rejected: bool = Field(
        False, description="Send rows that fail the cheap checks through the models too (default: not predicted)"
    )


Formulas = Annotated[
    list[str | None],
    Field(min_length=1, description="Candidate formulas; bad ones are reported per row, never failing the request"),
]


class RankRequest(RankOptionsIn):
    """JSON body of ``POST /api/rank``."""

    formulas: Formulas


class VariantsRequest(RankOptionsIn):
    """JSON body of ``POST /api/rank-variants``: parents to generate from (:mod:`screening.generate`), then rank."""

    parents: list[str] = Field(min_length=1, max_length=50, description="Parent formulas, e.g. ['Li6PS5Cl']")
    fractions: list[FiniteFloat] | None = Field(None, description="Fractions of a site given to a dopant, in (0, 1)")
    max_candidates: int | None = Field(None, ge=1, description="Keep the N most plausible variants")
    dopants: list[str] | None = Field(None, description="Allow-list of dopant elements")
    dopants_per_site: int | None = Field(None, ge=1, le=100, description="Replacement ions tried per site")


class PredictOptionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(PredictOptionsIn):
    """JSON body of ``POST /api/predict``."""

    formulas: Formulas


OPTIONS_OF: dict[type[BaseModel], type[BaseModel]] = {RankRequest: RankOptionsIn, PredictRequest: PredictOptionsIn}


def multipart_schema() -> dict:
    """OpenAPI schema of the upload form."""
    return {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "description": "Candidate list: .csv/.tsv/.parquet with a formula column, .txt (one formula per "
                "line) or .zip of CIF files",
            },
            "options": {"type": "string", "description": "Options as a JSON object (the JSON body without formulas)"},
            "formula_column": {"type": "string", "description": "Name of the formula column (default: formula)"},
        },
    }


@dataclass
class Candidates:
    """A request's candidate table, its validated options and how to show the uploaded file's name to the client.

    Attributes:
        table: Candidate table (``formula``, and ``cif_path`` for a zip of CIFs).
        parsed: The validated options (and formulas, for JSON bodies).
        upload: ``(path on the server, name the client gave it)`` of an uploaded zip, else None.
    """

    table: pd.DataFrame
    parsed: BaseModel
    upload: tuple[Path, str] | None = None

    def tidy(self, result: pd.DataFrame) -> pd.DataFrame:
        """Name CIFs inside an uploaded zip as ``<uploaded name>:<member>``, never by a server path."""
        if self.upload is None:
            return result
        path, name = self.upload
        result = result.copy()
        for column in ("cif_path", "error", "reason", "warnings"):  # CIF errors name the zip they come from
            if column in result.columns:
                text = result[column].astype(str).str.replace(f"{path}:", f"{name}:", regex=False)
                result[column] = text.str.replace(f"{path.name}:", f"{name}:", regex=False)
        return result


def unprocessable(message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=message)


def parse_json(body: bytes, *, what: str = "request body") -> Any:
    """Decode strict JSON (no NaN/Infinity, valid UTF-8, no lone surrogates) or raise 422 naming the problem."""
    if not body.strip():
        raise unprocessable(f'the {what} is empty; send a JSON object such as {{"formulas": ["Li3PS4"]}}')

    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        data = json.loads(body.decode("utf-8"), parse_constant=no_constant)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # a lone surrogate ("\ud800") is not text
    except UnicodeError as exc:
        raise unprocessable(f"the {what} is not valid UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise unprocessable(
            f"malformed JSON in the {what}: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise unprocessable(f"malformed JSON in the {what}: {exc}") from None
    return data


def validate(model: type[BaseModel], data: Any, *, what: str) -> BaseModel:
    if not isinstance(data, dict):
        raise unprocessable(f"the {what} must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None


@asynccontextmanager
async def read_request_table(request: Request, model: type[BaseModel], settings: Settings) -> AsyncIterator[Candidates]:
    """Read a JSON body or a multipart upload into a candidate table; the uploaded file lives for the block only.

    Raises:
        HTTPException: 413 (too many rows), 415 (content type), 422 (malformed JSON, bad options, unreadable file).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    with tempfile.TemporaryDirectory(prefix="sse-screen-upload-") as folder:
        if content_type == "application/json":
            parsed = validate(model, parse_json(await request.body()), what="request body")
            formulas = [("" if f is None else f.strip()) for f in parsed.formulas]  # type: ignore[attr-defined]
            candidates = Candidates(pd.DataFrame({"formula": pd.Series(formulas, dtype=object)}), parsed)
        elif content_type == "multipart/form-data":
            candidates = await _read_upload(request, model, Path(folder))
        else:
            raise HTTPException(
                status_code=415,
                detail="send JSON (Content-Type: application/json) or a file upload (multipart/form-data)",
            )
        if len(candidates.table) > settings.max_rows:
            raise HTTPException(
                status_code=413,
                detail=f"{len(candidates.table):,} candidates is more than the limit of {settings.max_rows:,} "
                "per request; split the list",
            )
        yield candidates  # the upload (a zip's CIFs are read from it) lives until the response is built


async def _read_upload(request: Request, model: type[BaseModel], folder: Path) -> Candidates:
    from sse_screen.screening.table_io import InputError, read_candidates

    try:
        form = await request.form(max_files=1, max_fields=10)
    except StarletteHTTPException as exc:  # Starlette's multipart parser reports problems as 400
        if exc.status_code != 400:
            raise
        raise unprocessable(f"malformed multipart upload: {exc.detail}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise unprocessable("the upload form needs a 'file' field holding the candidate list")
    options = form.get("options") or "{}"
    column = form.get("formula_column") or "formula"
    if not isinstance(options, str) or not isinstance(column, str):
        raise unprocessable("'options' and 'formula_column' must be text fields, not files")
    parsed = validate(
        OPTIONS_OF[model], parse_json(options.encode("utf-8", "replace"), what="options field"), what="options field"
    )
    filename = (upload.filename or "upload").encode("utf-8", "replace").decode("utf-8")
    name = PurePath(filename.replace("\\", "/")).name or "upload"
    suffix = PurePath(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise unprocessable(
            f"{name}: unsupported file type {suffix or '(none)'!r}; upload .csv, .tsv, .txt, .parquet or a .zip of CIFs"
        )
    path = folder / f"upload{suffix}"
    with path.open("wb") as out:
        await anyio.to_thread.run_sync(shutil.copyfileobj, upload.file, out)
    try:
        table = await anyio.to_thread.run_sync(partial(read_candidates, path, formula_column=column))
    except InputError as exc:
        raise unprocessable(str(exc).replace(str(path), name).replace(str(folder), name)) from None
    if suffix == ".zip":
        return Candidates(table, parsed, upload=(path, name))
    if "cif_path" in table.columns:
        raise unprocessable(
            f"{name}: a cif_path column cannot point at files on the server; upload the CIFs as a .zip instead"
        )
    return Candidates(table, parsed)


def check_input_columns(table: pd.DataFrame, models: Mapping[str, Any], *, ranking: bool) -> None:
    """Raise 422 if the client's table has a column the results would add (``status``, ``error``, ...).

    Checked before the work starts, so that a ``ValueError`` raised later is the server's problem (500), not the
    client's.
    """
    from sse_screen.screening.known import KNOWN_COLUMNS
    from sse_screen.screening.predict import prediction_columns
    from sse_screen.screening.ranking import OUTPUT_COLUMNS

    reserved = {*prediction_columns(models), *KNOWN_COLUMNS}
    if ranking:
        reserved |= {*OUTPUT_COLUMNS, *RANK_ADDED_COLUMNS}
    clashes = sorted(reserved & {str(c) for c in table.columns})
    if clashes:
        raise unprocessable(f"the input has column(s) that the results add: {', '.join(clashes)}; rename or drop them")


def validate_options(options: Any) -> None:
    """Raise 422 for options the checks or the scoring would refuse (unknown element, unknown objective, ...)."""
    from sse_screen.screening.checks import run_checks
    from sse_screen.screening.ranking import active_objectives

    try:
        run_checks(["LiCl"], config=options.check_config())
        active_objectives(pd.DataFrame(), weights=dict(options.weights))
    except ValueError as exc:
        raise unprocessable(f"invalid options: {exc}") from None


def finite(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dataframe_response(
    table: pd.DataFrame, *, format: str, filename: str, models: Mapping[str, str], notices: Sequence[str] = ()
) -> Response:
    """The result table as JSON (``{"columns", "summary", "models", "notices", "rows"}``, NaN -> null) or a CSV
    download (the notices are then in the rows, e.g. ``conductivity_model``)."""
    from sse_screen.screening.table_io import neutralise_csv_cells

    if format == "csv":
        text = neutralise_csv_cells(table).to_csv(index=False)
        return Response(
            text.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    summary: dict[str, int] = {"rows": len(table)}
    if "status" in table.columns:
        summary.update({str(k): int(v) for k, v in table["status"].value_counts().items()})
    if "error" in table.columns:
        summary["errors"] = int((table["error"] != "").sum())
    clean = table.replace([math.inf, -math.inf], math.nan)
    head = json.dumps(
        {"columns": [str(c) for c in table.columns], "summary": summary, "models": dict(models), "notices": [*notices]}
    )
    rows = clean.to_json(orient="records", double_precision=10, default_handler=str)
    return Response(f'{head[:-1]}, "rows": {rows}}}'.encode(), media_type="application/json")


def generate_variants(body: VariantsRequest, options: Any, max_rows: int) -> pd.DataFrame:
    """The candidates of ``POST /api/rank-variants`` (:func:`screening.generate.generate_candidates`), at most
    ``max_rows`` rows; bad generation options are a 422."""
    from sse_screen.screening.generate import DEFAULT_DOPANTS_PER_SITE, DEFAULT_FRACTIONS, generate_candidates

    budget = max(max_rows - len(body.parents), 1)
    try:
        return generate_candidates(
            body.parents,
            fractions=DEFAULT_FRACTIONS if body.fractions is None else body.fractions,
            max_candidates=min(body.max_candidates or budget, budget),
            dopants=body.dopants,
            exclude=options.exclusions,
            mobile_ion=options.mobile_ion,
            dopants_per_site=body.dopants_per_site or DEFAULT_DOPANTS_PER_SITE,
        )
    except ValueError as exc:
        raise unprocessable(f"invalid generation options: {exc}") from None
