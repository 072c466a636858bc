"""Demo ``cloud-equivalents``: SageMaker, Vertex AI and Azure ML features beside the component here.

Concept: cloud equivalents (C53). The demo prints the map in ``lab/cloud_map.py``, one capability
per row with each platform's widely known product name and our file, checks that every local path
exists, and names what we did not build, if anything, and why. The
product names are kept generic on purpose; a blank means we make no claim, not that none exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.cloud_map import CLOUD_MAP, check_cloud_map

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator


def run(n: Narrator, ctx: LabContext) -> None:

    n.title("Cloud equivalents: the same capabilities, under managed names", "C53")

    n.step("Capability by capability: SageMaker, Vertex AI, Azure ML, and what does it here")
    n.table(
        "cloud map (lab/cloud_map.py); '-' = no claim made",
        ["capability", "SageMaker", "Vertex AI", "Azure ML", "here"],
        [[r.capability, r.sagemaker or "-", r.vertex or "-", r.azure or "-", r.ours] for r in CLOUD_MAP],
    )
    n.why("the capability transfers between clouds and to open source; the brand name does not")

    n.step("Every local component checked: the files and symbols must exist")
    problems = check_cloud_map(CLOUD_MAP, ctx.settings.project_dir)
    built = [r for r in CLOUD_MAP if r.built]
    for r in built:
        n.say(f"{r.capability}: {', '.join(r.local)}")
    if problems:
        for p in problems:
            n.bad(p)
    else:
        n.ok(f"{len(built)} of {len(CLOUD_MAP)} capabilities built here, every path exists")
    n.code("lab/cloud_map.py::check_cloud_map", "lab/refs.py")

    n.step("Not built, said plainly")
    missing = [r for r in CLOUD_MAP if not r.built]
    for r in missing:
        n.say(f"{r.capability}: {r.ours}")
    if not missing:
        n.ok("every capability in the map has a component here (a row without one would say 'not built: why')")
