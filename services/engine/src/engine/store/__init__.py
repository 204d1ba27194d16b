"""The engine's store on MongoDB 6+ (PyMongo's async API); the port is in `ports.py`.

One module per collection (or pair that changes together), composed into `MongoStore`.
One document per execution, changed only by a compare-and-set on `{_id, version}`. The
execution's wait lives on it in indexed fields (`waitTrigger`, `waitSince`, `waitKey`),
so beginning or ending a wait is part of that same single-document write. Outcomes and
idempotency keys are read and written by `_id`. User payloads (input, vars, results,
history) are stored as JSON text through `schemas.opaque`, so any JSON survives any
server. A resume by execution id costs 4 statements, a NO_WAITER decision 3
(`tests/integration/test_store_mongo.py` counts them); compare-and-sets made while
another is on its way are sent together (`grouped_saves.py`).
"""

from engine.store.buffer import BufferedActivations
from engine.store.dead_letters import DeadLetters
from engine.store.documents import execution_from_doc, execution_to_doc
from engine.store.executions import Executions
from engine.store.flows import Flows
from engine.store.outcomes import Outcomes
from engine.store.schema import OutdatedDatabase
from engine.store.secrets import Secrets


class MongoStore(Flows, Executions, Outcomes, BufferedActivations, Secrets, DeadLetters):
    """The Store on MongoDB 6+ (or the project's patched FerretDB)."""


__all__ = ["MongoStore", "OutdatedDatabase", "execution_from_doc", "execution_to_doc"]
