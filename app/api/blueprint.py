"""The Blueprint every `/api/v1` resource uses.

Its parser turns JSON nested past Python's recursion limit, and an integer literal longer than
Python converts (4,300 digits), into an ordinary "invalid JSON" 422: no request body, however
malformed, may produce a 500.
"""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser


class JsonParser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None
        except ValueError:  # int() refuses a literal of more than sys.get_int_max_str_digits()
            raise json.JSONDecodeError("A number has too many digits", "", 0) from None


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = JsonParser()
