"""Where the source checkout is: the repository files some commands read or regenerate.

Generated documentation, the capacity plan, the Kubernetes manifests and the concept catalog's code
references live in the repository, not in the state folder, so they are found from this package's
own location rather than from the working directory. ``Settings.project_dir`` is different: it is
where a run reads params.yaml and writes state, and it may be any folder.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
