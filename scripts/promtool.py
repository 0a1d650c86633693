"""promtool, which checks and unit-tests the Prometheus alert rules: from Debian's `prometheus`
package, installed when missing and we are root (its server is not started).

Stdlib only, like scripts/servers.py.

    python -m scripts.promtool      # prints promtool's path, installing the package if needed
"""

from __future__ import annotations

import shutil
import sys

from scripts.servers import apt_install


def ensure_promtool() -> str:
    """promtool's path. Raises RuntimeError with a one-line message of what to install otherwise."""
    found = shutil.which("promtool")
    if found:
        return found
    apt_install("--no-install-recommends prometheus", "promtool")
    found = shutil.which("promtool")
    if not found:
        raise RuntimeError("promtool still not on PATH after apt-get install prometheus")
    return found


def main() -> int:
    try:
        print(ensure_promtool())
    except RuntimeError as error:
        print(f"promtool: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
