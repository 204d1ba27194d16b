"""The TokenResolver port: raw user-tokens resolved by the auth service."""

import httpx

from schemas.access import INTERNAL_KEY_HEADER
from schemas.users import TokenIntrospection, User, plausible_token


class AuthServiceTokens:
    """Resolves raw user-tokens through the auth service's introspection endpoint."""

    PATH = "/internal/tokens/introspect"

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, internal_key: str | None = None
    ) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + self.PATH
        self._headers = {INTERNAL_KEY_HEADER: internal_key} if internal_key else {}

    async def resolve(self, token: str) -> User | None:
        if not plausible_token(token):
            return None
        response = await self._client.post(self._url, json={"token": token}, headers=self._headers)
        response.raise_for_status()  # auth unreachable or failing: retry the activation later
        answer = TokenIntrospection.model_validate_json(response.content)
        return answer.user if answer.active else None
