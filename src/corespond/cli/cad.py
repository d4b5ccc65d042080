"""Tools for CAD integrators: sign and post events as a CAD must, receive assignment
events as a CAD would."""

from __future__ import annotations

import binascii
import json
import os
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import typer
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from corespond.cli.common import err, out
from corespond.clock import system_clock

app = typer.Typer(help="Tools for CAD integrators.")


@app.command("send")
def cad_send(
    files: Annotated[list[Path], typer.Argument(help="JSON event file(s), sent in order.")],
    source: Annotated[str, typer.Option(help="CAD source id.")] = "demo-cad",
    url: Annotated[str, typer.Option(help="Base URL of corespond.")] = "http://127.0.0.1:8000",
    secret: Annotated[
        str | None,
        typer.Option(help="Signing secret (whsec_...); default $CORESPOND_CAD_SECRET."),
    ] = None,
) -> None:
    """Sign event files the way a CAD system must (Standard Webhooks) and post them."""
    secret = secret or os.environ.get("CORESPOND_CAD_SECRET")
    if not secret:
        err.print("[red]error:[/red] give --secret or set CORESPOND_CAD_SECRET")
        raise typer.Exit(2)
    signer = webhook(secret)
    failed = False
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in files:
            try:
                body = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                err.print(f"[red]error:[/red] {path}: {getattr(exc, 'strerror', None) or exc}")
                raise typer.Exit(2) from None
            try:
                response = _post_signed(client, source, body, signer)
            except httpx.HTTPError as exc:
                err.print(f"[red]error:[/red] cannot reach {url}: {exc}")
                raise typer.Exit(2) from None
            failed |= response.is_error
            out.print(f"{path}: {response.status_code}")
            try:
                out.print_json(json.dumps(response.json()))
            except ValueError:
                out.print(response.text)
    if failed:
        raise typer.Exit(1)


def webhook(secret: str) -> Webhook:
    """A signer/verifier for a ``whsec_`` secret, or exit 2 saying what is wrong with it."""
    if not secret.startswith("whsec_"):
        err.print("[red]error:[/red] the secret is not a whsec_ secret")
        raise typer.Exit(2)
    try:
        return Webhook(secret)
    except (ValueError, binascii.Error, EmptyWebhookSecretError) as exc:
        err.print(f"[red]error:[/red] the secret is not a whsec_ base64 secret ({exc})")
        raise typer.Exit(2) from None


def _post_signed(client: httpx.Client, source: str, body: str, signer: Webhook) -> httpx.Response:
    message_id = f"msg_{uuid.uuid4().hex}"
    now = system_clock()
    return client.post(
        f"/v1/cad/{source}/events",
        content=body.encode(),
        headers={
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(message_id, now, body),
        },
    )


def dispatch_sink(
    secret: Annotated[
        str,
        typer.Option(
            envvar="CORESPOND_CAD_SECRET", help="The CAD source's whsec_ secret to verify with."
        ),
    ],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9100,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    fail_first: Annotated[
        int, typer.Option(min=0, help="Answer 503 to this many first deliveries (see retries).")
    ] = 0,
) -> None:
    """Receive assignment events like a CAD would: verify each signature (Standard
    Webhooks) and print what dispatch would see. Point a source at it with
    `corespond sources set-callback SOURCE http://127.0.0.1:9100/`."""
    import uvicorn

    from corespond.dispatch.sink import sink_app

    webhook(secret)
    out.print(f"listening on http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(
        sink_app(secret, fail_first=fail_first, say=lambda line: out.print(line, markup=False)),
        host=host,
        port=port,
        log_level="warning",
    )
