"""corespond peers: signing peers in to the peer app on their phones."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import err, out, run_in_session
from corespond.clock import system_clock
from corespond.config import Settings

app = typer.Typer(help="Peers: signing them in to the peer app on their phones.")


@app.command("sign-in-link")
def peers_sign_in_link(
    peer_id: Annotated[str, typer.Argument(help="The peer's id (GET /v1/peers).")],
    base_url: Annotated[
        str, typer.Option(help="Where peers reach corespond, e.g. https://corespond.example.org")
    ] = "",
) -> None:
    """Print a one-time link that signs a peer in to the peer app (/peer) on their phone:
    valid 15 minutes, once. Send it to the peer's phone (or show it as a QR code)."""
    import uuid

    from corespond.auth.service import Principal
    from corespond.peerapp.service import create_link

    try:
        peer = uuid.UUID(peer_id)
    except ValueError:
        err.print(f"error: not a peer id: {peer_id!r}")
        raise typer.Exit(2) from None
    cli_admin = Principal(key_id=uuid.UUID(int=0), name="cli", role="admin", scope=None)

    async def work(session: AsyncSession, settings: Settings) -> str:
        link = await create_link(session, cli_admin, peer, system_clock())
        base = (base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        return (
            f"{base}/peer/sign-in?token={link.token}\n"
            f"for {link.peer.display_name}; works once, until {link.expires_at:%H:%M} UTC"
        )

    out.print(run_in_session(work, ("peer.sign_in_link", peer_id)), markup=False)
