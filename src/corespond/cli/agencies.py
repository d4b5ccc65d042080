"""corespond agencies: the names CAD uses, their home counties, how matching treats them."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import load_settings, out, run_in_session
from corespond.config import Settings

app = typer.Typer(help="Agencies: the names CAD uses and their home counties.")


@app.command("add")
def agencies_add(
    name: Annotated[str, typer.Argument(help="The agency as CAD names it, e.g. 'BLUEFIELD PD'.")],
    county: Annotated[str, typer.Option(help="Home county: name ('Mercer') or FIPS (54055).")],
    ori: Annotated[str | None, typer.Option(help="NCIC Originating Agency Identifier.")] = None,
    auto_request: Annotated[
        bool,
        typer.Option(
            "--auto-request/--no-auto-request",
            help="Offer a peer on eligible calls at once, without a dispatcher asking.",
        ),
    ] = False,
    scene_gate: Annotated[
        bool,
        typer.Option(
            "--scene-gate/--no-scene-gate",
            help="Peers wait for the scene to be reported secure (off: peers ride with the "
            "officer).",
        ),
    ] = True,
) -> None:
    """Register an agency and its home county (where its calls are placed when nothing
    else says where they are)."""
    from corespond.agencies.service import add_agency, configure
    from corespond.geo.service import geography_for

    async def work(session: AsyncSession, settings: Settings) -> str:
        atlas = geography_for(tuple(settings.geo_states)).atlas
        agency, home = await add_agency(session, atlas, name=name, county=county, ori=ori)
        await configure(session, agency.name, auto_request=auto_request, scene_gate=scene_gate)
        return f"{agency.name}: home county {home.name} ({home.fips}); {_matching(agency)}"

    out.print(run_in_session(work, ("agency.create", name)), markup=False)


def _matching(agency: Any) -> str:
    requests = "automatic peer requests" if agency.auto_request else "requests by dispatcher"
    gate = "scene gate on" if agency.scene_gate else "scene gate off (peers ride along)"
    return f"{requests}, {gate}"


@app.command("configure")
def agencies_configure(
    name: Annotated[str, typer.Argument(help="The agency, by name or ORI.")],
    auto_request: Annotated[
        bool | None,
        typer.Option(
            "--auto-request/--no-auto-request",
            help="Offer a peer on eligible calls at once, without a dispatcher asking.",
            show_default=False,
        ),
    ] = None,
    scene_gate: Annotated[
        bool | None,
        typer.Option(
            "--scene-gate/--no-scene-gate",
            help="Peers wait for the scene to be reported secure before going en route.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Change how matching treats an agency's calls (only the options given change)."""
    from corespond.agencies.service import configure

    async def work(session: AsyncSession, settings: Settings) -> str:
        agency = await configure(session, name, auto_request=auto_request, scene_gate=scene_gate)
        return f"{agency.name}: {_matching(agency)}"

    out.print(run_in_session(work, ("agency.configure", name)), markup=False)


@app.command("list")
def agencies_list() -> None:
    """List registered agencies with their home counties."""
    from corespond.agencies.service import list_agencies

    async def work(session: AsyncSession, settings: Settings) -> list[tuple[str, ...]]:
        return [
            (a.name, a.ori or "-", a.home_county_fips, _matching(a))
            for a in await list_agencies(session)
        ]

    from corespond.geo.service import geography_for

    atlas = geography_for(tuple(load_settings().geo_states)).atlas
    table = Table("agency", "ORI", "home county", "FIPS", "matching")
    for name, ori, fips, matching in run_in_session(work):
        county = atlas.by_fips.get(fips)
        table.add_row(name, ori, county.name if county else "?", fips, matching)
    (out if out.is_terminal else Console(width=240)).print(table)
