"""The hub's access-token signing key: an Ed25519 JWK of its own, never the log key (a
leaked token key must not let anyone sign checkpoints, nor the reverse). Made on first
start if the file is absent, readable by the hub's user only."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from ..errors import ConfigError


@dataclass(frozen=True)
class TokenKey:
    key: OKPKey
    kid: str

    def public_jwks(self) -> dict[str, object]:
        public = self.key.as_dict(private=False)
        public.update({"kid": self.kid, "use": "sig", "alg": "Ed25519"})
        return {"keys": [public]}


def load_or_create_token_key(path: Path) -> TokenKey:
    if not path.exists():
        key = OKPKey.generate_key("Ed25519", private=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(key.as_dict(private=True), out)
    try:
        key = OKPKey.import_key(json.loads(path.read_text()))
    except (OSError, ValueError, JoseError) as exc:
        raise ConfigError(f"the token key {path} is unusable: {exc}") from None
    if not key.is_private:
        raise ConfigError(f"the token key {path} holds no private key")
    return TokenKey(key, key.thumbprint())
