"""Demo ``blue-green``: preview the idle slot, switch all traffic at once, switch back just as fast.

Concept: blue-green deployment (C22) as runtime configuration (C27). Two slots each name a registry
alias (blue = champion, green = challenger); the *active* slot serves everyone. Both models are
loaded and warm, so the switch is one new routing state written to the shared store with
compare-and-swap: a worker sees the old state or the new one, never a mix, and every worker picks it
up on its next poll. Before the switch, the green slot is previewed with the ``X-Force-Arm`` header
(smoke tests, a QA team) while users stay on blue: an operator's header, sent with the admin token
(anyone else gets 401), and logged as ``forced`` so the preview never counts in an analysis of the
live traffic. Switching back is the same one-step operation,
which is the point: the rollback path is tested every time you switch.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab.demos.prep import ensure_champion
from lab.demos.traffic import ensure_challenger, running_service, users
from serving.router import switch_slot

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.demos.traffic import Traffic
    from lab.narrate import Narrator


def _slot_rows(traffic: Traffic, slots: dict[str, str]) -> list[list[object]]:
    by_alias = {alias: slot for slot, alias in slots.items()}
    body_versions: dict[str, str] = {b["arm"]: b["model_version"] for b in traffic.bodies}
    return [
        [by_alias.get(arm, "-"), arm, f"v{body_versions[arm]}", count, f"{traffic.share(arm):.0%}"]
        for arm, count in sorted(traffic.arms.items())
    ]


def run(n: Narrator, ctx: LabContext) -> None:
    """Blue serves, green is previewed, the switch moves everyone, the switch-back moves them home."""
    n.title("Blue-green: two warm slots, one atomic switch", "C22 blue-green · C27 runtime config")
    n.step("Two slots: blue = champion, green = challenger; blue is live")
    ensure_champion(ctx, n)
    columns = ["slot", "alias", "version", "requests", "share"]
    with running_service(ctx) as service:
        if ensure_challenger(ctx, n) is None:
            return
        service.refresh()
        slots = {"blue": "champion", "green": "challenger"}
        state = service.route(strategy="blue_green", slots=slots, active_slot="blue")
        people = users("bg-user", 100)
        live = service.send(people, seed=1, feedback=False)
        n.table(
            f"100 users, routing state v{state.version}: active slot {state.active_slot}",
            columns,
            _slot_rows(live, slots),
        )
        n.why("both models are loaded and warm in every worker; only the routing state says which one answers")

        n.step("Preview green with the X-Force-Arm header (operators only: it needs the admin token)")
        anonymous = service.send(users("qa", 1), seed=2, feedback=False, headers={"X-Force-Arm": "green"})
        n.ok(f"without the admin token the preview is refused ({anonymous.failed}/1 refused, 401)")
        qa = {"X-Force-Arm": "green", **service.admin}
        preview = service.send(users("qa", 10), seed=2, feedback=False, headers=qa)
        still = service.send(people[:20], seed=3, feedback=False)
        n.table("10 QA requests with X-Force-Arm: green", columns, _slot_rows(preview, slots))
        n.ok(f"meanwhile {still.arms['champion']}/20 user requests still answered by blue")
        n.why(
            "smoke-test the exact model that will go live, on the live service, before anyone is switched; "
            "forcing an arm needs the admin token, and forced requests are logged as 'forced' and left out of "
            "every canary analysis, A/B test, bandit reward and monitoring window, so nobody can steer them"
        )

        n.step("Switch: green becomes the active slot in one write")
        started = time.perf_counter()
        state = service.apply(switch_slot)  # one compare-and-swap write, then one poll
        switch_ms = (time.perf_counter() - started) * 1000
        after = service.send(people, seed=4, feedback=False)
        n.table(
            f"the same 100 users, routing state v{state.version}: active slot {state.active_slot}",
            columns,
            _slot_rows(after, slots),
        )
        moved = after.share("challenger")
        (n.ok if moved == 1.0 else n.bad)(
            f"switch moved {moved:.0%} of requests to green at once ({switch_ms:.0f} ms: one state write + one poll)"
        )

        n.step("Something looks wrong: switch back")
        started = time.perf_counter()
        state = service.apply(switch_slot)
        back_ms = (time.perf_counter() - started) * 1000
        home = service.send(people, seed=5, feedback=False)
        (n.ok if home.share("champion") == 1.0 else n.bad)(
            f"switched back: {home.share('champion'):.0%} of requests on blue again ({back_ms:.0f} ms, "
            f"routing state v{state.version}); no failed request: {live.failed + after.failed + home.failed}"
        )
        n.why(
            "unlike a canary, everyone moves at once, so the safety comes from the preview and from a switch-back "
            "that is the same instant operation; the registry is untouched (use the canary to promote)"
        )
        n.say("the demo now puts the routing state back as it found it")
    n.code(
        "serving/router.py (switch_slot, route)",
        "serving/state_store.py (update_routing)",
        "serving/runtime.py (Poller)",
    )
