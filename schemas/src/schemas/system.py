"""`GET /api/automation/system`: what the whole deployment did over the last hour, as
positions on Kafka's topics (every gateway and every engine counted alike)."""

from pydantic import BaseModel, ConfigDict


class SystemSample(BaseModel):
    """Totals at one moment; the rates are the differences between samples."""

    model_config = ConfigDict(frozen=True)

    at: int  # epoch milliseconds
    accepted: int  # activations in Kafka: accepted callbacks, and those published to it
    decided: int  # of them, committed by the engines (decided); the lag is the difference
    refused: int  # callbacks the gateways refused (reports for the activation log)
    startsRequested: int  # start commands in Kafka
    started: int  # of them, committed by the engines
    deadLetters: int  # records given up on


class SystemFigures(BaseModel):
    model_config = ConfigDict(frozen=True)

    intervalSeconds: float
    samples: list[SystemSample]  # oldest first
