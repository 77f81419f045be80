"""Backup drills (issue 19): series of backups, their drills, and accepting a baseline."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from restorebox.api.deps import DrillsDep, PrincipalDep
from restorebox.api.schemas import DrillList, DrillOut, DrillSummary, SeriesList, SeriesOut
from restorebox.errors import Forbidden, InvalidRequest

router = APIRouter(tags=["drills"])


@router.get("/v1/series", response_model=SeriesList)
def list_series(drills: DrillsDep, _: PrincipalDep) -> SeriesList:
    """The backups folder's series (a backup name without its trailing timestamp), each
    with its last drill, its baseline and whether backups stopped arriving."""
    now = datetime.now(UTC)
    out = []
    for series in drills.series().values():
        last = drills.store.latest(series.name)
        baseline = drills.store.baseline(series.name)
        newest = series.newest
        out.append(
            SeriesOut(
                name=series.name,
                backups=[name for name, _ in series.backups],
                newest_at=newest[1] if newest else None,
                every_seconds=series.expected_interval(),
                stale=series.stale(now),
                last_drill=DrillSummary.of(last) if last else None,
                baseline=DrillSummary.of(baseline) if baseline else None,
            )
        )
    return SeriesList(series=out, drills_file_error=drills.config()[1])


@router.get("/v1/series/{name:path}/drills", response_model=DrillList)
def series_drills(name: str, drills: DrillsDep, _: PrincipalDep) -> DrillList:
    """The series' drills, newest first."""
    drills.one_series(name)
    return DrillList(drills=[DrillSummary.of(d) for d in drills.store.of_series(name)])


@router.post(
    "/v1/series/{name:path}/drills",
    response_model=DrillSummary,
    status_code=status.HTTP_202_ACCEPTED,
)
def drill_now(name: str, drills: DrillsDep, _: PrincipalDep) -> DrillSummary:
    """Drill the series' newest backup now (it runs in the background: follow it with
    GET /v1/drills/{id})."""
    return DrillSummary.of(drills.start(name))


@router.get("/v1/drills/{drill_id}", response_model=DrillOut)
def get_drill(drill_id: str, drills: DrillsDep, _: PrincipalDep) -> DrillOut:
    """A drill: verdict, findings, and the comparison (its facts and its baseline's)."""
    drill = drills.store.get(drill_id)
    baseline = drills.store.get(drill.baseline) if drill.baseline else None
    return DrillOut.full(drill, baseline)


@router.post("/v1/drills/{drill_id}/accept", response_model=DrillSummary)
def accept_drill(drill_id: str, drills: DrillsDep, principal: PrincipalDep) -> DrillSummary:
    """Make this drill its series' baseline (admins only): what it found is how the
    series is now meant to be."""
    if not principal.admin:
        raise Forbidden("only an admin may accept a drill as its series' baseline")
    drill = drills.store.get(drill_id)
    if drill.status != "done":
        raise InvalidRequest("a drill still running cannot become a baseline; wait for it")
    accepted = drill.model_copy(update={"accepted": True})
    drills.store.save(accepted)
    return DrillSummary.of(accepted)
