"""Prints the API's OpenAPI schema (what `npm run gen:api` turns into src/api/schema.d.ts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.main import create_app
from app.settings import Settings

app = create_app(Settings(database_url="sqlite://"))
json.dump(app.openapi(), sys.stdout, indent=1, sort_keys=True)
