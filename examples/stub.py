"""A stand-in for the customer-notification service the example flow calls.

    python examples/stub.py --port 8089

POST /notify records a notification; GET /notifications lists them (newest last).
"""

import argparse
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

received: list[dict[str, Any]] = []


async def notify(request: Request) -> Response:
    received.append(await request.json())
    del received[:-1000]
    return JSONResponse({"delivered": True}, status_code=202)


async def notifications(request: Request) -> Response:
    return JSONResponse(received)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/notify", notify, methods=["POST"]),
        Route("/notifications", notifications),
        Route("/healthz", healthz),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
