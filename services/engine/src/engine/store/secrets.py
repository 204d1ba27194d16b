"""Triggers' signing secrets, sealed (`signing_secrets`)."""

from pymongo.errors import DuplicateKeyError

from engine.ports import TriggerSecrets
from engine.store.schema import Collections
from schemas.sealing import SealedSecret


class Secrets(Collections):
    """Triggers' signing secrets, sealed (`signing_secrets`)."""

    async def save_secrets(self, flow_id: str, trigger_id: str, secrets: TriggerSecrets) -> bool:
        body = {
            "flowId": flow_id,
            "version": secrets.version,
            "secrets": [s.model_dump(mode="json") for s in secrets.secrets],
        }
        if secrets.version == 1:
            try:
                await self._secrets.insert_one({"_id": trigger_id, **body})
            except DuplicateKeyError:
                return False
            return True
        result = await self._secrets.update_one(
            {"_id": trigger_id, "version": secrets.version - 1}, {"$set": body}
        )
        return result.modified_count == 1

    async def secrets_of(self, flow_id: str) -> dict[str, TriggerSecrets]:
        return {
            doc["_id"]: TriggerSecrets(
                doc["version"], tuple(SealedSecret.model_validate(s) for s in doc["secrets"])
            )
            async for doc in self._secrets.find({"flowId": flow_id})
        }
